"""Flux LoRA training and generation on a tiny random Flux pipeline (real diffusers code paths)."""

import importlib.util
import io

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the 'ml' extra")
pytest.importorskip("diffusers", reason="needs the 'ml' extra")
pytest.importorskip("peft", reason="needs the 'ml' extra")

import torch
from PIL import Image
from safetensors.torch import load_file

from synth_pipelines.core.errors import (
    ConflictError,
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.flux.checkpoints import CheckpointMismatchError
from synth_pipelines.core.flux.generation import generate, load_pipeline
from synth_pipelines.core.flux.tiny_pipeline import build_tiny_flux_pipeline
from synth_pipelines.core.flux.training import (
    FluxLoraConfig,
    train_flux_lora,
    training_fingerprint,
)
from synth_pipelines.core.flux.training_set import apply_trigger, fill_trigger

TRIGGER = "ohwx"
PROMPTS = ["[trigger] smiling", "a red square"]
# Small but exercising: batches of 2, accumulation, LoRA dropout, caption dropout, flips,
# alpha != rank (the scale must travel with the saved LoRA), logit-normal timesteps.
SETTINGS = {
    "rank": 4,
    "alpha": 8,
    "dropout": 0.1,
    "learning_rate": 1e-2,
    "max_steps": 6,
    "batch_size": 2,
    "gradient_accumulation": 2,
    "checkpoint_every": 2,
    "sample_every": 3,
    "validation_prompts": PROMPTS,
    "max_sequence_length": 32,
    "trigger_word": TRIGGER,
    "caption_dropout": 0.25,
    "random_flip": True,
    "weighting_scheme": "logit_normal",
    "seed": 7,
}


class Crash(Exception):
    """Stands in for a process dying mid-run."""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models gain nothing from threads, and on a busy 2-core box they lose a lot.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_flux(tmp_path_factory):
    return build_tiny_flux_pipeline(tmp_path_factory.mktemp("models") / "tiny-flux")


def _photo(index: int) -> Image.Image:
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((x + 5 * index) // (4 + index) % 2) * 200
    rgb = np.stack([stripes, (y * 4) % 256, np.full_like(x, 40 * index)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


@pytest.fixture(scope="module")
def photos() -> list[tuple[Image.Image, str]]:
    captions = [
        "a photo of [trigger], smiling",
        "[trigger] in a red jacket",
        "close-up of [trigger]",
        "a portrait",  # no placeholder: the trigger word gets prepended
    ]
    return [(_photo(i), caption) for i, caption in enumerate(captions)]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained(tiny_flux, photos, tmp_path_factory):
    """One full run, with forward-hook counts of the encoders and decoder it called."""
    from diffusers.models.autoencoders.vae import Decoder, Encoder
    from transformers import CLIPTextModel, T5EncoderModel

    work = tmp_path_factory.mktemp("run")
    calls = dict.fromkeys(["vae_encoder", "vae_decoder", "t5", "clip"], 0)
    kinds = {Encoder: "vae_encoder", Decoder: "vae_decoder", T5EncoderModel: "t5"}
    kinds[CLIPTextModel] = "clip"

    def count(module, args, output):
        kind = kinds.get(type(module))
        if kind:
            calls[kind] += 1

    logs, delivered = [], []
    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        result = train_flux_lora(
            tiny_flux,
            photos,
            SETTINGS,
            work / "lora",
            checkpoint_dir=work / "checkpoints",
            on_log=logs.append,
            on_samples=lambda step, pngs: delivered.append((step, pngs)),
        )
    finally:
        handle.remove()
    return {"result": result, "calls": calls, "logs": logs, "delivered": delivered, "work": work}


def test_tiny_pipeline_is_labelled_and_loads_like_a_real_flux_directory(tiny_flux):
    from diffusers import FluxPipeline

    assert "TEST MODEL — tiny, random-init" in (tiny_flux / "README.md").read_text()
    pipe = FluxPipeline.from_pretrained(tiny_flux)
    assert pipe.transformer.config.in_channels == 4 * pipe.vae.config.latent_channels


def test_training_learns_a_lora_that_changes_the_output(trained, tiny_flux):
    result = trained["result"]

    assert result.steps == 6
    assert len(result.losses) == 6
    assert all(np.isfinite(result.losses))
    assert result.lora_path == result.lora_dir / "pytorch_lora_weights.safetensors"
    assert result.lora_path.is_file()
    assert result.optimizer == "AdamW"  # CPU: 8-bit Adam is CUDA-only
    assert result.trainable_params > 0
    assert result.steps_per_s > 0
    assert result.resumed_from_step is None
    train_logs = [log for log in trained["logs"] if log["event"] == "train"]
    assert [log["step"] for log in train_logs] == [1, 2, 3, 4, 5, 6]

    base = generate(
        load_pipeline(tiny_flux),
        f"{TRIGGER} smiling",
        seed=SETTINGS["seed"],
        steps=4,
        width=64,
        height=64,
        max_sequence_length=32,
    )
    assert base[0] != result.samples[6][0]


def test_saved_lora_reproduces_the_trained_model_exactly(trained, tiny_flux):
    from diffusers import FluxPipeline

    result = trained["result"]
    ours = load_pipeline(tiny_flux, lora_dir=result.lora_dir)
    # Plain diffusers, as any consumer of the file would load it (no eval() of our own).
    plain = FluxPipeline.from_pretrained(tiny_flux)
    plain.load_lora_weights(result.lora_dir)

    for prompt, trained_png in zip(result.validation_prompts, result.samples[6], strict=True):
        again = generate(
            ours,
            prompt,
            seed=SETTINGS["seed"],
            steps=4,
            width=64,
            height=64,
            max_sequence_length=32,
        )
        assert again == [trained_png]
        image = plain(
            prompt,
            num_inference_steps=4,
            width=64,
            height=64,
            max_sequence_length=32,
            generator=torch.Generator().manual_seed(SETTINGS["seed"]),
        ).images[0]
        assert _png(image) == trained_png


def test_latents_and_embeddings_are_computed_once(trained):
    calls = trained["calls"]
    distinct_prompts = 4 + len(PROMPTS) + 1  # captions, validation prompts, "" (caption dropout)

    assert calls["vae_encoder"] == 4  # one per photo (its mirror image rides in the same batch)
    assert calls["t5"] == distinct_prompts
    assert calls["clip"] == distinct_prompts
    assert calls["vae_decoder"] == 2 * len(PROMPTS)  # samples at steps 3 and 6 only


def test_samples_come_at_the_configured_steps(trained):
    result = trained["result"]

    assert sorted(result.samples) == [3, 6]
    assert [step for step, _ in trained["delivered"]] == [3, 6]
    for step, pngs in trained["delivered"]:
        assert pngs == result.samples[step]
        assert len(pngs) == len(PROMPTS)
        assert all(Image.open(io.BytesIO(png)).size == (64, 64) for png in pngs)
    assert result.validation_prompts == [f"{TRIGGER} smiling", "a red square"]


def test_trigger_word_in_captions(trained):
    assert trained["result"].captions == [
        "a photo of ohwx, smiling",
        "ohwx in a red jacket",
        "close-up of ohwx",
        "ohwx a portrait",
    ]
    assert apply_trigger("[trigger] on a beach", "sks", "prepend") == "sks on a beach"
    assert (
        apply_trigger("a photo of [trigger], smiling", "sks", "prepend")
        == "sks a photo of, smiling"
    )
    assert apply_trigger("a portrait", "sks", "prepend") == "sks a portrait"
    assert apply_trigger("sks, a portrait", "sks", "prepend") == "sks, a portrait"
    assert apply_trigger("a portrait of sks", "sks", "replace") == "a portrait of sks"
    assert apply_trigger("a portrait", None, "replace") == "a portrait"
    assert fill_trigger("a portrait", "sks") == "a portrait"  # validation prompts: no prepending
    with pytest.raises(InvalidInputError, match="no trigger_word"):
        apply_trigger("a photo of [trigger]", None, "replace")


def test_resume_after_a_crash_ends_bit_identical(trained, tiny_flux, photos, tmp_path):
    def crash_at_step_5(log):
        if log["event"] == "train" and log["step"] == 5:
            raise Crash

    # The same photos as encoded bytes: the run is identified by pixels, not by encoding.
    as_bytes = [(_png(image), caption) for image, caption in photos]
    with pytest.raises(Crash):
        train_flux_lora(
            tiny_flux,
            as_bytes,
            SETTINGS,
            tmp_path / "lora",
            checkpoint_dir=tmp_path / "ck",
            on_log=crash_at_step_5,
        )
    assert sorted(p.name for p in (tmp_path / "ck").glob("step-*")) == [
        "step-00000002",
        "step-00000004",
    ]
    resumed = train_flux_lora(
        tiny_flux, as_bytes, SETTINGS, tmp_path / "lora", checkpoint_dir=tmp_path / "ck"
    )

    uninterrupted = trained["result"]
    assert resumed.resumed_from_step == 4
    assert resumed.losses == uninterrupted.losses
    assert resumed.samples == uninterrupted.samples  # step 3 comes back from the checkpoint dir
    expected, got = load_file(uninterrupted.lora_path), load_file(resumed.lora_path)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_finished_run_is_not_trained_again(trained, tiny_flux, photos):
    work, first = trained["work"], trained["result"]
    again = train_flux_lora(
        tiny_flux, photos, SETTINGS, work / "lora-again", checkpoint_dir=work / "checkpoints"
    )

    assert again.resumed_from_step == 6
    assert again.losses == first.losses
    assert again.samples == first.samples
    assert load_file(again.lora_path).keys() == load_file(first.lora_path).keys()


def test_checkpoints_of_a_different_run_are_refused(trained, tiny_flux, photos):
    work = trained["work"]
    other = {**SETTINGS, "learning_rate": 5e-3}

    with pytest.raises(CheckpointMismatchError, match="different Flux LoRA run") as caught:
        train_flux_lora(tiny_flux, photos, other, work / "x", checkpoint_dir=work / "checkpoints")
    assert isinstance(caught.value, ConflictError)
    with pytest.raises(CheckpointMismatchError):  # other captions: other data
        train_flux_lora(
            tiny_flux,
            [(photos[0][0], "[trigger]"), *photos[1:]],
            SETTINGS,
            work / "x",
            checkpoint_dir=work / "checkpoints",
        )
    # What only changes logging or sampling does not change the run.
    bookkeeping = {**SETTINGS, "sample_every": 0, "checkpoint_every": 5, "validation_prompts": []}
    assert training_fingerprint(tiny_flux, photos, bookkeeping) == trained["result"].fingerprint
    assert training_fingerprint(tiny_flux, photos, other) != trained["result"].fingerprint


def test_generation_is_seeded(tiny_flux):
    pipe = load_pipeline(tiny_flux)
    args = {"steps": 2, "width": 64, "height": 48, "max_sequence_length": 16}

    first = generate(pipe, "a cat", n=2, seed=3, **args)
    assert generate(pipe, "a cat", n=2, seed=3, **args) == first
    assert generate(pipe, "a cat", n=1, seed=4, **args)[0] == first[1]  # image i: seed + i
    assert first[0] != first[1]
    assert Image.open(io.BytesIO(first[0])).size == (64, 48)
    with pytest.raises(InvalidInputError, match="multiples of 16"):
        generate(pipe, "a cat", width=60, height=64)


@pytest.mark.parametrize(
    ("images", "settings", "message"),
    [
        ([], {}, "no training images"),
        ([(_photo(0), None)], {}, "image 0 has no caption"),
        ([(_photo(0), "a photo"), (_photo(1), "   ")], {}, "image 1 has no caption"),
        ([(_photo(0).resize((60, 64)), "a photo")], {}, "60x64: both sides must be multiples"),
        ([(b"not an image", "a photo")], {}, "image 0 is not a readable image"),
        ([(_photo(0), "a photo of [trigger]")], {}, "no trigger_word is set"),
        ([(_photo(0), "a photo")], {"sample_width": 72}, "sample size 72x64"),
        ([(_photo(0), "a photo")], {"target_modules": ["no_such_layer"]}, "target_modules"),
    ],
)
def test_bad_inputs_are_clear_errors(tiny_flux, tmp_path, images, settings, message):
    config = {"max_steps": 1, "max_sequence_length": 16, **settings}
    with pytest.raises(InvalidInputError, match=message):
        train_flux_lora(tiny_flux, images, config, tmp_path / "lora")
    assert not (tmp_path / "lora" / "pytorch_lora_weights.safetensors").exists()


def test_bad_settings_and_paths(tiny_flux, photos, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        FluxLoraConfig(rnak=4)
    with pytest.raises(ValidationError, match="trigger_word"):
        FluxLoraConfig(trigger_word="  ")
    with pytest.raises(MissingCheckpointError):
        train_flux_lora(tmp_path / "nowhere", photos, {}, tmp_path / "lora")
    with pytest.raises(MissingCheckpointError):
        load_pipeline(tiny_flux, lora_dir=tmp_path)  # holds no LoRA file
    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(MissingBackendError, match="bitsandbytes"):
            config = {"use_8bit_adam": True, "trigger_word": TRIGGER}
            train_flux_lora(tiny_flux, photos, config, tmp_path / "lora")
