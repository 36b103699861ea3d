"""The table schema of a tabular job: what the drafter proposes, a person edits and confirms, the
generator fills and the checks enforce.

`TableSchema.model_validate(data)` checks each column on its own (types, bounds, categories,
patterns); `schema.check_rows(n)` checks what depends on the row count (a unique column that
cannot hold n distinct values). Both raise `SchemaError` naming the column.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.fitted.spec import FittedModel

ColumnType = Literal[
    "string", "integer", "float", "boolean", "date", "datetime", "category", "uuid"
]
SemanticType = Literal[
    "id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "street_address",
    "city",
    "country",
    "country_code",
    "postcode",
    "currency_code",
    "company",
    "job",
    "url",
    "domain",
    "ipv4",
    "username",
    "iban",
    "word",
    "sentence",
    "paragraph",
]
Distribution = Literal["uniform", "normal", "lognormal", "poisson"]
ColumnSource = Literal["local", "llm"]

COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
SEMANTIC_TYPES: tuple[str, ...] = get_args(SemanticType)
DISTRIBUTIONS: tuple[str, ...] = get_args(Distribution)
NUMERIC = ("integer", "float")
TEMPORAL = ("date", "datetime")
# Semantic types whose values are text, whatever the column's declared type says.
TEXT_SEMANTICS = tuple(s for s in SEMANTIC_TYPES if s != "id")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class SchemaError(FieldError):
    """A schema that cannot be generated; `field` is "columns.<name>[.<attribute>]"."""


Bound = int | float | str | None  # numbers for integer/float, ISO 8601 strings for date/datetime


class Column(BaseModel):
    """One column. Only what applies to its type may be set (e.g. `categories` for category)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="identifier: letters, digits, underscore")
    type: ColumnType
    semantic_type: SemanticType | None = Field(
        default=None, description="what the values mean: drives realistic values (names, emails…)"
    )
    description: str | None = None
    nullable: float = Field(default=0.0, ge=0.0, le=1.0, description="share of nulls, 0 to 1")
    unique: bool = False
    min: Bound = None
    max: Bound = None
    distribution: Distribution | None = Field(
        default=None, description="numbers: uniform (default), normal, lognormal, poisson"
    )
    mean: float | None = Field(default=None, description="normal/lognormal/poisson centre")
    std: float | None = Field(default=None, gt=0, description="normal/lognormal spread")
    decimals: int | None = Field(default=None, ge=0, le=12, description="float rounding")
    categories: list[str] | None = None
    weights: list[float] | None = None
    pattern: str | None = Field(default=None, description="strings: a regex the values match")
    depends_on: str | None = Field(
        default=None, description="derive from another column (e.g. email from full_name)"
    )
    currency: str | None = Field(
        default=None, description="numbers: the ISO 4217 currency of a money column (EUR, USD)"
    )
    unit: str | None = Field(
        default=None, description="numbers: what the values measure (celsius, percent, V, kg)"
    )
    step_seconds: float | None = Field(
        default=None,
        gt=0,
        description="date/datetime: a regular series from min, one value every step_seconds "
        "(per entity of series_of when set) instead of random times",
    )
    group_size: list[int] | None = Field(
        default=None,
        description="integer ids: rows come in runs of group_size[0] to group_size[1] per id, "
        "from min (each customer has 1 to 10 orders); the ids grow with the rows, up to max "
        "when set (300 students, 3 to 8 exams each: the last id takes the rows left over)",
    )
    series_of: str | None = Field(
        default=None,
        description="with step_seconds: the integer id column (bounded by min/max) whose "
        "entities each get their own series; rows cycle through its values",
    )
    source: ColumnSource = Field(
        default="local", description="local: vectorised generator; llm: an LLM fills it in context"
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                f"column name {name!r} must start with a letter or underscore and hold only "
                "letters, digits and underscores (at most 63)"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        kind = self.type
        if self.categories is not None and kind != "category":
            raise ValueError("categories apply only to type category")
        if kind == "category":
            if not self.categories:
                raise ValueError("a category column needs a non-empty categories list")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must be distinct")
        if self.weights is not None:
            if self.categories is None or len(self.weights) != len(self.categories):
                raise ValueError("weights need one value per category")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be non-negative and not all zero")
        if self.distribution is not None and kind not in NUMERIC:
            raise ValueError(f"distribution applies to integer and float columns, not {kind}")
        if self.distribution == "poisson" and kind != "integer":
            raise ValueError("poisson gives integers: use it on an integer column")
        if self.pattern is not None:
            if kind != "string":
                raise ValueError("pattern applies only to string columns")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
        if self.decimals is not None and kind != "float":
            raise ValueError("decimals apply only to float columns")
        if self.min is not None or self.max is not None:
            if kind not in NUMERIC + TEMPORAL:
                raise ValueError(f"min/max apply to numbers, dates and datetimes, not {kind}")
            low, high = self.bound("min"), self.bound("max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.depends_on == self.name:
            raise ValueError("a column cannot depend on itself")
        if (self.currency is not None or self.unit is not None) and kind not in NUMERIC:
            raise ValueError(f"currency and unit apply to integer and float columns, not {kind}")
        if self.step_seconds is not None:
            if kind not in TEMPORAL:
                raise ValueError("step_seconds applies to date and datetime columns")
            if self.min is None:
                raise ValueError("a series (step_seconds) starts at min: set min")
            if kind == "date" and self.step_seconds % 86_400:
                raise ValueError("a date series steps by whole days (multiples of 86400 s)")
        if self.group_size is not None:
            if kind != "integer":
                raise ValueError("group_size applies to integer (id) columns")
            if len(self.group_size) != 2 or not 1 <= self.group_size[0] <= self.group_size[1]:
                raise ValueError("group_size is [least, most] rows per id, 1 <= least <= most")
            if self.unique:
                raise ValueError("a grouped id repeats: it cannot be unique")
        if self.series_of is not None and self.step_seconds is None:
            raise ValueError("series_of needs step_seconds")
        if self.currency is not None and not _CURRENCY.match(self.currency):
            raise ValueError(f"currency {self.currency!r} is not an ISO 4217 code such as EUR")
        return self

    def bound(self, which: Literal["min", "max"]) -> int | float | date | datetime | None:
        """`min` or `max` as a value of the column's type (dates parsed from ISO 8601)."""
        raw = getattr(self, which)
        if raw is None:
            return None
        if self.type in NUMERIC:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"{which} of a {self.type} column must be a number, got {raw!r}")
            return raw
        parse = date.fromisoformat if self.type == "date" else datetime.fromisoformat
        if not isinstance(raw, str):
            raise ValueError(f"{which} of a {self.type} column must be an ISO 8601 string")
        try:
            value = parse(raw)
        except ValueError:
            raise ValueError(f"{which} {raw!r} is not an ISO 8601 {self.type}") from None
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # naive datetimes are read as UTC
        return value

    def constraint_labels(self) -> list[str]:
        """The column's constraints in short words, for tables in the CLI and the Dagster UI."""
        labels = [
            self.unique and "unique",
            self.nullable and f"nullable {self.nullable:.0%}",
            (self.min is not None or self.max is not None)
            and f"[{'' if self.min is None else self.min}, {'' if self.max is None else self.max}]",
            self.distribution,
            self.categories and "{" + ", ".join(self.categories) + "}",
            self.pattern and f"/{self.pattern}/",
            self.depends_on and f"from {self.depends_on}",
            self.currency,
            self.unit,
            self.group_size and f"{self.group_size[0]}-{self.group_size[1]} rows each",
            self.step_seconds
            and f"every {self.step_seconds:g}s"
            + (f" per {self.series_of}" if self.series_of else ""),
            self.source == "llm" and "LLM-filled",
        ]
        return [label for label in labels if label]

    def distinct_capacity(self) -> int | None:
        """How many distinct non-null values the column can hold, when that is bounded."""
        if self.type == "boolean":
            return 2
        if self.type == "category":
            return len(self.categories or ())
        if self.type == "integer" and self.min is not None and self.max is not None:
            return int(self.max) - int(self.min) + 1
        if self.type == "date" and self.min is not None and self.max is not None:
            return (self.bound("max") - self.bound("min")).days + 1  # type: ignore[operator]
        return None


class InequalityConstraint(BaseModel):
    """`high >= low` on every row where both are set (end >= start)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["inequality"] = "inequality"
    low: str
    high: str


class FixedCombinationsConstraint(BaseModel):
    """Only the combinations of these columns' values seen in the sample occur (city with its
    country)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fixed_combinations"] = "fixed_combinations"
    columns: list[str] = Field(min_length=2)


