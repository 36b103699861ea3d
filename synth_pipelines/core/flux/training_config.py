"""Settings of a Flux LoRA run, and the plan derived from them and the inputs before any model
is loaded: validated examples, device, precision, optimizer and the run's fingerprint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.flux import checkpoints
from synth_pipelines.core.flux.generation import resolve_device
from synth_pipelines.core.flux.training_set import (
    TRIGGER_PLACEHOLDER,
    examples_digest,
    fill_trigger,
    prepare_examples,
)

DEFAULT_TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
# Settings that change what is logged or sampled, not the trained weights: runs resume across
# them. The device is one too: a run may resume elsewhere (bit-identity holds per device).
_BOOKKEEPING = {
    "checkpoint_every",
    "keep_checkpoints",
    "sample_every",
    "validation_prompts",
    "sample_steps",
    "sample_width",
    "sample_height",
    "device",
}


class FluxLoraConfig(BaseModel):
    """LoRA training settings; defaults follow diffusers' Flux DreamBooth LoRA script.

    `use_8bit_adam="auto"` takes bitsandbytes' AdamW8bit on CUDA when it imports, else AdamW;
    `mixed_precision="auto"` is bfloat16 on CUDA, float32 on CPU (LoRA weights stay float32).
    `guidance_scale` feeds the guidance embedding of guidance-distilled models (dev) in training
    and sampling; models without one (schnell) ignore it. Captions may hold `[trigger]`.
    """

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES), min_length=1
    )
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    lr_warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_steps: int = Field(1000, ge=1)
    batch_size: int = Field(1, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)
    checkpoint_every: int = Field(250, ge=0, description="0: never")
    keep_checkpoints: int = Field(2, ge=1)
    sample_every: int = Field(0, ge=0, description="0: only at the end")
    validation_prompts: list[str] = Field(default_factory=list)
    sample_steps: int = Field(4, ge=1)
    sample_width: int | None = Field(None, gt=0, description="None: the first image's width")
    sample_height: int | None = Field(None, gt=0, description="None: the first image's height")
    guidance_scale: float = Field(3.5, ge=0)
    max_sequence_length: int = Field(512, ge=1, le=512)
    gradient_checkpointing: bool = True
    use_8bit_adam: Literal["auto"] | bool = "auto"
    mixed_precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    weighting_scheme: Literal["none", "logit_normal", "mode", "sigma_sqrt", "cosmap"] = "none"
    logit_mean: float = 0.0
    logit_std: float = Field(1.0, gt=0)
    mode_scale: float = 1.29
    trigger_word: str | None = None
    trigger_mode: Literal["prepend", "replace"] = "replace"
    caption_dropout: float = Field(0.0, ge=0, le=1)
    random_flip: bool = False

    @field_validator("trigger_word")
    @classmethod
    def _trigger_word(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or TRIGGER_PLACEHOLDER in value):
            raise ValueError(f"trigger_word must be a non-empty word, not {value!r}")
        return value.strip() if value else value


def as_config(config: FluxLoraConfig | dict[str, Any]) -> FluxLoraConfig:
    return config if isinstance(config, FluxLoraConfig) else FluxLoraConfig.model_validate(config)


@dataclass
class TrainingPlan:
    """Everything fixed before the first step, derived from the inputs without loading models."""

    config: FluxLoraConfig
    device: torch.device
    dtype: torch.dtype
    optimizer: str  # "AdamW" or "AdamW8bit"
    pictures: list[Image.Image]
    captions: list[str]  # with the trigger word put in
    prompts: list[str]  # validation prompts, `[trigger]` filled in
    sample_size: tuple[int, int]  # (width, height)
    guidance_embeds: bool
    fingerprint: str


def _component_config(pipeline_path: Path, component: str) -> dict[str, Any]:
    file = pipeline_path / component / "config.json"
    if not (pipeline_path / "model_index.json").is_file() or not file.is_file():
        raise MissingCheckpointError(
            f"{pipeline_path} is not a Flux pipeline directory (no model_index.json or "
            f"{component}/config.json)"
        )
    return json.loads(file.read_text(encoding="utf-8"))


def optimizer_name(config: FluxLoraConfig, device: torch.device) -> str:
    """AdamW8bit when asked for (or `auto` on CUDA) and bitsandbytes imports, else AdamW."""
    if config.use_8bit_adam is False or (config.use_8bit_adam == "auto" and device.type != "cuda"):
        return "AdamW"
    try:
        import bitsandbytes  # noqa: F401
    except (ImportError, RuntimeError, OSError) as exc:
        if config.use_8bit_adam is True:
            raise MissingBackendError(
                f"use_8bit_adam=True needs bitsandbytes ({exc}): install it or use 'auto'"
            ) from exc
        return "AdamW"
    if device.type != "cuda":
        raise InvalidInputError("use_8bit_adam=True needs a CUDA device; use 'auto' on CPU")
    return "AdamW8bit"


def weight_dtype(config: FluxLoraConfig, device: torch.device) -> torch.dtype:
    if config.mixed_precision == "bf16" or (
        config.mixed_precision == "auto" and device.type == "cuda"
    ):
        return torch.bfloat16
    return torch.float32


def plan_training(
    pipeline_path: Path, images: Sequence[tuple[Any, str]], config: FluxLoraConfig
) -> TrainingPlan:
    """Validate the inputs against the pipeline's configs (no weights loaded) and fix the run."""
    transformer_config = _component_config(pipeline_path, "transformer")
    vae_config = _component_config(pipeline_path, "vae")
    multiple = 2 ** len(vae_config["block_out_channels"])  # VAE downsampling x 2x2 packing
    pictures, captions = prepare_examples(
        images, config.trigger_word, config.trigger_mode, multiple
    )
    prompts = [fill_trigger(prompt, config.trigger_word) for prompt in config.validation_prompts]
    width = config.sample_width or pictures[0].width
    height = config.sample_height or pictures[0].height
    if width % multiple or height % multiple:
        raise InvalidInputError(
            f"sample size {width}x{height}: both sides must be multiples of {multiple}"
        )
    device = resolve_device(config.device)
    optimizer, dtype = optimizer_name(config, device), weight_dtype(config, device)
    guidance_embeds = bool(transformer_config.get("guidance_embeds", False))
    excluded = set(_BOOKKEEPING)
    if config.lr_scheduler in ("constant", "constant_with_warmup"):
        excluded.add("max_steps")  # the schedule does not depend on it: a run may be extended
    if not guidance_embeds:
        excluded.add("guidance_scale")
    settings = config.model_dump(mode="json", exclude=excluded)
    settings |= {"optimizer": optimizer, "dtype": str(dtype)}
    fingerprint = checkpoints.fingerprint(
        settings, examples_digest(pictures, captions), checkpoints.base_model_digest(pipeline_path)
    )
    return TrainingPlan(
        config=config,
        device=device,
        dtype=dtype,
        optimizer=optimizer,
        pictures=pictures,
        captions=captions,
        prompts=prompts,
        sample_size=(width, height),
        guidance_embeds=guidance_embeds,
        fingerprint=fingerprint,
    )


def training_fingerprint(
    pipeline_path: str | Path,
    images: Sequence[tuple[Any, str]],
    config: FluxLoraConfig | dict[str, Any],
) -> str:
    """The identity of a training run (settings, images, final captions, base model) that its
    checkpoints carry: name a checkpoint dir after it to give each distinct run its own."""
    return plan_training(Path(pipeline_path), images, as_config(config)).fingerprint
