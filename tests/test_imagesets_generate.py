"""Profile-guided generation: targets drawn from a profile, the simulation backend (scenes and
faces), the diffusion and GAN backends on tiny local checkpoints, and the errors.

Profiles here are built from small PIL images by `profile_of` below (numpy statistics in the
profile JSON layout), so these tests do not depend on the profiling module.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.imagesets.generate import (
    ImageGenerator,
    Target,
    build_generator,
    colourfulness,
    fit_to_size,
    match_statistics,
    sample_targets,
)
from synth_pipelines.core.imagesets.records import ImageRecord, read_records, write_records
from synth_pipelines.core.imagesets.scenes import SceneSimulator, finish

QUANTILES = {"p1": 1, "p5": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99}


def _laplacian_variance(gray: np.ndarray) -> float:
    g = gray.astype(np.float64)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def measure(image: Image.Image) -> dict[str, float]:
    """The profile's per-image features, computed here with numpy (and skimage for noise)."""
    from skimage.restoration import estimate_sigma

    gray = np.asarray(image.convert("L"), np.float64)
    return {
        "width": float(image.width),
        "height": float(image.height),
        "aspect": image.width / image.height,
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "colourfulness": colourfulness(np.asarray(image.convert("RGB"))),
        "sharpness": _laplacian_variance(gray),
        "noise": float(estimate_sigma(gray)),
    }


