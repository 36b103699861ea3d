"""The image set register, on SQLite and PostgreSQL: registration checks its input, the sensor's
query sees pending sets, progress merges, a failed set retries as a new attempt."""

from __future__ import annotations

import pytest

from synth_pipelines.core.errors import ConflictError, InvalidInputError, NotFoundError
from synth_pipelines.core.imagesets.registry import (
    get_image_set,
    register_image_set,
    retry_image_set,
    sets_to_run,
    source_kind,
    update_image_set,
)


def test_source_kinds(tmp_path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "metadata.jsonl").write_text("")
    (tmp_path / "a.zip").write_bytes(b"")
    (tmp_path / "a.parquet").write_bytes(b"")
    (tmp_path / "a.txt").write_text("")
    assert source_kind(str(tmp_path / "plain")) == "folder"
    assert source_kind(str(tmp_path / "hf")) == "imagefolder"
    assert source_kind(str(tmp_path / "a.zip")) == "zip"
    assert source_kind(str(tmp_path / "a.parquet")) == "parquet"
    assert source_kind("s3://my-bucket/photos/") == "s3"
    for bad, words in [
        (str(tmp_path / "missing"), "no such file"),
        (str(tmp_path / "a.txt"), "not a folder"),
        ("s3://", "s3://<bucket>"),
        ("", "empty"),
    ]:
        with pytest.raises(InvalidInputError, match=words):
            source_kind(bad)


def test_register_progress_and_retry(factory_db, tmp_path) -> None:
    row = register_image_set(factory_db, str(tmp_path), count=10, seed=3, formats=["coco"])
    assert row["status"] == "pending" and row["name"] == tmp_path.name
    assert row["params"] == {"backend": "simulation", "count": 10, "seed": 3,
                             "formats": ["coco"], "truncation": 0.7}  # fmt: skip
    assert sets_to_run(factory_db) == ({row["id"]: 0}, set())
    update_image_set(factory_db, row["id"], status="running", stage="profile",
                     counts={"images": 5})  # fmt: skip
    assert sets_to_run(factory_db) == ({}, set())
    update_image_set(factory_db, row["id"], counts={"ok": 4})
    failed = update_image_set(factory_db, row["id"], status="failed", error="boom")
    assert failed["counts"] == {"images": 5, "ok": 4} and failed["error"] == "boom"
    again = retry_image_set(factory_db, row["id"])
    assert (again["status"], again["attempts"], again["error"]) == ("pending", 1, None)
    assert sets_to_run(factory_db) == ({row["id"]: 1}, set())
    with pytest.raises(ConflictError, match="only a failed set"):
        retry_image_set(factory_db, row["id"])
    with pytest.raises(NotFoundError):
        get_image_set(factory_db, "nope")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"backend": "vae"}, "backend 'vae'"),
        ({"count": 0}, "count must be"),
        ({"seed": -1}, "seed must be"),
        ({"formats": ["tiff"]}, "formats"),
        ({"formats": []}, "at least one"),
        ({"truncation": 3.0}, "truncation"),
        ({"name": "x" * 200}, "at most 128"),
    ],
)
def test_bad_registrations(factory_db, tmp_path, options, words) -> None:
    with pytest.raises(InvalidInputError, match=words):
        register_image_set(factory_db, str(tmp_path), **options)
    assert sets_to_run(factory_db) == ({}, set())
