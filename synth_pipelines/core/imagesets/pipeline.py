"""The image set pipeline, one function per stage: profile a real set, generate a synthetic set
to its profile, validate it against the real one, export it. The image set line's assets run
the stages of a registered set; `synth images` runs the same work on local folders.

A registered set keeps its artifacts in the object store under `imagesets/<id>/`:

- `real/`: the real set's profile (features.parquet, embeddings, profile.json) and its report;
- `synthetic/records.parquet`: the generated set (see `records`);
- `synthetic_profile/`: the generated set's profile, in the layout of `real/`;
- `validation/report.json`: every check's report; `validation/records.parquet`: the synthetic
  set as it may be published (faces blurred where the real set has none, personal data in
  text redacted);
- `exports/<format>/`: each export, published complete.

A stage works in a local folder (SYNTH_HOME/imagesets/<id>) and syncs it with the store, so
that a stage in another process, or on another machine sharing the store, finds what the stage
before it wrote. A stage that fails records the error on the set (status `failed`, retryable)
and leaves the artifacts of the stages before it as they were.
"""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipelines.core.checks.names import SET_FIDELITY, SET_PRIVACY, SET_QUALITY
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.imagesets.records import ImageRecord, read_records, write_records
from synth_pipelines.core.imagesets.registry import get_image_set, update_image_set
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.object_store import ObjectStore

# progress(done) or progress(done, total): the stages call it as they go.
Progress = Callable[..., None]
RECORDS = "records.parquet"
# SYNTH_IMAGES_OCR / --ocr → ImageOptions.ocr (None: when tesseract is installed)
OCR_MODES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}


@dataclass(frozen=True)
class ImageOptions:
    """What the stages need of the settings (SYNTH_IMAGES_*), as plain values."""

    faces: bool = True
    ocr: bool | None = None  # None: when tesseract is installed
    max_pixels: int = 64_000_000
    phash_distance: int = 6
    diffusion_path: str = ""
    gan_path: str = ""
    inception_path: str = ""
    holdout_fraction: float = 0.2
    thresholds: str = ""  # SYNTH_IMAGES_THRESHOLDS: "max_ks=0.3,max_wasserstein.noise=0.5"
    clip_path: str = ""  # SYNTH_IMAGES_CLIP_PATH: CLIP embeddings for fidelity

    @classmethod
    def from_settings(cls, images: Any) -> ImageOptions:
        return cls(
            faces=images.faces,
            ocr=OCR_MODES[images.ocr],
            max_pixels=images.max_pixels,
            phash_distance=images.phash_distance,
            diffusion_path=images.diffusion_path,
            gan_path=images.gan_path,
            inception_path=images.inception_path,
            holdout_fraction=images.holdout_fraction,
            thresholds=images.thresholds,
            clip_path=images.clip_path,
        )

    def checkpoint(self, backend: str) -> str:
        return {"diffusion": self.diffusion_path, "gan": self.gan_path}.get(backend, "")


def parse_thresholds(text: str) -> Any:
    """The validation `Thresholds` with the overrides of `text` ("max_ks=0.3,min_recall=0.4,
    max_wasserstein.noise=0.5", the SYNTH_IMAGES_THRESHOLDS syntax); an unknown name or a value
    of the wrong type is an InvalidInputError naming it and what is accepted."""
    import dataclasses

    from synth_pipelines.core.errors import InvalidInputError
    from synth_pipelines.core.imagesets.validate import NUMERIC_FEATURES, Thresholds

    defaults = Thresholds()
    scalars = {
        f.name: type(getattr(defaults, f.name))
        for f in dataclasses.fields(Thresholds)
        if isinstance(getattr(defaults, f.name), bool | int | float)
    }
    changes: dict[str, Any] = {}
    wasserstein = dict(defaults.max_wasserstein)
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, sep, raw = (part.strip() for part in item.partition("="))
        feature = name.removeprefix("max_wasserstein.")
        try:
            if not sep:
                raise ValueError("no '='")
            if name.startswith("max_wasserstein.") and feature in NUMERIC_FEATURES:
                wasserstein[feature] = float(raw)
            elif name in scalars:
                kind = scalars[name]
                if kind is bool and raw.lower() not in ("true", "false"):
                    raise ValueError("true or false")
                changes[name] = raw.lower() == "true" if kind is bool else kind(raw)
            else:
                raise KeyError(name)
        except KeyError:
            raise InvalidInputError(
                f"SYNTH_IMAGES_THRESHOLDS: {name!r} is not a threshold; accepted: "
                f"{', '.join(sorted(scalars))}, max_wasserstein.<{'|'.join(NUMERIC_FEATURES)}>"
            ) from None
        except ValueError as exc:
            raise InvalidInputError(f"SYNTH_IMAGES_THRESHOLDS: {item!r}: {exc}") from None
    return dataclasses.replace(defaults, max_wasserstein=wasserstein, **changes)