Constraint = Annotated[
    InequalityConstraint | FixedCombinationsConstraint, Field(discriminator="kind")
]


class TableSchema(BaseModel):
    """A table: its columns, and the row count the prompt asked for (a default for confirm).
    A table fitted to a sample (`fitted.model.fit_model`) also carries its constraints and the
    fitted model its columns are sampled from."""

    model_config = ConfigDict(extra="forbid")

    name: str = "table"
    description: str | None = None
    rows: int | None = Field(default=None, ge=1, description="rows the prompt asked for")
    columns: list[Column] = Field(min_length=1)
    warnings: list[str] = Field(
        default_factory=list,
        description="what the drafter read in the prompt but did not turn into a column or a "
        "constraint: for the person who confirms the draft",
    )
    constraints: list[Constraint] = Field(
        default_factory=list, description="rules between columns: inequality, fixed_combinations"
    )
    fitted: FittedModel | None = Field(
        default=None, description="the model fitted to a sample (no raw rows): set by a fit"
    )

    @model_validator(mode="after")
    def _columns_fit_together(self) -> TableSchema:
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise ValueError(f"column {column.name!r} appears twice")
            seen.add(column.name)
        for column in self.columns:
            if column.depends_on is not None and column.depends_on not in seen:
                raise ValueError(
                    f"column {column.name!r} depends on {column.depends_on!r}, which is not a "
                    "column of this table"
                )
            if column.series_of is not None:
                entity = next((c for c in self.columns if c.name == column.series_of), None)
                if entity is None or entity.type != "integer" or entity.distinct_capacity() is None:
                    raise ValueError(
                        f"column {column.name!r} is a series of {column.series_of!r}, which must "
                        "be an integer column of this table with min and max"
                    )
        by_name = {column.name: column for column in self.columns}
        for constraint in self.constraints:
            names = (
                [constraint.low, constraint.high]
                if isinstance(constraint, InequalityConstraint)
                else constraint.columns
            )
            missing = [name for name in names if name not in by_name]
            if missing:
                raise ValueError(
                    f"constraint {constraint.kind} names {missing[0]!r}, which is not a column "
                    "of this table"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"constraint {constraint.kind} names a column twice")
            if isinstance(constraint, InequalityConstraint):
                low, high = by_name[constraint.low], by_name[constraint.high]
                if not (
                    (low.type in NUMERIC and high.type in NUMERIC)
                    or (low.type in TEMPORAL and low.type == high.type)
                ):
                    raise ValueError(
                        f"inequality {constraint.high!r} >= {constraint.low!r} needs two number "
                        f"columns or two {low.type} columns, not {low.type} and {high.type}"
                    )
        return self

    @classmethod
    def parse(cls, data: Any) -> TableSchema:
        """Validate raw data (a dict from JSON, an LLM, the drafter); SchemaError names the
        column and what is wrong."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise schema_error(exc, data) from None

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def unique_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.unique]

    @property
    def llm_columns(self) -> list[str]:
        """The columns an LLM fills: those with source "llm"."""
        return [column.name for column in self.columns if column.source == "llm"]

    def check_rows(self, rows: int) -> None:
        """SchemaError when `rows` cannot be generated: a unique column with fewer possible
        distinct values than rows (a unique boolean with 10 rows)."""
        for column in self.columns:
            capacity = column.distinct_capacity()
            if column.unique and capacity is not None:
                possible = capacity + (1 if column.nullable > 0 else 0)
                if rows > possible:
                    raise SchemaError(
                        f"columns.{column.name}.unique",
                        f"column {column.name!r} is unique but a {column.type} column with these "
                        f"bounds holds at most {possible} distinct values, not {rows} rows",
                    )


def schema_error(exc: ValidationError, data: Any) -> SchemaError:
    """The first pydantic error as a SchemaError naming the column by name, not index."""
    first = exc.errors()[0]
    loc = list(first["loc"])
    field = ".".join(str(part) for part in loc) or "schema"
    column_name = None
    if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int):
        try:
            column_name = data["columns"][loc[1]].get("name")
        except (TypeError, KeyError, IndexError, AttributeError):
            column_name = None
        rest = [str(part) for part in loc[2:]]
        field = ".".join(["columns", str(column_name or loc[1]), *rest])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error" and loc and loc[-1] == "type":
        message = f"unknown type {first.get('input')!r}; types: {', '.join(COLUMN_TYPES)}"
    elif first["type"] == "literal_error" and loc and loc[-1] == "semantic_type":
        message = f"unknown semantic_type {first.get('input')!r}; semantic types: " + ", ".join(
            SEMANTIC_TYPES
        )
    elif first["type"] == "missing":
        message = "is required"
    where = f"column {column_name!r}" if column_name else field
    return SchemaError(field, f"{where}: {message}")
