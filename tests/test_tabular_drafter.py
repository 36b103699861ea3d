"""The offline drafter: row counts, column lists, names and the type rules, on realistic prompts."""

from __future__ import annotations

import json
import os
import re
from itertools import pairwise

import pyarrow.compute as pc
import pytest

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.drafter import DEFAULT_ROWS, draft_schema, parse_row_count
from synth_pipelines.core.tabular.generator import generate_chunk
from synth_pipelines.core.tabular.schema import TableSchema
from tests.drafter_prompts import (
    CASES,
    DOMAINS,
    HELD_OUT,
    HELD_OUT_2,
    HELD_OUT_3,
    Case,
    score,
    shares,
)


def kinds(schema: TableSchema) -> dict[str, tuple[str, str | None]]:
    return {c.name: (c.type, c.semantic_type) for c in schema.columns}


def test_financial_transactions() -> None:
    prompt = "Generate 10k financial transactions with user ID, amount, currency, and timestamp"
    schema = draft_schema(prompt)
    assert schema.rows == 10_000
    assert schema.name == "financial_transactions"
    assert schema.description == prompt
    assert [c.name for c in schema.columns] == ["user_id", "amount", "currency", "timestamp"]
    assert schema.column("user_id").semantic_type == "id"
    assert not schema.column("user_id").unique  # a foreign key in a transactions table
    amount = schema.column("amount")
    assert amount.type == "float" and amount.min is not None and amount.min >= 0
    assert amount.decimals == 2 and amount.distribution == "lognormal"
    assert schema.column("currency").semantic_type == "currency_code"
    assert schema.column("timestamp").type == "datetime"
    # The draft is a valid, generatable schema as it stands.
    TableSchema.parse(schema.model_dump())
    schema.check_rows(schema.rows)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("Generate 10k rows", 10_000),
        ("Generate 10K rows", 10_000),
        ("make 1.5M events", 1_500_000),
        ("create 5,000 customers", 5_000),
        ("2 million orders", 2_000_000),
        ("500 rows of patients", 500),
        ("a thousand reviews", 1_000),
        ("twenty thousand sessions", 20_000),
        ("3.5k sensor readings", 3_500),
        ("orders from 2024", None),
        ("some customers", None),
    ],
)
def test_row_counts(text: str, rows: int | None) -> None:
    assert parse_row_count(text) == rows


def test_default_rows_when_prompt_names_none() -> None:
    schema = draft_schema("Generate customers with name, email, and signup date")
    assert schema.rows == DEFAULT_ROWS == 1_000


def test_numbers_inside_columns_are_not_the_row_count() -> None:
    schema = draft_schema("Generate reviews with rating (1-5), review text and review date")
    assert schema.rows == DEFAULT_ROWS
    rating = schema.column("rating")
    assert (rating.type, rating.min, rating.max) == ("integer", 1, 5)


def test_customers_email_depends_on_name() -> None:
    schema = draft_schema("Generate 1,000 customers with name, email, and signup date")
    assert schema.rows == 1_000 and schema.name == "customers"
    assert kinds(schema) == {
        "name": ("string", "full_name"),
        "email": ("string", "email"),
        "signup_date": ("date", None),
    }
    assert schema.column("email").depends_on == "name"


def test_normalises_names_and_infers_people_columns() -> None:
    schema = draft_schema(
        "I need a dataset of 5,000 employees with the following columns: employee ID, first "
        "name, last name, E-mail address, department, salary, hire date, is_manager"
    )
    assert schema.rows == 5_000 and schema.name == "employees"
    assert kinds(schema) == {
        "employee_id": ("integer", "id"),
        "first_name": ("string", "first_name"),
        "last_name": ("string", "last_name"),
        "email_address": ("string", "email"),
        "department": ("category", None),
        "salary": ("float", None),
        "hire_date": ("date", None),
        "is_manager": ("boolean", None),
    }
    assert schema.column("employee_id").unique  # the table's own key
    assert schema.column("email_address").depends_on == "first_name"
    assert "engineering" in (schema.column("department").categories or [])


