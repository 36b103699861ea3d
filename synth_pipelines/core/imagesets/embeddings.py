"""Embeddings beyond the profile's own descriptor, written beside a profile when asked for:

- `face_embeddings.npy` (+ `face_embedding_keys.jsonl`): dlib's 128-d face descriptor of the
  largest face of every image the profile found faces in (the ResNet of `core/privacy`, weights
  from the face-recognition-models package). Validation compares identities with them: a
  synthetic face within dlib's same-person distance of a real one is a privacy finding.
- `clip_embeddings.npy`: CLIP image embeddings (L2-normalised) of every ok image, in the rows
  of `embeddings.npy`, from a local CLIP directory (SYNTH_IMAGES_CLIP_PATH); fidelity measures
  precision, recall, density, coverage and KID on them instead of the descriptor.
- `inception_features.npy`: the 2048-d pool features of NVIDIA's TorchScript Inception
  (`inception-2015-12-05.pt`, the file clean-fid and StyleGAN2-ADA's metrics load) of every ok
  image, in the rows of `embeddings.npy`, when SYNTH_IMAGES_INCEPTION_PATH names that file (or
  its folder): validation computes FID from them. Images go in as clean-fid's "clean" mode
  has them: PIL bicubic to 299 x 299, float 0..255. The clean-fid and torch-fidelity packages
  themselves are not used: both import torchvision, which has no build for our torch 2.13 CPU.

All stream the records a batch at a time and appear complete (temporary names, renamed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipelines.core.errors import MissingCheckpointError
from synth_pipelines.core.imagesets.records import ImageRecord

FACE_EMBEDDINGS = "face_embeddings.npy"
FACE_EMBEDDING_KEYS = "face_embedding_keys.jsonl"
CLIP_EMBEDDINGS = "clip_embeddings.npy"
INCEPTION_FEATURES = "inception_features.npy"
INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_SIDE = 299
BATCH = 32


class ClipImageEmbedder:
    """CLIP image embeddings from a local directory (config.json, weights, preprocessor)."""

    def __init__(self, path: str | Path, device: str | None = None) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise MissingCheckpointError(
                f"SYNTH_IMAGES_CLIP_PATH={path}: no CLIP model there (config.json missing)"
            )
        import torch
        from transformers import CLIPImageProcessor, CLIPModel

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model: Any = CLIPModel.from_pretrained(path).eval().to(self.device)
        self.processor: Any = CLIPImageProcessor.from_pretrained(path)

    def embed(self, images: list[Any]) -> np.ndarray:
        import torch

        inputs = self.processor(images=images, return_tensors="pt")
        with torch.no_grad():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        out = out / out.norm(dim=-1, keepdim=True)
        return out.float().cpu().numpy()


class InceptionFeatures:
    """The FID feature extractor: a TorchScript Inception called as
    `model(images, return_features=True)` on float N x 3 x 299 x 299 images in 0..255, giving
    N x 2048. `path` is the .pt file or a folder holding `inception-2015-12-05.pt`."""

    def __init__(self, path: str | Path, device: str | None = None) -> None:
        import torch

        path = Path(path)
        file = path / INCEPTION_FILE if path.is_dir() else path
        if not file.is_file():
            raise MissingCheckpointError(
                f"SYNTH_IMAGES_INCEPTION_PATH={path}: no TorchScript Inception there "
                f"(expected {INCEPTION_FILE} or a path to it)"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.model: Any = torch.jit.load(str(file), map_location=self.device).eval()
        except (RuntimeError, ValueError) as exc:
            raise MissingCheckpointError(
                f"SYNTH_IMAGES_INCEPTION_PATH={file} is not a TorchScript Inception "
                f"({str(exc).splitlines()[0]})"
            ) from None

    def embed(self, images: list[Any]) -> np.ndarray:
        import torch
        from PIL import Image

        side = (INCEPTION_SIDE, INCEPTION_SIDE)
        pixels = np.stack(
            [np.asarray(image.resize(side, Image.Resampling.BICUBIC)) for image in images]
        )
        batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(self.device, torch.float32)
        with torch.no_grad():
            out = self.model(batch, return_features=True)
        out = out.reshape(len(images), -1).double().cpu().numpy()
        if not np.isfinite(out).all():
            raise ValueError("the Inception features hold NaN or infinity: check the model file")
        return out


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _save(path: Path, rows: list[np.ndarray], width: int) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as out:
        np.save(out, np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), "f4"))
    partial.replace(path)


def write_face_embeddings(
    records: Iterable[ImageRecord], features: Any, out_dir: Path, embedder: Any = None
) -> int:
    """dlib descriptors of the images whose features row counts a face; returns how many."""
    from synth_pipelines.core.privacy.identity import FaceEmbedder, decode_rgb

    with_faces = set(features.loc[features["ok"] & (features["faces"] > 0), "key"])
    embedder = embedder or FaceEmbedder(fallback_full_image=False)
    rows: list[np.ndarray] = []
    keys: list[str] = []
    wanted = (r for r in records if r.key in with_faces)
    for batch in _batches(wanted, BATCH):
        vectors = embedder.embed_batch([decode_rgb(r.data) for r in batch])
        for record, vector in zip(batch, vectors, strict=True):
            if vector is not None:
                rows.append(np.asarray(vector, np.float32))
                keys.append(record.key)
    _save(Path(out_dir) / FACE_EMBEDDINGS, rows, 128)
    (Path(out_dir) / FACE_EMBEDDING_KEYS).write_text(
        "".join(json.dumps(key) + "\n" for key in keys), encoding="utf-8"
    )
    return len(rows)


def write_image_vectors(
    records: Iterable[ImageRecord], features: Any, out_dir: Path, embedder: Any, name: str
) -> int:
    """`embedder.embed(images)` of the ok images, in the order of their embedding rows, saved
    as `name` (CLIP_EMBEDDINGS, INCEPTION_FEATURES) beside the profile; returns how many."""
    import io

    from PIL import Image

    ok = features.loc[features["ok"]].sort_values("embedding_row")
    order = {key: row for row, key in enumerate(ok["key"])}
    rows: list[np.ndarray | None] = [None] * len(order)
    wanted = (r for r in records if r.key in order)
    for batch in _batches(wanted, BATCH):
        images = [Image.open(io.BytesIO(r.data)).convert("RGB") for r in batch]
        for record, vector in zip(batch, embedder.embed(images), strict=True):
            rows[order[record.key]] = vector
    missing = [key for key, row in order.items() if rows[row] is None]
    if missing:
        raise ValueError(f"{name}: {len(missing)} ok images not in the records, e.g. "
                         f"{missing[0]!r}")  # fmt: skip
    _save(Path(out_dir) / name, [r for r in rows if r is not None], 0)
    return len(rows)


def load_face_embeddings(out_dir: Path) -> tuple[np.ndarray, list[str]] | None:
    """The face descriptors and their keys beside a profile, or None when there are none."""
    path, keys = Path(out_dir) / FACE_EMBEDDINGS, Path(out_dir) / FACE_EMBEDDING_KEYS
    if not path.is_file() or not keys.is_file():
        return None
    lines = keys.read_text(encoding="utf-8").splitlines()
    return np.load(path), [json.loads(line) for line in lines]


def load_vectors(out_dir: Path, name: str) -> np.ndarray | None:
    """The vectors `name` (CLIP_EMBEDDINGS, INCEPTION_FEATURES) beside a profile, or None."""
    path = Path(out_dir) / name
    return np.load(path) if path.is_file() else None
