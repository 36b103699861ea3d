"""Shared fixtures: isolated SYNTH_HOME, the factory DB on SQLite and on PostgreSQL, settings, a
Dagster instance, object stores (local; moto's S3 server), the fake OpenAI server, and the
module-scoped classifier, embedder and astronaut photo. Plain helpers are in tests/helpers.py.

`settings` is Settings.from_env() on `database_url` plus the module's `settings_env` (a fixture a
module overrides with its SYNTH_* values); `db` is the factory DB it names, migrated.

PostgreSQL tests use the server at SYNTH_TEST_PG (default 127.0.0.1:5432, database `test`): one
uniquely named database per test session, one schema per test, all dropped afterwards. Where no
server answers they are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import dagster as dg
    from PIL import Image

    from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier
    from synth_pipelines.core.privacy.identity import FaceEmbedder
    from synth_pipelines.core.storage.database import FactoryDatabase
    from synth_pipelines.core.storage.object_store import LocalObjectStore
    from synth_pipelines.settings import Settings
    from tests.openai_server import FakeOpenAI

# No test reaches the Hugging Face Hub: every model is built offline or ships with a package. Set
# here, once, before pytest imports any test module (and with it huggingface_hub).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REGION = "us-east-1"
PG_SERVER = os.environ.get("SYNTH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _pg_admin_connect(database: str = "test"):
    import psycopg

    dsn = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + f"/{database}"
    return psycopg.connect(dsn, autocommit=True, connect_timeout=3)


@pytest.fixture(autouse=True)
def _close_factory_connections() -> Iterator[None]:
    """After each test, close the pooled connections of every factory DB it opened (an API app,
    a run's resource, a test's own): left to the garbage collector they pile up past the
    PostgreSQL server's 100 connections over a session."""
    yield
    from synth_pipelines.core.storage.database import FactoryDatabase

    FactoryDatabase.dispose_all()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its SQLAlchemy URL."""
    try:
        admin = _pg_admin_connect()
    except Exception as exc:  # any connection failure means: no server here
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}/test: {exc}")
    name = f"synth_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with _pg_admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """The factory DB URL, once on SQLite and once on PostgreSQL (own schema per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'factory.db'}"
    base = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    import psycopg

    with psycopg.connect(
        base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def factory_db(database_url: str):
    from synth_pipelines.core.storage.database import FactoryDatabase

    db = FactoryDatabase(database_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def synth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated SYNTH_HOME (and DAGSTER_HOME inside it) with no SYNTH_* leaking in."""
    for key in list(os.environ):
        if key.startswith("SYNTH_") and key != "SYNTH_TEST_PG":
            monkeypatch.delenv(key)
    home = tmp_path / "synth_home"
    (home / "dagster").mkdir(parents=True)
    monkeypatch.setenv("SYNTH_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


@pytest.fixture
def settings_env() -> dict[str, str]:
    """The SYNTH_* variables `settings` sets besides SYNTH_DATABASE_URL; a module overrides this
    fixture to choose its own (it may request other fixtures, e.g. `database_url`)."""
    return {}


@pytest.fixture
def settings(synth_home, database_url, settings_env, monkeypatch) -> Settings:
    """Settings.from_env() in the isolated home, on the factory DB (SQLite, then PostgreSQL), with
    the module's `settings_env`."""
    from synth_pipelines.settings import Settings

    monkeypatch.setenv("SYNTH_DATABASE_URL", database_url)
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


@pytest.fixture
def db(settings) -> Iterator[FactoryDatabase]:
    """The factory DB that `settings` names, migrated."""
    from synth_pipelines.core.storage.database import FactoryDatabase

    database = FactoryDatabase(settings.database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A temporary Dagster instance for one test (dg.instance_for_test)."""
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    """A local object store under tmp_path. A module that runs on S3 too overrides it with a
    params=["local", "s3"] fixture built by tests.helpers.local_or_s3_store."""
    from synth_pipelines.core.storage.object_store import LocalObjectStore

    return LocalObjectStore(tmp_path / "store")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a real HTTP endpoint), for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, and no ~/.aws files, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """tests/openai_server.py's OpenAI-compatible server on 127.0.0.1, for one test."""
    from tests.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def classifier() -> AgeAndGenderClassifier:
    """The default face attribute classifier, loaded once per module."""
    from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier

    return AgeAndGenderClassifier()


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    """dlib's face embedder with its models loaded, once per module."""
    from synth_pipelines.core.privacy.identity import FaceEmbedder

    return FaceEmbedder().load()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    """scikit-image's astronaut (the one real face photo that ships offline), as a PIL image."""
    from tests import face_photos

    return face_photos.astronaut()


def make_bucket(endpoint: str) -> str:
    """A new, uniquely named bucket on the S3 endpoint."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=name)
    return name