@dataclass
class StageResult:
    """What a stage reports: counts for the set's record and the UI, the files worth showing
    (report, plots), and for validation the checks' outcomes."""

    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    outcomes: list[CheckOutcome] = field(default_factory=list)


# --- the work, on local folders -------------------------------------------------------------


def profile_source(
    source: str, out_dir: Path, options: ImageOptions, progress: Progress | None = None
) -> StageResult:
    """Profile the images of `source` (streaming) into `out_dir`, with its HTML report."""
    from synth_pipelines.core.imagesets.profile import profile_images
    from synth_pipelines.core.imagesets.report import write_report
    from synth_pipelines.core.imagesets.sources import open_source

    opened = open_source(source)
    started = time.perf_counter()
    profile = profile_images(
        iter(opened),
        out_dir,
        faces=options.faces,
        ocr=options.ocr,
        progress=progress,
        phash_distance=options.phash_distance,
        max_pixels=options.max_pixels,
    )
    seconds = time.perf_counter() - started

    def thumbnails(keys: list[str]) -> Iterator[ImageRecord]:
        wanted = set(keys)
        return (r for r in open_source(source) if r.key in wanted)

    files = write_report(profile, thumbnails, out_dir / "report")
    extra = write_extra_embeddings(lambda: iter(open_source(source)), profile, options)
    counts = profile.summary["counts"]
    return StageResult(
        summary={
            "images": counts["images"],
            "ok": counts["ok"],
            "failed": counts["failed"],
            "seconds": round(seconds, 2),
            "images_per_s": round(counts["images"] / seconds, 1) if seconds else None,
            "source": opened.describe(),
            **extra,
        },
        files=files,
    )


def write_extra_embeddings(
    records: Callable[[], Iterable[ImageRecord]], profile: Any, options: ImageOptions
) -> dict[str, int]:
    """Beside `profile`: dlib face descriptors (when faces are looked for and found), CLIP
    embeddings (when SYNTH_IMAGES_CLIP_PATH is set) and Inception features for FID (when
    SYNTH_IMAGES_INCEPTION_PATH is set); `records()` streams the set again for each."""
    import pandas as pd

    from synth_pipelines.core.imagesets.embeddings import (
        CLIP_EMBEDDINGS,
        INCEPTION_FEATURES,
        ClipImageEmbedder,
        InceptionFeatures,
        write_face_embeddings,
        write_image_vectors,
    )

    written: dict[str, int] = {}
    if options.faces and int((profile.summary.get("faces") or {}).get("images_with_faces") or 0):
        features = pd.read_parquet(profile.features_path, columns=["key", "ok", "faces"])
        written["face_embeddings"] = write_face_embeddings(records(), features, profile.out_dir)
    vectors = [
        (CLIP_EMBEDDINGS, options.clip_path, ClipImageEmbedder),
        (INCEPTION_FEATURES, options.inception_path, InceptionFeatures),
    ]
    wanted = [(name, path, embedder) for name, path, embedder in vectors if path]
    columns = ["key", "ok", "embedding_row"]
    rows = pd.read_parquet(profile.features_path, columns=columns) if wanted else None
    for name, path, embedder in wanted:
        written[name.removesuffix(".npy")] = write_image_vectors(
            records(), rows, profile.out_dir, embedder(path), name
        )
    return written


