"""The steps of a subject's pipeline as plain functions (the assets call them):
photos (decrypt, detect, crop, bucket, caption, encrypt) → LoRA (train, store encrypted,
register) → samples (render validation prompts, identity and prompt-relevance scores)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from synth_pipelines.core.clock import iso
from synth_pipelines.core.errors import ConflictError, InvalidInputError, MissingCheckpointError
from synth_pipelines.core.flux.subjects import (
    get_decrypted,
    load_subject,
    next_lora_version,
    put_encrypted,
    read_uploads,
    set_status,
    subject_key,
    subject_prefix,
    subject_work_dir,
)
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.bundles import TINY_TEST_MODEL, build_once, pack_directory
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import FluxLora
from synth_pipelines.core.storage.object_store import ObjectStore

ACTOR = "pipeline"


@dataclass(frozen=True)
class PhotosPrepared:
    """What subject_photos reports: counts, buckets and why photos were turned away."""

    photos_sha256: str
    uploaded: int
    accepted: int
    rejected: list[dict[str, str]]  # {"name", "reason"} per photo turned away
    buckets: dict[str, int]  # "<w>x<h>" -> photos


@dataclass(frozen=True)
class LoraTrained:
    """The LoRA just registered, with its loss curve and the steps that drew samples."""

    id: str
    version: int
    base_model: str
    photos_sha256: str
    metrics: dict[str, Any]  # as the registry row keeps them
    hyperparameters: dict[str, Any]
    losses: list[float]
    sample_steps: list[int]


def resolve_flux_model(setting: str, home: Path) -> Path:
    """The FluxPipeline directory for SYNTH_FLUX_BASE_MODEL; `tiny-test` builds (once) the tiny
    labelled test pipeline under SYNTH_HOME/models."""
    if not setting:
        raise InvalidInputError(
            "SYNTH_FLUX_BASE_MODEL is not set: name a local Flux.1 [schnell] or [dev] directory "
            f"(with model_index.json), or '{TINY_TEST_MODEL}' for the tiny test pipeline"
        )
    if setting == TINY_TEST_MODEL:
        from synth_pipelines.core.flux.tiny_pipeline import build_tiny_flux_pipeline

        return build_once(
            home / "models" / "tiny-test-flux", "model_index.json", build_tiny_flux_pipeline
        )
    path = Path(setting).expanduser()
    if not (path / "model_index.json").is_file():
        raise MissingCheckpointError(
            f"SYNTH_FLUX_BASE_MODEL={setting}: no diffusers pipeline there (model_index.json "
            "missing); save a FluxPipeline with save_pretrained or download one to that directory"
        )
    return path


def subject_and_key(db: FactoryDatabase, keys: KeyWrapper, subject_id: str):
    with db.session() as session:
        subject = load_subject(session, None, subject_id)
        return subject, subject_key(subject, keys)


def photos_manifest_key(subject_id: str) -> str:
    return f"{subject_prefix(subject_id)}photos/manifest.json.enc"


def photos_step(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    subject_id: str,
    caption_template: str,
    caption_model: str = "",
) -> PhotosPrepared:
    """Prepare the uploads: one face each, cropped, bucketed, captioned, deduplicated; stored
    encrypted. Fewer than 4 usable → the subject fails, naming every rejected photo and why."""
    from synth_pipelines.core.flux.photos import (
        NotEnoughPhotosError,
        load_captioner,
        prepare_photos,
    )

    subject, key = subject_and_key(db, keys, subject_id)
    set_status(db, subject_id, "preparing", attempts=subject.attempts + 1, error=None)
    captioner = load_captioner(caption_model) if caption_model else None
    try:
        prepared = prepare_photos(
            read_uploads(store, key, subject_id),
            subject.trigger,
            caption_template=caption_template,
            captioner=captioner,
        )
    except NotEnoughPhotosError as exc:
        # `photos` counts the usable ones, as the error does; none of them was stored.
        usable = len(exc.accepted)
        set_status(db, subject_id, "failed", error=str(exc), photos=usable, rejected=_rejected(exc))
        raise
    prefix = f"{subject_prefix(subject_id)}photos/"
    manifest = []
    for photo in prepared.accepted:
        object_key = f"{prefix}{photo.sha256}.png.enc"
        put_encrypted(store, key, subject_id, object_key, photo.image_png)
        manifest.append(
            {
                "name": photo.name,
                "key": object_key,
                "caption": photo.caption,
                "width": photo.width,
                "height": photo.height,
                "bucket": list(photo.bucket),
                "sha256": photo.sha256,
            }
        )
    body = json.dumps(manifest, sort_keys=True).encode()
    put_encrypted(store, key, subject_id, photos_manifest_key(subject_id), body)
    rejected = [{"name": r.name, "reason": r.reason} for r in prepared.rejected]
    set_status(db, subject_id, "training", photos=len(manifest), rejected=rejected)
    buckets: dict[str, int] = {}
    for item in manifest:
        name = "x".join(map(str, item["bucket"]))
        buckets[name] = buckets.get(name, 0) + 1
    summary = PhotosPrepared(
        photos_sha256=hashlib.sha256(body).hexdigest(),
        uploaded=subject.uploads,
        accepted=len(manifest),
        rejected=rejected,
        buckets=buckets,
    )
    audit.log(
        db,
        ACTOR,
        "subject.photos_prepared",
        target=subject_id,
        details={
            "photos_sha256": summary.photos_sha256,
            "uploaded": summary.uploaded,
            "accepted": summary.accepted,
        },
    )
    return summary


def _rejected(exc: Exception) -> list[dict[str, str]]:
    return [{"name": r.name, "reason": r.reason} for r in getattr(exc, "rejected", [])]


def load_photos(
    store: ObjectStore, key: bytes, subject_id: str
) -> tuple[list[dict[str, Any]], list[bytes], str]:
    """The prepared photos' manifest, their PNG bytes, and the manifest's sha256."""
    body = get_decrypted(store, key, subject_id, photos_manifest_key(subject_id))
    manifest = json.loads(body)
    if not manifest:
        raise ConflictError(f"subject {subject_id} has no prepared photos")
    pngs = [get_decrypted(store, key, subject_id, item["key"]) for item in manifest]
    return manifest, pngs, hashlib.sha256(body).hexdigest()


def lora_step(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    subject_id: str,
    base_model: Path,
    config: dict[str, Any],
    home: Path,
    run_id: str | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    resolution: int = 0,
) -> LoraTrained:
    """Train a LoRA on the prepared photos (resuming a crashed run of the same photos and
    settings), store it and its intermediate samples encrypted, register it."""
    from synth_pipelines.core.flux.training import FluxLoraConfig, train_flux_lora

    subject, key = subject_and_key(db, keys, subject_id)
    manifest, pngs, photos_sha = load_photos(store, key, subject_id)
    train_config = FluxLoraConfig.model_validate({"trigger_word": subject.trigger, **config})
    fingerprint = hashlib.sha256(
        json.dumps([photos_sha, str(base_model), train_config.model_dump(mode="json")]).encode()
    ).hexdigest()[:16]
    checkpoints = subject_work_dir(home, subject_id) / f"checkpoints-{fingerprint}"
    version = next_lora_version(db, subject_id)
    samples_prefix = f"{subject_prefix(subject_id)}loras/v{version}/samples/"
    written: list[str] = []

    def on_samples(step: int, images: list[bytes]) -> None:
        for i, png in enumerate(images):
            object_key = f"{samples_prefix}step-{step:06d}-{i}.png.enc"
            put_encrypted(store, key, subject_id, object_key, png)
            written.append(object_key)

    scratch = subject_work_dir(home, subject_id)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=scratch) as out:
            result = train_flux_lora(
                base_model,
                [
                    (_at_resolution(png, resolution), item["caption"])
                    for png, item in zip(pngs, manifest, strict=True)
                ],
                train_config,
                Path(out) / "lora",
                checkpoint_dir=checkpoints,
                on_log=on_log,
                on_samples=on_samples,
            )
            lora_key = f"{subject_prefix(subject_id)}loras/v{version}.tar.enc"
            put_encrypted(store, key, subject_id, lora_key, pack_directory(Path(out) / "lora"))
            written.append(lora_key)
        metrics = {
            "steps": result.steps,
            "final_loss": result.losses[-1] if result.losses else None,
            "seconds": round(result.seconds, 2),
            "steps_per_s": round(result.steps_per_s, 3),
            "peak_memory_gib": result.peak_memory_gib,
            "optimizer": result.optimizer,
            "resumed_from_step": result.resumed_from_step,
            "trainable_params": result.trainable_params,
            "photos": len(pngs),
        }
        with db.session(locking=True) as session:
            load_subject(session, None, subject_id)  # not revoked meanwhile
            row = FluxLora(
                subject_id=subject_id,
                version=version,
                base_model=str(base_model),
                photos_sha256=photos_sha,
                hyperparameters=train_config.model_dump(mode="json"),
                metrics=metrics,
                object_key=lora_key,
                run_id=run_id,
            )
            session.add(row)
            session.flush()
            audit.append(
                session,
                ACTOR,
                "flux.trained",
                target=subject_id,
                details={"version": version, "lora_id": row.id, "steps": result.steps},
            )
            trained = LoraTrained(
                id=row.id,
                version=version,
                base_model=row.base_model,
                photos_sha256=photos_sha,
                metrics=metrics,
                hyperparameters=row.hyperparameters,
                losses=list(result.losses),
                sample_steps=sorted(result.samples),
            )
    except BaseException:
        store.delete_many(written)
        raise
    shutil.rmtree(checkpoints, ignore_errors=True)
    set_status(db, subject_id, "ready")
    return trained


def _at_resolution(png: bytes, long_side: int) -> bytes:
    """The photo scaled so its long side is `long_side` (sides multiples of 16); 0: as is."""
    if not long_side:
        return png
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    scale = long_side / max(image.size)
    size = tuple(max(16, round(side * scale / 16) * 16) for side in image.size)
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue()


def lora_view(row: FluxLora) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject_id": row.subject_id,
        "version": row.version,
        "base_model": row.base_model,
        "photos_sha256": row.photos_sha256,
        "hyperparameters": row.hyperparameters,
        "metrics": row.metrics,
        "run_id": row.run_id,
        "created_at": iso(row.created_at),
    }


def latest_lora(session, subject_id: str) -> FluxLora:
    row = session.scalars(
        select(FluxLora).where(FluxLora.subject_id == subject_id).order_by(FluxLora.version.desc())
    ).first()
    if row is None:
        raise ConflictError(f"subject {subject_id} has no trained LoRA yet")
    return row


def prompt_for(prompt: str, trigger: str) -> str:
    """ai-toolkit's trigger handling: `[trigger]` is replaced; a prompt without it and without
    the trigger word gets it prepended."""
    if "[trigger]" in prompt:
        return prompt.replace("[trigger]", trigger)
    return prompt if trigger in prompt.split() else f"{trigger}, {prompt}"
