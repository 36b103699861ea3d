"""The object store going away mid-packaging: the run fails naming the store, the request is
failed (not stuck), its reserved faces go back to the inventory, and once the store is back a
retry delivers. The fault is real: the store is moto's S3 server reached through a TCP relay
on loopback that the test cuts and restores; on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from synth_pipelines.core.delivery.packaging import Ready
from synth_pipelines.core.delivery.requests import get_request, retry_request
from synth_pipelines.core.faces.inventory import inventory_levels
from synth_pipelines.core.storage.s3_object_store import S3ObjectStore
from tests.conftest import REGION, make_bucket
from tests.faults import Relay
from tests.helpers import request as new_request
from tests.test_packaging import package, stock


@pytest.fixture
def relayed_store(aws_credentials, moto_endpoint) -> Iterator[tuple[S3ObjectStore, Relay]]:
    where = urlsplit(moto_endpoint)
    relay = Relay((where.hostname, where.port))
    store = S3ObjectStore(
        make_bucket(moto_endpoint), endpoint_url=f"http://127.0.0.1:{relay.port}",
        region_name=REGION,
    )  # fmt: skip
    yield store, relay
    relay.cut()


def test_an_unreachable_store_fails_the_run_naming_it_and_releases_the_faces(
    factory_db, relayed_store
) -> None:
    store, relay = relayed_store
    stock(factory_db, store, "female/adult", 3)
    request_id = new_request(factory_db, {"female/adult": 2}, image_size=64)

    relay.cut()
    with pytest.raises(Exception) as caught:
        package(factory_db, store, request_id)
    named = f"127.0.0.1:{relay.port}"
    assert named in str(caught.value), caught.value  # which store
    assert any("released 2 faces" in note for note in caught.value.__notes__)
    failed = get_request(factory_db, request_id)
    assert failed.status == "failed" and named in failed.error
    assert inventory_levels(factory_db)["female/adult"] == 3  # nothing held, nothing lost

    relay.restore()
    retry_request(factory_db, request_id)
    outcome = package(factory_db, store, request_id, "run-2")
    assert isinstance(outcome, Ready) and outcome.faces == 2
    assert inventory_levels(factory_db)["female/adult"] == 1
