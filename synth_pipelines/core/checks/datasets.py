"""Checks on delivered datasets: the archive's manifest against the request, every file against
its sha256, the classifier's view of the faces against the requested balance, and distinct
identities within one dataset. With no ready dataset (or none a check can measure) a check is
skipped with that reason, never passed."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipelines.core.checks.faces import embedding_of
from synth_pipelines.core.checks.names import (
    DISTINCT_IDENTITIES,
    FILE_HASHES,
    LABEL_BALANCE,
    MANIFEST_MATCHES_REQUEST,
)
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome
from synth_pipelines.core.delivery.spec import request_spec
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.errors import ArchiveIntegrityError, StorageError
from synth_pipelines.core.privacy.identity import same_identity_pairs
from synth_pipelines.core.storage.models import DatasetRequest, FaceScan
from synth_pipelines.core.storage.object_store import ObjectStore

SEVERITY = {
    FILE_HASHES: ERROR,
    MANIFEST_MATCHES_REQUEST: ERROR,
    LABEL_BALANCE: WARN,  # the classifier's view of the faces, not a reason to stop delivery
    DISTINCT_IDENTITIES: ERROR,  # the caller may lower it: see distinct_identities
}
NO_DATASETS = "no ready dataset to verify"


@dataclass
class Delivered:
    """One ready dataset as the checks see it: its request and what its archive holds."""

    request: DatasetRequest
    manifest: dict[str, Any] | None  # None when the archive failed verification
    error: str | None  # why the archive does not verify
    labels: list[dict[str, Any]]  # metadata.jsonl rows (zip archives)

    @property
    def requested(self) -> dict[str, int]:
        """Faces per bucket the request asked for."""
        return request_spec(self.request).buckets

    @property
    def buckets(self) -> list[str]:
        return sorted(self.requested)

    @property
    def face_ids(self) -> list[str]:
        return list((self.manifest or {}).get("seeds", {}))


def read_delivered(store: ObjectStore, request: DatasetRequest, workdir: Path) -> Delivered:
    """Fetch `request`'s archive and verify it against its manifest (sha256 of every file)."""
    path = workdir / Path(request.archive_key or "missing").name
    try:
        with store.open_reader(request.archive_key or "") as source, path.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        manifest = verify_archive(path)
    except (ArchiveIntegrityError, StorageError) as exc:
        return Delivered(request, None, str(exc), [])
    labels = []
    if manifest.get("format") == "zip":
        with zipfile.ZipFile(path) as bundle:
            labels = [json.loads(line) for line in bundle.read("metadata.jsonl").splitlines()]
    path.unlink(missing_ok=True)
    return Delivered(request, manifest, None, labels)


def read_all(store: ObjectStore, requests: list[DatasetRequest]) -> list[Delivered]:
    with tempfile.TemporaryDirectory(prefix="synth-check-") as workdir:
        return [read_delivered(store, request, Path(workdir)) for request in requests]


def _buckets_of(datasets: list[Delivered]) -> list[str]:
    return sorted({bucket for d in datasets for bucket in d.buckets})


def file_hashes(datasets: list[Delivered]) -> CheckOutcome:
    if not datasets:
        return CheckOutcome.skip(FILE_HASHES, NO_DATASETS, {"datasets": 0})
    bad = [d for d in datasets if d.error]
    return CheckOutcome(
        FILE_HASHES,
        severity=SEVERITY[FILE_HASHES],
        passed=not bad,
        description=(
            f"{len(datasets)} archive(s): every file matches its sha256"
            if not bad
            else f"{len(bad)} of {len(datasets)} archives fail verification: {bad[0].error}"
        ),
        metadata={
            "datasets": len(datasets),
            "failing": {d.request.id: d.error for d in bad},
        },
        buckets=_buckets_of(bad),
    )


