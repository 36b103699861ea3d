"""Tabular benchmark, side by side in one run: our generator at 1M rows (with exact dedup, written
to Parquet), Faker row by row on the same 10 columns, SDV GaussianCopula sampling the same shape
after fitting on 10k of our rows, and semantic dedup rows/s on 100k sentences.

`python benchmarks/tabular.py` (add `--rows`, `--faker-rows`, `--sentences` to scale).
Targets on a 2-core machine: 1,000,000 rows with exact dedup to Parquet and CSV in <= 3 s;
>= 100x Faker's rows/s; semantic dedup >= 1,000 rows/s. `--repeat N` runs ours N times and
`--faker-repeat M` Faker M times (the best and the median are shown and compared best against
best: a shared machine's load moves single runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from synth_pipelines.core.cpus import cpu_description

SCHEMA = {
    "name": "bench",
    "columns": [
        {"name": "id", "type": "uuid"},
        {"name": "full_name", "type": "string", "semantic_type": "full_name"},
        {"name": "email", "type": "string", "semantic_type": "email", "depends_on": "full_name"},
        {"name": "amount", "type": "float", "min": 0.01, "max": 10000, "decimals": 2,
         "distribution": "lognormal", "mean": 4, "std": 1},
        {"name": "currency", "type": "string", "semantic_type": "currency_code"},
        {"name": "timestamp", "type": "datetime", "min": "2024-01-01T00:00:00",
         "max": "2025-12-31T23:59:59"},
        {"name": "category", "type": "category", "categories": ["food", "travel", "tech", "home"],
         "weights": [4, 2, 1, 1]},
        {"name": "active", "type": "boolean"},
        {"name": "quantity", "type": "integer", "min": 0, "max": 100},
        {"name": "note", "type": "string", "semantic_type": "sentence"},
    ],
}  # fmt: skip


def ours(rows: int, workers: int) -> dict:
    from synth_pipelines.core.storage.object_store import LocalObjectStore
    from synth_pipelines.core.tabular.jobs import JobParams
    from synth_pipelines.core.tabular.runner import run_tabular_job
    from synth_pipelines.core.tabular.schema import TableSchema

    schema = TableSchema.parse(SCHEMA)
    store = LocalObjectStore(Path(tempfile.mkdtemp(prefix="synth_bench_tabular_")))
    params = JobParams(
        total_rows=rows, chunk_size=125_000, max_workers=workers, dedup_threshold=1.0, seed=1
    )
    started = time.perf_counter()
    result = run_tabular_job(schema, params, store=store, key_prefix="bench")
    seconds = time.perf_counter() - started
    return {
        "rows": result.rows,
        "seconds": seconds,
        "parquet_mb": result.bytes["parquet"] / 1e6,
        "dedup": result.progress.rows_deduplicated,
    }


def faker_rows(rows: int) -> dict:
    import uuid

    from faker import Faker

    fake = Faker()
    Faker.seed(1)
    started = time.perf_counter()
    out = []
    for _ in range(rows):
        name = fake.name()
        out.append(
            (
                str(uuid.uuid4()),
                name,
                fake.email(),
                round(fake.pyfloat(min_value=0.01, max_value=10000), 2),
                fake.currency_code(),
                fake.date_time_between(date(2024, 1, 1), date(2025, 12, 31)),
                fake.random_element(["food", "travel", "tech", "home"]),
                fake.pybool(),
                fake.random_int(0, 100),
                fake.sentence(),
            )
        )
    return {"rows": len(out), "seconds": time.perf_counter() - started}


def sdv_rows(fit_rows: int, sample_rows: int) -> dict:
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    from synth_pipelines.core.tabular.generator import generate_chunk
    from synth_pipelines.core.tabular.schema import TableSchema

    frame = generate_chunk(
        TableSchema.parse(SCHEMA), rows=fit_rows, seed=2, chunk_index=0, row_offset=0
    ).to_pandas()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    metadata = Metadata.detect_from_dataframes({"bench": frame})
    synthesizer = GaussianCopulaSynthesizer(metadata)
    started = time.perf_counter()
    synthesizer.fit({"bench": frame})
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    sampled = synthesizer.sample(sample_rows)
    if isinstance(sampled, dict):  # SDV 2 hands back {table name: frame}
        (sampled,) = sampled.values()
    return {
        "rows": len(sampled),
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
    }


def semantic_texts(sentences: int) -> tuple[list[str], np.ndarray]:
    """Generated sentences with 2% planted near-duplicates, and the planted (source, copy) rows.

    Four kinds of edit, a quarter each: the last word replaced, the last word dropped, a word
    inserted, the first word upper-cased."""
    from synth_pipelines.core.tabular.generator import generate_chunk
    from synth_pipelines.core.tabular.schema import TableSchema

    schema = TableSchema.parse(
        {"columns": [{"name": "note", "type": "string", "semantic_type": "sentence"}]}
    )
    table = generate_chunk(schema, rows=sentences, seed=3, chunk_index=0, row_offset=0)
    rng = np.random.default_rng(0)
    texts = table.column("note").to_pylist()
    half = len(texts) // 2
    sources = rng.choice(half, size=len(texts) // 50, replace=False)
    for offset, source in enumerate(sources):
        words = texts[source].rstrip(".").split()
        edit = offset % 4
        if edit == 0:
            words[-1] = "banana"
        elif edit == 1:
            words = words[:-1]
        elif edit == 2:
            words.insert(len(words) // 2, "really")
        else:
            words[0] = words[0].upper()
        texts[half + offset] = " ".join(words) + "."
    pairs = np.stack([sources, half + np.arange(len(sources))], axis=1)
    return texts, pairs


def semantic(texts: list[str], embedder, chunk: int = 10_000) -> dict:
    """Semantic dedup of `texts` in chunks, as a job runs it: which rows survive, and how fast."""
    import pyarrow as pa

    from synth_pipelines.core.tabular.semantic_dedup import SemanticDeduplicator

    table = pa.table({"row": np.arange(len(texts)), "note": texts})
    embedder(["warm up"])
    dedup = SemanticDeduplicator(["note"], threshold=0.85, embedder=embedder)
    kept = []
    started = time.perf_counter()
    for start in range(0, len(texts), chunk):
        survivors, _ = dedup.filter(table.slice(start, chunk))
        kept.append(survivors.column("row").to_numpy())
    seconds = time.perf_counter() - started
    survived = np.zeros(len(texts), bool)
    survived[np.concatenate(kept)] = True
    return {"rows": len(texts), "seconds": seconds, "survived": survived}


def planted_reference(texts: list[str], pairs: np.ndarray) -> np.ndarray:
    """Which planted copies PyTorch MiniLM in float32 puts at cosine >= 0.85 to their source."""
    from synth_pipelines.core.tabular.semantic_dedup import MiniLMEmbedder

    reference = MiniLMEmbedder(dtype="float32")
    source = reference([texts[i] for i in pairs[:, 0]])
    copy = reference([texts[i] for i in pairs[:, 1]])
    return (source * copy).sum(axis=1) >= 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (best is shown)")
    parser.add_argument("--faker-rows", type=int, default=20_000)
    parser.add_argument(
        "--faker-repeat", type=int, default=3, help="runs of Faker (its best is compared)"
    )
    parser.add_argument("--sdv-fit-rows", type=int, default=10_000)
    parser.add_argument("--sdv-sample-rows", type=int, default=100_000)
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["sdv", "semantic", "semantic-torch"]
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    table = Table(title=f"tabular benchmark — {platform.node()}, {cpu_description()}, "
                  f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    for header in ("what", "rows", "seconds", "rows/s", "notes"):
        table.add_column(
            header, justify="right" if header in ("rows", "seconds", "rows/s") else "left"
        )

    runs = [ours(args.rows, args.workers) for _ in range(args.repeat)]
    mine = min(runs, key=lambda r: r["seconds"])
    our_rate = mine["rows"] / mine["seconds"]
    table.add_row(
        f"synth_pipelines ({args.workers} workers)", f"{mine['rows']:,}", f"{mine['seconds']:.2f}",
        f"{our_rate:,.0f}",
        f"exact dedup + Parquet (zstd, {mine['parquet_mb']:.0f} MB) + CSV; best of "
        f"{len(runs)}, median {statistics.median(r['seconds'] for r in runs):.2f} s; target ≤ 3 s",
    )  # fmt: skip
    # Best against best (and median against median): one Faker run against our best of N would
    # flatter us by however much the host's load moved that one run.
    fakes = [faker_rows(args.faker_rows) for _ in range(args.faker_repeat)]
    fake = min(fakes, key=lambda r: r["seconds"])
    fake_rate = fake["rows"] / fake["seconds"]
    median_ratio = (
        statistics.median(f["seconds"] for f in fakes)
        / args.faker_rows
        / (statistics.median(r["seconds"] for r in runs) / mine["rows"])
    )
    table.add_row(
        "Faker, row by row", f"{fake['rows']:,}", f"{fake['seconds']:.2f}", f"{fake_rate:,.0f}",
        f"best of {len(fakes)}; ours is {our_rate / fake_rate:,.0f}x faster (medians: "
        f"{median_ratio:,.0f}x); target ≥ 100x",
    )  # fmt: skip
    if "sdv" not in args.skip:
        try:
            sdv = sdv_rows(args.sdv_fit_rows, args.sdv_sample_rows)
        except ImportError:
            table.add_row("SDV GaussianCopula", "-", "-", "-", "not installed: pip install sdv")
        else:
            rate = sdv["rows"] / sdv["seconds"]
            table.add_row(
                "SDV GaussianCopula (sample)", f"{sdv['rows']:,}", f"{sdv['seconds']:.2f}",
                f"{rate:,.0f}",
                f"after fitting {args.sdv_fit_rows:,} of our rows in {sdv['fit_seconds']:.1f} s",
            )  # fmt: skip
    if "semantic" not in args.skip:
        from synth_pipelines.core.tabular.onnx_embedder import OnnxMiniLMEmbedder
        from synth_pipelines.core.tabular.semantic_dedup import MiniLMEmbedder

        texts, pairs = semantic_texts(args.sentences)
        expected = planted_reference(texts, pairs)
        embedders = [("MiniLM int8 ONNX", OnnxMiniLMEmbedder())]
        if "semantic-torch" not in args.skip:
            embedders.append(("MiniLM PyTorch", MiniLMEmbedder()))
        for name, embedder in embedders:
            sem = semantic(texts, embedder)
            removed = ~sem["survived"][pairs[:, 1]]
            others = int((~sem["survived"]).sum() - removed.sum())
            table.add_row(
                f"semantic dedup ({name} + Chroma)", f"{sem['rows']:,}", f"{sem['seconds']:.2f}",
                f"{sem['rows'] / sem['seconds']:,.0f}",
                f"0.85: removed {removed.sum():,} of {len(pairs):,} planted copies, "
                f"{(removed == expected).mean():.1%} as fp32 MiniLM decides "
                f"({expected.sum():,} >= 0.85), {others} others; target ≥ 1,000/s",
            )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
