"""Checks on the face inventory that a column test cannot express: stored objects present,
image quality, perceptual near-duplicates, label agreement, identity leakage against a
protected reference set, and freshness of buckets below target. Each returns a `CheckOutcome`;
one with nothing to look at (no face, no image to decode, no protected reference set) is
skipped with its reason, never passed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from synth_pipelines.core.checks.names import (
    FACE_FRESHNESS,
    IDENTITY_LEAKAGE,
    IMAGE_QUALITY,
    LABEL_AGREEMENT,
    NEAR_DUPLICATES,
    OBJECTS_PRESENT,
)
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.errors import ObjectNotFoundError
from synth_pipelines.core.imagecheck.quality import (
    ImageQuality,
    QualityThresholds,
    measure_image,
    near_duplicate_pairs,
    near_duplicate_rate,
    quality_problems,
)
from synth_pipelines.core.privacy.identity import (
    FaceEmbedder,
    ReferenceSet,
    embed_many,
    identity_matches,
)
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import FaceScan
from synth_pipelines.core.storage.object_store import ObjectStore

SAMPLE = 10
_CHUNK = 900  # ids per IN (...) query
NO_FACES = "the inventory holds no face"

SEVERITY = {
    OBJECTS_PRESENT: ERROR,
    IMAGE_QUALITY: ERROR,
    NEAR_DUPLICATES: ERROR,
    LABEL_AGREEMENT: WARN,  # the classifier's view of the labels, not a reason to stop delivery
    IDENTITY_LEAKAGE: ERROR,
    FACE_FRESHNESS: WARN,  # slow refills are worth knowing, the faces there are still good
}


def _outcome(name: str, passed: bool, description: str, metadata: dict[str, Any],
             buckets: list[str]) -> CheckOutcome:  # fmt: skip
    return CheckOutcome(name, passed, description, SEVERITY[name], metadata, buckets)


def bucket_keys(rows: pd.DataFrame) -> list[str]:
    return sorted({f"{g}/{a}" for g, a in zip(rows["gender"], rows["age_group"], strict=True)})


# --- scans: each face decoded, measured and embedded once --------------------------------------


def load_scans(db: FactoryDatabase, face_ids: Iterable[str]) -> dict[str, FaceScan]:
    """Stored scans of `face_ids` (queried in chunks: a bound parameter per id)."""
    ids = list(face_ids)
    scans: dict[str, FaceScan] = {}
    with db.session() as session:
        for start in range(0, len(ids), _CHUNK):
            query = select(FaceScan).where(FaceScan.face_id.in_(ids[start : start + _CHUNK]))
            scans.update((row.face_id, row) for row in session.scalars(query))
        session.expunge_all()
    return scans


def scan_faces(
    db: FactoryDatabase,
    store: ObjectStore,
    faces: pd.DataFrame,
    *,
    embed: bool,
    workers: int = 2,
    embedder: FaceEmbedder | None = None,
) -> tuple[dict[str, FaceScan], int]:
    """Scans of `faces` (rows with id, object_key), measuring those not yet scanned (and
    embedding them when `embed`). Returns the scans by face id and how many were new work;
    faces whose object is missing get no scan (objects_present reports them)."""
    scans = load_scans(db, faces["id"])
    present, datas = [], []
    for face_id, key in zip(faces["id"], faces["object_key"], strict=True):
        if face_id in scans and not (embed and scans[face_id].embedding is None):
            continue
        try:
            datas.append(store.get_bytes(key))
        except ObjectNotFoundError:
            continue
        present.append(face_id)
    if not present:
        return scans, 0
    vectors = (
        embed_many(datas, workers=workers, embedder=embedder) if embed else [None] * len(datas)
    )
    with db.session() as session:
        for face_id, data, vector in zip(present, datas, vectors, strict=True):
            quality = measure_image(data)
            scan = scans.get(face_id) or FaceScan(face_id=face_id)
            scan.decodable, scan.error = quality.decodable, quality.error
            scan.width, scan.height, scan.mode = quality.width, quality.height, quality.mode
            scan.blur, scan.brightness, scan.clipped = (
                quality.blur,
                quality.brightness,
                quality.clipped,
            )
            if vector is not None:
                scan.embedding = np.asarray(vector, dtype=np.float32).tobytes()
            scans[face_id] = session.merge(scan)
        session.flush()
        session.expunge_all()
    return scans, len(present)


def embedding_of(scan: FaceScan | None) -> np.ndarray | None:
    if scan is None or scan.embedding is None:
        return None
    return np.frombuffer(scan.embedding, dtype=np.float32)


# --- the checks --------------------------------------------------------------------------------


def objects_present(faces: pd.DataFrame, store: ObjectStore) -> CheckOutcome:
    """Every face row's PNG exists in the object store."""
    if faces.empty:
        return CheckOutcome.skip(OBJECTS_PRESENT, NO_FACES, {"faces": 0})
    # A boolean Series, not a list: an empty list would select columns, not rows.
    missing = faces[~faces["object_key"].map(store.exists).astype(bool)]
    return _outcome(
        OBJECTS_PRESENT,
        passed=missing.empty,
        description=(
            f"all {len(faces)} face objects present"
            if missing.empty
            else f"{len(missing)} of {len(faces)} face rows have no object in the store"
        ),
        metadata={
            "faces": len(faces),
            "missing": len(missing),
            "missing_sample": list(missing["object_key"][:SAMPLE]),
        },
        buckets=bucket_keys(missing),
    )


