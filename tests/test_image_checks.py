"""Image quality, privacy and delivery checks on a real Dagster instance, factory DB and store:
each is shown passing on good data and failing, with the buckets it names, on broken data."""

from __future__ import annotations

import io
import struct
import zipfile

import dagster as dg
import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data
from sqlalchemy import select

from synth_pipelines.core.faces.buckets import Bucket
from synth_pipelines.core.privacy.identity import FaceEmbedder, decode_rgb
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest, Face
from synth_pipelines.dbt_like_checks.validation import VALIDATION_JOB
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import package_requests_in_process
from synth_pipelines.settings import Settings
from tests.helpers import refill, request

MALE_TEEN, FEMALE_ADULT = Bucket("male", "teen"), Bucket("female", "adult")


@pytest.fixture
def database_url(tmp_path) -> str:
    """These checks run on SQLite only: the SQLite URL of the conftest's `database_url`."""
    return f"sqlite:///{tmp_path / 'factory.db'}"


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"SYNTH_TARGET_PER_BUCKET": "3", "SYNTH_FACE_SIZE": "256"}


def validate(settings: Settings, instance) -> dict[str, dg.AssetCheckEvaluation]:
    defs = build_definitions(settings)
    result = defs.resolve_job_def(VALIDATION_JOB).execute_in_process(
        instance=instance, raise_on_error=False
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def faces(settings: Settings) -> list[Face]:
    with FactoryDatabase(settings.database_url).session() as session:
        rows = session.scalars(select(Face).order_by(Face.gender, Face.id)).all()
        session.expunge_all()
        return list(rows)


def test_face_and_dataset_checks_pass_then_catch_broken_data(
    settings, tmp_path, monkeypatch
) -> None:
    defs = build_definitions(settings)
    store = defs.resources["object_store"].get_store()
    db = FactoryDatabase(settings.database_url)
    with dg.instance_for_test() as instance:
        refill(defs, instance, MALE_TEEN, 3)
        refill(defs, instance, FEMALE_ADULT, 3)
        request(db, {"female/adult": 2, "male/teen": 1})
        runs, _ = package_requests_in_process(defs, instance)
        assert [run.success for run in runs] == [True]

        # broken bytes behind one face row that no dataset took
        delivered = {f.id for f in faces(settings) if f.status == "delivered"}
        broken = next(f for f in faces(settings) if f.gender == "female" and f.id not in delivered)
        store.put_bytes(broken.object_key, b"not a png at all")

        checks = validate(settings, instance)
        for name in (
            "objects_present",
            "near_duplicates",
            "file_hashes",
            "manifest_matches_request",
        ):
            assert checks[name].passed, (name, checks[name].description)
        quality = checks["image_quality"]
        assert not quality.passed and meta(quality)["buckets"] == ["female/adult"]
        assert meta(quality)["faces_scanned"] == 6 and meta(quality)["failing"] == 1
        assert broken.id in meta(quality)["failing_sample"]
        # no protected set: the leakage check compared nothing, and says so instead of passing
        unchecked = checks["identity_leakage"]
        assert not unchecked.passed and unchecked.severity == dg.AssetCheckSeverity.WARN
        assert meta(unchecked)["skipped"] is True
        assert meta(unchecked)["reference_configured"] is False
        # the eight buckets never filled are below target and stale; the two refilled are fresh
        stale = meta(checks["freshness"])["stale"]
        assert len(stale) == 8 and not {"female/adult", "male/teen"} & set(stale)
        assert "per_bucket" in meta(checks["label_agreement"])
        # simulator identities look alike to dlib: reported, as a warning
        identities = checks["distinct_identities"]
        assert identities.severity == dg.AssetCheckSeverity.WARN
        (rate,) = meta(identities)["per_dataset"].values()
        assert rate["faces"] == 3

        # privacy: a protected set holding one of the inventory's own faces must catch it
        # A reference photo counts only where dlib detects its face (~29 in 30 simulator faces):
        # plant one it detects.
        embedder = FaceEmbedder()
        leaked = next(
            f
            for f in faces(settings)
            if f.gender == "male"
            and embedder.embed(decode_rgb(store.get_bytes(f.object_key)), fallback_full_image=False)
            is not None
        )
        protected = tmp_path / "protected"
        protected.mkdir()
        (protected / "someone.png").write_bytes(store.get_bytes(leaked.object_key))
        Image.fromarray(skimage_data.astronaut()).save(protected / "astronaut.jpg")
        (protected / "notes.txt").write_text("not a photo")
        monkeypatch.setenv("SYNTH_PROTECTED_FACES_DIR", str(protected))
        checks = validate(Settings.from_env(), instance)
        privacy = checks["identity_leakage"]
        assert not privacy.passed and privacy.severity == dg.AssetCheckSeverity.ERROR
        details = meta(privacy)
        assert "male/teen" in details["buckets"]
        # the planted face matches at distance ~0 (other simulator faces may come close too:
        # dlib sees procedural faces as near one identity, and at 0.6 even a real photo can)
        closest = min(details["matches"], key=lambda m: m["distance"])
        assert closest["face"] == leaked.id and closest["distance"] < 1e-3
        assert closest["reference"] == "someone.png"
        assert "notes.txt" in details["reference_skipped"]

        # presence: a deleted object
        monkeypatch.delenv("SYNTH_PROTECTED_FACES_DIR")
        store.delete(broken.object_key)
        checks = validate(Settings.from_env(), instance)
        assert not checks["objects_present"].passed
        assert meta(checks["objects_present"])["buckets"] == ["female/adult"]
        # the archive still verifies: it holds copies of the faces
        assert checks["file_hashes"].passed

        # tampering with a delivered archive fails its hash check
        with FactoryDatabase(settings.database_url).session() as session:
            archive_key = session.scalars(select(DatasetRequest.archive_key)).one()
        blob = bytearray(store.get_bytes(archive_key))
        # one byte in the middle of a face image's data: a byte of a zip header (a local
        # header's timestamp, say) is not part of any file, and would rightly still verify
        with zipfile.ZipFile(io.BytesIO(blob)) as bundle:
            image = next(i for i in bundle.infolist() if i.filename.endswith(".png"))
        name_len, extra_len = struct.unpack_from("<HH", blob, image.header_offset + 26)
        start = image.header_offset + 30 + name_len + extra_len
        blob[start + image.compress_size // 2] ^= 0xFF
        store.put_bytes(archive_key, bytes(blob))
        checks = validate(Settings.from_env(), instance)
        hashes = checks["file_hashes"]
        assert not hashes.passed
        assert meta(hashes)["buckets"] == ["female/adult", "male/teen"]
        assert list(meta(hashes)["failing"]) == [runs[0].dagster_run.tags["dagster/partition"]]


def test_distinct_identities_catches_one_person_twice(tmp_path) -> None:
    from synth_pipelines.core.checks.datasets import Delivered, distinct_identities
    from synth_pipelines.core.privacy.identity import FaceEmbedder
    from synth_pipelines.core.storage.models import FaceScan

    embedder = FaceEmbedder()
    photo = skimage_data.astronaut()
    smaller = np.asarray(Image.fromarray(photo).resize((400, 400)))
    coffee = skimage_data.coffee()  # no face: the full-image fallback, far from anyone
    vectors = {"a": embedder.embed(photo), "b": embedder.embed(smaller)}
    other = embedder.embed(np.asarray(Image.fromarray(coffee).resize((256, 256))))
    scans = {k: FaceScan(face_id=k, embedding=v.tobytes()) for k, v in vectors.items()}
    scans["c"] = FaceScan(face_id="c", embedding=other.tobytes())

    def dataset(ids: list[str]) -> Delivered:
        request = DatasetRequest(id="-".join(ids), spec={"buckets": {"female/adult": len(ids)}})
        return Delivered(request, {"seeds": dict.fromkeys(ids, 0)}, None, [])

    twice = distinct_identities([dataset(["a", "b"])], scans, 0.6, 0.05)
    assert not twice.passed and twice.buckets == ["female/adult"]
    assert twice.metadata["per_dataset"]["a-b"]["rate"] == 1.0
    apart = distinct_identities([dataset(["a", "c"])], scans, 0.6, 0.05)
    assert apart.passed and apart.metadata["per_dataset"]["a-c"]["pairs"] == 0
