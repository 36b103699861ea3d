"""Train a Flux.1 LoRA of a subject's likeness from a handful of captioned photos.

The loss is the flow-matching objective of diffusers' `train_dreambooth_lora_flux.py` on packed
latents (`flow_matching.py`); latents and text embeddings are computed once up front
(`training_set.py`), then the text encoders are dropped and the VAE waits on the CPU.

Resuming is exact: a checkpoint holds LoRA weights, optimizer, lr scheduler, RNG states and the
step, and every step's randomness (batch, latent sample, noise, timesteps, caption dropout) is
seeded by (seed, step), so a run killed at any point and restarted ends with bit-identical LoRA
weights on the same device. A checkpoint dir holding a different run (other settings, data or
base model) is refused with CheckpointMismatchError rather than resumed or silently discarded.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth_pipelines.core.checkpointing import rng_state, set_rng_state
from synth_pipelines.core.errors import ConflictError, InvalidInputError
from synth_pipelines.core.flux import checkpoints
from synth_pipelines.core.flux.flow_matching import FlowMatchingLoss
from synth_pipelines.core.flux.generation import LORA_WEIGHT_NAME, render_embeddings
from synth_pipelines.core.flux.training_config import (
    FluxLoraConfig,
    TrainingPlan,
    as_config,
    plan_training,
    training_fingerprint,
)
from synth_pipelines.core.flux.training_set import TrainingSet, encode_training_set

__all__ = ["FluxLoraConfig", "FluxTrainResult", "train_flux_lora", "training_fingerprint"]

TRAINING_INFO_FILE = "training_info.json"


@dataclass
class FluxTrainResult:
    """What a run produced. `losses` has one flow-matching loss per optimizer step (all steps,
    across resumes); `samples` maps a step to one PNG per validation prompt; `steps_per_s`
    counts this attempt's optimizer steps over their own time (no caching or sampling);
    `transformer` is the trained transformer (LoRA attached), in memory."""

    lora_dir: Path
    lora_path: Path
    steps: int
    losses: list[float]
    samples: dict[int, list[bytes]]
    seconds: float
    steps_per_s: float
    cache_seconds: float
    peak_memory_bytes: int | None
    optimizer: str
    resumed_from_step: int | None
    trainable_params: int
    captions: list[str]
    validation_prompts: list[str]
    device: str
    dtype: str
    fingerprint: str
    transformer: Any = field(default=None, repr=False, compare=False)

    @property
    def peak_memory_gib(self) -> float | None:
        """Peak CUDA memory allocated during the run, GiB (None on CPU)."""
        if self.peak_memory_bytes is None:
            return None
        return round(self.peak_memory_bytes / 2**30, 2)


def lora_metadata(transformer: Any) -> dict[str, Any]:
    """The LoRA config stored in the safetensors header, which `load_lora_weights` rebuilds the
    adapter from (without it, alpha != rank would load at the wrong scale). Dropout is set to 0:
    layers injected by `load_lora_weights` start in training mode, and would otherwise drop."""
    return transformer.peft_config["default"].to_dict() | {"lora_dropout": 0.0}


def _add_lora(transformer: Any, config: FluxLoraConfig) -> None:
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    transformer.requires_grad_(False)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        init_lora_weights="gaussian",
        target_modules=config.target_modules,
    )
    try:
        transformer.add_adapter(lora)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        raise InvalidInputError(
            f"target_modules {config.target_modules} do not match the Flux transformer: {exc}"
        ) from exc
    cast_training_params(transformer, dtype=torch.float32)  # fp32 LoRA over a bf16 base
    if config.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()


def training_attention() -> Any:
    """PyTorch's attention backends for training, cuDNN's left out: on an H200 (PyTorch 2.11,
    CUDA 13) cuDNN's attention backward crashed full-size Flux LoRA steps with an illegal memory
    access, while flash and memory-efficient attention trained them at 0.22 s/step (0.44 with
    gradient checkpointing; benchmarks/RESULTS.md). On CPU this changes nothing."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(
        [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    )


def _make_optimizer(name: str, params: list[torch.nn.Parameter], config: FluxLoraConfig) -> Any:
    if name == "AdamW8bit":
        import bitsandbytes as bnb

        optimizer_class = bnb.optim.AdamW8bit
    else:
        optimizer_class = torch.optim.AdamW
    return optimizer_class(
        params, lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=config.weight_decay
    )


@dataclass
class _Models:
    transformer: Any
    sampler: Any  # a FluxPipeline without text encoders, for samples from cached embeddings
    data: TrainingSet
    loss: FlowMatchingLoss
    cache_seconds: float


