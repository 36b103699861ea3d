"""LLM schema drafting and the LLM row backend, over real HTTP through the `openai` client to an
OpenAI-compatible server started in-process (tests/openai_server.py)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
from openai import OpenAI

from synth_pipelines.core.errors import LLMError, LLMUnavailableError
from synth_pipelines.core.tabular.llm import (
    LLM,
    TokenBucket,
    draft,
    draft_schema_with_llm,
    fill_llm_columns,
    llm_columns,
    validate_value,
)
from synth_pipelines.core.tabular.schema import Column, TableSchema
from synth_pipelines.resources.llm import LLMResource
from tests.helpers import free_port
from tests.openai_server import Fail, FakeOpenAI, Garbage

MODEL = "test-model"

GOOD_SCHEMA = {
    "name": "financial_transactions",
    "rows": 10_000,
    "columns": [
        {"name": "user_id", "type": "integer", "semantic_type": "id", "min": 1, "max": 1000},
        {
            "name": "amount",
            "type": "float",
            "min": 0.01,
            "distribution": "lognormal",
            "decimals": 2,
        },
        {"name": "currency", "type": "string", "semantic_type": "currency_code"},
        {"name": "timestamp", "type": "datetime"},
    ],
}

REVIEWS = TableSchema.parse(
    {
        "name": "reviews",
        "columns": [
            {"name": "id", "type": "integer", "semantic_type": "id", "unique": True},
            {"name": "rating", "type": "integer", "min": 1, "max": 5},
            {"name": "review", "type": "string", "source": "llm"},
            {
                "name": "sentiment",
                "type": "category",
                "source": "llm",
                "categories": ["positive", "neutral", "negative"],
            },
            {"name": "code", "type": "string", "source": "llm", "pattern": r"R-\d{3}"},
        ],
    }
)


def client_for(server: FakeOpenAI, **options: Any) -> OpenAI:
    return OpenAI(
        base_url=server.base_url,
        api_key="test-key",
        max_retries=options.pop("max_retries", 0),
        timeout=options.pop("timeout", 5.0),
    )


def reviews_table(n: int) -> pa.Table:
    return pa.table({"id": list(range(1, n + 1)), "rating": [1 + i % 5 for i in range(n)]})


def row_request(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON document the row backend sends as the user message."""
    return json.loads(body["messages"][-1]["content"])


def good_rows(body: dict[str, Any]) -> dict[str, Any]:
    rows = row_request(body)["rows"]
    return {
        "rows": [
            {
                "review": f"Review of item {row['id']}: {row['rating']} stars.",
                "sentiment": "positive" if row["rating"] >= 4 else "negative",
                "code": f"R-{row['id']:03d}",
            }
            for row in rows
        ]
    }


# --- schema drafting ----------------------------------------------------------------------------


def test_draft_schema_structured_output(server: FakeOpenAI) -> None:
    server.reply(json.dumps(GOOD_SCHEMA))
    prompt = "Generate 10k financial transactions with user ID, amount, currency, and timestamp"
    schema = draft_schema_with_llm(client_for(server), model=MODEL, prompt=prompt)
    assert schema.rows == 10_000
    assert schema.column("currency").semantic_type == "currency_code"
    assert schema.description == prompt  # filled in when the model leaves it out
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == MODEL
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "table_schema"
    assert fmt["json_schema"]["schema"] == TableSchema.model_json_schema()
    assert request.messages[-1] == {"role": "user", "content": prompt}


def test_draft_schema_retries_with_the_error(server: FakeOpenAI) -> None:
    bad = {"name": "t", "columns": [{"name": "amount", "type": "money"}]}
    fenced = "```json\n" + json.dumps(GOOD_SCHEMA) + "\n```"  # a fence is tolerated
    server.reply(json.dumps(bad), fenced)
    schema = draft_schema_with_llm(client_for(server), model=MODEL, prompt="transactions")
    assert [c.name for c in schema.columns][:2] == ["user_id", "amount"]
    assert len(server.requests) == 2
    second = server.requests[1].messages
    assert second[-2] == {"role": "assistant", "content": json.dumps(bad)}
    assert "unknown type 'money'" in second[-1]["content"]
    assert "amount" in second[-1]["content"]


