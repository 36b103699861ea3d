"""Plain helpers that several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore


def local_or_s3_store(
    request: pytest.FixtureRequest, tmp_path: Path, **s3_options: Any
) -> ObjectStore:
    """The object store for a `store` fixture with params=["local", "s3"]: a local directory, or a
    new bucket on moto's S3 server with fake AWS credentials (`s3_options` go to S3ObjectStore)."""
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
    from tests.conftest import REGION, make_bucket

    request.getfixturevalue("aws_credentials")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3ObjectStore(
        make_bucket(endpoint), endpoint_url=endpoint, region_name=REGION, **s3_options
    )
