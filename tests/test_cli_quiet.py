"""`synth` keeps the ML libraries quiet (progress bars, logs, deprecation warnings) and its own
output, unless --verbose: each case in a fresh interpreter, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth_pipelines.cli.quiet import QUIET_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("Loading weights", "requires torchvision", "No LoRA keys", "it/s]")  # it/s]: any tqdm bar

# A `synth` command through the CLI's entry point, then a tiny transformers model saved and
# loaded in the same process, as a command that loads a model would.
LOAD_AFTER_COMMAND = """
import sys
from synth_pipelines.cli import app
from synth_pipelines.core.flux.tiny_pipeline import tiny_clip_text_encoder

app([*sys.argv[2:], "keys", "generate"], standalone_mode=False)
from transformers import CLIPTextModel

tiny_clip_text_encoder(vocab_size=100).save_pretrained(sys.argv[1])
CLIPTextModel.from_pretrained(sys.argv[1])
"""


def _env(**extra: str) -> dict[str, str]:
    """This environment (synth_home's) for a child that imports this checkout, without the
    variables an in-process CLI test may have set here."""
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENVIRONMENT}
    env.pop("SYNTH_VERBOSE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **extra}


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_demo_prints_its_progress_and_none_of_the_libraries_noise(synth_home, tmp_path) -> None:
    # Faces, then a Flux subject on the tiny pipeline: CLIP and T5 through transformers, a LoRA
    # through diffusers and peft.
    env = _env(SYNTH_FACE_SIZE="64", SYNTH_FLUX_TRAIN_STEPS="5", HF_HUB_OFFLINE="1")
    demo = ["demo", "--per-bucket", "1", "--no-dataset", "--tabular-rows", "0", "--no-persona",
            "--no-images"]  # fmt: skip
    result = _run(["-m", "synth_pipelines.cli", *demo], env, tmp_path)
    found = [noise for noise in NOISE if noise in result.stderr]
    assert not found, result.stderr
    flat = " ".join(result.stdout.split())
    assert "refilling male/senior" in flat and "10/10" in flat  # our progress bar, finished
    assert "faces/s end to end" in flat
    assert "5 photos accepted" in flat and "LoRA v1 (5 steps" in flat
    assert "Generated 2 images" in flat


@pytest.mark.parametrize(
    ("flags", "extra", "noisy"),
    [([], {}, False), (["--verbose"], {}, True), ([], {"SYNTH_VERBOSE": "1"}, True)],
    ids=["quiet", "--verbose", "SYNTH_VERBOSE=1"],
)
def test_a_model_loaded_after_the_command_starts_is_quiet_unless_verbose(
    synth_home, tmp_path, flags, extra, noisy
) -> None:
    model = tmp_path / "clip"
    result = _run(["-c", LOAD_AFTER_COMMAND, str(model), *flags], _env(**extra), tmp_path)
    assert len(result.stdout.strip()) >= 32  # `keys generate` printed its key
    assert ("Loading weights" in result.stderr) is noisy, result.stderr
    assert ("Writing model shards" in result.stderr) is noisy, result.stderr