def test_web_events_1_5m() -> None:
    schema = draft_schema(
        "Create 1.5M web events containing session id, user ID, event type, page URL, IP "
        "address, browser and created_at"
    )
    assert schema.rows == 1_500_000 and schema.name == "web_events"
    got = kinds(schema)
    assert got["page_url"] == ("string", "url")
    assert got["ip_address"] == ("string", "ipv4")
    assert got["created_at"] == ("datetime", None)
    assert got["event_type"][0] == "category" and got["browser"][0] == "category"


def test_orders_two_million_trailing_period() -> None:
    schema = draft_schema(
        "Make 2 million e-commerce orders including order id, customer name, product category, "
        "quantity, unit price, order status, shipping country and order date."
    )
    assert schema.rows == 2_000_000 and schema.name == "e_commerce_orders"
    got = kinds(schema)
    assert got["customer_name"] == ("string", "full_name")
    assert got["quantity"][0] == "integer" and schema.column("quantity").min == 1
    assert got["unit_price"][0] == "float"
    assert "shipped" in (schema.column("order_status").categories or [])
    assert got["shipping_country"] == ("string", "country")
    assert got["order_date"] == ("date", None)


def test_bullet_list() -> None:
    schema = draft_schema(
        "500 rows of patients:\n- patient_id\n- full name\n- date of birth\n- gender\n"
        "* blood type\n- height\n- weight\n- notes\n\nMake it realistic."
    )
    assert schema.rows == 500 and schema.name == "patients"
    assert [c.name for c in schema.columns] == [
        "patient_id",
        "full_name",
        "date_of_birth",
        "gender",
        "blood_type",
        "height",
        "weight",
        "notes",
    ]
    assert schema.column("date_of_birth").type == "date"
    assert "O+" in (schema.column("blood_type").categories or [])
    assert schema.column("notes").semantic_type in ("sentence", "paragraph")


def test_columns_colon_and_places() -> None:
    schema = draft_schema(
        "customers table with columns: id, company, phone number, website, city, zip code, "
        "country, credit score"
    )
    assert schema.rows == DEFAULT_ROWS and schema.name == "customers"
    assert kinds(schema) == {
        "id": ("integer", "id"),
        "company": ("string", "company"),
        "phone_number": ("string", "phone"),
        "website": ("string", "url"),
        "city": ("string", "city"),
        "zip_code": ("string", "postcode"),
        "country": ("string", "country"),
        "credit_score": ("integer", None),
    }
    assert schema.column("id").unique


def test_inline_categories_and_ranges() -> None:
    schema = draft_schema(
        "Generate 250 support tickets having ticket id, priority (low, medium, high), status, "
        "subject, description, created at, resolved at"
    )
    assert schema.rows == 250
    assert schema.column("priority").categories == ["low", "medium", "high"]
    assert schema.column("status").type == "category"
    assert schema.column("description").semantic_type == "paragraph"
    assert schema.column("resolved_at").type == "datetime"

    loans = draft_schema(
        "Synthesize 20000 loan applications with applicant age between 21 and 70, annual "
        "income, loan amount, interest rate, approved"
    )
    assert loans.rows == 20_000
    age = loans.column("applicant_age")
    assert (age.type, age.min, age.max) == ("integer", 21, 70)
    assert loans.column("interest_rate").max == 100
    assert loans.column("approved").type == "boolean"


def test_semicolons_geo_and_counts() -> None:
    schema = draft_schema(
        "Generate stores with store ID; latitude; longitude; opened on; employees count"
    )
    lat, lon = schema.column("latitude"), schema.column("longitude")
    assert (lat.min, lat.max, lon.min, lon.max) == (-90, 90, -180, 180)
    assert schema.column("opened_on").type == "date"
    assert schema.column("employees_count").type == "integer"


