"""flux_lora_samples: the validation prompts rendered with the newest LoRA, stored encrypted,
checked for identity (dlib, against the subject's photos) and, with a CLIP model, for relevance
(the checks themselves are in core/checks/flux_samples.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synth_pipelines.core.checks.flux_samples import SEVERITY
from synth_pipelines.core.checks.names import FLUX_IDENTITY
from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.flux.pipeline import (
    latest_lora,
    load_photos,
    prompt_for,
    subject_and_key,
)
from synth_pipelines.core.flux.policy import ContentPolicy
from synth_pipelines.core.flux.subjects import get_decrypted, put_encrypted, subject_prefix
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore


@dataclass
class SamplesReport:
    """What flux_lora_samples made and measured (no image bytes of the photos)."""

    lora_version: int
    prompts: list[str]
    refused: dict[str, str]
    pngs: list[bytes] = field(repr=False)
    keys: list[str]
    identity: CheckOutcome
    clip_scores: list[float] | None
    prompt_relevance: CheckOutcome | None  # None without a CLIP model
    clip_skipped: str | None
    intermediate: dict[str, int]


def samples_step(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    subject_id: str,
    base_model: Path,
    prompts: tuple[str, ...],
    steps: int,
    threshold: float,
    policy: ContentPolicy,
    clip_model: str = "",
    seed: int = 0,
    size: int = 1024,
    identity_severity: str = SEVERITY[FLUX_IDENTITY],
) -> SamplesReport:
    """Render every allowed validation prompt (one image each, seeded) with the newest LoRA, and
    check them (identity at `identity_severity`)."""
    from synth_pipelines.core.checks.flux_samples import (
        identity_check,
        no_samples,
        prompt_relevance,
    )
    from synth_pipelines.core.flux.generation import generate
    from synth_pipelines.core.flux.serving import PipelineCache
    from synth_pipelines.core.privacy.identity import FaceEmbedder

    subject, key = subject_and_key(db, keys, subject_id)
    with db.session() as session:
        lora = latest_lora(session, subject_id)
        version, lora_id, lora_key = lora.version, lora.id, lora.object_key
    allowed, refused = [], {}
    for prompt in prompts:
        term = policy.violation(prompt)
        if term:
            refused[prompt] = f"content policy: {term!r}"
        else:
            allowed.append(prompt)
    pipe = PipelineCache().get(
        lora_id, subject_id, base_model, lambda: get_decrypted(store, key, subject_id, lora_key)
    )
    pngs: list[bytes] = []
    object_keys = []
    prefix = f"{subject_prefix(subject_id)}loras/v{version}/samples/"
    for i, prompt in enumerate(allowed):
        [png] = generate(
            pipe,
            prompt_for(prompt, subject.trigger),
            n=1,
            seed=seed + i,
            steps=steps,
            width=size,
            height=size,
        )
        pngs.append(png)
        object_key = f"{prefix}final-{i}.png.enc"
        put_encrypted(store, key, subject_id, object_key, png)
        object_keys.append(object_key)
    _, photos, _ = load_photos(store, key, subject_id)
    if pngs:
        identity = identity_check(FaceEmbedder(), photos, pngs, threshold, identity_severity)
    else:
        refused_all = "the content policy refused every validation prompt"
        identity = no_samples(refused_all, threshold, identity_severity)
    clip_scores, clip_skipped, relevance = None, None, None
    if clip_model:
        from synth_pipelines.core.flux.clip_score import ClipScorer

        texts = [prompt.replace("[trigger]", "a person") for prompt in allowed]
        clip_scores = ClipScorer(clip_model).score(pngs, texts) if pngs else []
        relevance = prompt_relevance(clip_scores)
    else:
        clip_skipped = "skipped: no CLIP model configured (SYNTH_CLIP_MODEL names a local one)"
    intermediate: dict[str, int] = {}
    for name in store.list_keys(prefix):
        if "/step-" in name:
            step = name.rsplit("/step-", 1)[1].split("-", 1)[0]
            intermediate[str(int(step))] = intermediate.get(str(int(step)), 0) + 1
    audit.log(
        db,
        "pipeline",
        "flux.samples",
        target=subject_id,
        details={"version": version, "samples": len(pngs), "refused": len(refused)},
    )
    return SamplesReport(
        lora_version=version,
        prompts=allowed,
        refused=refused,
        pngs=pngs,
        keys=object_keys,
        identity=identity,
        clip_scores=clip_scores,
        prompt_relevance=relevance,
        clip_skipped=clip_skipped,
        intermediate=intermediate,
    )