def _load_and_cache(pipeline_path: Path, plan: TrainingPlan) -> _Models:
    """Load the pipeline on the CPU, encode images and prompts once (each encoder visiting the
    device only while it works), then keep just the transformer on the device."""
    from diffusers import FluxPipeline

    started = time.perf_counter()
    config = plan.config
    pipe = FluxPipeline.from_pretrained(pipeline_path, dtype=plan.dtype)
    data = encode_training_set(
        pipe,
        plan.pictures,
        plan.captions,
        [*plan.prompts, *([""] if config.caption_dropout else [])],
        plan.device,
        config.max_sequence_length,
        config.random_flip,
    )
    transformer = pipe.transformer.to(plan.device)
    sampler = FluxPipeline(
        scheduler=pipe.scheduler,
        vae=pipe.vae,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        transformer=transformer,
    )
    sampler.set_progress_bar_config(disable=True)
    loss = FlowMatchingLoss(plan, data, pipe.scheduler.config, pipe.vae_scale_factor)
    del pipe  # the text encoders go with it
    if plan.device.type == "cuda":
        torch.cuda.empty_cache()
    return _Models(transformer, sampler, data, loss, time.perf_counter() - started)


def _render_samples(models: _Models, plan: TrainingPlan) -> list[bytes]:
    transformer, vae, config = models.transformer, models.sampler.vae, plan.config
    transformer.eval()
    vae.to(plan.device)
    width, height = plan.sample_size
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            return [
                render_embeddings(
                    models.sampler,
                    models.data.embeddings[prompt].prompt_embeds,
                    models.data.embeddings[prompt].pooled_prompt_embeds,
                    seed=config.seed,
                    steps=config.sample_steps,
                    width=width,
                    height=height,
                    guidance_scale=config.guidance_scale,
                )
                for prompt in plan.prompts
            ]
    finally:
        vae.to("cpu")
        transformer.train()


def _checkpoint(
    directory: Path,
    step: int,
    plan: TrainingPlan,
    transformer: Any,
    trainable: dict,
    losses: list[float],
    optimizer: Any,
    lr_scheduler: Any,
) -> str:
    from peft.utils import get_peft_model_state_dict

    trainer_state = {
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
        "rng": rng_state(),
    }
    path = checkpoints.save_checkpoint(
        directory,
        step,
        trainable,
        get_peft_model_state_dict(transformer),
        lora_metadata(transformer),
        trainer_state,
        {"step": step, "fingerprint": plan.fingerprint, "losses": losses},
        plan.config.keep_checkpoints,
    )
    return str(path)