def test_draft_schema_invalid_json_then_valid(server: FakeOpenAI) -> None:
    server.reply("Sure! Here is your schema: {name: oops", json.dumps(GOOD_SCHEMA))
    schema = draft_schema_with_llm(client_for(server), model=MODEL, prompt="transactions")
    assert schema.name == "financial_transactions"
    assert "not valid JSON" in server.requests[1].messages[-1]["content"]


def test_draft_schema_always_invalid(server: FakeOpenAI) -> None:
    server.handler = lambda body: {"name": "t", "columns": []}
    with pytest.raises(LLMError) as info:
        draft_schema_with_llm(client_for(server), model=MODEL, prompt="x", max_attempts=3)
    assert not isinstance(info.value, LLMUnavailableError)
    message = str(info.value)
    assert "3 attempts" in message and "columns" in message and MODEL in message
    assert len(server.requests) == 3


def test_draft_schema_unknown_model_is_an_llm_error(server: FakeOpenAI) -> None:
    server.reply(Fail(404, "model 'nope' not found"))
    with pytest.raises(LLMError, match="does not know model 'nope'"):
        draft_schema_with_llm(client_for(server), model="nope", prompt="x")


def test_unreachable_endpoint_fails_fast() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    client = OpenAI(base_url=base_url, api_key="k", max_retries=1, timeout=2.0)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError) as info:
        draft_schema_with_llm(client, model=MODEL, prompt="x")
    assert time.monotonic() - started < 10
    assert base_url in str(info.value)
    with pytest.raises(LLMUnavailableError):
        fill_llm_columns(
            client, model=MODEL, schema=REVIEWS, table=reviews_table(10), columns=["review"]
        )


def test_timeout_is_unavailable(server: FakeOpenAI) -> None:
    from tests.openai_server import Reply

    server.reply(Reply(json.dumps(GOOD_SCHEMA), delay=1.5))
    with pytest.raises(LLMUnavailableError, match="timed out"):
        draft_schema_with_llm(client_for(server, timeout=0.3), model=MODEL, prompt="x")


def test_draft_without_llm_uses_the_offline_drafter(server: FakeOpenAI) -> None:
    prompt = "Generate 1,000 customers with name, email, and signup date"
    assert [c.name for c in draft(prompt).columns] == ["name", "email", "signup_date"]
    server.reply(json.dumps(GOOD_SCHEMA))
    assert draft(prompt, LLM(client_for(server), MODEL)).name == "financial_transactions"


# --- row backend --------------------------------------------------------------------------------