def test_users_uuid_and_fallback() -> None:
    schema = draft_schema(
        "Generate 3k users with uuid, username, email, is_verified, plan, last_login_at, "
        "favourite snack"
    )
    assert schema.rows == 3_000
    got = kinds(schema)
    assert got["uuid"] == ("uuid", "id")
    assert got["username"] == ("string", "username")
    assert got["is_verified"] == ("boolean", None)
    assert got["last_login_at"] == ("datetime", None)
    assert got["favourite_snack"] == ("string", "word")  # the fallback
    assert schema.column("email").depends_on is None  # no name column to derive it from


def test_more_rules() -> None:
    schema = draft_schema(
        "Generate 10K sensor readings with device id, temperature, humidity percent, age, "
        "reading time, iban, job title, street address, comment, rating, is_active, mobile"
    )
    assert schema.rows == 10_000
    got = kinds(schema)
    assert got["humidity_percent"][0] == "float"
    assert schema.column("humidity_percent").max == 100
    age = schema.column("age")
    assert (age.type, age.min, age.max) == ("integer", 18, 90)
    assert got["reading_time"] == ("datetime", None)
    assert got["iban"] == ("string", "iban")
    assert got["job_title"] == ("string", "job")
    assert got["street_address"] == ("string", "street_address")
    assert got["comment"] == ("string", "sentence")
    assert (schema.column("rating").min, schema.column("rating").max) == (1, 5)
    assert got["is_active"] == ("boolean", None)
    assert got["mobile"] == ("string", "phone")


def test_duplicate_names_get_a_suffix() -> None:
    schema = draft_schema("Generate 10 rows with name, name, email")
    assert [c.name for c in schema.columns] == ["name", "name_2", "email"]


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_empty_prompt(prompt: str) -> None:
    with pytest.raises(FieldError) as info:
        draft_schema(prompt)
    assert info.value.field == "prompt"


def test_no_columns() -> None:
    with pytest.raises(FieldError) as info:
        draft_schema("Generate 10k rows")
    assert info.value.field == "prompt"
    assert "name the columns" in str(info.value)
    assert "Generate 1,000 customers with name, email, and signup date" in str(info.value)


def test_numbered_list_without_intro_word() -> None:
    schema = draft_schema("Products\n1. SKU\n2. product name\n3. price (USD)\n4. in stock")
    assert schema.name == "products" and schema.rows == DEFAULT_ROWS
    assert kinds(schema) == {
        "sku": ("string", None),
        "product_name": ("string", "word"),
        "price": ("float", None),
        "in_stock": ("boolean", None),
    }
    assert schema.column("sku").pattern == "[A-Z]{3}-[0-9]{5}"
    assert schema.column("price").currency == "USD"
    assert schema.warnings == []


def test_e_commerce_orders_lose_no_phrase() -> None:
    schema = draft_schema(
        "an e-commerce orders table: order id, customer email, total price in EUR, shipping "
        "country, order status pending/shipped/delivered/returned"
    )
    assert [c.name for c in schema.columns] == [
        "order_id", "customer_email", "total_price", "shipping_country", "order_status",
    ]  # fmt: skip
    status = schema.column("order_status")
    assert status.type == "category"
    assert status.categories == ["pending", "shipped", "delivered", "returned"]
    price = schema.column("total_price")
    assert price.type == "float" and price.min is not None and price.min > 0
    assert price.currency == "EUR"
    assert schema.warnings == []


def test_iot_entity_count_statistics_and_units() -> None:
    schema = draft_schema(
        "IoT sensor readings for 20 devices: device id, timestamp, temperature celsius around "
        "21 with std 2, humidity percent, battery voltage"
    )
    assert schema.rows == DEFAULT_ROWS  # "20 devices" is not the row count
    assert schema.name == "iot_sensor_readings"
    assert [c.name for c in schema.columns] == [
        "device_id", "timestamp", "temperature_celsius", "humidity_percent", "battery_voltage",
    ]  # fmt: skip
    device = schema.column("device_id")
    assert (device.type, device.min, device.max, device.unique) == ("integer", 1, 20, False)
    assert schema.column("timestamp").type == "datetime"
    temperature = schema.column("temperature_celsius")
    assert (temperature.distribution, temperature.mean, temperature.std) == ("normal", 21, 2)
    assert temperature.unit == "celsius"
    humidity = schema.column("humidity_percent")
    assert (humidity.min, humidity.max, humidity.unit) == (0, 100, "percent")
    battery = schema.column("battery_voltage")
    assert (battery.type, battery.min, battery.max, battery.unit) == ("float", 3.0, 4.2, "V")
    assert schema.warnings == []

    table = generate_chunk(schema, rows=1_000, seed=1, chunk_index=0, row_offset=0)
    assert pc.count_distinct(table["device_id"]).as_py() == 20
    assert 20 < pc.mean(table["temperature_celsius"]).as_py() < 22
    assert pc.max(table["battery_voltage"]).as_py() <= 4.2


