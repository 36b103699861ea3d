"""The embeddings beside a profile: dlib face descriptors, which find a synthetic face that is a
real person's (a likeness, not a copy: the privacy check fails without blocking), CLIP image
embeddings from a local directory, which fidelity then measures on, and the TorchScript
Inception's features, from which validation computes FID."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from synth_pipelines.core.errors import MissingCheckpointError
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.imagesets.embeddings import (
    CLIP_EMBEDDINGS,
    FACE_EMBEDDINGS,
    INCEPTION_FEATURES,
    InceptionFeatures,
    load_face_embeddings,
)
from synth_pipelines.core.imagesets.pipeline import ImageOptions, profile_source, validate_set
from synth_pipelines.core.imagesets.records import ImageRecord, write_records
from tests.tiny_models import build_tiny_clip, build_tiny_inception

SIMULATOR = ProceduralFaceSimulator(size=192)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _faces(folder, seeds) -> list[Image.Image]:
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for seed in seeds:
        image = SIMULATOR.render("male/adult", seed).image
        image.save(folder / f"face_{seed}.png")
        images.append(image)
    return images


def test_a_real_persons_face_in_the_synthetic_set_fails_privacy(tmp_path) -> None:
    real = _faces(tmp_path / "real", range(1, 25))
    options = ImageOptions(ocr=False, holdout_fraction=0.0)
    profiled = profile_source(str(tmp_path / "real"), tmp_path / "profile", options)
    assert profiled.summary["face_embeddings"] >= 20
    vectors, keys = load_face_embeddings(tmp_path / "profile")
    assert vectors.shape == (len(keys), 128) and keys[0].startswith("face_")

    # Distinct faces, and one real face mirrored and re-lit: the same person, another image.
    others = [SIMULATOR.render("male/adult", seed).image for seed in range(500, 512)]
    likeness = ImageEnhance.Brightness(ImageOps.mirror(real[3])).enhance(1.15)
    records = [ImageRecord(f"synthetic/{i}.png", _png(im)) for i, im in enumerate(others)]
    records.append(ImageRecord("synthetic/likeness.png", _png(likeness)))
    write_records(records, tmp_path / "synthetic.parquet")

    result = validate_set(tmp_path / "profile", tmp_path / "synthetic.parquet",
                          tmp_path / "validation", options)  # fmt: skip
    report = json.loads((tmp_path / "validation" / "report.json").read_text())["privacy"]
    assert report["metrics"]["copies"] == 0 and not report["blocking"]
    assert report["metrics"]["identity_matches"] >= 1
    assert "synthetic/likeness.png" in report["failing"]
    privacy = next(o for o in result.outcomes if o.name == "privacy")
    assert not privacy.passed and privacy.severity == "warn"  # fails, does not block


def test_clip_embeddings_from_a_local_directory_drive_fidelity(tmp_path) -> None:
    clip = build_tiny_clip(tmp_path / "clip")
    _faces(tmp_path / "real", range(1, 9))
    options = ImageOptions(ocr=False, faces=False, clip_path=str(clip))
    profiled = profile_source(str(tmp_path / "real"), tmp_path / "profile", options)
    assert profiled.summary["clip_embeddings"] == 8
    vectors = np.load(tmp_path / "profile" / CLIP_EMBEDDINGS)
    assert vectors.shape[0] == 8 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert not (tmp_path / "profile" / FACE_EMBEDDINGS).exists()  # faces were not looked for

    records = [ImageRecord(f"s/{seed}.png", _png(SIMULATOR.render("male/adult", seed).image))
               for seed in range(700, 706)]  # fmt: skip
    write_records(records, tmp_path / "synthetic.parquet")
    validate_set(tmp_path / "profile", tmp_path / "synthetic.parquet", tmp_path / "validation",
                 options)  # fmt: skip
    report = json.loads((tmp_path / "validation" / "report.json").read_text())["fidelity"]
    assert report["notes"]["embeddings"] == "CLIP (SYNTH_IMAGES_CLIP_PATH)"


def test_fid_from_a_local_torchscript_inception(tmp_path) -> None:
    build_tiny_inception(tmp_path / "inception")
    _faces(tmp_path / "real", range(1, 11))
    options = ImageOptions(ocr=False, faces=False, inception_path=str(tmp_path / "inception"))
    profiled = profile_source(str(tmp_path / "real"), tmp_path / "profile", options)
    assert profiled.summary["inception_features"] == 10
    assert np.load(tmp_path / "profile" / INCEPTION_FEATURES).shape == (10, 64)

    def fid_of(images: list[Image.Image], name: str) -> dict:
        records = [ImageRecord(f"s/{i}.png", _png(im)) for i, im in enumerate(images)]
        write_records(records, tmp_path / f"{name}.parquet")
        validate_set(tmp_path / "profile", tmp_path / f"{name}.parquet", tmp_path / name,
                     options)  # fmt: skip
        return json.loads((tmp_path / name / "report.json").read_text())["fidelity"]

    faces = [SIMULATOR.render("male/adult", seed).image for seed in range(700, 710)]
    near = fid_of(faces, "faces")
    far = fid_of([ImageEnhance.Brightness(im).enhance(0.25) for im in faces], "dark")
    assert "fid" not in near["skipped"] and near["metrics"]["fid"] >= 0
    assert far["metrics"]["fid"] > 2 * near["metrics"]["fid"]  # the same faces, darkened


def test_the_inception_path_must_hold_a_torchscript_model(tmp_path) -> None:
    with pytest.raises(MissingCheckpointError, match="no TorchScript Inception there"):
        InceptionFeatures(tmp_path / "missing")
    (tmp_path / "inception-2015-12-05.pt").write_bytes(b"not a model")
    with pytest.raises(MissingCheckpointError, match="is not a TorchScript Inception"):
        InceptionFeatures(tmp_path)
    path = build_tiny_inception(tmp_path / "model")
    features = InceptionFeatures(path).embed([Image.new("RGB", (40, 30), "red")] * 3)
    assert features.shape == (3, 64) and np.allclose(features[0], features[2])
