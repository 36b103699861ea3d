"""Train a persona adapter (LoRA or bottleneck) on a tokenized dataset: a plain, seeded,
resumable PyTorch loop, and `load_adapted_model` to load base + adapter back for either method.

Resuming is exact: a checkpoint holds adapter weights, optimizer, scheduler, every RNG state and
the step, and the data order is a function of (seed, epoch), so a run killed at any point and
restarted ends with bit-identical adapter weights on the same device.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from synth_pipelines.core.checkpointing import fresh_tmp, publish, rng_state, set_rng_state
from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.persona.bottleneck import (
    BottleneckConfig,
    add_bottleneck_adapters,
    save_bottleneck_adapter,
)
from synth_pipelines.core.persona.dataset import IGNORE_INDEX, TokenizedDataset
from synth_pipelines.core.persona.evaluation import mean_token_loss
from synth_pipelines.core.persona.serving import (  # load_adapted_model: re-exported for callers
    ADAPTER_INFO_FILE,
    load_adapted_model,
    load_base_model,
    resolve_device,
)

__all__ = ["TrainConfig", "TrainResult", "load_adapted_model", "load_base_model", "train_adapter"]

_CHECKPOINT = re.compile(r"step-(\d{8})")
# Settings that change only bookkeeping, not the trained weights: a run may resume across them.
_BOOKKEEPING = {"checkpoint_every", "keep_checkpoints", "eval_every", "log_every", "device"}


class TrainConfig(BaseModel):
    """Adapter training settings. LoRA targets default to GPT-2's `c_attn`/`c_proj` (Conv1D,
    `fan_in_fan_out` set automatically), else peft's per-architecture defaults. `device="auto"`
    picks CUDA when available, and `dtype="auto"` bfloat16 there (float32 on CPU)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["lora", "bottleneck"] = "lora"
    lora_rank: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: list[str] | None = None
    bottleneck_size: int = Field(16, ge=1)
    bottleneck_nonlinearity: Literal["gelu", "relu", "silu", "tanh"] = "gelu"
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_steps: int = Field(200, ge=1)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=4)
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: int = 0
    checkpoint_every: int = Field(50, ge=0, description="0: never")
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int = Field(0, ge=0, description="0: only at the end")
    log_every: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"