def test_entity_count_adds_the_id_column_it_counts() -> None:
    schema = draft_schema("weekly sales across 50 stores with week, revenue in GBP, footfall")
    store = schema.column("store_id")
    assert schema.columns[0] is store and (store.min, store.max) == (1, 50)
    assert schema.column("revenue").currency == "GBP"


def test_money_nouns_and_codes() -> None:
    schema = draft_schema(
        "customers with name, lifetime value in USD, diagnosis code, SKU, ISO country code, "
        "postal code, IBAN"
    )
    value = schema.column("lifetime_value")
    assert value.type == "float" and value.min is not None and value.min >= 0
    assert value.currency == "USD"
    assert schema.column("diagnosis_code").pattern == r"[A-TV-Z][0-9]{2}(\.[0-9]{1,2})?"
    assert schema.column("sku").pattern == "[A-Z]{3}-[0-9]{5}"
    assert schema.column("iso_country_code").semantic_type == "country_code"
    assert schema.column("postal_code").semantic_type == "postcode"
    assert schema.column("iban").semantic_type == "iban"
    table = generate_chunk(schema, rows=200, seed=3, chunk_index=0, row_offset=0)
    assert all(
        re.fullmatch(r"[A-TV-Z][0-9]{2}(\.[0-9]{1,2})?", code)
        for code in table["diagnosis_code"].to_pylist()
    )


def test_every_unread_phrase_is_a_warning() -> None:
    schema = draft_schema(
        "Generate 200 users with user id, signup date formatted like the legacy system, "
        "the number of times they opened the app last winter during storms, email. "
        "Make it realistic."
    )
    assert [c.name for c in schema.columns] == ["user_id", "signup_date", "email"]
    assert schema.warnings == [
        "'formatted like the legacy system' (in 'signup date formatted like the legacy "
        "system') was not read",
        "not read as a column: 'the number of times they opened the app last winter during storms'",
        "not read: 'Make it realistic.'",
    ]
    ranged = draft_schema("tickets with subject between 5 and 9, priority")
    assert ranged.warnings == [
        "'subject between 5 and 9': the range 5 to 9 applies to numbers, not a string column"
    ]


@pytest.mark.parametrize(
    ("prompt", "column", "expected"),
    [
        ("orders with status one of new, paid or shipped", "status", ["new", "paid", "shipped"]),
        ("orders with id, status (new, paid, shipped)", "status", ["new", "paid", "shipped"]),
        ("orders with id, status pending, shipped or delivered", "status",
         ["pending", "shipped", "delivered"]),
        ("orders with id, size S/M/L", "size", ["S", "M", "L"]),
        ("returns with id, reason damaged/wrong size/changed mind", "reason",
         ["damaged", "wrong size", "changed mind"]),
        ("visits with id, site left arm or right arm", "site", ["left arm", "right arm"]),
        ("repairs with id, service type oil change, tire rotation or brake repair, cost",
         "service_type", ["oil change", "tire rotation", "brake repair"]),
    ],
)  # fmt: skip
def test_enumerations(prompt: str, column: str, expected: list[str]) -> None:
    schema = draft_schema(prompt)
    assert schema.column(column).categories == expected
    assert schema.warnings == []


