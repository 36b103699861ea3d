"""Inference that answers inside an API request: schema drafts, persona drafts, Flux images.

Everything else the factory computes (faces, packages, tabular rows, adapters, LoRAs) is a
Dagster run, because it takes minutes, must be retried and must show in the UI. These three are
different: a person is waiting for the answer (a draft to review, a schema to confirm, an image
to look at), so it comes back in the same HTTP response, in seconds. They run here, in the API
process, because that is where the loaded models can stay warm between requests (an adapter
cache, a pipeline cache) and where the load can be bounded (a fixed number of concurrent Flux
generations and a short queue; beyond it, a 429). This module owns those models and limits, and
is the only place in the API that runs a model.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.flux.pipeline import latest_lora, resolve_flux_model
from synth_pipelines.core.flux.policy import ContentPolicy
from synth_pipelines.core.flux.serving import GenerationLimiter, PipelineCache
from synth_pipelines.core.flux.subjects import get_decrypted, load_subject, subject_key
from synth_pipelines.core.persona import drafts
from synth_pipelines.core.persona.adapter_store import AdapterCache, resolve_base_model
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import PersonaDraft
from synth_pipelines.core.storage.object_store import ObjectStore
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.settings import Settings


@dataclass(frozen=True)
class Images:
    """What one generation returned: PNGs, and where the time went."""

    pngs: list[bytes]
    lora_id: str
    lora_version: int
    queue_seconds: float
    seconds: float


class Serving:
    """The models the API serves, loaded on first use and kept warm, with their limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.adapters = AdapterCache()
        self.flux_limiter = GenerationLimiter(settings.flux.concurrency, settings.flux.queue)
        self.flux_pipelines = PipelineCache()
        self.flux_policy = ContentPolicy.from_text(settings.flux.deny_terms)
        self._draft = schema_drafter(settings)

    def draft_schema(self, prompt: str) -> tuple[TableSchema, str]:
        """A draft schema for `prompt` and the drafter's name ("offline" or "llm:<model>")."""
        return self._draft(prompt)

    def persona_draft(
        self,
        db: FactoryDatabase,
        store: ObjectStore,
        keys: KeyWrapper,
        who: Principal,
        persona_id: str,
        prompt: str,
        *,
        max_new_tokens: int,
        seed: int | None,
    ) -> tuple[PersonaDraft, str]:
        """A reply in the persona's style from its newest adapter that passed its checks, held
        pending review."""
        return drafts.generate_draft(
            db,
            store,
            keys,
            who,
            persona_id,
            prompt,
            base_model=resolve_base_model(self.settings.personas.base_model, self.settings.home),
            models=self.adapters,
            max_new_tokens=max_new_tokens,
            seed=seed,
        )

    def flux_images(
        self,
        db: FactoryDatabase,
        store: ObjectStore,
        keys: KeyWrapper,
        who: Principal,
        subject_id: str,
        prompt: str,
        *,
        n: int,
        seed: int,
        steps: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> Images:
        """`n` images of the subject from its newest LoRA. The prompt passes the content policy
        first (403); a full queue is a BusyError (429)."""
        from synth_pipelines.core.flux.generation import generate  # torch: after the checks
        from synth_pipelines.core.flux.pipeline import prompt_for

        settings = self.settings
        if n > settings.flux.max_images:
            raise FieldError("n", f"n is {n}; at most {settings.flux.max_images}")
        if not prompt.strip():
            raise FieldError("prompt", "prompt is empty")
        self.flux_policy.check(prompt)
        with db.session() as session:
            subject = load_subject(session, who, subject_id)
            lora = latest_lora(session, subject_id)
            key = subject_key(subject, keys)
            trigger, lora_id, lora_key, version = (
                subject.trigger,
                lora.id,
                lora.object_key,
                lora.version,
            )
        base = resolve_flux_model(settings.flux.base_model, settings.home)
        with self.flux_limiter.slot() as waited:
            started = time.perf_counter()
            pipe = self.flux_pipelines.get(
                lora_id, subject_id, base, lambda: get_decrypted(store, key, subject_id, lora_key)
            )
            pngs = generate(
                pipe,
                prompt_for(prompt, trigger),
                n=n,
                seed=seed,
                steps=steps or settings.flux.sample_steps,
                width=width or settings.flux.sample_size,
                height=height or settings.flux.sample_size,
            )
            seconds = time.perf_counter() - started
        return Images(pngs, lora_id, version, waited, seconds)

    def forget_persona(self, persona_id: str) -> None:
        """Unload a persona's adapter (its consent was revoked)."""
        self.adapters.drop_persona(persona_id)

    def forget_subject(self, subject_id: str) -> None:
        """Unload a subject's LoRA (its consent was revoked)."""
        self.flux_pipelines.drop_subject(subject_id)


def schema_drafter(settings: Settings):
    """The configured LLM when SYNTH_LLM_BASE_URL or OPENAI_API_KEY is set, else the offline
    rule-based drafter."""
    from synth_pipelines.core.tabular.drafter import draft_schema
    from synth_pipelines.core.tabular.llm import LLM, llm_configured, openai_client

    api_key = os.environ.get("OPENAI_API_KEY", "")
    if not llm_configured(settings.llm.base_url, api_key):
        return lambda prompt: (draft_schema(prompt), "offline")
    llm = LLM(
        client=openai_client(settings.llm.base_url or None, api_key, settings.llm.model),
        model=settings.llm.model,
    )

    def draft(prompt: str) -> tuple[TableSchema, str]:
        return llm.draft_schema(prompt), f"llm:{settings.llm.model}"

    return draft