@dataclass
class TrainResult:
    """What a training run produced. Losses are mean reply-token cross-entropy (nats)."""

    adapter_dir: Path
    method: str
    steps: int
    train_losses: list[float]
    val_losses: list[tuple[int, float]]
    base_val_loss: float | None
    base_val_perplexity: float | None
    val_loss: float | None
    val_perplexity: float | None
    tokens_per_s: float
    train_tokens: int
    trainable_params: int
    total_params: int
    resumed_from_step: int | None
    device: str
    model: Any = field(default=None, repr=False, compare=False)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def lora_target_modules(model: torch.nn.Module) -> list[str]:
    """Default LoRA targets: GPT-2's attention and projection Conv1Ds, peft's per-architecture
    defaults, else every Linear/Conv1D except the output head."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS
    from transformers.pytorch_utils import Conv1D

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type == "gpt2":
        return ["c_attn", "c_proj"]
    if model_type in PEFT_DEFAULTS:
        return list(PEFT_DEFAULTS[model_type])
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear | Conv1D) and module is not head
        }
    )


def _add_lora(model: torch.nn.Module, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers.pytorch_utils import Conv1D

    targets = config.lora_target_modules or lora_target_modules(model)
    matched = [
        module
        for name, module in model.named_modules()
        if any(name == t or name.endswith("." + t) for t in targets)
    ]
    if not matched:
        raise InvalidInputError(
            f"no module of the base model matches lora_target_modules {targets}"
        )
    # GPT-2's Conv1D stores weights transposed; peft needs to be told.
    fan_in_fan_out = all(isinstance(module, Conv1D) for module in matched)
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        fan_in_fan_out=fan_in_fan_out,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _as_dataset(data: bytes | TokenizedDataset) -> TokenizedDataset:
    return TokenizedDataset.from_bytes(data) if isinstance(data, bytes | bytearray) else data


@lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of (0-based) `step`: a stream of per-epoch permutations seeded by
    (seed, epoch), so any step's batch is known without replaying earlier ones."""
    positions = range(step * batch_size, (step + 1) * batch_size)
    return [int(_permutation(seed, pos // n, n)[pos % n]) for pos in positions]


def _lr_factor(step: int, warmup: int, total: int) -> float:
    # Linear warmup, then cosine decay to 10% of the peak learning rate.
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fingerprint(config: TrainConfig, train: TokenizedDataset, base_model_path: Path) -> str:
    settings = config.model_dump(exclude=_BOOKKEEPING)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(hashlib.sha256(train.to_bytes()).digest())
    digest.update((base_model_path / "config.json").read_bytes())
    return digest.hexdigest()


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write into a temp dir, fsync, then rename: a checkpoint dir exists only when complete."""
    from safetensors.torch import save_file

    final = directory / f"step-{step:08d}"
    tmp = fresh_tmp(directory, f"step-{step:08d}")
    weights = {k: v.detach().to("cpu").contiguous() for k, v in state["weights"].items()}
    save_file(weights, str(tmp / "adapter.safetensors"))
    torch.save(state["trainer"], tmp / "trainer_state.pt")
    (tmp / "checkpoint.json").write_text(json.dumps(state["meta"]), encoding="utf-8")
    publish(tmp, final)
    for old in _checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _CHECKPOINT.fullmatch(p.name)]
    return sorted((p for p in found if (p / "checkpoint.json").is_file()), key=lambda p: p.name)


def _resume(
    checkpoint_dir: Path | None, fingerprint: str, trainable: dict, optimizer, scheduler
) -> dict[str, Any] | None:
    """Load the newest complete checkpoint into weights, optimizer, scheduler and RNGs."""
    from safetensors.torch import load_file

    existing = _checkpoints(checkpoint_dir) if checkpoint_dir else []
    if not existing:
        return None
    meta = json.loads((existing[-1] / "checkpoint.json").read_text(encoding="utf-8"))
    if meta["fingerprint"] != fingerprint:
        raise InvalidInputError(
            f"{checkpoint_dir} holds checkpoints of a different run (settings, data or base "
            "model differ): use an empty checkpoint_dir or the original settings"
        )
    weights = load_file(str(existing[-1] / "adapter.safetensors"))
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(weights[name])
    trainer_state = torch.load(existing[-1] / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    set_rng_state(trainer_state["rng"])
    return meta


def _loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(
        logits[:, :-1].float().flatten(0, 1),
        batch["labels"][:, 1:].flatten(),
        ignore_index=IGNORE_INDEX,
    )


def train_adapter(
    base_model_path: str | Path,
    train: bytes | TokenizedDataset,
    val: bytes | TokenizedDataset | None,
    config: TrainConfig | dict[str, Any],
    output_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train an adapter on `train` (tokenized, or its `to_bytes()`), save it to `output_dir`.

    With `checkpoint_dir`, a checkpoint is written every `checkpoint_every` steps and at the end,
    and a run resumes from the newest complete one there (it must come from the same settings,
    data and base model). `on_log` gets `{"event": "train", "step", "loss", "learning_rate",
    "tokens_per_s"}` every `log_every` steps and `{"event": "eval", "step", "val_loss",
    "val_perplexity"}` every `eval_every` steps and at the end; an exception it raises stops
    the run. The returned result holds the trained model in memory (`model`).
    """
    config = config if isinstance(config, TrainConfig) else TrainConfig.model_validate(config)
    base_model_path, output_dir = Path(base_model_path), Path(output_dir)
    train_ds = _as_dataset(train).truncated(config.max_length)
    val_ds = _as_dataset(val).truncated(config.max_length) if val is not None else None
    if train_ds.n_target_tokens == 0:
        raise InvalidInputError("the training dataset has no reply tokens to learn from")
    device, dtype = resolve_device(config.device, config.dtype)
    model = load_base_model(base_model_path, device, dtype)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    base_val_loss = mean_token_loss(model, val_ds, config.batch_size) if val_ds else None

    _seed_everything(config.seed)  # adapter init draws from torch's RNG
    if config.method == "lora":
        model = _add_lora(model, config)
    else:
        bottleneck = BottleneckConfig(config.bottleneck_size, config.bottleneck_nonlinearity)
        add_bottleneck_adapters(model, bottleneck)
    # Adapters are created on the base model's device, in float32 even over a bfloat16 base.
    trainable = _trainable(model)
    optimizer = torch.optim.AdamW(
        trainable.values(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, config.warmup_steps, config.max_steps)
    )
    fingerprint = _fingerprint(config, train_ds, base_model_path)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    meta = _resume(checkpoint_dir, fingerprint, trainable, optimizer, scheduler)
    resumed_from = meta["step"] if meta else None
    meta = meta or {"step": 0, "train_losses": [], "val_losses": [], "tokens": 0}
    step, tokens = meta["step"], meta["tokens"]
    losses, val_losses = list(meta["train_losses"]), [tuple(v) for v in meta["val_losses"]]

    model.train()
    step_seconds, run_tokens = 0.0, 0
    while step < config.max_steps:
        indices = batch_indices(step, len(train_ds), config.batch_size, config.seed)
        batch = {k: v.to(device) for k, v in train_ds.collate(indices, pad).items()}
        started = time.perf_counter()
        loss = _loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable.values(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        losses.append(loss.item())
        step_seconds += time.perf_counter() - started
        n_tokens = int(batch["attention_mask"].sum())
        tokens, run_tokens = tokens + n_tokens, run_tokens + n_tokens
        if config.eval_every and val_ds and step % config.eval_every == 0:
            val_losses.append((step, mean_token_loss(model, val_ds, config.batch_size)))
            model.train()
            if on_log:
                on_log(_eval_event(step, val_losses[-1][1]))
        last = step == config.max_steps
        if (
            checkpoint_dir
            and config.checkpoint_every
            and (step % config.checkpoint_every == 0 or last)
        ):
            meta = {"step": step, "fingerprint": fingerprint, "train_losses": losses}
            meta |= {"val_losses": val_losses, "tokens": tokens}
            trainer_state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
            }
            state = {"weights": trainable, "trainer": trainer_state, "meta": meta}
            _save_checkpoint(checkpoint_dir, step, state, config.keep_checkpoints)
        if on_log and (step % config.log_every == 0 or last):
            lr = scheduler.get_last_lr()[0]
            speed = run_tokens / step_seconds
            on_log(
                {"event": "train", "step": step, "loss": losses[-1]}
                | {"learning_rate": lr, "tokens_per_s": speed}
            )

    model.eval()
    val_loss = mean_token_loss(model, val_ds, config.batch_size) if val_ds else None
    if val_loss is not None and on_log:
        on_log(_eval_event(step, val_loss))
    trainable_params, total_params = count_parameters(model)
    result = TrainResult(
        adapter_dir=output_dir,
        method=config.method,
        steps=step,
        train_losses=losses,
        val_losses=val_losses,
        base_val_loss=base_val_loss,
        base_val_perplexity=math.exp(base_val_loss) if base_val_loss is not None else None,
        val_loss=val_loss,
        val_perplexity=math.exp(val_loss) if val_loss is not None else None,
        tokens_per_s=run_tokens / step_seconds if step_seconds else 0.0,
        train_tokens=tokens,
        trainable_params=trainable_params,
        total_params=total_params,
        resumed_from_step=resumed_from,
        device=str(device),
        model=model,
    )
    _save_adapter(model, config, result, base_model_path)
    return result


def _eval_event(step: int, val_loss: float) -> dict[str, Any]:
    return {
        "event": "eval",
        "step": step,
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss),
    }


def _save_adapter(model: Any, config: TrainConfig, result: TrainResult, base: Path) -> None:
    """Save into a temp sibling dir, then swap it in: `adapter_dir` is never half-written."""
    final = result.adapter_dir
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if config.method == "lora":
        model.save_pretrained(str(tmp))
    else:
        save_bottleneck_adapter(model, tmp)
    info = {
        "method": config.method,
        "base_model": str(base),
        "train_config": config.model_dump(),
        "steps": result.steps,
        "base_val_perplexity": result.base_val_perplexity,
        "val_perplexity": result.val_perplexity,
        "trainable_params": result.trainable_params,
    }
    (tmp / ADAPTER_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