def test_fill_columns_in_parallel_batches(server: FakeOpenAI) -> None:
    inflight = 0
    peak = 0
    lock = threading.Lock()

    def handler(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal inflight, peak
        with lock:
            inflight += 1
            peak = max(peak, inflight)
        time.sleep(0.1)
        with lock:
            inflight -= 1
        return good_rows(body)

    server.handler = handler
    seen: list[tuple[int, int]] = []
    table, rejected = fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(95),
        columns=llm_columns(REVIEWS),
        chunk_rows=10,
        max_workers=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert rejected == 0
    assert table.column_names == ["id", "rating", "review", "sentiment", "code"]
    rows = table.to_pylist()
    assert all(r["review"] == f"Review of item {r['id']}: {r['rating']} stars." for r in rows)
    assert rows[94]["code"] == "R-095"
    assert len(server.requests) == 10  # ceil(95 / 10) batches
    assert peak > 1  # batches overlapped
    assert seen[-1] == (95, 95) and len(seen) == 10
    request = row_request(server.requests[0].body)
    assert {c["name"] for c in request["columns_to_fill"]} == {"review", "sentiment", "code"}
    assert set(request["rows"][0]) == {"id", "rating"}  # the other columns are the context
    fmt = server.requests[0].body["response_format"]["json_schema"]["schema"]
    assert fmt["properties"]["rows"]["items"]["properties"]["sentiment"]["enum"] == [
        "positive",
        "neutral",
        "negative",
    ]


def test_invalid_rows_are_rejected_and_retried(server: FakeOpenAI) -> None:
    calls = 0

    def handler(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        answer = good_rows(body)
        if calls == 1:  # first answer: two bad rows (wrong type, wrong pattern)
            answer["rows"][0]["review"] = 42
            answer["rows"][3]["code"] = "X-1"
        return answer

    server.handler = handler
    table, rejected = fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(5),
        columns=["review", "code"],
        chunk_rows=5,
        max_workers=1,
    )
    assert rejected == 2
    assert table.column("review").null_count == 0
    assert table.column("code").to_pylist() == [f"R-{i:03d}" for i in range(1, 6)]
    assert "sentiment" not in table.column_names
    retry = row_request(server.requests[1].body)
    assert [row["id"] for row in retry["rows"]] == [1, 4]  # only the rejected rows again
    problems = " ".join(retry["problems"])
    assert "expected a string" in problems and "does not match the pattern" in problems


def test_always_invalid_rows_stay_null_and_are_counted(server: FakeOpenAI) -> None:
    server.handler = lambda body: {
        "rows": [{"review": "ok", "sentiment": "angry"} for _ in row_request(body)["rows"]]
    }
    table, rejected = fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(4),
        columns=["review", "sentiment"],
        chunk_rows=4,
        max_attempts=2,
    )
    assert rejected == 8  # 4 rows x 2 attempts
    assert table.column("sentiment").null_count == 4
    assert table.column("review").null_count == 4  # a row is kept whole or not at all


def test_wrong_length_and_garbage_retry_the_batch(server: FakeOpenAI) -> None:
    server.reply({"rows": [{"review": "only one"}]}, "not json", Garbage())
    server.handler = good_rows
    table, rejected = fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(3),
        columns=["review"],
        chunk_rows=3,
        max_attempts=4,
        backoff=0.01,
    )
    assert table.column("review").null_count == 0
    assert rejected == 6  # two unusable answers of 3 rows each; garbage is a transport retry
    assert "expected 3 rows, got 1" in row_request(server.requests[1].body)["problems"][0]


def test_429_and_500_are_retried(server: FakeOpenAI) -> None:
    server.reply(
        Fail(429, "slow down", headers={"Retry-After": "0.05"}),
        Fail(503, "overloaded"),
    )
    server.handler = good_rows
    table, rejected = fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(3),
        columns=["review"],
        backoff=0.01,
    )
    assert rejected == 0 and table.column("review").null_count == 0
    assert len(server.requests) == 3


def test_persistent_5xx_is_an_llm_error(server: FakeOpenAI) -> None:
    server.handler = lambda body: Fail(500, "boom")
    with pytest.raises(LLMError, match=r"kept failing \(HTTP 500\)"):
        fill_llm_columns(
            client_for(server),
            model=MODEL,
            schema=REVIEWS,
            table=reviews_table(3),
            columns=["review"],
            backoff=0.01,
        )


def test_rate_limit_is_respected_across_threads(server: FakeOpenAI) -> None:
    server.handler = good_rows
    started = time.monotonic()
    fill_llm_columns(
        client_for(server),
        model=MODEL,
        schema=REVIEWS,
        table=reviews_table(10),
        columns=["review"],
        chunk_rows=1,
        max_workers=8,
        rate_limit_per_second=5,
    )
    elapsed = time.monotonic() - started
    assert len(server.requests) == 10
    assert elapsed >= 1.6  # 10 requests at 5/s, evenly spaced: the last one at 1.8 s
    times = sorted(request.at for request in server.requests)
    assert times[-1] - times[0] >= 1.6


def test_token_bucket_spacing() -> None:
    bucket = TokenBucket(20)
    started = time.monotonic()
    for _ in range(5):
        bucket.acquire()
    assert time.monotonic() - started >= 0.18  # 4 gaps of 0.05 s


