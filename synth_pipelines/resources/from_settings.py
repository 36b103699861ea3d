"""Resources built from Settings for the Definitions. (The API builds the same store, LLM client
and keyring from core without Dagster.)"""

from __future__ import annotations

import os

import dagster as dg

from synth_pipelines.resources.keys import MasterKeyResource
from synth_pipelines.resources.llm import LLMResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings


def object_store_resource(settings: Settings) -> ObjectStoreResource:
    return ObjectStoreResource(**settings.store_options())


def llm_resource(settings: Settings) -> LLMResource:
    """The LLM for schema drafts and `source: llm` columns; with neither SYNTH_LLM_BASE_URL nor
    OPENAI_API_KEY it is unconfigured and the offline drafter is used."""
    return LLMResource(
        base_url=settings.llm.base_url or None,
        model=settings.llm.model,
        # EnvVar keeps the key out of the run config and the UI; unset means no key.
        api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else "",
    )


def master_key_resource() -> MasterKeyResource:
    """The master key from SYNTH_MASTER_KEY (and SYNTH_MASTER_KEYS_PREVIOUS during a rotation),
    through `dg.EnvVar` so neither lands in run config or the UI."""
    return MasterKeyResource(
        master_key=dg.EnvVar("SYNTH_MASTER_KEY") if os.environ.get("SYNTH_MASTER_KEY") else "",
        previous_keys=dg.EnvVar("SYNTH_MASTER_KEYS_PREVIOUS")
        if os.environ.get("SYNTH_MASTER_KEYS_PREVIOUS")
        else "",
    )
