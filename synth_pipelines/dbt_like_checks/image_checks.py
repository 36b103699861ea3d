"""Image quality, label and privacy checks on face_inventory, and delivery checks on
dataset_package: Dagster's side of `core/checks/faces.py` and `core/checks/datasets.py`."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from synth_pipelines.core.checks import datasets as dataset_checks
from synth_pipelines.core.checks import faces as face_checks
from synth_pipelines.core.checks.faces import scan_faces
from synth_pipelines.core.checks.names import (
    DATASET_PACKAGE,
    DISTINCT_IDENTITIES,
    FACE_FRESHNESS,
    FACE_INVENTORY,
    FILE_HASHES,
    IDENTITY_LEAKAGE,
    IMAGE_QUALITY,
    LABEL_AGREEMENT,
    LABEL_BALANCE,
    MANIFEST_MATCHES_REQUEST,
    NEAR_DUPLICATES,
    OBJECTS_PRESENT,
)
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.checks.tables import load_db_table
from synth_pipelines.core.delivery.requests import requests_in
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.imagecheck.quality import DEFAULT_THRESHOLDS
from synth_pipelines.core.privacy.identity import FaceEmbedder, ReferenceSet
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings

# What each check promises, as the UI describes it; severities are the computations' own.
FACE_CHECKS = {
    OBJECTS_PRESENT: "Every face row's PNG exists in the object store.",
    IMAGE_QUALITY: (
        "Every face decodes at the size its row records, in RGB, sharp (variance of the "
        "Laplacian) and well exposed (mean gray level, clipped pixels)."
    ),
    NEAR_DUPLICATES: (
        "Share of faces with a perceptual-hash near-duplicate stays below "
        "SYNTH_MAX_NEAR_DUPLICATE_RATE."
    ),
    LABEL_AGREEMENT: (
        "Per bucket, the classifier's gender agrees with the generator's intent at least "
        "SYNTH_MIN_LABEL_AGREEMENT of the time (age-group agreement reported too)."
    ),
    IDENTITY_LEAKAGE: (
        "No face is the identity of a protected real photo (SYNTH_PROTECTED_FACES_DIR; dlib "
        "128-d embeddings, distance < SYNTH_IDENTITY_THRESHOLD)."
    ),
    FACE_FRESHNESS: "Every bucket below target got new faces within SYNTH_FRESHNESS_HOURS.",
}
DATASET_CHECKS = {
    FILE_HASHES: "Every file of every ready archive matches its manifest sha256.",
    MANIFEST_MATCHES_REQUEST: (
        "Every ready archive's manifest counts exactly the faces per bucket its request asked."
    ),
    LABEL_BALANCE: (
        "The classifier's gender shares of each delivered dataset are within 15% of the request."
    ),
    DISTINCT_IDENTITIES: (
        "Within one dataset, the share of faces sharing an identity stays below "
        "SYNTH_MAX_SAME_IDENTITY_RATE."
    ),
}
BALANCE_TOLERANCE = 0.15


def identity_severity(settings: Settings) -> str:
    """dlib tells real people apart, not procedural faces: 75% of pairs of distinct simulator
    identities measure < 0.6 apart. On simulator inventories the within-dataset identity check
    reports its real rate as a warning instead of pausing delivery."""
    return WARN if settings.faces.generator == "simulator" else ERROR


def _specs(
    asset: str, descriptions: dict[str, str], severities: dict[str, str]
) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset,
            blocking=severities[name] == ERROR,
            description=description,
            metadata={"severity": severities[name]},
        )
        for name, description in descriptions.items()
    ]


def _selected(context: dg.AssetCheckExecutionContext) -> set[str]:
    return {key.name for key in context.selected_asset_check_keys}


def _reference(settings: Settings, embedder: FaceEmbedder) -> ReferenceSet | None:
    if settings.checks.protected_faces_dir is None:
        return None
    return ReferenceSet.from_folder(settings.checks.protected_faces_dir, embedder)


def build_image_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    """The face_inventory and dataset_package checks, configured from `settings`."""
    thresholds = replace(DEFAULT_THRESHOLDS, min_blur=settings.checks.min_blur)
    dataset_severity = {
        **dataset_checks.SEVERITY,
        DISTINCT_IDENTITIES: identity_severity(settings),
    }

    @dg.multi_asset_check(
        name="face_inventory_image_checks",
        specs=_specs(FACE_INVENTORY, FACE_CHECKS, face_checks.SEVERITY),
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
        faces = load_db_table(db, FACE_INVENTORY)
        embedder = FaceEmbedder()
        needs_scan = bool(selected & {IMAGE_QUALITY, IDENTITY_LEAKAGE})
        embed = IDENTITY_LEAKAGE in selected and settings.checks.protected_faces_dir is not None
        scans, scanned = (
            scan_faces(db, store, faces, embed=embed, workers=settings.faces.refill_workers,
                       embedder=embedder)
            if needs_scan
            else ({}, 0)
        )  # fmt: skip
        if needs_scan:
            context.log.info(f"scanned {scanned} new face(s) of {len(faces)}")
        outcomes: list[CheckOutcome] = []
        if OBJECTS_PRESENT in selected:
            outcomes.append(face_checks.objects_present(faces, store))
        if IMAGE_QUALITY in selected:
            quality = face_checks.image_quality(faces, scans, thresholds)
            outcomes.append(replace(quality, metadata={**quality.metadata, "scanned_now": scanned}))
        if NEAR_DUPLICATES in selected:
            outcomes.append(
                face_checks.near_duplicates(
                    faces, settings.faces.phash_distance, settings.checks.max_near_duplicate_rate
                )
            )
        if LABEL_AGREEMENT in selected:
            outcomes.append(face_checks.label_agreement(faces, settings.checks.min_label_agreement))
        if IDENTITY_LEAKAGE in selected:
            outcomes.append(
                face_checks.identity_leakage(
                    faces, scans, _reference(settings, embedder), settings.checks.identity_threshold
                )
            )
        if FACE_FRESHNESS in selected:
            outcomes.append(
                face_checks.freshness(
                    faces,
                    inventory_levels(db),
                    settings.faces.targets,
                    timedelta(hours=settings.checks.freshness_hours),
                    datetime.now(UTC),
                )
            )
        for outcome in outcomes:
            yield check_result(FACE_INVENTORY, outcome)

    @dg.multi_asset_check(
        name="dataset_package_checks",
        specs=_specs(DATASET_PACKAGE, DATASET_CHECKS, dataset_severity),
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
        )[: settings.checks.dataset_limit]
        delivered = dataset_checks.read_all(store, ready)
        context.log.info(f"verified {len(delivered)} ready dataset archive(s)")
        outcomes: list[CheckOutcome] = []
        if FILE_HASHES in selected:
            outcomes.append(dataset_checks.file_hashes(delivered))
        if MANIFEST_MATCHES_REQUEST in selected:
            outcomes.append(dataset_checks.manifest_matches_request(delivered))
        if LABEL_BALANCE in selected:
            outcomes.append(dataset_checks.label_balance(delivered, BALANCE_TOLERANCE))
        if DISTINCT_IDENTITIES in selected:
            ids = sorted({face_id for d in delivered for face_id in d.face_ids})
            faces = load_db_table(db, FACE_INVENTORY)
            faces = faces[faces["id"].isin(ids)]
            scans, _ = scan_faces(
                db, store, faces, embed=True, workers=settings.faces.refill_workers
            ) if len(faces) else ({}, 0)  # fmt: skip
            outcomes.append(
                dataset_checks.distinct_identities(
                    delivered,
                    scans,
                    settings.checks.identity_threshold,
                    settings.checks.max_same_identity_rate,
                    severity=dataset_severity[DISTINCT_IDENTITIES],
                )
            )
        for outcome in outcomes:
            yield check_result(DATASET_PACKAGE, outcome)

    return [face_inventory_image_checks, dataset_package_checks]