def _identity_findings(privacy: Any, real_dir: Path, synth_dir: Path) -> None:
    """Synthetic faces within dlib's same-person distance (0.6) of a real face, added to the
    privacy report: a face set that reproduces a real person fails it (not blocking: a
    likeness, not a copy of an image)."""
    from synth_pipelines.core.imagesets.embeddings import load_face_embeddings
    from synth_pipelines.core.privacy.identity import DEFAULT_THRESHOLD, identity_matches

    real, synth = load_face_embeddings(real_dir), load_face_embeddings(synth_dir)
    if real is None or synth is None or not len(real[0]) or not len(synth[0]):
        privacy.skipped["identity"] = "no faces embedded in both sets (dlib)"
        return
    matches = identity_matches(synth[0], real[0], DEFAULT_THRESHOLD)
    keys = list(dict.fromkeys(synth[1][i] for i, _, _ in matches))
    share = len(keys) / len(synth[1])
    privacy.metrics.update({"identity_matches": len(keys), "identity_match_share": share})
    privacy.notes["identity"] = f"dlib face descriptors, same person below {DEFAULT_THRESHOLD}"
    if keys:
        privacy.failed_checks.append("identity_match_share")
        privacy.messages.append(
            f"identity_match_share {share:.4g} > 0 allowed: {len(keys)} synthetic faces look "
            f"like a real person (dlib distance < {DEFAULT_THRESHOLD}), e.g. {keys[0]}"
        )
        for key in keys:
            if key not in privacy.reasons and len(privacy.failing) < 50:
                privacy.failing.append(key)
                privacy.reasons[key] = ["the face of a real person (dlib)"]
        if privacy.passed:
            privacy.passed = False


def generate_set(
    profile_dir: Path,
    out_path: Path,
    *,
    backend: str,
    count: int,
    seed: int,
    truncation: float,
    options: ImageOptions,
    progress: Progress | None = None,
) -> StageResult:
    """`count` images generated to the profile in `profile_dir`, written to the record file
    `out_path` (complete or not at all)."""
    from synth_pipelines.core.imagesets.generate import build_generator
    from synth_pipelines.core.imagesets.profile import load_profile

    profile = load_profile(profile_dir).summary
    generator = build_generator(
        backend,
        checkpoint_path=options.checkpoint(backend),
        **({"psi": truncation} if backend == "gan" else {}),
    )
    started = time.perf_counter()
    written = write_records(generator.generate(profile, count, seed, progress=progress), out_path)
    seconds = time.perf_counter() - started
    return StageResult(
        summary={
            "generated": written,
            "backend": backend,
            "seed": seed,
            "seconds": round(seconds, 2),
            "images_per_s": round(written / seconds, 1) if seconds else None,
        }
    )


def _holdout(keys: Iterable[str], fraction: float) -> np.ndarray:
    """Which real images are the holdout (a stable share, by a hash of the key)."""
    cut = int(fraction * 1000)
    return np.array([zlib.crc32(key.encode()) % 1000 < cut for key in keys], dtype=bool)


def _outcome(name: str, report: Any, severity: str) -> CheckOutcome:
    """A validation CheckReport as the check's outcome (a skip when it measured nothing)."""
    data = report.to_dict()
    if report.passed is None:
        return CheckOutcome.skip(name, report.skipped_reason or "nothing to check",
                                 data["metrics"])  # fmt: skip
    metadata: dict[str, Any] = {**data["metrics"], "thresholds": data["thresholds"]}
    if data["failing"]:
        metadata["failing"] = data["failing"]
    if data["skipped"]:
        metadata["not_measured"] = data["skipped"]
    return CheckOutcome(
        name,
        passed=bool(report.passed),
        description=report.summary(),
        severity=ERROR if report.blocking else severity,
        metadata=metadata,
    )


def _embedded(table: Any, embeddings: np.ndarray) -> np.ndarray:
    """The embedding rows of a features table's ok rows, in the table's order."""
    return np.asarray(embeddings)[table["embedding_row"].to_numpy(dtype=np.int64)]


