"""A FaceGenerator backed by a StyleGAN2 checkpoint (the stylegan2-pytorch layout, see
`synth_pipelines.core.imagesets.stylegan2`).

A face GAN is unconditional: it cannot be asked for a bucket. Each GeneratedFace carries the
bucket that was asked for as its label, and the pipeline's classifier step keeps only the faces
whose predicted gender and age group agree with it. Seeds mix in the bucket, so that asking two
buckets for faces with the same seed gives different candidates.

torch lives in the optional `ml` extra: it is imported on first use only.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PIL import Image

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.generation import GeneratedFace
from synth_pipelines.core.faces.simulator import derive_face_seed

DEFAULT_PSI = 0.7


class StyleGANFaceGenerator:
    """Faces from a StyleGAN2 generator, truncated with ψ, resized to `size` px.

    Construction is cheap; the checkpoint is loaded on first use (or by `load()`). Face i of
    `generate(bucket, n, seed)` uses the latent of `derive_face_seed(seed, bucket, i)`, so each
    face is reproducible from its own `GeneratedFace.seed` via `generate_from_seeds`.
    """

    def __init__(
        self,
        checkpoint_path: str | Path,
        psi: float = DEFAULT_PSI,
        size: int = 256,
        device: str | None = None,
        batch_size: int = 8,
    ) -> None:
        if not 0.0 <= psi <= 2.0:
            raise InvalidInputError(f"truncation psi must be from 0 to 2, got {psi}")
        if not isinstance(size, int) or not 16 <= size <= 2048:
            raise InvalidInputError(f"size must be an integer from 16 to 2048 pixels, got {size!r}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint_path = Path(checkpoint_path)
        self.psi = float(psi)
        self.size = size
        self.batch_size = batch_size
        self.name = f"stylegan2:{self.checkpoint_path.name}"
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the checkpoint now (MissingCheckpointError / InvalidInputError as
        `load_stylegan2`); returns the StyleGAN2Generator."""
        with self._lock:
            if self._model is None:
                from synth_pipelines.core.imagesets.stylegan2 import load_stylegan2

                self._model = load_stylegan2(self.checkpoint_path, device=self._device)
            return self._model

    def generate(self, bucket: Bucket, n: int, seed: int) -> list[GeneratedFace]:
        """`n` faces labelled `bucket`; the same (bucket, n, seed) gives the same images."""
        bucket = Bucket.parse(bucket) if isinstance(bucket, str) else bucket
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidInputError(f"n must be a non-negative integer, got {n!r}")
        return self.generate_from_seeds(
            bucket, [derive_face_seed(seed, bucket, i) for i in range(n)]
        )

    def generate_from_seeds(self, bucket: Bucket, seeds: list[int]) -> list[GeneratedFace]:
        """One face per per-face seed (a GeneratedFace.seed), in order."""
        if not seeds:
            return []
        model = self.load()
        pixels = model.generate(seeds, psi=self.psi, batch_size=self.batch_size)
        faces = []
        for face_seed, array in zip(seeds, pixels, strict=True):
            image = Image.fromarray(array, "RGB")
            if image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.Resampling.LANCZOS)
            attributes = {
                "generator": self.name,
                "seed": face_seed,
                "psi": self.psi,
                "gender": bucket.gender,
                "age_group": bucket.age_group,
                "model_size": model.size,
            }
            faces.append(GeneratedFace(image, bucket, face_seed, attributes))
        return faces