def manifest_matches_request(datasets: list[Delivered]) -> CheckOutcome:
    readable = [d for d in datasets if d.manifest is not None]
    if not readable:  # an archive that does not verify is file_hashes' to report
        reason = NO_DATASETS if not datasets else "no ready archive verifies (see file_hashes)"
        return CheckOutcome.skip(MANIFEST_MATCHES_REQUEST, reason, {"datasets": len(datasets)})
    mismatched = {}
    for d in datasets:
        if d.manifest is None:
            continue
        counts = {k: v for k, v in d.manifest["counts"].items() if k != "total"}
        if counts != d.requested:
            mismatched[d.request.id] = {"manifest": counts, "request": d.requested}
    bad = [d for d in datasets if d.request.id in mismatched]
    return CheckOutcome(
        MANIFEST_MATCHES_REQUEST,
        severity=SEVERITY[MANIFEST_MATCHES_REQUEST],
        passed=not mismatched,
        description=(
            f"{len(readable)} manifest(s) count exactly what was requested"
            if not mismatched
            else f"{len(mismatched)} manifest(s) differ from their request"
        ),
        metadata={"datasets": len(datasets), "mismatched": mismatched},
        buckets=_buckets_of(bad),
    )


def label_balance(datasets: list[Delivered], tolerance: float) -> CheckOutcome:
    """Share of each gender as the classifier sees the delivered faces, against the request."""
    off, measured = {}, 0
    for d in datasets:
        detected = [row for row in d.labels if row.get("predicted_gender")]
        if not detected:
            continue
        measured += 1
        requested: Counter[str] = Counter()
        for bucket, count in d.requested.items():
            requested[bucket.split("/")[0]] += count
        total = sum(requested.values())
        seen = Counter(row["predicted_gender"] for row in detected)
        shares = {g: round(seen[g] / len(detected), 4) for g in sorted(set(requested) | set(seen))}
        if any(abs(shares.get(g, 0) - requested[g] / total) > tolerance for g in shares):
            off[d.request.id] = {
                "classifier": shares,
                "requested": {g: round(n / total, 4) for g, n in requested.items()},
            }
    if not measured:
        reason = (
            NO_DATASETS
            if not datasets
            else f"none of the {len(datasets)} ready datasets carries classifier labels"
        )
        return CheckOutcome.skip(LABEL_BALANCE, reason, {"datasets": len(datasets)})
    return CheckOutcome(
        LABEL_BALANCE,
        severity=SEVERITY[LABEL_BALANCE],
        passed=not off,
        description=(
            f"classifier gender shares within ±{tolerance:.0%} of every request"
            if not off
            else f"{len(off)} dataset(s) off their requested gender balance by > {tolerance:.0%}"
        ),
        metadata={
            "datasets": len(datasets),
            "datasets_measured": measured,
            "tolerance": tolerance,
            "off": off,
        },
        buckets=[],  # a warning about the classifier's view, not a reason to stop delivery
    )


def distinct_identities(
    datasets: list[Delivered],
    scans: dict[str, FaceScan],
    threshold: float,
    max_rate: float,
    severity: str = SEVERITY[DISTINCT_IDENTITIES],
) -> CheckOutcome:
    """Within each dataset, the share of faces that share an identity with another face.
    `severity`: WARN where the embeddings cannot tell the faces apart (procedural ones)."""
    rates, bad = {}, []
    for d in datasets:
        vectors = [embedding_of(scans.get(face_id)) for face_id in d.face_ids]
        vectors = [v for v in vectors if v is not None]
        if len(vectors) < 2:
            continue
        pairs = same_identity_pairs(np.stack(vectors), threshold)
        rate = len({i for p in pairs for i in p[:2]}) / len(vectors)
        rates[d.request.id] = {"faces": len(vectors), "pairs": len(pairs), "rate": round(rate, 4)}
        if rate > max_rate:
            bad.append(d)
    if not rates:
        reason = (
            NO_DATASETS
            if not datasets
            else f"none of the {len(datasets)} ready datasets has two faces with an embedding"
        )
        return CheckOutcome.skip(DISTINCT_IDENTITIES, reason, {"datasets": len(datasets)})
    return CheckOutcome(
        DISTINCT_IDENTITIES,
        severity=severity,
        passed=not bad,
        description=(
            f"same-identity share ≤ {max_rate:.0%} in every dataset"
            if not bad
            else f"{len(bad)} dataset(s) repeat identities beyond {max_rate:.0%}"
        ),
        metadata={"threshold": threshold, "max_rate": max_rate, "per_dataset": rates},
        buckets=_buckets_of(bad),
    )