def _inception_features(
    options: ImageOptions, real_dir: Path, synth_dir: Path, real_ok: Any, synth_ok: Any
) -> tuple[np.ndarray, np.ndarray] | str | None:
    """The real and synthetic Inception features in the rows of the ok images; None when
    SYNTH_IMAGES_INCEPTION_PATH is unset, or why they are missing (a real set profiled before
    the path was set) as a string for the report."""
    from synth_pipelines.core.imagesets.embeddings import INCEPTION_FEATURES, load_vectors

    if not options.inception_path:
        return None
    real = load_vectors(real_dir, INCEPTION_FEATURES)
    synth = load_vectors(synth_dir, INCEPTION_FEATURES)
    if real is None:
        return (
            "FID skipped: the real set was profiled without Inception features; profile it "
            "again with SYNTH_IMAGES_INCEPTION_PATH set"
        )
    if synth is None:
        return "FID skipped: the synthetic set has no Inception features"
    return _embedded(real_ok, real), _embedded(synth_ok, synth)


def validate_set(
    real_dir: Path,
    records_path: Path,
    work_dir: Path,
    options: ImageOptions,
    progress: Progress | None = None,
) -> StageResult:
    """The synthetic set of `records_path` profiled (into `work_dir`/profile) and judged against
    the real profile in `real_dir`: quality, fidelity and privacy. The reports go to
    `work_dir`/report.json. A failure is a warning, except copies of real images (privacy),
    which block the export."""
    import pandas as pd

    from synth_pipelines.core.imagesets.embeddings import (
        CLIP_EMBEDDINGS,
        load_vectors,
    )
    from synth_pipelines.core.imagesets.profile import load_profile, profile_images
    from synth_pipelines.core.imagesets.validate import (
        fidelity_report,
        privacy_report,
        quality_report,
    )

    synth_profile = profile_images(
        read_records(records_path),
        work_dir / "profile",
        faces=options.faces,
        ocr=False,
        progress=progress,
        phash_distance=options.phash_distance,
    )
    write_extra_embeddings(lambda: read_records(records_path), synth_profile, options)
    real_profile = load_profile(real_dir)
    real = pd.read_parquet(real_profile.features_path)
    synth = pd.read_parquet(synth_profile.features_path)
    real_ok = real[real["ok"]].reset_index(drop=True)
    synth_ok = synth[synth["ok"]].reset_index(drop=True)
    real_emb = _embedded(real_ok, real_profile.embeddings())
    synth_emb = _embedded(synth_ok, synth_profile.embeddings())
    real_clip, synth_clip = (
        load_vectors(real_dir, CLIP_EMBEDDINGS),
        load_vectors(synth_profile.out_dir, CLIP_EMBEDDINGS),
    )
    inception = _inception_features(options, real_dir, synth_profile.out_dir, real_ok, synth_ok)
    clip = real_clip is not None and synth_clip is not None
    real_fid, synth_fid = (
        (_embedded(real_ok, real_clip), _embedded(synth_ok, synth_clip))
        if clip
        else (real_emb, synth_emb)
    )
    holdout = _holdout(real_ok["key"], options.holdout_fraction)
    train = ~holdout
    thresholds = parse_thresholds(options.thresholds)
    reports = [
        quality_report(read_records(records_path), thresholds),
        fidelity_report(
            real_ok[train], synth_ok, real_fid[train], synth_fid, thresholds,
            inception=(inception[0][train], inception[1])
            if isinstance(inception, tuple) else inception,
        ),
        privacy_report(
            real_ok[train], synth_ok, real_emb[train], synth_emb,
            holdout=real_ok[holdout] if holdout.any() else None,
            holdout_emb=real_emb[holdout] if holdout.any() else None,
            thresholds=thresholds,
        ),
    ]  # fmt: skip
    cleaning = clean_records(
        records_path, work_dir / RECORDS, expect_faces=_has_faces(real_profile.summary),
        ocr=options.ocr,
    )  # fmt: skip
    reports[1].notes["embeddings"] = "CLIP (SYNTH_IMAGES_CLIP_PATH)" if clip else "descriptor"
    privacy = reports[2]
    _identity_findings(privacy, real_dir, synth_profile.out_dir)
    privacy.metrics.update(cleaning)
    if cleaning.get("text_redaction_skipped"):
        privacy.skipped["text_redaction"] = str(cleaning.pop("text_redaction_skipped"))
        privacy.metrics.pop("text_redaction_skipped", None)
    names = (SET_QUALITY, SET_FIDELITY, SET_PRIVACY)
    document = {name: report.to_dict() for name, report in zip(names, reports, strict=True)}
    (work_dir / "report.json").write_text(json.dumps(document, indent=2))
    outcomes = [
        _outcome(name, report, severity)
        for name, report, severity in zip(names, reports, (WARN, WARN, WARN), strict=True)
    ]
    return StageResult(
        summary={
            "validated": len(synth),
            **{name: report["passed"] for name, report in document.items()},
        },
        files={"report": work_dir / "report.json"},
        outcomes=outcomes,
    )


