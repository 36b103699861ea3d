"""`synth images` as the README writes it, in order, on a real image set: profile, generate to
the profile, validate, export (each format loaded back), register and status; and the errors a
user meets (no such source, a source without images, a profile folder that is not one)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synth_pipelines.cli import app
from synth_pipelines.core.imagesets.demo_images import write_demo_set
from tests.test_readme_commands import readme_command

runner = CliRunner()
STEPS = (
    "synth images profile --out",
    "synth images generate --count --backend --out",
    "synth images validate --out",
    "synth images export --format --to",
    "synth images register --count",
)


def _run(argv: list[str]):
    result = runner.invoke(app, argv)
    flat = " ".join(result.output.split())
    return result, flat


def test_the_readme_image_commands_in_order(synth_home, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTH_IMAGES_OCR", "off")
    write_demo_set(tmp_path / "street-photos", count=30, seed=4)
    outputs = {}
    for key in STEPS:
        argv = list(readme_command(key).argv[1:])
        result, flat = _run(argv)
        assert result.exit_code == 0, f"{argv}: {result.output}"
        outputs[key] = flat

    profile = json.loads((tmp_path / "street.profile" / "profile.json").read_text())
    assert profile["counts"] == {"images": 30, "ok": 30, "failed": 0}
    assert (tmp_path / "street.profile" / "report" / "report.html").is_file()
    assert "report.html" in outputs["synth images profile --out"]
    assert pq.ParquetFile(tmp_path / "synthetic.parquet").metadata.num_rows == 100
    report = json.loads((tmp_path / "validation" / "report.json").read_text())
    assert report["privacy"]["passed"] is True
    assert "privacy" in outputs["synth images validate --out"]
    for fmt in ("imagefolder", "webdataset"):
        manifest = json.loads((tmp_path / "exports" / fmt / "manifest.json").read_text())
        assert manifest["counts"]["images"] == 100
    import datasets

    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(tmp_path / "exports" / "imagefolder"),
        cache_dir=str(tmp_path / "hf"), split="train",
    )  # fmt: skip
    assert len(loaded) == 100 and loaded[0]["image"].size[0] > 0

    registered = outputs["synth images register --count"]
    set_id = registered.split("registered image set ")[1].split()[0]
    result, flat = _run(["images", "status", set_id])
    assert result.exit_code == 0 and "pending" in flat and '"count": 100' in flat


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["images", "profile", "no/such/folder"], "image source no/such/folder does not exist"),
        (["images", "generate", "not-a-profile"], "holds no complete image profile"),
        (["images", "register", "no/such/folder"], "no such file or folder"),
        (["images", "status", "nope"], "image set nope not found"),
        (["images", "profile", "empty", "--ocr", "sometimes"], "auto, on or off"),
    ],
)
def test_errors_exit_1_with_a_message(synth_home, tmp_path, monkeypatch, argv, words) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-profile").mkdir()
    result, flat = _run(argv)
    assert result.exit_code == 1, result.output
    assert words in flat


def test_a_source_without_images_is_an_error_naming_it(synth_home, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    result, flat = _run(["images", "profile", "empty"])
    assert result.exit_code == 1 and "empty" in flat and "no image" in flat, result.output