def _save_lora(transformer: Any, output_dir: Path, info: dict[str, Any]) -> Path:
    """Write the diffusers-format LoRA via a temp dir: the file appears complete or not at all."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".tmp-lora-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    FluxPipeline.save_lora_weights(
        tmp,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        transformer_lora_adapter_metadata=lora_metadata(transformer),
    )
    (tmp / TRAINING_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for name in (LORA_WEIGHT_NAME, TRAINING_INFO_FILE):
        os.replace(tmp / name, output_dir / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return output_dir / LORA_WEIGHT_NAME


def train_flux_lora(
    pipeline_path: str | Path,
    images: Sequence[tuple[Any, str]],
    config: FluxLoraConfig | dict[str, Any],
    output_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    on_samples: Callable[[int, list[bytes]], None] | None = None,
) -> FluxTrainResult:
    """Train a LoRA on the Flux.1 pipeline at `pipeline_path` from (image, caption) pairs (PIL
    images or encoded bytes, sides multiples of 16, already bucketed) and save it to
    `output_dir/pytorch_lora_weights.safetensors` (loadable with `pipe.load_lora_weights`).

    With `checkpoint_dir`, a checkpoint is written every `checkpoint_every` steps and at the end,
    and the run resumes from the newest complete one there; one from a different run raises
    CheckpointMismatchError (409). `on_log` gets `{"event": "cached", ...}` once, then
    `{"event": "train", "step", "loss", "learning_rate", "steps_per_s", "checkpoint"}` per step;
    `on_samples(step, pngs)` gets one PNG per validation prompt every `sample_every` steps and at
    the end. An exception from either callback stops the run (checkpoints stay).
    """
    from diffusers.optimization import get_scheduler

    started = time.perf_counter()
    config, pipeline_path, output_dir = as_config(config), Path(pipeline_path), Path(output_dir)
    plan = plan_training(pipeline_path, images, config)  # every input error before any loading
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    restored = checkpoints.load_checkpoint(checkpoint_dir, plan.fingerprint)
    if restored and restored[0]["step"] > config.max_steps:
        raise ConflictError(
            f"{checkpoint_dir} already holds step {restored[0]['step']}, past max_steps "
            f"{config.max_steps}: raise max_steps or use another checkpoint_dir"
        )
    cuda = plan.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(plan.device)

    devices = list(range(torch.cuda.device_count())) if cuda else []
    with torch.random.fork_rng(devices=devices), training_attention():
        models = _load_and_cache(pipeline_path, plan)
        if on_log:
            on_log(
                {"event": "cached", "images": len(models.data), "seconds": models.cache_seconds}
                | {"prompts": len(models.data.embeddings)}
            )
        transformer = models.transformer
        torch.manual_seed(config.seed)  # LoRA initialisation draws from torch's global RNG
        _add_lora(transformer, config)
        trainable = {n: p for n, p in transformer.named_parameters() if p.requires_grad}
        optimizer = _make_optimizer(plan.optimizer, list(trainable.values()), config)
        lr_scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer,
            num_warmup_steps=config.lr_warmup_steps,
            num_training_steps=config.max_steps,
        )
        step, losses, samples, resumed_from = 0, [], {}, None
        if restored:
            meta, weights, trainer_state = restored
            with torch.no_grad():
                for name, param in trainable.items():
                    param.copy_(weights[name])
            optimizer.load_state_dict(trainer_state["optimizer"])
            lr_scheduler.load_state_dict(trainer_state["lr_scheduler"])
            set_rng_state(trainer_state["rng"])
            step, losses, resumed_from = meta["step"], list(meta["losses"]), meta["step"]
            samples = checkpoints.load_samples(checkpoint_dir, step)

        transformer.train()
        train_seconds, run_steps = 0.0, 0
        accumulation = config.gradient_accumulation
        while step < config.max_steps:
            step_started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            micro_losses = []
            for micro in range(accumulation):
                loss = models.loss(transformer, step * accumulation + micro)
                (loss / accumulation).backward()
                micro_losses.append(loss.item())
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(trainable.values(), config.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            step, run_steps = step + 1, run_steps + 1
            losses.append(float(np.mean(micro_losses)))
            train_seconds += time.perf_counter() - step_started
            last = step == config.max_steps

            # Samples before the checkpoint: a checkpoint at step k implies its samples exist.
            if plan.prompts and (last or (config.sample_every and step % config.sample_every == 0)):
                samples[step] = _render_samples(models, plan)
                if checkpoint_dir is not None:
                    checkpoints.save_samples(checkpoint_dir, step, samples[step])
                if on_samples:
                    on_samples(step, samples[step])
            saved = None
            if (
                checkpoint_dir
                and config.checkpoint_every
                and (step % config.checkpoint_every == 0 or last)
            ):
                saved = _checkpoint(
                    checkpoint_dir,
                    step,
                    plan,
                    transformer,
                    trainable,
                    losses,
                    optimizer,
                    lr_scheduler,
                )
            if on_log:
                on_log(
                    {"event": "train", "step": step, "loss": losses[-1], "checkpoint": saved}
                    | {"learning_rate": lr_scheduler.get_last_lr()[0]}
                    | {"steps_per_s": run_steps / train_seconds}
                )

        if plan.prompts and config.max_steps not in samples:  # a finished run, re-invoked
            samples[config.max_steps] = _render_samples(models, plan)
        transformer.eval()
        info = {
            "base_model": str(pipeline_path),
            "trigger_word": config.trigger_word,
            "steps": step,
            "optimizer": plan.optimizer,
            "fingerprint": plan.fingerprint,
            "train_config": config.model_dump(mode="json"),
        }
        lora_path = _save_lora(transformer, output_dir, info)

    return FluxTrainResult(
        lora_dir=output_dir,
        lora_path=lora_path,
        steps=step,
        losses=losses,
        samples=samples,
        seconds=time.perf_counter() - started,
        steps_per_s=run_steps / train_seconds if train_seconds else 0.0,
        cache_seconds=models.cache_seconds,
        peak_memory_bytes=torch.cuda.max_memory_allocated(plan.device) if cuda else None,
        optimizer=plan.optimizer,
        resumed_from_step=resumed_from,
        trainable_params=sum(p.numel() for p in trainable.values()),
        captions=plan.captions,
        validation_prompts=plan.prompts,
        device=str(plan.device),
        dtype=str(plan.dtype).removeprefix("torch."),
        fingerprint=plan.fingerprint,
        transformer=transformer,
    )