def thumbnails_markdown(
    records_path: Path, keys: Iterable[str], side: int = 96, limit: int = 8
) -> str:
    """Markdown of small PNG thumbnails (data URLs) of the records named by `keys`, at most
    `limit`, each captioned with its key: the failing samples a check shows in the UI."""
    from synth_pipelines.core.markdown_images import png_markdown, thumbnail_png

    wanted = list(dict.fromkeys(keys))[:limit]
    found: dict[str, str] = {}
    for record in read_records(records_path):
        if record.key not in wanted:
            continue
        try:
            png = thumbnail_png(record.data, side)
        except Exception:  # a sample that does not decode is named, not drawn
            found[record.key] = f"`{record.key}` (does not decode)"
            continue
        found[record.key] = f"{png_markdown(png, record.key)} `{record.key}`"
        if len(found) == len(wanted):
            break
    return "\n\n".join(found[key] for key in wanted if key in found)


def _has_faces(summary: dict[str, Any]) -> bool | None:
    """Whether the real set holds faces (None: faces were not looked for)."""
    faces = summary.get("faces") or {}
    if not faces.get("measured"):
        return None
    return int(faces.get("images_with_faces") or 0) > 0


def clean_records(
    records_path: Path, out_path: Path, *, expect_faces: bool | None, ocr: bool | None
) -> dict[str, Any]:
    """The synthetic set as it may be published, written to `out_path`: where the real set has
    no faces (`expect_faces` False), every face dlib finds in a synthetic image blurred (found
    at full size and searched again after blurring); text that OCR reads with personal data in
    it (emails, phone and card numbers) blacked out, when tesseract is installed and `ocr` is
    not False. Returns what was changed."""
    from synth_pipelines.core.imagesets.privacy import blur_faces, redact_text_pii

    counts: dict[str, Any] = {"faces_blurred_images": 0, "text_redacted_images": 0}
    redact = ocr is not False and shutil.which("tesseract") is not None
    if ocr is False:
        counts["text_redaction_skipped"] = "OCR is off (SYNTH_IMAGES_OCR=off)"
    elif not redact:
        counts["text_redaction_skipped"] = "tesseract not installed (apt-get install tesseract-ocr)"

    def cleaned() -> Iterator[ImageRecord]:
        for record in read_records(records_path):
            if expect_faces is False:
                blurred = blur_faces(record)
                counts["faces_blurred_images"] += blurred is not record
                record = blurred
            if redact:
                record, findings = redact_text_pii(record)
                if any(f.get("kind") != "skipped" for f in findings):
                    counts["text_redacted_images"] += 1
            yield record

    write_records(cleaned(), out_path)
    return counts


def export_records(
    records_path: Path,
    store: ObjectStore,
    prefix: str,
    formats: Iterable[str],
    progress: Progress | None = None,
) -> StageResult:
    """The record file exported in each of `formats` under `prefix/<format>/` (EXIF and GPS
    stripped), each published only once complete."""
    from synth_pipelines.core.imagesets.export import export_set

    exported: dict[str, Any] = {}
    started = time.perf_counter()
    total = 0
    for fmt in formats:
        result = export_set(
            read_records(records_path), store, f"{prefix}/{fmt}", fmt, overwrite=True,
            progress=progress,
        )  # fmt: skip
        exported[fmt] = f"{prefix}/{fmt}"
        total += result.bytes
    seconds = time.perf_counter() - started
    return StageResult(
        summary={
            "exports": exported,
            "bytes": total,
            "mb_per_s": round(total / 2**20 / seconds, 1) if seconds else None,
        }
    )


# --- registered sets: the work above, with the set's record and the store kept -----------


