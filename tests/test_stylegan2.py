"""The StyleGAN2 generator (stylegan2-pytorch checkpoint layout) and the face generator on it,
on a tiny randomly initialised checkpoint saved with torch.save like a real one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError  # noqa: E402
from synth_pipelines.core.faces.buckets import Bucket  # noqa: E402
from synth_pipelines.core.faces.generation import FaceGenerator  # noqa: E402
from synth_pipelines.core.faces.stylegan_generator import StyleGANFaceGenerator  # noqa: E402
from synth_pipelines.core.imagesets.stylegan2 import (  # noqa: E402
    StyleGAN2Generator,
    load_stylegan2,
    upfirdn2d,
)

TINY_CHANNELS = {4: 32, 8: 32, 16: 16, 32: 16}


def tiny_stylegan2(seed: int = 0) -> StyleGAN2Generator:
    """A random 32 px generator, style_dim 32, 2 mapping layers, with non-zero noise weights
    and biases so that every parameter shapes the output."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = StyleGAN2Generator(32, style_dim=32, n_mlp=2, channels=TINY_CHANNELS)
        with torch.no_grad():
            for name, parameter in generator.named_parameters():
                if name.endswith(("noise.weight", "bias")) and "modulation" not in name:
                    parameter.add_(torch.randn_like(parameter) * 0.1)
    return generator


def save_tiny_stylegan2(path: Path, latent_avg: bool = True) -> Path:
    """Save a tiny checkpoint as stylegan2-pytorch does: {"g_ema": state_dict, "latent_avg"}."""
    generator = tiny_stylegan2()
    checkpoint: dict = {"g_ema": generator.state_dict()}
    if latent_avg:
        checkpoint["latent_avg"] = generator.mean_latent(512)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_stylegan2(tmp_path_factory.mktemp("sg2") / "tiny.pt")


@pytest.fixture(scope="module")
def generator(checkpoint: Path) -> StyleGAN2Generator:
    return load_stylegan2(checkpoint, device="cpu")


def test_load_infers_the_architecture_from_the_state_dict(generator: StyleGAN2Generator) -> None:
    assert (generator.size, generator.style_dim, generator.n_mlp) == (32, 32, 2)
    assert generator.channels == TINY_CHANNELS
    reference = tiny_stylegan2()
    for key, value in reference.state_dict().items():
        assert torch.equal(generator.state_dict()[key], value), key


def test_generate_is_deterministic_by_seed_with_the_right_shape(
    generator: StyleGAN2Generator,
) -> None:
    first = generator.generate([1, 2, 3], psi=0.7)
    again = generator.generate([3, 1], psi=0.7, batch_size=1)
    assert first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first[2], again[0]) and np.array_equal(first[0], again[1])
    assert not np.array_equal(first[0], first[1])
    assert first.std() > 1.0  # not a flat image


def test_psi_changes_the_output_and_zero_gives_the_average(generator: StyleGAN2Generator) -> None:
    low = generator.generate([5], psi=0.3)
    high = generator.generate([5], psi=1.0)
    assert np.abs(low.astype(int) - high.astype(int)).max() > 0
    average = generator.generate([0, 7, 123456], psi=0.0)
    assert np.array_equal(average[0], average[1]) and np.array_equal(average[0], average[2])


def test_outputs_are_finite_before_quantisation(generator: StyleGAN2Generator) -> None:
    with torch.no_grad():
        w = generator.map(generator.latents_for([9, 10]))
        image = generator.synthesize(w)
    assert image.shape == (2, 3, 32, 32)
    assert torch.isfinite(image).all()


def test_truncation_centre_falls_back_to_mapped_mean(tmp_path: Path) -> None:
    path = save_tiny_stylegan2(tmp_path / "no_avg.pt", latent_avg=False)
    loaded = load_stylegan2(path, device="cpu")
    expected = tiny_stylegan2().mean_latent()
    assert torch.allclose(loaded.truncation_latent, expected, atol=1e-6)


def test_upfirdn2d_upsamples_a_constant_to_a_constant() -> None:
    kernel = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    kernel = kernel / kernel.sum() * 4
    out = upfirdn2d(torch.ones(1, 2, 6, 6), kernel, up=2, pad=(2, 1))
    assert out.shape == (1, 2, 12, 12)
    assert torch.allclose(out[..., 2:-2, 2:-2], torch.ones(1, 2, 8, 8))


def test_a_training_checkpoint_loads(tmp_path: Path) -> None:
    """stylegan2-pytorch's train.py saves g, d, g_ema, optimiser states and its argparse
    Namespace; only g_ema is used, and nothing but the Namespace needs unpickling."""
    import argparse

    generator = tiny_stylegan2()
    state = generator.state_dict()
    torch.save(
        {"g": state, "d": {"convs.0.0.weight": torch.zeros(1)}, "g_ema": state,
         "args": argparse.Namespace(size=32, latent=32, n_mlp=2)},
        tmp_path / "train.pt",
    )  # fmt: skip
    loaded = load_stylegan2(tmp_path / "train.pt", device="cpu")
    # psi = 1: no truncation, so the output is the network's alone.
    assert np.array_equal(loaded.generate([4], psi=1.0), generator.eval().generate([4], psi=1.0))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(MissingCheckpointError, match=r"nope\.pt"):
        load_stylegan2(missing)


def test_wrong_layout_names_the_missing_keys(tmp_path: Path) -> None:
    state = tiny_stylegan2().state_dict()
    del state["convs.1.noise.weight"], state["to_rgbs.0.bias"]
    torch.save({"g_ema": state}, tmp_path / "broken.pt")
    with pytest.raises(InvalidInputError, match=r"convs\.1\.noise\.weight.*to_rgbs\.0\.bias"):
        load_stylegan2(tmp_path / "broken.pt")
    torch.save({"g_ema": {"something.else": torch.zeros(1)}}, tmp_path / "alien.pt")
    with pytest.raises(InvalidInputError, match=r"missing keys input\.input"):
        load_stylegan2(tmp_path / "alien.pt")


def test_face_generator_labels_seeds_psi_and_size(checkpoint: Path) -> None:
    faces_gen = StyleGANFaceGenerator(checkpoint, psi=0.5, size=64, device="cpu")
    assert isinstance(faces_gen, FaceGenerator)
    bucket = Bucket("female", "senior")
    faces = faces_gen.generate(bucket, 3, seed=11)
    assert [f.bucket for f in faces] == [bucket] * 3
    assert all(f.image.size == (64, 64) and f.image.mode == "RGB" for f in faces)
    assert all(f.attributes["psi"] == 0.5 and f.attributes["seed"] == f.seed for f in faces)
    assert len({f.seed for f in faces}) == 3
    again = faces_gen.generate(bucket, 3, seed=11)
    assert [np.asarray(f.image).tobytes() for f in faces] == [
        np.asarray(f.image).tobytes() for f in again
    ]
    one = faces_gen.generate_from_seeds(bucket, [faces[1].seed])[0]
    assert np.array_equal(np.asarray(one.image), np.asarray(faces[1].image))
    other = faces_gen.generate(Bucket("male", "child"), 1, seed=11)[0]
    assert other.seed != faces[0].seed


def test_face_generator_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MissingCheckpointError, match=r"absent\.pt"):
        StyleGANFaceGenerator(tmp_path / "absent.pt").generate(Bucket("male", "adult"), 1, 0)