@pytest.mark.parametrize(
    ("item", "bounds"),
    [
        ("age between 18 and 65", (18, 65)),
        ("age from 18 to 65", (18, 65)),
        ("age 18-65", (18, 65)),
        ("age at least 21", (21, 90)),
        ("score at most 50", (0, 50)),
        ("discount percent up to 30", (0, 30)),
    ],
)
def test_bounds(item: str, bounds: tuple[float, float]) -> None:
    schema = draft_schema(f"people with {item}")
    column = schema.columns[0]
    assert (column.min, column.max) == bounds
    assert schema.warnings == []


ALL_CASES = [*CASES, *HELD_OUT, *HELD_OUT_2, *HELD_OUT_3]


@pytest.mark.parametrize(
    "case", ALL_CASES, ids=[f"{c.domain}-{i}" for i, c in enumerate(ALL_CASES)]
)
def test_prompt_set_drafts_are_valid_and_generate(case: Case) -> None:
    schema = draft_schema(case.prompt)
    TableSchema.parse(schema.model_dump())
    generate_chunk(schema, rows=50, seed=0, chunk_index=0, row_offset=0)


def test_prompt_set_shares() -> None:
    """At least 60 prompts in ten domains; the share of columns right is at least 90% (the
    issue's target), and the measured shares do not fall (see benchmarks/drafter.py)."""
    assert len(CASES) >= 60 and {c.domain for c in CASES} == set(DOMAINS)
    measured = shares(CASES, draft_schema)
    assert measured.column_share >= 0.98
    assert measured.exact_share >= 0.93
    # The blind set (91.0% of columns at its first score) stays at or above the target.
    assert shares(HELD_OUT_3, draft_schema).column_share >= 0.90