def image_quality(
    faces: pd.DataFrame, scans: dict[str, FaceScan], thresholds: QualityThresholds
) -> CheckOutcome:
    """Decodable, the size the row records, RGB, sharp and well exposed."""
    if not scans:  # an inventory face without its object is objects_present's to report
        reason = NO_FACES if faces.empty else f"none of the {len(faces)} faces has an image"
        return CheckOutcome.skip(IMAGE_QUALITY, reason, {"faces": len(faces), "faces_scanned": 0})
    problems: dict[str, list[str]] = {}
    for face_id, width, height in zip(faces["id"], faces["width"], faces["height"], strict=True):
        scan = scans.get(face_id)
        if scan is None:
            continue  # no object: objects_present reports it
        expected = replace(thresholds, expected_size=(int(width), int(height)))
        found = quality_problems(_as_quality(scan), expected)
        if found:
            problems[face_id] = found
    bad = faces[faces["id"].isin(problems)]
    reasons: dict[str, int] = {}
    for found in problems.values():
        for reason in found:
            kind = reason.split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
    blur = [s.blur for s in scans.values() if s.decodable]
    return _outcome(
        IMAGE_QUALITY,
        passed=not problems,
        description=(
            f"{len(scans)} faces decodable, sharp and well exposed"
            if not problems
            else f"{len(problems)} of {len(scans)} faces fail quality: {reasons}"
        ),
        metadata={
            "faces_scanned": len(scans),
            "failing": len(problems),
            "by_reason": reasons,
            "failing_sample": {k: v for k, v in list(problems.items())[:SAMPLE]},
            "blur_min": round(min(blur), 1) if blur else None,
            "blur_median": round(float(np.median(blur)), 1) if blur else None,
            "thresholds": {k: v for k, v in thresholds.__dict__.items() if k != "expected_size"},
        },
        buckets=bucket_keys(bad),
    )


def _as_quality(scan: FaceScan) -> ImageQuality:
    return ImageQuality(
        decodable=scan.decodable,
        width=scan.width,
        height=scan.height,
        mode=scan.mode,
        blur=scan.blur,
        brightness=scan.brightness,
        clipped=scan.clipped,
        error=scan.error,
    )


def near_duplicates(faces: pd.DataFrame, max_distance: int, max_rate: float) -> CheckOutcome:
    """Share of faces with a perceptual-hash twin (Hamming distance ≤ max_distance)."""
    if faces.empty:
        return CheckOutcome.skip(NEAR_DUPLICATES, NO_FACES, {"faces": 0, "max_rate": max_rate})
    hashes = np.asarray(faces["phash"], dtype=np.int64).view(np.uint64)
    pairs = near_duplicate_pairs(hashes, max_distance)
    rate = near_duplicate_rate(len(faces), pairs)
    ids = faces["id"].tolist()
    involved = faces.iloc[sorted({i for p in pairs for i in p[:2]})]
    passed = rate <= max_rate
    return _outcome(
        NEAR_DUPLICATES,
        passed=passed,
        description=f"{rate:.2%} of {len(faces)} faces have a near-duplicate "
        f"(phash distance ≤ {max_distance}); allowed {max_rate:.2%}",
        metadata={
            "faces": len(faces),
            "pairs": len(pairs),
            "rate": round(rate, 6),
            "max_rate": max_rate,
            "pairs_sample": [[ids[i], ids[j], d] for i, j, d in pairs[:SAMPLE]],
        },
        buckets=[] if passed else bucket_keys(involved),
    )


