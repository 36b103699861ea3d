"""Checkpoints of a Flux LoRA run: complete or absent (temp dir, fsync, atomic rename), tied to
the run that wrote them by a fingerprint of settings, data and base model.

Layout of a checkpoint dir:
    step-00000250/               newest `keep_checkpoints` are kept
        lora_state.safetensors   trainable parameters by name (exact restore)
        pytorch_lora_weights.safetensors   the same LoRA in diffusers format (usable as is)
        trainer_state.pt         optimizer, lr scheduler, RNG states
        checkpoint.json          step, fingerprint, losses, timings
    samples/step-00000250/0.png  validation samples, kept so a resumed run still reports them
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from synth_pipelines.core.checkpointing import fresh_tmp, publish
from synth_pipelines.core.errors import ConflictError

_STEP_DIR = re.compile(r"step-(\d{8})")
_SAMPLED_BYTES = 1 << 20  # weight files are hashed at both ends: cheap, even for 23 GB


class CheckpointMismatchError(ConflictError):
    """The checkpoint dir holds checkpoints of a different run (other settings, data or base
    model). HTTP 409: use an empty checkpoint dir (e.g. one named by the run's fingerprint)."""


def base_model_digest(pipeline_path: Path) -> str:
    """sha256 over the pipeline's configs and both ends of every transformer weight file."""
    digest = hashlib.sha256()
    for file in sorted(pipeline_path.rglob("*.json")):
        digest.update(str(file.relative_to(pipeline_path)).encode())
        digest.update(file.read_bytes())
    for file in sorted((pipeline_path / "transformer").glob("*.safetensors")):
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(_SAMPLED_BYTES))
            handle.seek(max(0, size - _SAMPLED_BYTES))
            digest.update(handle.read(_SAMPLED_BYTES))
    return digest.hexdigest()


def fingerprint(settings: dict[str, Any], data_digest: str, model_digest: str) -> str:
    """The identity of a run: what the trained weights depend on."""
    payload = json.dumps([settings, data_digest, model_digest], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def list_checkpoints(directory: Path | None) -> list[Path]:
    """Complete checkpoints, oldest first (half-written ones never carry their final name)."""
    if directory is None or not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _STEP_DIR.fullmatch(p.name)]
    return sorted((p for p in found if (p / "checkpoint.json").is_file()), key=lambda p: p.name)


def save_checkpoint(
    directory: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    diffusers_lora: dict[str, torch.Tensor],
    lora_metadata: dict[str, Any],
    trainer_state: dict[str, Any],
    meta: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint `step` atomically and drop all but the newest `keep`."""
    from diffusers import FluxPipeline
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = fresh_tmp(directory, name)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in trainable.items()}
    save_file(weights, str(tmp / "lora_state.safetensors"))
    FluxPipeline.save_lora_weights(
        tmp, transformer_lora_layers=diffusers_lora, transformer_lora_adapter_metadata=lora_metadata
    )
    torch.save(trainer_state, tmp / "trainer_state.pt")
    (tmp / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
    final = directory / name
    publish(tmp, final)
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    directory: Path | None, run_fingerprint: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]] | None:
    """(meta, trainable weights, trainer state) of the newest complete checkpoint, or None.

    Raises CheckpointMismatchError when it belongs to a different run: silently resuming
    someone else's weights, or silently discarding them, would both be wrong.
    """
    from safetensors.torch import load_file

    existing = list_checkpoints(directory)
    if not existing:
        return None
    newest = existing[-1]
    meta = json.loads((newest / "checkpoint.json").read_text(encoding="utf-8"))
    if meta.get("fingerprint") != run_fingerprint:
        raise CheckpointMismatchError(
            f"{directory} holds checkpoints of a different Flux LoRA run (settings, images, "
            "captions or base model differ): resume with the original settings, or train into "
            "an empty checkpoint_dir (e.g. one named by training_fingerprint(...))"
        )
    weights = load_file(str(newest / "lora_state.safetensors"))
    trainer_state = torch.load(newest / "trainer_state.pt", weights_only=True)
    return meta, weights, trainer_state


def save_samples(directory: Path, step: int, pngs: list[bytes]) -> None:
    samples = directory / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = fresh_tmp(samples, name)
    for index, png in enumerate(pngs):
        (tmp / f"{index}.png").write_bytes(png)
    publish(tmp, samples / name)


def load_samples(directory: Path | None, up_to_step: int) -> dict[int, list[bytes]]:
    """Samples saved by earlier attempts of this run, for steps up to `up_to_step`."""
    samples = directory / "samples" if directory is not None else None
    if samples is None or not samples.is_dir():
        return {}
    found = {}
    for path in sorted(samples.iterdir()):
        match = _STEP_DIR.fullmatch(path.name)
        if match and int(match.group(1)) <= up_to_step:
            files = sorted(path.glob("*.png"), key=lambda p: int(p.stem))
            found[int(match.group(1))] = [file.read_bytes() for file in files]
    return found
