"""An OpenAI-compatible LLM as a Dagster resource, built on dagster-openai's OpenAIResource.

`get_client(context)` (inherited) yields the client with usage metadata recorded on the asset;
`get_openai_client()` builds the same client without a context (sensors, the API, core code);
`get_llm()` wraps it with the model and limits as the core `LLM` that drafts schemas and fills
`source="llm"` columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from dagster_openai import OpenAIResource
from pydantic import Field, PrivateAttr

from synth_pipelines.core.tabular.llm import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from openai import OpenAI

    from synth_pipelines.core.tabular.llm import LLM


class LLMResource(OpenAIResource):
    """Any OpenAI-compatible chat-completions endpoint: OpenAI itself, or a local server at
    `base_url`. Timeouts are short and retries few, so a dead endpoint fails a run in seconds."""

    api_key: str = Field(
        default="",
        description="API key (OPENAI_API_KEY); empty for local servers that need none.",
    )
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL ending in /v1 (SYNTH_LLM_BASE_URL); None: OpenAI.",
    )
    model: str = Field(default="gpt-4o-mini", description="Model name (SYNTH_LLM_MODEL).")
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, description="Seconds per request.")
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES,
        ge=0,
        le=10,
        description="The openai client's own retries per request.",
    )
    rate_limit_per_second: float | None = Field(
        default=None, gt=0, description="Requests per second across threads; None: no limit."
    )
    max_workers: int = Field(default=4, ge=1, le=64, description="Parallel row batches.")
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Answers per schema draft or row batch before giving up.",
    )

    _openai: OpenAI | None = PrivateAttr(default=None)
    _llm: LLM | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The parent builds a client without timeout/max_retries: build ours instead, so
        # get_client(context) yields it (wrapped for usage metadata in an asset).
        self._client = self.get_openai_client()

    def get_openai_client(self) -> OpenAI:
        """An `openai.OpenAI` client for this endpoint, built once (no network I/O)."""
        if self._openai is None:
            from synth_pipelines.core.tabular.llm import openai_client

            self._openai = openai_client(
                self.base_url,
                self.api_key,
                self.model,
                timeout=self.timeout,
                max_retries=self.max_retries,
                organization=self.organization,
                project=self.project,
            )
        return self._openai

    def get_llm(self) -> LLM:
        """The core `LLM` (client, model, workers, one shared rate limiter)."""
        if self._llm is None:
            from synth_pipelines.core.tabular.llm import LLM

            self._llm = LLM(
                client=self.get_openai_client(),
                model=self.model,
                max_workers=self.max_workers,
                rate_limit_per_second=self.rate_limit_per_second,
                max_attempts=self.max_attempts,
            )
        return self._llm
