"""The offline drafter: row counts, column lists, names and the type rules, on realistic prompts."""

from __future__ import annotations

import pytest

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.drafter import DEFAULT_ROWS, draft_schema, parse_row_count
from synth_pipelines.core.tabular.schema import TableSchema


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
        "sku": ("integer", "id"),
        "product_name": ("string", "word"),
        "price": ("float", None),
        "in_stock": ("boolean", None),
    }
    assert schema.column("price").description == "USD"