def label_agreement(faces: pd.DataFrame, min_agreement: float) -> CheckOutcome:
    """Per bucket, how often the classifier agrees with the generator's intent (gender, age
    group); fails when a bucket's gender agreement is below `min_agreement`."""
    if faces.empty:
        return CheckOutcome.skip(LABEL_AGREEMENT, NO_FACES, {"min_agreement": min_agreement})
    per_bucket: dict[str, dict[str, Any]] = {}
    low = []
    for (gender, age_group), rows in faces.groupby(["intended_gender", "intended_age_group"]):
        detected = rows[rows["face_detected"].astype(bool)]
        gender_rate = (
            float((detected["predicted_gender"] == gender).mean()) if len(detected) else 0.0
        )
        age_rate = (
            float((detected["predicted_age_group"] == age_group).mean()) if len(detected) else 0.0
        )
        key = f"{gender}/{age_group}"
        per_bucket[key] = {
            "faces": len(rows),
            "detected": round(len(detected) / len(rows), 4),
            "gender_agreement": round(gender_rate, 4),
            "age_group_agreement": round(age_rate, 4),
        }
        if gender_rate < min_agreement:
            low.append(key)
    return _outcome(
        LABEL_AGREEMENT,
        passed=not low,
        description=(
            f"classifier gender agreement ≥ {min_agreement:.0%} in every bucket"
            if not low
            else f"classifier gender agreement below {min_agreement:.0%} in {low}"
        ),
        metadata={"per_bucket": per_bucket, "min_agreement": min_agreement},
        buckets=low,
    )


def identity_leakage(
    faces: pd.DataFrame,
    scans: dict[str, FaceScan],
    protected: ReferenceSet | None,
    threshold: float,
) -> CheckOutcome:
    """No inventory face is the same identity as a face of the protected reference set. With no
    set configured (None), none of its photos showing a face, or no inventory face embedded, it
    compared nothing: skipped, saying which, never passed."""
    if protected is None:
        return CheckOutcome.skip(
            IDENTITY_LEAKAGE,
            "no protected reference set configured (SYNTH_PROTECTED_FACES_DIR): no face was "
            "compared with any real photo",
            {"reference_configured": False, "faces": len(faces)},
        )
    reference_names, reference = protected.names, protected.embeddings
    ids, vectors = [], []
    for face_id in faces["id"]:
        vector = embedding_of(scans.get(face_id))
        if vector is not None:
            ids.append(face_id)
            vectors.append(vector)
    found = {
        "reference_configured": True,
        "reference_faces": len(reference),
        "reference_skipped": protected.skipped,
        "faces": len(faces),
        "faces_embedded": len(ids),
    }
    if not len(reference):
        reason = (
            f"none of the {len(protected.skipped)} photos of the protected reference set shows "
            "a face dlib can find: no face was compared"
            if protected.skipped
            else "the protected reference set (SYNTH_PROTECTED_FACES_DIR) holds no photo"
        )
        return CheckOutcome.skip(IDENTITY_LEAKAGE, reason, found)
    if not vectors:
        reason = NO_FACES if faces.empty else f"none of the {len(faces)} faces has an embedding"
        return CheckOutcome.skip(IDENTITY_LEAKAGE, reason, found)
    matches = identity_matches(np.stack(vectors), reference, threshold)
    hit_ids = {ids[i] for i, _, _ in matches}
    return _outcome(
        IDENTITY_LEAKAGE,
        passed=not matches,
        description=(
            f"none of {len(ids)} embedded faces matches the {len(reference)} protected faces "
            f"(distance < {threshold})"
            if not matches
            else f"{len(hit_ids)} inventory faces match a protected identity"
        ),
        metadata={
            "faces_embedded": len(ids),
            "faces_without_embedding": len(faces) - len(ids),
            "reference_faces": len(reference),
            "threshold": threshold,
            "matches": [
                {"face": ids[i], "reference": reference_names[j], "distance": round(d, 4)}
                for i, j, d in matches[:SAMPLE]
            ],
            "reference_skipped": protected.skipped,
        },
        buckets=bucket_keys(faces[faces["id"].isin(hit_ids)]),
    )


def freshness(
    faces: pd.DataFrame, levels: dict[str, int], targets: dict[str, int], window: timedelta,
    now: datetime,
) -> CheckOutcome:  # fmt: skip
    """Every bucket below target has had a face added within `window`."""
    newest = {}
    if len(faces):
        created = pd.to_datetime(faces["created_at"], utc=True)
        keys = faces["gender"] + "/" + faces["age_group"]
        newest = created.groupby(keys).max().to_dict()
    stale = {}
    for key, target in targets.items():
        if levels.get(key, 0) >= target:
            continue
        last = newest.get(key)
        if last is None or now - last.to_pydatetime() > window:
            stale[key] = last.isoformat() if last is not None else "never"
    return _outcome(
        FACE_FRESHNESS,
        passed=not stale,
        description=(
            f"every bucket below target was refilled within {window}"
            if not stale
            else f"{len(stale)} bucket(s) below target not refilled within {window}: "
            + ", ".join(sorted(stale))
        ),
        metadata={
            "window_hours": window.total_seconds() / 3600,
            "stale": stale,
            "below_target": sorted(k for k, t in targets.items() if levels.get(k, 0) < t),
        },
        buckets=sorted(stale),
    )
