"""Probe: exact dedup on 1M x 10 rows; semantic dedup rows/s and recall on lorem sentences.

Run: .venv/bin/python benchmarks/dedup_probe.py [semantic_rows] [chunk_rows]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pyarrow as pa

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from synth_pipelines.core.tabular.dedup import ExactDeduplicator
from synth_pipelines.core.tabular.semantic_dedup import (
    HashingEmbedder,
    MiniLMEmbedder,
    SemanticDeduplicator,
)


def exact_table(n: int, rng: np.random.Generator) -> pa.Table:
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    ids = rng.integers(0, 2**62, n).astype(str)
    ids[1::1000] = ids[::1000][: len(ids[1::1000])]
    return pa.table(
        {
            "id": ids,
            "name": np.char.add(rng.choice(words, n), rng.integers(0, 10**6, n).astype(str)),
            "amount": rng.normal(size=n).round(2),
            "currency": pa.array(rng.choice(["EUR", "USD", "GBP"], n)).dictionary_encode(),
            "qty": rng.integers(0, 10**6, n),
            "flag": rng.random(n) < 0.5,
            "ts": (rng.integers(0, 10**9, n) * 10**6).astype("datetime64[us]"),
            "word": rng.choice(words, n),
            "small": rng.integers(0, 100, n),
            "score": rng.random(n),
        }
    )


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    from faker.providers.lorem.en_US import Provider

    words = np.array(Provider.word_list)
    lengths = rng.integers(6, 15, n)
    picks = words[rng.integers(0, len(words), lengths.sum())]
    out, p = [], 0
    for length in lengths:
        s = " ".join(picks[p : p + length])
        p += length
        out.append(s[0].upper() + s[1:] + ".")
    return out


def near_copy(s: str, kind: int, rng: np.random.Generator) -> str:
    words = s.rstrip(".").split()
    if kind == 0:  # one word changed
        words[int(rng.integers(len(words)))] = "changed"
        return " ".join(words) + "."
    if kind == 1:  # punctuation
        return " ".join(words) + "!"
    return s.upper()  # case


def main() -> None:
    n_sem = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rng = np.random.default_rng(0)
    rows = []
    table = exact_table(1_000_000, rng)
    for keys in (None, ["id"], ["id", "name"]):
        t0 = time.perf_counter()
        _, removed = ExactDeduplicator(keys).filter(table)
        dt = time.perf_counter() - t0
        rows.append((f"exact 1M x 10, keys={keys}", f"{1e6 / dt:,.0f} rows/s", f"{dt:.2f} s"))

    base = sentences(n_sem, rng)
    injected = rng.choice(n_sem // 2, n_sem // 100, replace=False)
    texts = list(base)
    copies: list[tuple[int, str]] = []
    for j, i in enumerate(injected):  # a near copy later in the stream, often in a later chunk
        copy = near_copy(base[i], j % 3, rng)
        copies.append((j % 3, copy))
        texts.insert(n_sem // 2 + int(rng.integers(n_sem // 2)), copy)
    table = pa.table({"text": texts})
    for label, embedder in (
        ("hashing dim=1024", HashingEmbedder()),
        ("MiniLM bf16 bs=128 msl=128", MiniLMEmbedder(dtype="auto")),
        ("MiniLM fp32 bs=128 msl=128", MiniLMEmbedder(dtype="float32")),
    ):
        embedder(["warm up"])
        dedup = SemanticDeduplicator(["text"], embedder=embedder)
        t0 = time.perf_counter()
        kept = [dedup.filter(table.slice(s, chunk))[0] for s in range(0, table.num_rows, chunk)]
        dt = time.perf_counter() - t0
        removed = table.num_rows - sum(k.num_rows for k in kept)
        survivors = set(pa.concat_tables(kept).column("text").to_pylist())
        recall = [
            np.mean([c not in survivors for k, c in copies if k == kind]) for kind in range(3)
        ]
        rows.append(
            (
                f"semantic {table.num_rows:,} rows, chunk {chunk:,}: {label}",
                f"{table.num_rows / dt:,.0f} rows/s",
                f"removed {removed} / injected {len(copies)}; recall word/punct/case "
                + "/".join(f"{r:.0%}" for r in recall),
            )
        )
        print(*rows[-1], sep="  ", flush=True)
    width = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>16}  {r[2]}")


if __name__ == "__main__":
    main()