def test_existing_null_column_is_replaced(server: FakeOpenAI) -> None:
    server.handler = good_rows
    table = reviews_table(3).append_column("review", pa.nulls(3, pa.string()))
    filled, _ = fill_llm_columns(
        client_for(server), model=MODEL, schema=REVIEWS, table=table, columns=["review"]
    )
    assert filled.column_names == ["id", "rating", "review"]
    assert filled.column("review").null_count == 0


# --- per-value validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "expected", "error"),
    [
        ({"type": "integer", "min": 1, "max": 5}, 3, 3, None),
        ({"type": "integer", "min": 1, "max": 5}, 3.0, 3, None),
        ({"type": "integer", "min": 1, "max": 5}, 6, None, "above the maximum"),
        ({"type": "integer"}, True, None, "expected a number"),
        ({"type": "integer"}, 2.5, None, "expected an integer"),
        ({"type": "float", "min": 0, "decimals": 2}, 1.234, 1.23, None),
        ({"type": "float", "min": 0}, -1, None, "below the minimum"),
        ({"type": "float"}, "1.0", None, "expected a number"),
        ({"type": "boolean"}, "yes", None, "expected true or false"),
        ({"type": "string"}, None, None, "not nullable"),
        ({"type": "string", "nullable": 0.5}, None, None, None),
        ({"type": "string", "semantic_type": "email"}, "a@b.co", "a@b.co", None),
        ({"type": "string", "semantic_type": "email"}, "nope", None, "not a valid email"),
        ({"type": "category", "categories": ["a", "b"]}, "c", None, "not one of"),
        ({"type": "date", "min": "2020-01-01"}, "2019-12-31", None, "below the minimum"),
        ({"type": "date"}, "31/12/2020", None, "not an ISO 8601 date"),
        ({"type": "datetime", "max": "2021-01-01T00:00:00"}, "2020-06-01T12:00:00Z", None, None),
        ({"type": "uuid"}, "not-a-uuid", None, "not a UUID"),
    ],
)
def test_validate_value(column: dict, value: Any, expected: Any, error: str | None) -> None:
    col = Column.model_validate({"name": "c", **column})
    got, problem = validate_value(col, value)
    if error is None:
        assert problem is None
        if expected is not None:
            assert got == expected
    else:
        assert problem is not None and error in problem


# --- the resource -------------------------------------------------------------------------------


def test_llm_resource_end_to_end(server: FakeOpenAI) -> None:
    resource = LLMResource(
        api_key="resource-key",
        base_url=server.base_url,
        model="served-model",
        timeout=5,
        max_retries=0,
        rate_limit_per_second=100,
        max_workers=2,
    )
    client = resource.get_openai_client()
    assert str(client.base_url).rstrip("/") == server.base_url
    assert client.max_retries == 0
    server.reply(json.dumps(GOOD_SCHEMA))
    llm = resource.get_llm()
    schema = llm.draft_schema("transactions")
    assert schema.name == "financial_transactions"
    server.handler = good_rows
    table, rejected = llm.fill(REVIEWS, reviews_table(4), chunk_rows=2)
    assert rejected == 0
    assert table.column("sentiment").null_count == 0
    assert {r.body["model"] for r in server.requests} == {"served-model"}
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer resource-key"}


@dg.asset
def drafted_schema(context, llm: LLMResource) -> None:
    with llm.get_client(context) as client:
        schema = draft_schema_with_llm(client, model=llm.model, prompt="transactions")
    assert schema.rows == 10_000


def test_llm_resource_in_an_asset(server: FakeOpenAI) -> None:
    server.reply(json.dumps(GOOD_SCHEMA))
    result = dg.materialize(
        [drafted_schema],
        resources={"llm": LLMResource(base_url=server.base_url, model="m", max_retries=0)},
    )
    assert result.success
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"
    # dagster-openai records the usage on the materialization.
    metadata = result.asset_materializations_for_node("drafted_schema")[0].metadata
    assert metadata["openai.m.calls"].value == 1
