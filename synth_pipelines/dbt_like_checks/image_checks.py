"""Image quality, label and privacy checks on face_inventory, and delivery checks on
dataset_package: Dagster's side of `core/checks/faces.py` and `core/checks/datasets.py`."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from synth_pipelines.core.checks import datasets as dataset_checks
from synth_pipelines.core.checks import faces as face_checks
from synth_pipelines.core.checks.faces import CheckReport, scan_faces
from synth_pipelines.core.checks.tables import load_db_table
from synth_pipelines.core.delivery.requests import requests_in
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.imagecheck.quality import DEFAULT_THRESHOLDS
from synth_pipelines.core.privacy.identity import FaceEmbedder, ReferenceSet
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
FACE_CHECKS = {
    "objects_present": (ERROR, "Every face row's PNG exists in the object store."),
    "image_quality": (
        ERROR,
        "Every face decodes at the size its row records, in RGB, sharp (variance of the "
        "Laplacian) and well exposed (mean gray level, clipped pixels).",
    ),
    "near_duplicates": (
        ERROR,
        "Share of faces with a perceptual-hash near-duplicate stays below "
        "SYNTH_MAX_NEAR_DUPLICATE_RATE.",
    ),
    "label_agreement": (
        WARN,
        "Per bucket, the classifier's gender agrees with the generator's intent at least "
        "SYNTH_MIN_LABEL_AGREEMENT of the time (age-group agreement reported too).",
    ),
    "identity_leakage": (
        ERROR,
        "No face is the identity of a protected real photo (SYNTH_PROTECTED_FACES_DIR; dlib "
        "128-d embeddings, distance < SYNTH_IDENTITY_THRESHOLD).",
    ),
    "freshness": (
        WARN,
        "Every bucket below target got new faces within SYNTH_FRESHNESS_HOURS.",
    ),
}
DATASET_CHECKS = {
    "file_hashes": (ERROR, "Every file of every ready archive matches its manifest sha256."),
    "manifest_matches_request": (
        ERROR,
        "Every ready archive's manifest counts exactly the faces per bucket its request asked.",
    ),
    "label_balance": (
        WARN,
        "The classifier's gender shares of each delivered dataset are within 15% of the request.",
    ),
    "distinct_identities": (
        ERROR,  # WARN for the procedural simulator: see identity_severity
        "Within one dataset, the share of faces sharing an identity stays below "
        "SYNTH_MAX_SAME_IDENTITY_RATE.",
    ),
}
BALANCE_TOLERANCE = 0.15


def identity_severity(settings: Settings) -> dg.AssetCheckSeverity:
    """dlib tells real people apart, not procedural faces: 75% of pairs of distinct simulator
    identities measure < 0.6 apart. On simulator inventories the within-dataset identity check
    reports its real rate as a warning instead of pausing delivery."""
    return WARN if settings.face_generator == "simulator" else ERROR


def _specs(asset: str, checks: dict) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            f"{asset}__{name}",
            asset=asset,
            blocking=severity == ERROR,
            description=description,
            metadata={"severity": "error" if severity == ERROR else "warn"},
        )
        for name, (severity, description) in checks.items()
    ]


def _result(asset: str, name: str, severity, report: CheckReport) -> dg.AssetCheckResult:
    metadata = {key: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v
                for key, v in report.metadata.items() if v is not None}  # fmt: skip
    if report.buckets:
        metadata["buckets"] = dg.MetadataValue.json(report.buckets)
    return dg.AssetCheckResult(
        check_name=f"{asset}__{name}",
        asset_key=asset,
        passed=report.passed,
        severity=severity,
        description=report.description[:1000],
        metadata=metadata,
    )


def _selected(context: dg.AssetCheckExecutionContext) -> set[str]:
    return {key.name.split("__", 1)[1] for key in context.selected_asset_check_keys}


def _reference(settings: Settings, embedder: FaceEmbedder) -> ReferenceSet | None:
    if settings.protected_faces_dir is None:
        return None
    return ReferenceSet.from_folder(settings.protected_faces_dir, embedder)


def build_image_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    """The face_inventory and dataset_package checks, configured from `settings`."""
    thresholds = replace(DEFAULT_THRESHOLDS, min_blur=settings.min_blur)
    dataset_severity = {
        **DATASET_CHECKS,
        "distinct_identities": (
            identity_severity(settings),
            DATASET_CHECKS["distinct_identities"][1],
        ),
    }

    @dg.multi_asset_check(
        name="face_inventory_image_checks",
        specs=_specs("face_inventory", FACE_CHECKS),
        can_subset=True,
        description="Quality, label and privacy checks on every stored face.",
    )
    def face_inventory_image_checks(
        context: dg.AssetCheckExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ):
        db, store = factory_db.get_db(), object_store.get_store()
        selected = _selected(context)
        faces = load_db_table(db, "face_inventory")
        embedder = FaceEmbedder()
        needs_scan = bool(selected & {"image_quality", "identity_leakage"})
        embed = "identity_leakage" in selected and settings.protected_faces_dir is not None
        scans, scanned = (
            scan_faces(db, store, faces, embed=embed, workers=settings.refill_workers,
                       embedder=embedder)
            if needs_scan
            else ({}, 0)
        )  # fmt: skip
        if needs_scan:
            context.log.info(f"scanned {scanned} new face(s) of {len(faces)}")
        reports: dict[str, CheckReport] = {}
        if "objects_present" in selected:
            reports["objects_present"] = face_checks.objects_present(faces, store)
        if "image_quality" in selected:
            reports["image_quality"] = face_checks.image_quality(faces, scans, thresholds)
        if "near_duplicates" in selected:
            reports["near_duplicates"] = face_checks.near_duplicates(
                faces, settings.phash_distance, settings.max_near_duplicate_rate
            )
        if "label_agreement" in selected:
            reports["label_agreement"] = face_checks.label_agreement(
                faces, settings.min_label_agreement
            )
        if "identity_leakage" in selected:
            reference = _reference(settings, embedder)
            if reference is None:
                reports["identity_leakage"] = CheckReport(
                    True,
                    "no protected reference set configured (SYNTH_PROTECTED_FACES_DIR): "
                    "nothing to compare against",
                    {"reference_configured": False},
                )
            else:
                report = face_checks.identity_leakage(
                    faces, scans, reference.names, reference.embeddings,
                    settings.identity_threshold,
                )  # fmt: skip
                report.metadata["reference_skipped"] = reference.skipped
                reports["identity_leakage"] = report
        if "freshness" in selected:
            reports["freshness"] = face_checks.freshness(
                faces,
                inventory_levels(db),
                settings.targets,
                timedelta(hours=settings.freshness_hours),
                datetime.now(UTC),
            )
        if "image_quality" in reports:
            reports["image_quality"].metadata["scanned_now"] = scanned
        for name, report in reports.items():
            yield _result("face_inventory", name, FACE_CHECKS[name][0], report)

    @dg.multi_asset_check(
        name="dataset_package_checks",
        specs=_specs("dataset_package", dataset_severity),
        can_subset=True,
        description=(
            "Re-verifies the newest ready archives (SYNTH_CHECK_DATASET_LIMIT): hashes, "
            "counts, label balance, distinct identities."
        ),
    )
    def dataset_package_checks(
        context: dg.AssetCheckExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
    ):
        db, store = factory_db.get_db(), object_store.get_store()
        selected = _selected(context)
        ready = sorted(
            requests_in(db, ("ready",)), key=lambda r: r.completed_at or r.created_at, reverse=True
        )[: settings.check_dataset_limit]
        delivered = dataset_checks.read_all(store, ready)
        context.log.info(f"verified {len(delivered)} ready dataset archive(s)")
        reports: dict[str, CheckReport] = {}
        if "file_hashes" in selected:
            reports["file_hashes"] = dataset_checks.file_hashes(delivered)
        if "manifest_matches_request" in selected:
            reports["manifest_matches_request"] = dataset_checks.manifest_matches_request(delivered)
        if "label_balance" in selected:
            reports["label_balance"] = dataset_checks.label_balance(delivered, BALANCE_TOLERANCE)
        if "distinct_identities" in selected:
            ids = sorted({face_id for d in delivered for face_id in d.face_ids})
            faces = load_db_table(db, "face_inventory")
            faces = faces[faces["id"].isin(ids)]
            scans, _ = scan_faces(
                db, store, faces, embed=True, workers=settings.refill_workers
            ) if len(faces) else ({}, 0)  # fmt: skip
            reports["distinct_identities"] = dataset_checks.distinct_identities(
                delivered, scans, settings.identity_threshold, settings.max_same_identity_rate
            )
        for name, report in reports.items():
            yield _result("dataset_package", name, dataset_severity[name][0], report)

    return [face_inventory_image_checks, dataset_package_checks]