def _feature(values: list[float]) -> dict[str, Any]:
    v = np.asarray(values, np.float64)
    counts, edges = np.histogram(v, bins=20)
    return {
        "min": float(v.min()),
        "max": float(v.max()),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "quantiles": {k: float(np.percentile(v, q)) for k, q in QUANTILES.items()},
        "histogram": {"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
    }


def profile_of(
    images: list[Image.Image], labels: list[str] | None = None, faces: int = 0
) -> dict[str, Any]:
    """A profile JSON (the profiling step's contract) of `images`."""
    rows = [measure(im) for im in images]
    sizes = Counter((im.width, im.height) for im in images)
    return {
        "features": {name: _feature([r[name] for r in rows]) for name in rows[0]},
        "sizes": [{"width": w, "height": h, "count": c} for (w, h), c in sizes.most_common()],
        "counts": {"images": len(images)},
        "labels": dict(Counter(labels)) if labels else {},
        "faces": {"images_with_faces": faces},
    }


def real_images(
    n: int, level: float, spread: float, seed: int, sizes: list[tuple[int, int]]
) -> list[Image.Image]:
    """Smooth random colour images around luma `level`, std about `spread`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        coarse = rng.normal(0, 1, (6, 6, 3)).astype(np.float32)
        field = np.stack(
            [
                np.asarray(Image.fromarray(coarse[..., c], "F").resize((w, h), Image.BICUBIC))
                for c in range(3)
            ],
            axis=-1,
        )
        pixels = level + rng.uniform(0.6, 1.4) * spread * field + rng.normal(0, 2, field.shape)
        out.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))
    return out


@pytest.fixture(scope="module")
def dark_profile() -> dict[str, Any]:
    sizes = [(64, 48)] * 3 + [(48, 64)]
    images = real_images(24, 45, 18, seed=1, sizes=sizes)
    return profile_of(images, labels=["cat"] * 18 + ["dog"] * 6)


@pytest.fixture(scope="module")
def bright_profile() -> dict[str, Any]:
    return profile_of(real_images(16, 200, 25, seed=2, sizes=[(56, 56)]))


def decode(record: ImageRecord) -> Image.Image:
    return Image.open(io.BytesIO(record.data)).convert("RGB")


# --- targets and matching -------------------------------------------------------------------


def test_targets_follow_the_size_and_label_mix(dark_profile: dict[str, Any]) -> None:
    targets = sample_targets(dark_profile, 400, seed=3)
    share = sum((t.width, t.height) == (64, 48) for t in targets) / len(targets)
    assert 0.65 <= share <= 0.85  # 3 in 4 of the real images
    assert {(t.width, t.height) for t in targets} == {(64, 48), (48, 64)}
    labels = Counter(t.label for t in targets)
    assert 0.65 <= labels["cat"] / 400 <= 0.85 and set(labels) == {"cat", "dog"}
    brightness = dark_profile["features"]["brightness"]
    assert all(
        brightness["min"] - 1e-9 <= t.brightness <= brightness["max"] + 1e-9 for t in targets
    )
    assert sample_targets(dark_profile, 5, seed=3) == targets[:5]  # target i ignores count
    assert sample_targets(dark_profile, 5, seed=4) != targets[:5]


def test_match_statistics_hits_luma_and_colour_targets() -> None:
    image = real_images(1, 128, 40, seed=5, sizes=[(96, 80)])[0]
    target = Target(0, 0, 96, 80, 70.0, 25.0, 12.0, 100.0, 1.0)
    matched = measure(match_statistics(image, target))
    assert matched["brightness"] == pytest.approx(70, abs=1.5)
    assert matched["contrast"] == pytest.approx(25, abs=1.5)
    assert matched["colourfulness"] == pytest.approx(12, abs=2.5)


def test_fit_to_size_crops_to_aspect_and_maps_the_box() -> None:
    image = Image.new("RGB", (100, 100))
    out, box = fit_to_size(image, (50, 25), (40, 40, 60, 60))  # crop rows 25..75, halve
    assert out.size == (50, 25)
    assert box == (20, 8, 10, 10)


# --- simulation ------------------------------------------------------------------------------


def test_scene_simulator_renders_deterministic_scenes_of_any_size() -> None:
    simulator = SceneSimulator()
    image, info = simulator.render(80, 50, seed=12)
    again, _ = simulator.render(80, 50, seed=12)
    assert image.size == (80, 50) and image.mode == "RGB"
    assert image.tobytes() == again.tobytes()
    assert image.tobytes() != simulator.render(80, 50, seed=13)[0].tobytes()
    assert info["background"] in ("gradient", "value_noise", "stripes")
    assert all(len(o["box"]) == 4 for o in info["objects"])
    backgrounds = {simulator.render(32, 32, seed)[1]["background"] for seed in range(30)}
    assert backgrounds == {"gradient", "value_noise", "stripes"}
    with pytest.raises(InvalidInputError, match="width"):
        simulator.render(0, 50, seed=1)


def test_finish_blurs_sharpens_and_adds_noise_keeping_contrast() -> None:
    image, _ = SceneSimulator().render(128, 128, seed=3)
    before = measure(image)
    soft, applied = finish(image, before["sharpness"] / 4, None, seed=1)
    assert "blur_radius" in applied
    assert measure(soft)["sharpness"] == pytest.approx(before["sharpness"] / 4, rel=0.3)
    crisp, applied = finish(image, before["sharpness"] * 4, None, seed=1)
    assert "unsharp_strength" in applied
    assert measure(crisp)["sharpness"] == pytest.approx(before["sharpness"] * 4, rel=0.3)
    for out in (soft, crisp):
        assert measure(out)["contrast"] == pytest.approx(before["contrast"], rel=0.1)
    noisy, _ = finish(soft, None, 4.0, seed=1)
    assert measure(noisy)["noise"] == pytest.approx(4.0, abs=1.0)
    assert finish(soft, None, 4.0, seed=1)[0].tobytes() == noisy.tobytes()


def test_simulation_is_deterministic_by_seed(dark_profile: dict[str, Any]) -> None:
    generator = build_generator("simulation")
    assert isinstance(generator, ImageGenerator)
    first = list(generator.generate(dark_profile, 6, seed=7))
    again = list(build_generator("simulation").generate(dark_profile, 6, seed=7))
    other = list(generator.generate(dark_profile, 6, seed=8))
    assert [r.data for r in first] == [r.data for r in again]
    assert all(a.data != b.data for a, b in zip(first, other, strict=True))
    assert len({r.data for r in first}) == 6
    record = first[0]
    assert record.metadata["backend"] == "simulation" and record.metadata["kind"] == "scene"
    assert record.metadata["seed"] == sample_targets(dark_profile, 1, 7)[0].seed
    assert record.key == f"{record.label}/000000.png" and record.label in ("cat", "dog")


def _stats(records: list[ImageRecord]) -> dict[str, np.ndarray]:
    rows = [measure(decode(r)) for r in records]
    return {k: np.array([row[k] for row in rows]) for k in rows[0]}


def test_simulation_follows_a_dark_profile(dark_profile: dict[str, Any]) -> None:
    progress: list[tuple[int, int]] = []
    records = list(
        build_generator("simulation").generate(
            dark_profile, 200, seed=0, progress=lambda d, t: progress.append((d, t))
        )
    )
    assert progress[-1] == (200, 200) and len(progress) == 200
    stats = _stats(records)
    real = dark_profile["features"]
    assert abs(np.median(stats["brightness"]) - real["brightness"]["quantiles"]["p50"]) <= 15
    assert abs(np.median(stats["contrast"]) - real["contrast"]["quantiles"]["p50"]) <= 8
    # The spread follows too: generated quartiles sit inside the real range.
    q25, q75 = np.percentile(stats["brightness"], [25, 75])
    assert real["brightness"]["min"] - 8 <= q25 <= q75 <= real["brightness"]["max"] + 8
    sizes = Counter((int(w), int(h)) for w, h in zip(stats["width"], stats["height"], strict=True))
    assert set(sizes) == {(64, 48), (48, 64)} and 0.62 <= sizes[(64, 48)] / 200 <= 0.88


def test_simulation_follows_a_bright_profile(bright_profile: dict[str, Any]) -> None:
    records = list(build_generator("simulation").generate(bright_profile, 60, seed=1))
    stats = _stats(records)
    p50 = bright_profile["features"]["brightness"]["quantiles"]["p50"]
    assert p50 > 180 and abs(np.median(stats["brightness"]) - p50) <= 15
    assert all(r.label is None and r.key.endswith(".png") for r in records)
    assert set(zip(stats["width"], stats["height"], strict=True)) == {(56, 56)}


def test_simulation_matches_sharpness_and_noise(bright_profile: dict[str, Any]) -> None:
    profile = {**bright_profile, "features": dict(bright_profile["features"])}
    for name, value in (("sharpness", 150.0), ("noise", 1.5)):
        profile["features"][name] = _feature([value] * 4)
    stats = _stats(list(build_generator("simulation").generate(profile, 20, seed=2)))
    assert 75 <= np.median(stats["sharpness"]) <= 300
    assert 0.9 <= np.median(stats["noise"]) <= 2.4
    for name, value in (("sharpness", 20.0), ("noise", 0.0)):  # soft, clean photos
        profile["features"][name] = _feature([value] * 4)
    soft = _stats(list(build_generator("simulation").generate(profile, 20, seed=2)))
    assert np.median(soft["sharpness"]) <= 40 < np.median(stats["sharpness"])


def test_face_profile_gives_faces_with_boxes() -> None:
    images = real_images(10, 120, 40, seed=3, sizes=[(96, 80)])
    profile = profile_of(images, faces=9)
    records = list(build_generator("simulation").generate(profile, 10, seed=4))
    assert {r.metadata["kind"] for r in records} == {"face"}
    assert len({r.metadata["bucket"] for r in records}) == 10  # buckets evenly
    for record in records:
        image = decode(record)
        assert image.size == (96, 80)
        ((x, y, w, h),) = record.boxes
        assert min(x, y) >= 0 and x + w <= 96 and y + h <= 80 and min(w, h) > 15


def test_records_round_trip_through_record_files(
    tmp_path: Path, dark_profile: dict[str, Any]
) -> None:
    records = list(build_generator("simulation", mode="faces").generate(dark_profile, 3, seed=5))
    write_records(records, tmp_path / "set.parquet")
    back = list(read_records(tmp_path / "set.parquet"))
    assert [(r.key, r.data, r.boxes, r.metadata["seed"]) for r in back] == [
        (r.key, r.data, r.boxes, r.metadata["seed"]) for r in records
    ]


# --- model backends --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from tests.test_stylegan2 import save_tiny_stylegan2

    return save_tiny_stylegan2(tmp_path_factory.mktemp("gan") / "tiny.pt")


def test_gan_backend_records_psi_and_follows_the_profile(
    tiny_gan: Path, dark_profile: dict[str, Any]
) -> None:
    generator = build_generator("gan", checkpoint_path=str(tiny_gan), device="cpu", psi=0.6)
    records = list(generator.generate(dark_profile, 8, seed=9))
    again = list(generator.generate(dark_profile, 8, seed=9))
    assert [r.data for r in records] == [r.data for r in again]
    assert all(r.metadata["psi"] == 0.6 and r.metadata["backend"] == "gan" for r in records)
    stats = _stats(records)
    p50 = dark_profile["features"]["brightness"]["quantiles"]["p50"]
    assert abs(np.median(stats["brightness"]) - p50) <= 15
    assert {(int(w), int(h)) for w, h in zip(stats["width"], stats["height"], strict=True)} <= {
        (64, 48),
        (48, 64),
    }
    truncated = list(
        build_generator("gan", checkpoint_path=str(tiny_gan), device="cpu", psi=0.0).generate(
            dark_profile, 2, seed=9
        )
    )
    assert truncated[0].data != records[0].data


def test_diffusion_backend_with_a_tiny_pipeline(
    tmp_path_factory: pytest.TempPathFactory, dark_profile: dict[str, Any]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.tiny_models import build_tiny_text_to_image_pipeline

    path = build_tiny_text_to_image_pipeline(tmp_path_factory.mktemp("sd") / "pipe")
    generator = build_generator(
        "diffusion",
        checkpoint_path=str(path),
        device="cpu",
        num_inference_steps=2,
        size=64,
        batch_size=3,
    )
    records = list(generator.generate(dark_profile, 3, seed=1))
    again = list(generator.generate(dark_profile, 3, seed=1))
    assert [r.data for r in records] == [r.data for r in again]
    for record in records:
        assert record.metadata["prompt"] == f"a photo of {record.label}"
        assert record.metadata["num_inference_steps"] == 2
        assert decode(record).size in ((64, 48), (48, 64))
    p50 = dark_profile["features"]["brightness"]["quantiles"]["p50"]
    assert abs(np.median(_stats(records)["brightness"]) - p50) <= 15


# --- errors ----------------------------------------------------------------------------------


def test_bad_backend_lists_the_accepted_ones() -> None:
    with pytest.raises(InvalidInputError, match="simulation, diffusion, gan"):
        build_generator("vae")
    with pytest.raises(InvalidInputError, match="colour_boost"):
        build_generator("simulation", colour_boost=2)


def test_missing_checkpoints_name_the_path(tmp_path: Path) -> None:
    for backend in ("gan", "diffusion"):
        with pytest.raises(MissingCheckpointError, match=r"missing-model"):
            build_generator(backend, checkpoint_path=str(tmp_path / "missing-model"))
        with pytest.raises(MissingCheckpointError, match="checkpoint_path"):
            build_generator(backend)


def test_bad_count_and_seed(dark_profile: dict[str, Any]) -> None:
    generator = build_generator("simulation")
    with pytest.raises(InvalidInputError, match="count"):
        list(generator.generate(dark_profile, -1, seed=0))
    with pytest.raises(InvalidInputError, match="seed"):
        sample_targets(dark_profile, 1, seed=-3)