def set_prefix(set_id: str) -> str:
    return f"imagesets/{set_id}"


def work_folder(home: Path, set_id: str) -> Path:
    return Path(home) / "imagesets" / set_id


def upload_folder(store: ObjectStore, folder: Path, prefix: str) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        store.put_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)


def download_folder(store: ObjectStore, prefix: str, folder: Path) -> None:
    """The objects under `prefix` into `folder`, unless a file of that size is there already."""
    for key in store.list_keys(f"{prefix}/"):
        target = folder / key[len(prefix) + 1 :]
        if target.is_file() and target.stat().st_size == store.size(key):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open_reader(key) as reader, target.open("wb") as out:
            shutil.copyfileobj(reader, out, 1 << 20)


@dataclass(frozen=True)
class RegisteredSet:
    """A registered set's stages: each marks the set running in its stage (failed, with the
    error, if it raises), pulls what the stages before it left in the store into the local
    work folder, does its work and pushes what it wrote."""

    db: FactoryDatabase
    store: ObjectStore
    home: Path
    set_id: str
    options: ImageOptions = field(default_factory=ImageOptions)

    @property
    def folder(self) -> Path:
        return work_folder(self.home, self.set_id)

    def _pull(self, *parts: str) -> None:
        for part in parts:
            download_folder(self.store, f"{set_prefix(self.set_id)}/{part}", self.folder / part)

    def _push(self, part: str) -> None:
        upload_folder(self.store, self.folder / part, f"{set_prefix(self.set_id)}/{part}")

    @contextmanager
    def _stage(self, stage: str) -> Iterator[dict[str, Any]]:
        row = get_image_set(self.db, self.set_id)
        update_image_set(self.db, self.set_id, status="running", stage=stage, error=None)
        try:
            yield row
        except Exception as exc:
            update_image_set(self.db, self.set_id, status="failed", error=f"{stage}: {exc}")
            raise

    def profile(self, progress: Progress | None = None) -> StageResult:
        with self._stage("profile") as row:
            shutil.rmtree(self.folder / "real", ignore_errors=True)
            result = profile_source(row["source"], self.folder / "real", self.options, progress)
            self._push("real")
            update_image_set(self.db, self.set_id, counts={"real": result.summary})
            return result

    def generate(self, progress: Progress | None = None) -> StageResult:
        with self._stage("generate") as row:
            self._pull("real")
            shutil.rmtree(self.folder / "synthetic", ignore_errors=True)
            params = row["params"]
            result = generate_set(
                self.folder / "real",
                self.folder / "synthetic" / RECORDS,
                backend=params["backend"],
                count=params["count"],
                seed=params["seed"],
                truncation=params["truncation"],
                options=self.options,
                progress=progress,
            )
            self._push("synthetic")
            update_image_set(self.db, self.set_id, counts={"synthetic": result.summary})
            return result

    def validate(self, progress: Progress | None = None) -> StageResult:
        with self._stage("validate"):
            self._pull("real", "synthetic")
            shutil.rmtree(self.folder / "validation", ignore_errors=True)
            result = validate_set(
                self.folder / "real", self.folder / "synthetic" / RECORDS,
                self.folder / "validation", self.options, progress,
            )  # fmt: skip
            self._push("validation")
            checks = {o.name: {"passed": o.passed, "skipped": o.skipped, "severity": o.severity,
                               "description": o.description} for o in result.outcomes}  # fmt: skip
            blocked = [o.name for o in result.outcomes if not o.passed and o.severity == ERROR]
            failed = {"status": "failed", "error": f"blocking check failed: {', '.join(blocked)}"}
            update_image_set(self.db, self.set_id, checks=checks, **(failed if blocked else {}))
            return result

    def export(self, progress: Progress | None = None) -> StageResult:
        with self._stage("export") as row:
            # The set as validation cleaned it (faces blurred, personal text redacted).
            self._pull("validation")
            result = export_records(
                self.folder / "validation" / RECORDS,
                self.store,
                f"{set_prefix(self.set_id)}/exports",
                row["params"]["formats"],
                progress,
            )
            update_image_set(
                self.db, self.set_id, status="ready", stage="",
                exports=result.summary["exports"], error=None,
            )  # fmt: skip
            return result