def test_an_llm_drafted_schema_is_scored_by_the_same_checks(server, monkeypatch) -> None:
    """With SYNTH_LLM_BASE_URL set, the API's drafter is the LLM, and the prompt set scores its
    schemas exactly as the offline drafter's: here an LLM that gets one column wrong."""
    from synth_pipelines.api.serving import schema_drafter
    from synth_pipelines.settings import Settings

    case = CASES[0]
    answer = draft_schema(case.prompt).model_dump(mode="json")
    answer["warnings"] = []
    renamed = dict(answer["columns"][0], name="something_else")
    wrong = dict(answer, columns=[renamed, *answer["columns"][1:]])
    server.reply(json.dumps(answer), json.dumps(wrong))
    monkeypatch.setenv("SYNTH_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    draft = schema_drafter(Settings.from_env())
    schema, drafter = draft(case.prompt)
    assert drafter.startswith("llm:") and score(case, schema)[0]
    measured = shares([case], lambda prompt: draft(prompt)[0])
    assert (measured.exact, measured.right) == (0, len(case.columns) - 1)


@pytest.mark.skipif(
    not os.environ.get("SYNTH_TEST_LLM_BASE_URL"),
    reason="set SYNTH_TEST_LLM_BASE_URL (and OPENAI_API_KEY) to score a real LLM drafter",
)
def test_a_real_llm_drafts_the_prompt_set_to_target(monkeypatch) -> None:
    from synth_pipelines.api.serving import schema_drafter
    from synth_pipelines.settings import Settings

    monkeypatch.setenv("SYNTH_LLM_BASE_URL", os.environ["SYNTH_TEST_LLM_BASE_URL"])
    draft = schema_drafter(Settings.from_env())
    assert shares(CASES, lambda prompt: draft(prompt)[0]).column_share >= 0.9


def test_a_regular_series_per_entity() -> None:
    schema = draft_schema(
        "smart meter data for 500 households, every 15 minutes: household id, timestamp, "
        "energy consumption kWh"
    )
    assert schema.rows == DEFAULT_ROWS and schema.warnings == []
    stamp = schema.column("timestamp")
    assert (stamp.step_seconds, stamp.series_of, stamp.max) == (900, "household_id", None)
    # Two chunks, as a job generates them: each household's readings are 15 minutes apart.
    first = generate_chunk(schema, rows=1_000, seed=5, chunk_index=0, row_offset=0)
    second = generate_chunk(schema, rows=1_000, seed=5, chunk_index=1, row_offset=1_000)
    by_household: dict[int, list] = {}
    for table in (first, second):
        for household, at in zip(
            table["household_id"].to_pylist(), table["timestamp"].to_pylist(), strict=True
        ):
            by_household.setdefault(household, []).append(at)
    assert sorted(by_household) == list(range(1, 501))
    for times in by_household.values():
        assert len(times) == 4
        assert {(b - a).total_seconds() for a, b in pairwise(times)} == {900}

    hourly = draft_schema("temperature readings hourly: sensor id, recorded at, temperature")
    assert hourly.column("recorded_at").step_seconds == 3_600
    assert hourly.column("recorded_at").series_of is None
    monthly = draft_schema("sales monthly: store id, revenue")
    assert "monthly" in monthly.warnings[0]


@pytest.mark.parametrize(
    ("column", "words"),
    [
        ({"name": "t", "type": "string", "step_seconds": 60}, "date and datetime"),
        ({"name": "t", "type": "datetime", "step_seconds": 60}, "set min"),
        ({"name": "t", "type": "date", "min": "2024-01-01", "step_seconds": 60}, "whole days"),
        ({"name": "t", "type": "datetime", "min": "2024-01-01T00:00:00", "series_of": "id"},
         "needs step_seconds"),
        ({"name": "t", "type": "datetime", "min": "2024-01-01T00:00:00", "step_seconds": 60,
          "series_of": "nope"}, "integer column"),
        ({"name": "t", "type": "string", "currency": "EUR"}, "integer and float"),
        ({"name": "t", "type": "float", "currency": "euro"}, "ISO 4217"),
        ({"name": "t", "type": "string", "group_size": [1, 2]}, "integer (id) columns"),
        ({"name": "t", "type": "integer", "group_size": [3, 1]}, "1 <= least <= most"),
        ({"name": "t", "type": "integer", "group_size": [1, 3], "unique": True},
         "cannot be unique"),
    ],
)  # fmt: skip
def test_series_and_currency_fields_are_validated(column: dict, words: str) -> None:
    with pytest.raises(FieldError) as info:
        TableSchema.parse({"columns": [{"name": "id", "type": "integer"}, column]})
    assert words in str(info.value)


@pytest.mark.parametrize(
    "prompt",
    [
        "Generate orders for each customer, 1-10 orders, with order id, order date, amount",
        "orders, 1 to 10 per customer: order id, customer id, amount",
        "orders: 1-10 orders per customer, order id, amount",
    ],
)
def test_child_counts(prompt: str) -> None:
    schema = draft_schema(prompt)
    assert schema.rows == DEFAULT_ROWS and schema.name == "orders" and schema.warnings == []
    customer = schema.column("customer_id")
    assert (customer.group_size, customer.min, customer.max) == ([1, 10], 1, None)
    assert schema.column("order_id").unique
    # Across chunks, each customer has 1 to 10 orders, in a run.
    first = generate_chunk(schema, rows=700, seed=2, chunk_index=0, row_offset=0)
    second = generate_chunk(schema, rows=700, seed=2, chunk_index=1, row_offset=700)
    ids = first["customer_id"].to_pylist() + second["customer_id"].to_pylist()
    assert ids == sorted(ids) and ids[0] == 1
    counts = [ids.count(i) for i in range(1, ids[-1])]  # the last run may be cut short
    assert min(counts) >= 1 and max(counts) <= 10 and len(set(counts)) > 3


def test_entity_count_with_child_count() -> None:
    """ "for 300 students, each student with 3 to 8 exams": 300 ids in runs of 3 to 8 rows, the
    rows their expected total; the "with" of the child count does not start the columns."""
    schema = draft_schema(
        "exam results for 300 students, each student with 3 to 8 exams: exam date, "
        "subject (math, physics, chemistry or biology), score around 70 with std 12, passed"
    )
    assert schema.warnings == []
    assert [c.name for c in schema.columns] == [
        "student_id", "exam_date", "subject", "score", "passed",
    ]  # fmt: skip
    student = schema.column("student_id")
    assert (student.group_size, student.min, student.max) == ([3, 8], 1, 300)
    assert schema.rows == 300 * 11 // 2
    ids = generate_chunk(schema, rows=schema.rows, seed=1, chunk_index=0, row_offset=0)
    ids = ids["student_id"].to_pylist()
    assert ids == sorted(ids) and ids[0] == 1 and max(ids) <= 300
    counts = [ids.count(i) for i in range(1, max(ids))]
    assert min(counts) >= 3 and max(counts) <= 8 and max(ids) >= 280


def test_grouped_ids_cross_run_blocks_and_far_offsets() -> None:
    """Run sizes are drawn per block of runs: chunks that straddle a block, or start millions
    of rows in, agree with one chunk of the whole."""
    from synth_pipelines.core.tabular.scalar_values import _RUN_BLOCK

    schema = TableSchema.parse(
        {"columns": [{"name": "c", "type": "integer", "semantic_type": "id",
                      "group_size": [1, 3]}]}
    )  # fmt: skip
    span = 2 * _RUN_BLOCK * 2 + 7  # about two blocks of runs of mean 2
    whole = generate_chunk(schema, rows=span, seed=3, chunk_index=0, row_offset=0)["c"]
    parts = [
        generate_chunk(schema, rows=1_000, seed=3, chunk_index=i, row_offset=off)["c"]
        for i, off in enumerate(range(0, span - 1_000, 97_003))
    ]
    for part, off in zip(parts, range(0, span - 1_000, 97_003), strict=True):
        assert part.to_pylist() == whole.to_pylist()[off : off + 1_000]
    far = generate_chunk(schema, rows=10, seed=3, chunk_index=0, row_offset=20_000_000)["c"]
    assert 6_000_000 < far[0].as_py() < 14_000_000  # about 20M / 2 runs in


@pytest.mark.parametrize(
    ("prompt", "name", "expected"),
    [
        ("visits: systolic blood pressure around 120 with std 15",
         "systolic_blood_pressure", {"type": "integer", "unit": "mmHg", "mean": 120.0}),
        ("vitals: heart rate between 40 and 180", "heart_rate",
         {"type": "integer", "min": 40, "max": 180, "unit": "bpm"}),
        ("tickets: resolution time in hours", "resolution_time",
         {"type": "float", "unit": "hours", "min": 0.0}),
        ("sales: basket size between 1 and 30 items", "basket_size",
         {"type": "integer", "min": 1, "max": 30}),
        ("telemetry: cpu usage from 0 to 100 percent", "cpu_usage",
         {"type": "float", "min": 0.0, "max": 100.0, "unit": "percent"}),
        ("trials: company size 1-10/11-50/51-200/200+", "company_size",
         {"type": "category", "categories": ["1-10", "11-50", "51-200", "200+"]}),
        ("fiber: speed tier 100/500/1000 Mbps", "speed_tier",
         {"type": "category", "categories": ["100", "500", "1000"], "description": "in Mbps"}),
        ("loans: loan id, delinquent", "delinquent", {"type": "boolean"}),
    ],
)  # fmt: skip
def test_held_out_fixes(prompt: str, name: str, expected: dict) -> None:
    schema = draft_schema(prompt)
    assert schema.warnings == []
    column = schema.column(name).model_dump()
    assert {key: column[key] for key in expected} == expected


def test_lists_as_json() -> None:
    schema = draft_schema(
        "shopping baskets with basket id, 3 to 5 products as a JSON list, SKUs as an array"
    )
    assert schema.warnings == []
    products = schema.column("products")
    assert schema.column("skus").pattern is not None
    assert products.type == "string" and products.description == "a JSON list of 3 to 5 products"
    table = generate_chunk(schema, rows=200, seed=4, chunk_index=0, row_offset=0)
    lists = [json.loads(value) for value in table["products"].to_pylist()]
    assert {len(values) for values in lists} == {3, 4, 5}
    assert all(isinstance(v, str) for values in lists for v in values)
    for values in (json.loads(value) for value in table["skus"].to_pylist()):
        assert 1 <= len(values) <= 5
        assert all(re.fullmatch("[A-Z]{3}-[0-9]{5}", v) for v in values)
