"""Exact and semantic dedup of generated chunks, on real ChromaDB and the real MiniLM model."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from synth_pipelines.core.tabular.dedup import ExactDeduplicator, column_keys
from synth_pipelines.core.tabular.onnx_embedder import EmbedderExportError, OnnxMiniLMEmbedder
from synth_pipelines.core.tabular.semantic_dedup import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    SemanticDeduplicator,
)
from synth_pipelines.resources.tabular import TextEmbedderResource


def test_whole_row_dedup_across_chunks_and_nulls_equal() -> None:
    dedup = ExactDeduplicator()
    first = pa.table({"a": [1, 2, 2, None, None], "b": ["x", "y", "y", None, None]})
    kept, removed = dedup.filter(first)
    assert kept.to_pylist() == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": None, "b": None},
    ]
    assert removed == 2
    # Column order does not matter; a new row survives, earlier rows do not.
    second = pa.table({"b": ["x", "z"], "a": [1, 1]})
    kept, removed = dedup.filter(second)
    assert kept.to_pylist() == [{"b": "z", "a": 1}]
    assert removed == 1


def test_whole_row_distinguishes_types_and_values() -> None:
    table = pa.table(
        {
            "f": [0.0, -0.0, float("nan"), float("nan"), 1.5],
            "s": ["ab", "ab", "a", "a", "abcdefghijk"],
            "t": pa.array([1, 1, 2, 2, 3], pa.timestamp("us")),
        }
    )
    kept, removed = ExactDeduplicator().filter(table)
    assert removed == 2  # -0.0 equals 0.0, NaN equals NaN
    assert kept.num_rows == 3


def test_a_string_hashes_alike_in_a_column_of_one_length_and_of_many() -> None:
    """Equal-length columns (uuids, codes) take their own path through the hash; a value must
    get the same key there as among values of other lengths, or dedup across chunks and the
    distinct counts would miss it."""
    rng = random.Random(7)
    same_length = ["".join(rng.choices("abcdef0123456789-", k=36)) for _ in range(500)]
    short_and_long = ["", "a", "abcdefgh", "abcdefghi", "é" * 9] + [
        "".join(rng.choices("xyz é", k=rng.randint(0, 70))) for _ in range(500)
    ]
    mixed = same_length + short_and_long
    rng.shuffle(mixed)
    for kind in (pa.string(), pa.large_string(), pa.binary()):
        together = dict(zip(mixed, column_keys(pa.array(mixed, kind))[0].tolist(), strict=True))
        apart = dict(
            zip(same_length, column_keys(pa.array(same_length, kind))[0].tolist(), strict=True)
        )
        sliced = pa.array(["pad", *short_and_long], kind)[1:]
        apart.update(zip(short_and_long, column_keys(sliced)[0].tolist(), strict=True))
        assert together == apart
        assert len(set(together.values())) == len(set(mixed))  # and distinct values differ


def test_unique_columns_each_stay_unique_and_nulls_never_collide() -> None:
    dedup = ExactDeduplicator(["id", "email"])
    table = pa.table(
        {
            "id": [1, 1, 3, None, None, 6],
            "email": ["a@x", "b@x", "b@x", None, None, "a@x"],
        }
    )
    kept, removed = dedup.filter(table)
    # Row 2 repeats id 1 (dropped; its email b@x is not reserved), so row 3 keeps b@x.
    assert kept.to_pylist() == [
        {"id": 1, "email": "a@x"},
        {"id": 3, "email": "b@x"},
        {"id": None, "email": None},
        {"id": None, "email": None},
    ]
    assert removed == 2
    kept, removed = dedup.filter(pa.table({"id": [3, 7], "email": ["c@x", "b@x"]}))
    assert (kept.num_rows, removed) == (0, 2)
    with pytest.raises(KeyError, match="nope"):
        ExactDeduplicator(["nope"]).filter(table)


def test_unique_columns_match_a_sequential_reference() -> None:
    rng = random.Random(7)
    for _ in range(100):
        n = rng.randint(0, 40)
        a = [rng.choice([None, 1, 2, 3, 4, 5]) for _ in range(n)]
        b = [rng.choice([None, "x", "y", "z", "w"]) for _ in range(n)]
        table = pa.table({"a": pa.array(a, pa.int64()), "b": pa.array(b, pa.string())})
        cut = rng.randint(0, n)
        dedup = ExactDeduplicator(["a", "b"])
        got = [dedup.filter(table.slice(0, cut))[0], dedup.filter(table.slice(cut))[0]]
        held_a: set = set()
        held_b: set = set()
        expected = []
        for x, y in zip(a, b, strict=True):
            if (x is not None and x in held_a) or (y is not None and y in held_b):
                continue
            expected.append({"a": x, "b": y})
            held_a |= {x} - {None}
            held_b |= {y} - {None}
        assert pa.concat_tables(got).to_pylist() == expected


def test_exact_dedup_is_fast_on_a_large_chunk() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    ids = rng.integers(0, 2**62, n).astype(str)
    ids[1::100] = ids[::100][: len(ids[1::100])]
    table = pa.table({"id": ids, "x": rng.random(n), "k": rng.integers(0, 10, n)})
    dedup = ExactDeduplicator(["id"])
    kept, removed = dedup.filter(table)
    assert removed == n // 100
    assert len(set(kept.column("id").to_pylist())) == kept.num_rows


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth-cache")


@pytest.fixture(scope="module", params=["pytorch", "int8-onnx"])
def minilm(request: pytest.FixtureRequest, onnx_cache: Path) -> Embedder:
    """MiniLM both ways the product runs it: PyTorch, and int8 ONNX through the Dagster resource
    (exported into a fresh cache on first use)."""
    if request.param == "pytorch":
        embedder: Embedder = MiniLMEmbedder()
    else:
        resource = TextEmbedderResource(backend="minilm-int8", cache_dir=str(onnx_cache))
        embedder = resource.get_embedder()
        assert isinstance(embedder, OnnxMiniLMEmbedder)
    embedder(["warm up"])
    return embedder


def _texts(*texts: str | None) -> pa.Table:
    return pa.table({"text": pa.array(list(texts), pa.string())})


def test_minilm_embeddings_are_normalised_and_meaningful(minilm: Embedder) -> None:
    vectors = minilm(["The cat sat on the mat.", "A cat was sitting on the mat.", "Tax law"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.8 > 0.3 > sims[0, 2]


def test_semantic_dedup_removes_paraphrases_keeps_unrelated(minilm: Embedder) -> None:
    dedup = SemanticDeduplicator(["text"], threshold=0.85, embedder=minilm)
    table = _texts(
        "The quick brown fox jumps over the lazy dog.",
        "The invoice was paid in full on Monday.",
        "A quick brown fox jumped over the lazy dog",
        None,
        "",
        "The invoice was paid in full on Monday.",
        "Penguins live in the southern hemisphere.",
    )
    kept, removed = dedup.filter(table)
    assert kept.column("text").to_pylist() == [
        "The quick brown fox jumps over the lazy dog.",
        "The invoice was paid in full on Monday.",
        None,
        "",
        "Penguins live in the southern hemisphere.",
    ]
    assert removed == 2
    # A chunk goes through in windows; a near-duplicate in a later window is caught in the store.
    windowed = SemanticDeduplicator(["text"], threshold=0.85, embedder=minilm, window=2)
    assert windowed.filter(table)[0].equals(kept) and len(windowed) == 3
    strict = SemanticDeduplicator(["text"], threshold=0.99, embedder=minilm)
    kept, removed = strict.filter(table.slice(0, 3))
    assert removed == 0


def test_semantic_dedup_across_chunks_and_columns(minilm: Embedder) -> None:
    dedup = SemanticDeduplicator(["title", "body"], embedder=minilm)
    first = pa.table({"title": ["Weather", "Sports"], "body": ["It rains in London.", None]})
    assert dedup.filter(first)[1] == 0
    second = pa.table(
        {"title": ["weather", "Cooking"], "body": ["It rains in London!", "Boil the pasta."]}
    )
    kept, removed = dedup.filter(second)
    assert removed == 1
    assert kept.column("title").to_pylist() == ["Cooking"]
    assert len(dedup) == 3


def test_semantic_dedup_resumes_from_persisted_collection(tmp_path: Path, minilm: Embedder) -> None:
    store = tmp_path / "chroma"
    first = SemanticDeduplicator(["text"], embedder=minilm, persist_dir=store, collection="job-1")
    first.filter(_texts("The quick brown fox jumps over the lazy dog.", "Tax returns are due."))
    del first
    again = SemanticDeduplicator(["text"], embedder=minilm, persist_dir=store, collection="job-1")
    kept, removed = again.filter(
        _texts("A quick brown fox jumped over the lazy dog", "Tax returns are due.", "Hello there")
    )
    assert (removed, kept.column("text").to_pylist()) == (2, ["Hello there"])
    fresh = SemanticDeduplicator(["text"], embedder=minilm, persist_dir=store, collection="job-2")
    assert len(fresh) == 0
    assert fresh.filter(_texts("Tax returns are due."))[1] == 0


def test_hashing_embedder_catches_near_copies() -> None:
    embedder = HashingEmbedder()
    vectors = embedder(["Blue sky over the harbour.", "blue sky over the harbour", "Zebra"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.85 > vectors[0] @ vectors[2]
    dedup = SemanticDeduplicator(["text"], embedder=embedder)
    kept, removed = dedup.filter(
        _texts("Blue sky over the harbour.", "blue sky over the harbour", "Zebra")
    )
    assert removed == 1 and kept.num_rows == 2


SENTENCES = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat.",
    "Quarterly revenue rose by 12 percent.",
    "Revenue grew 12% in the quarter.",
    "Please reset my password, I cannot log in.",
    "I can't sign in; how do I reset the password?",
    "The train to Edinburgh leaves at 9:15.",
    "Photosynthesis turns light into chemical energy.",
    "Ok.",
    "A much longer sentence, with several clauses, that runs on for a while so that the batch "
    "holds texts of very different lengths and padding has to be masked correctly.",
]


def test_int8_onnx_embeddings_agree_with_pytorch(onnx_cache: Path) -> None:
    onnx = OnnxMiniLMEmbedder(cache_dir=onnx_cache, batch_size=4)
    reference = MiniLMEmbedder(dtype="float32")(SENTENCES)
    vectors = onnx(SENTENCES)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # int8 weights: each embedding stays within a few degrees of the float32 one ...
    assert (vectors * reference).sum(axis=1).min() > 0.95
    # ... and so do the similarities semantic dedup compares with its threshold.
    assert np.abs(vectors @ vectors.T - reference @ reference.T).max() < 0.06
    # Padding is masked: a text embedded alone comes out as in a mixed batch, up to int8
    # activation scales (dynamic quantization computes them per batch) ...
    alone = onnx(SENTENCES[-1:])
    assert float(alone[0] @ vectors[-1]) > 0.98
    # ... and the same batch gives the same embeddings every time, on any number of threads.
    np.testing.assert_array_equal(onnx(SENTENCES), vectors)
    serial = OnnxMiniLMEmbedder(cache_dir=onnx_cache, batch_size=4, num_threads=1)
    np.testing.assert_array_equal(serial(SENTENCES), vectors)
    wide = OnnxMiniLMEmbedder(cache_dir=onnx_cache, batch_size=4, num_threads=3)
    np.testing.assert_array_equal(wide(SENTENCES), vectors)
    np.testing.assert_array_equal(wide(SENTENCES * 5), serial(SENTENCES * 5))
    assert onnx([]).shape == (0, 384) == MiniLMEmbedder()([]).shape  # read from config.json
    with pytest.raises(ValueError, match="hidden_size"):
        OnnxMiniLMEmbedder(model_path=onnx_cache, cache_dir=onnx_cache)([])
    with pytest.raises(ValueError, match="batch_size"):
        OnnxMiniLMEmbedder(cache_dir=onnx_cache, batch_size=0)


def test_int8_onnx_export_is_cached(onnx_cache: Path) -> None:
    first = OnnxMiniLMEmbedder(cache_dir=onnx_cache)
    first.load()
    exported = first.onnx_path
    stamp = exported.stat().st_mtime_ns
    again = OnnxMiniLMEmbedder(cache_dir=onnx_cache)
    again.load()
    assert again.onnx_path == exported and exported.stat().st_mtime_ns == stamp
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]  # no export leftovers


def test_int8_onnx_export_refuses_other_pooling(tmp_path: Path) -> None:
    model = tmp_path / "cls-pooled"
    source = OnnxMiniLMEmbedder().model_dir
    model.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (model / path.name).symlink_to(path)
    (model / "1_Pooling").mkdir()
    (model / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, '
        '"pooling_mode_mean_tokens": false}'
    )
    embedder = OnnxMiniLMEmbedder(model, cache_dir=tmp_path / "cache")
    with pytest.raises(EmbedderExportError, match="pooling_mode_cls_token"):
        embedder(["hello"])
    assert not list((tmp_path / "cache" / "embedders").iterdir())


def test_int8_onnx_export_needs_a_writable_cache(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be")
    with pytest.raises(EmbedderExportError, match="SYNTH_CACHE_DIR"):
        OnnxMiniLMEmbedder(cache_dir=blocked)(["hello"])
