"""Tabular jobs end to end: draft → edit → confirm → tabular_job_sensor → tabular_dataset run on a
real Dagster instance → Parquet/CSV in the store, progress in the factory DB, schema checks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from synth_pipelines.api.app import create_app
from synth_pipelines.api.server import running_server
from synth_pipelines.cli import app as cli
from synth_pipelines.core.checks.names import (
    TABULAR_ACCEPTED_CATEGORIES,
    TABULAR_NOT_NULL,
    TABULAR_PATTERN,
    TABULAR_RANGES,
    TABULAR_UNIQUE,
)
from synth_pipelines.core.clock import utcnow
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.storage.models import TabularJob
from synth_pipelines.core.tabular.jobs import (
    JobParams,
    confirm_job,
    create_job,
    effective_status,
    get_job,
    start_job,
)
from synth_pipelines.core.tabular.schema import TableSchema
from synth_pipelines.definitions import build_definitions
from synth_pipelines.in_process import run_tabular_jobs_in_process
from synth_pipelines.lines.tabular.sensors import TABULAR_JOB
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import Settings
from tests.helpers import local_or_s3_store
from tests.launchpad import launchpad_fields, step_failure

SYNTHAIX = "Generate 10k financial transactions with user ID, amount, currency, and timestamp"


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {
        "SYNTH_TABULAR_EMBEDDER": "hashing",  # MiniLM is tested in test_dedup
        "SYNTH_TABULAR_MAX_ROWS": "100000",
        "SYNTH_TABULAR_WORKERS": "1",
    }


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def params(total_rows: int, chunk_size: int, **overrides) -> JobParams:
    values = {"max_workers": 1, "dedup_threshold": 0.85, "seed": 7} | overrides
    return JobParams(total_rows=total_rows, chunk_size=chunk_size, **values)


def read_output(settings: Settings, key: str):
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    with store.open_reader(key) as reader:
        import io

        return pq.read_table(io.BytesIO(reader.read()))


SMALL = {
    "name": "orders",
    "columns": [
        {"name": "order_id", "type": "integer", "semantic_type": "id", "unique": True},
        {"name": "customer", "type": "string", "semantic_type": "full_name"},
        {"name": "email", "type": "string", "semantic_type": "email", "depends_on": "customer"},
        {"name": "amount", "type": "float", "min": 1, "max": 500, "decimals": 2, "currency": "EUR"},
        {"name": "status", "type": "category", "categories": ["new", "paid", "shipped"]},
        {"name": "code", "type": "string", "pattern": "ORD-[0-9]{6}"},
        {"name": "note", "type": "string", "semantic_type": "sentence", "nullable": 0.2},
    ],
    "warnings": ["not read: 'gift-wrapped on Fridays'"],
}


def test_a_confirmed_job_runs_through_the_sensor_into_parquet_and_csv(
    settings, db, instance
) -> None:
    defs = build_definitions(settings)
    job = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    # A draft is never run.
    runs, cursor = run_tabular_jobs_in_process(defs, instance)
    assert runs == []
    confirm_job(db, job.id, params(2_500, 1_000))
    runs, cursor = run_tabular_jobs_in_process(defs, instance, cursor)
    assert [run.success for run in runs] == [True]
    # The cursor remembers the attempt: the next tick asks for nothing.
    assert run_tabular_jobs_in_process(defs, instance, cursor)[0] == []

    done = get_job(db, job.id)
    assert done.status == "completed"
    assert done.completed_chunks == done.total_chunks >= 3
    assert done.rows_generated >= 2_500
    table = read_output(settings, done.outputs["parquet"])
    assert table.num_rows == 2_500
    assert table.column_names == [c["name"] for c in SMALL["columns"]]
    assert pc.count_distinct(table["order_id"]).as_py() == 2_500
    assert pc.min(table["amount"]).as_py() >= 1 and pc.max(table["amount"]).as_py() <= 500
    assert set(table["status"].to_pylist()) <= {"new", "paid", "shipped"}
    assert all(code.startswith("ORD-") and len(code) == 10 for code in table["code"].to_pylist())
    assert 0.1 < table["note"].null_count / 2_500 < 0.3
    store = ObjectStoreResource(backend="local", root=str(settings.store.root)).get_store()
    with store.open_reader(done.outputs["csv"]) as reader:
        csv = pacsv.read_csv(reader)
    assert csv.num_rows == 2_500

    materialization = instance.get_latest_materialization_event(
        dg.AssetKey("tabular_dataset")
    ).asset_materialization
    metadata = materialization.metadata
    assert materialization.partition == job.id
    assert metadata["rows"].value == 2_500
    assert "order_id" in metadata["preview"].value
    assert {c.name for c in metadata["dagster/column_schema"].schema.columns} >= {"order_id"}
    assert metadata["draft_warnings"].value == ["not read: 'gift-wrapped on Fridays'"]
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("tabular_dataset"), TABULAR_UNIQUE), limit=1
    )
    assert checks and checks[0].status.value == "SUCCEEDED"


def launch(defs, instance, job_id: str, config: dict | None = None) -> dg.ExecuteInProcessResult:
    """One tabular_dataset run of `job_id`, as the launchpad starts it with `config`."""
    instance.add_dynamic_partitions("tabular_jobs", [job_id])
    return defs.resolve_job_def(TABULAR_JOB).execute_in_process(
        partition_key=job_id,
        instance=instance,
        run_config={"ops": {"tabular_dataset": {"config": config or {}}}},
        raise_on_error=False,
    )


def run_metadata(run: dg.ExecuteInProcessResult) -> dict:
    (event,) = run.get_asset_materialization_events()
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def test_run_config_overrides_the_confirmed_rows_chunks_and_threshold(
    settings, db, instance
) -> None:
    defs = build_definitions(settings)
    fields = launchpad_fields(defs, "tabular_dataset")
    assert {name: fields[name].is_required for name in fields} == {
        "total_rows": False,
        "chunk_size": False,
        "dedup_threshold": False,
    }
    assert "SYNTH_TABULAR_CHUNK_SIZE=100000" in fields["chunk_size"].description
    job = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    confirm_job(db, job.id, params(2_500, 1_000))

    # Out of range: the run fails before it touches the job, naming the field and bound.
    too_many = launch(defs, instance, job.id, {"total_rows": 200_000})
    assert not too_many.success
    assert "total_rows" in step_failure(too_many)
    assert "less than or equal to 100000" in step_failure(too_many)
    assert get_job(db, job.id).status == "confirmed"

    override = {"total_rows": 600, "chunk_size": 200, "dedup_threshold": 1.0}
    run = launch(defs, instance, job.id, override)
    assert run.success
    done = get_job(db, job.id)
    assert (done.status, done.total_chunks) == ("completed", 3)
    assert read_output(settings, done.outputs["parquet"]).num_rows == 600
    assert run_metadata(run)["run_config_overrides"] == override

    # No run config: the job's confirmed params.
    plain = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    confirm_job(db, plain.id, params(300, 100))
    run = launch(defs, instance, plain.id)
    assert run.success and run_metadata(run)["run_config_overrides"] == {}
    done = get_job(db, plain.id)
    assert (done.total_chunks, read_output(settings, done.outputs["parquet"]).num_rows) == (3, 300)

    # Overrides of a draft: refused, the draft left as it was.
    draft = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    refused = launch(defs, instance, draft.id, {"total_rows": 10})
    assert not refused.success and "not confirmed" in step_failure(refused)
    assert get_job(db, draft.id).status == "draft"


def test_dedup_tops_up_to_the_requested_count(settings, db, instance) -> None:
    # 3 categories x 2 booleans: 6 distinct rows at most; chunks of 4 repeat rows, the job tops
    # up with further chunks until it has 6.
    schema = {
        "columns": [
            {"name": "tier", "type": "category", "categories": ["a", "b", "c"]},
            {"name": "active", "type": "boolean"},
        ]
    }
    defs = build_definitions(settings)
    job = create_job(db, "tiers", TableSchema.parse(schema), "offline")
    confirm_job(db, job.id, params(6, 4))
    (run,), _ = run_tabular_jobs_in_process(defs, instance)
    assert run.success
    done = get_job(db, job.id)
    assert done.rows_deduplicated > 0
    assert done.rows_generated == 6 + done.rows_deduplicated
    rows = read_output(settings, done.outputs["parquet"]).to_pylist()
    assert sorted((row["tier"], row["active"]) for row in rows) == sorted(
        (tier, active) for tier in "abc" for active in (False, True)
    )


def test_an_impossible_job_fails_clearly_and_can_be_retried(settings, db, instance) -> None:
    schema = {"columns": [{"name": "flag", "type": "boolean"}]}
    defs = build_definitions(settings)
    job = create_job(db, "flags", TableSchema.parse(schema), "offline")
    confirm_job(db, job.id, params(3, 2))  # only 2 distinct rows exist
    (run,), cursor = run_tabular_jobs_in_process(defs, instance, raise_on_error=False)
    assert not run.success
    failed = get_job(db, job.id)
    assert failed.status == "failed"
    assert "only 2 distinct rows of 3" in failed.error
    assert failed.outputs is None

    client = TestClient(create_app(settings))
    assert client.get(f"/tabular/jobs/{job.id}/download").status_code == 409
    assert client.post(f"/tabular/jobs/{job.id}/retry").json()["status"] == "confirmed"
    (rerun,), _ = run_tabular_jobs_in_process(defs, instance, cursor, raise_on_error=False)
    assert not rerun.success and get_job(db, job.id).attempts == 2


def test_full_flow_over_http_and_the_cli(settings, db, instance, tmp_path: Path) -> None:
    defs = build_definitions(settings)
    runner = CliRunner()
    with running_server(create_app(settings)) as url:
        drafted = runner.invoke(cli, ["tabular", "draft", SYNTHAIX, "--api", url])
        assert drafted.exit_code == 0, drafted.output
        job_id = drafted.output.split("job ")[1].split()[0]
        schema = get_job(db, job_id).schema_json
        assert schema["rows"] == 10_000
        assert [c["name"] for c in schema["columns"]] == [
            "user_id", "amount", "currency", "timestamp",
        ]  # fmt: skip
        assert "confirm" in drafted.output and "user_id" in drafted.output

        # The schema the draft suggests editing: exported, changed, sent back.
        shown = runner.invoke(cli, ["tabular", "show", job_id, "--json", "--api", url])
        assert shown.exit_code == 0, shown.output
        exported = json.loads(shown.output)
        assert exported == schema
        exported["columns"][1]["max"] = 250
        edited_file = tmp_path / "schema.json"
        edited_file.write_text(json.dumps(exported))
        edited = runner.invoke(cli, ["tabular", "edit", job_id, str(edited_file), "--api", url])
        assert edited.exit_code == 0, edited.output
        assert get_job(db, job_id).schema_json["columns"][1]["max"] == 250
        table_view = runner.invoke(cli, ["tabular", "show", job_id, "--api", url])
        assert table_view.exit_code == 0 and "is draft" in table_view.output
        missing = runner.invoke(cli, ["tabular", "show", "no-such-job", "--api", url])
        assert missing.exit_code != 0 and "no-such-job" in missing.output

        confirmed = runner.invoke(
            cli, ["tabular", "confirm", job_id, "--rows", "3000", "--chunk-size", "1000",
                  "--api", url],
        )  # fmt: skip
        assert confirmed.exit_code == 0, confirmed.output
        (run,), _ = run_tabular_jobs_in_process(defs, instance)
        assert run.success

        out = tmp_path / "out"
        status = runner.invoke(
            cli, ["tabular", "status", job_id, "--out", str(out), "--format", "csv", "--api", url]
        )
        assert status.exit_code == 0, status.output
        assert "completed: 100.0%" in status.output
        assert pacsv.read_csv(out / f"{job_id}.csv").num_rows == 3_000

        import httpx

        with httpx.Client(base_url=url) as http:
            view = http.get(f"/tabular/jobs/{job_id}").json()
            assert view["status"] == "completed" and view["progress_percentage"] == 100
            assert view["download_url"].endswith("format=parquet")
            body = http.get(view["download_url"]).content
        table = pq.read_table(pa_buffer(body))
        assert table.num_rows == 3_000
        assert pc.min(table["amount"]).as_py() > 0

        # Errors reach the terminal with a message and a non-zero exit code.
        bad = runner.invoke(cli, ["tabular", "confirm", job_id, "--rows", "5", "--api", url])
        assert bad.exit_code != 0 and "not a draft" in bad.output


def pa_buffer(body: bytes):
    import pyarrow as pa

    return pa.BufferReader(body)


def test_schema_edits_and_confirmation_errors_name_what_is_wrong(client) -> None:
    job = client.post("/tabular/jobs", json={"prompt": SYNTHAIX}).json()
    assert job["status"] == "draft" and job["drafter"] == "offline"
    jid = job["id"]
    # Generation never starts unconfirmed.
    assert client.post(f"/tabular/jobs/{jid}/generate").status_code == 409
    assert client.get(f"/tabular/jobs/{jid}/download").status_code == 409

    bad_type = {"columns": [{"name": "amount", "type": "money"}]}
    response = client.put(f"/tabular/jobs/{jid}/schema", json=bad_type)
    assert response.status_code == 422
    assert "amount" in response.json()["detail"] and "money" in response.json()["detail"]
    min_max = {"columns": [{"name": "age", "type": "integer", "min": 9, "max": 1}]}
    response = client.put(f"/tabular/jobs/{jid}/schema", json=min_max)
    assert response.status_code == 422 and "age" in response.json()["detail"]

    edited = dict(job["schema"])
    edited["columns"] = [*edited["columns"], {"name": "is_refund", "type": "boolean"}]
    assert client.put(f"/tabular/jobs/{jid}/schema", json=edited).status_code == 200

    for body, field in [
        ({"total_rows": 10**9}, "total_rows"),
        ({"total_rows": 10, "chunk_size": 0}, "chunk_size"),
        ({"total_rows": 10, "dedup_threshold": 1.5}, "dedup_threshold"),
    ]:
        response = client.post(f"/tabular/jobs/{jid}/confirm", json=body)
        assert response.status_code == 422, body
        assert response.json()["field"] == field

    unique_bool = {"columns": [{"name": "flag", "type": "boolean", "unique": True}]}
    assert client.put(f"/tabular/jobs/{jid}/schema", json=unique_bool).status_code == 200
    response = client.post(f"/tabular/jobs/{jid}/confirm", json={"total_rows": 10})
    assert response.status_code == 422 and "flag" in response.json()["detail"]

    assert client.put(f"/tabular/jobs/{jid}/schema", json=edited).status_code == 200
    confirmed = client.post(f"/tabular/jobs/{jid}/confirm", json={"total_rows": 50})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert client.put(f"/tabular/jobs/{jid}/schema", json=edited).status_code == 409
    assert client.post(f"/tabular/jobs/{jid}/generate").status_code == 202


ORDERS = (
    "an e-commerce orders table: order id, customer email, total price in EUR, shipping country, "
    "order status pending/shipped/delivered/returned. Ship most of them on Mondays."
)


def test_a_draft_lists_what_it_did_not_read_over_http_and_the_cli(client, settings) -> None:
    job = client.post("/tabular/jobs", json={"prompt": ORDERS}).json()
    schema = job["schema"]
    assert schema["warnings"] == ["not read: 'Ship most of them on Mondays.'"]
    price = next(c for c in schema["columns"] if c["name"] == "total_price")
    assert price["currency"] == "EUR" and price["min"] > 0
    # The draft goes back as it came (currency, unit and warnings are schema fields) …
    assert client.put(f"/tabular/jobs/{job['id']}/schema", json=schema).status_code == 200
    # … and a currency on a text column is named.
    schema["columns"][1]["currency"] = "EUR"
    response = client.put(f"/tabular/jobs/{job['id']}/schema", json=schema)
    assert response.status_code == 422 and "customer_email" in response.json()["detail"]
    # A schema from before warnings existed still reads.
    legacy = {"columns": [{"name": "id", "type": "integer"}]}
    assert client.put(f"/tabular/jobs/{job['id']}/schema", json=legacy).status_code == 200

    runner = CliRunner()
    with running_server(create_app(settings)) as url:
        drafted = runner.invoke(cli, ["tabular", "draft", ORDERS, "--api", url])
        assert drafted.exit_code == 0, drafted.output
        assert "warning: not read: 'Ship most of them on Mondays.'" in drafted.output
        job_id = drafted.output.split("job ")[1].split()[0]
        shown = runner.invoke(cli, ["tabular", "show", job_id, "--api", url])
        assert "Ship most of them on Mondays" in shown.output and "EUR" in shown.output


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("make me something nice", "column"),
    ],
)
def test_prompts_without_a_table_are_422(client, prompt, words) -> None:
    response = client.post("/tabular/jobs", json={"prompt": prompt})
    assert response.status_code == 422
    assert response.json()["field"] == "prompt"
    assert words in response.json()["detail"].lower()


def test_unknown_jobs_are_404(client) -> None:
    assert client.get("/tabular/jobs/nope").status_code == 404
    assert client.post("/tabular/jobs/nope/confirm", json={"total_rows": 1}).status_code == 404
    assert client.get("/tabular/jobs/nope/download?format=csv").status_code == 404


def test_schema_checks_catch_bad_data(tmp_path) -> None:
    import pyarrow as pa

    from synth_pipelines.core.checks.tabular_schema import schema_checks

    schema = TableSchema.parse(SMALL)
    good = {
        "order_id": [1, 2, 2],
        "customer": ["A B", "C D", None],
        "email": ["a@x.io", "c@x.io", "e@x.io"],
        "amount": [1.0, 900.0, 5.0],
        "status": ["new", "lost", "paid"],
        "code": ["ORD-000001", "ORD-12", "ORD-000003"],
        "note": [None, "x", "y"],
    }
    outcomes = {o.name: o for o in schema_checks(schema, pa.table(good))}
    failures = {name: o.metadata["failures"] for name, o in outcomes.items()}
    assert failures[TABULAR_UNIQUE]["order_id"]["unexpected_count"] == 1
    assert failures[TABULAR_NOT_NULL]["customer"]["unexpected_count"] == 1
    assert failures[TABULAR_RANGES]["amount"]["sample"] == ["900.0"]
    assert failures[TABULAR_ACCEPTED_CATEGORIES]["status"]["sample"] == ["lost"]
    assert failures[TABULAR_PATTERN]["code"]["sample"] == ["ORD-12"]
    assert "note" not in outcomes[TABULAR_NOT_NULL].metadata["columns_checked"]  # nullable
    assert not outcomes[TABULAR_UNIQUE].passed and outcomes[TABULAR_UNIQUE].blocking
    assert not outcomes[TABULAR_PATTERN].passed and not outcomes[TABULAR_PATTERN].blocking
    json.dumps([o.metadata for o in outcomes.values()])  # metadata must serialise


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path):
    return local_or_s3_store(request, tmp_path)


def test_runner_streams_both_files_into_the_store_or_neither(store) -> None:
    import io

    from synth_pipelines.core.errors import InvalidInputError
    from synth_pipelines.core.tabular.runner import run_tabular_job

    result = run_tabular_job(
        TableSchema.parse(SMALL), params(300_000, 100_000), store=store, key_prefix="t/ok"
    )
    assert result.rows == 300_000 and result.table.num_rows == 300_000
    with store.open_reader(result.outputs["parquet"]) as reader:
        assert pq.read_table(io.BytesIO(reader.read())).num_rows == 300_000
    with store.open_reader(result.outputs["csv"]) as reader:
        assert pacsv.read_csv(io.BytesIO(reader.read())).num_rows == 300_000
    assert result.stats["order_id"]["distinct"] == 300_000
    assert len(result.preview) == 10

    impossible = TableSchema.parse({"columns": [{"name": "flag", "type": "boolean"}]})
    with pytest.raises(InvalidInputError, match="only 2 distinct rows of 3"):
        run_tabular_job(impossible, params(3, 2), store=store, key_prefix="t/bad")
    assert list(store.list_keys("t/bad")) == []


def test_a_killed_run_lapses_its_lease_and_the_job_can_be_retried(settings, db, client) -> None:
    job = create_job(db, "orders", TableSchema.parse(SMALL), "offline")
    confirm_job(db, job.id, params(10, 10))
    start_job(db, job.id, "run-that-will-die", lease_seconds=600)
    # A second run for the same job while the first holds its lease is refused, and a live
    # job is not retried.
    with pytest.raises(ConflictError, match="already running"):
        start_job(db, job.id, "duplicate-run")
    assert client.post(f"/tabular/jobs/{job.id}/retry").status_code == 409
    assert effective_status(get_job(db, job.id), utcnow() + timedelta(seconds=601)) == "failed"

    # A killed process renews nothing: its lease runs out (moved into the past to see it now).
    with db.session() as session:
        session.get(TabularJob, job.id).lease_until = utcnow() - timedelta(seconds=1)
    view = client.get(f"/tabular/jobs/{job.id}").json()
    assert view["status"] == "failed" and "lease lapsed" in view["error"]
    assert client.post(f"/tabular/jobs/{job.id}/retry").json()["status"] == "confirmed"
