"""The LLM row backend: fill a table's source="llm" columns with an LLM, value by value checked.

`fill_llm_columns` sends rows in batches, each with the values of its other columns as context
(free text that must fit its row: a review that matches its rating), on parallel threads under a
shared token-bucket rate limit. `validate_value` checks every value against its `Column`
(nullability, type, categories, pattern, min/max, a few semantic types) before it is kept; a
rejected row is asked for again with the problems. Requests go through `llm_request._complete`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.errors import FieldError
from synth_pipelines.core.tabular.llm_request import TokenBucket, _complete, _parse_json
from synth_pipelines.core.tabular.schema import Column, TableSchema

if TYPE_CHECKING:
    import pyarrow as pa
    from openai import OpenAI

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total), called from the calling thread after each batch."""


def llm_columns(schema: TableSchema) -> list[str]:
    """The columns an LLM fills: those with source "llm"."""
    return schema.llm_columns


# ---------------------------------------------------------------------------------------------
# Per-value validation
# ---------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEMANTIC_CHECKS: dict[str, Callable[[str], bool]] = {
    "email": lambda v: bool(_EMAIL.match(v)),
    "currency_code": lambda v: bool(re.fullmatch(r"[A-Z]{3}", v)),
    "country_code": lambda v: bool(re.fullmatch(r"[A-Z]{2}", v)),
    "url": lambda v: bool(re.match(r"^https?://\S+$", v)),
    "ipv4": lambda v: _is_ipv4(v),
}


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def validate_value(column: Column, value: Any) -> tuple[Any, str | None]:
    """(the value as the column's Python type, None) or (None, what is wrong with it).

    Checks nullability, type, categories, pattern, min/max and a few semantic types (email,
    url, ipv4, currency/country codes). Uniqueness spans rows and is left to the table checks.
    Dates and datetimes come as ISO 8601 strings; datetimes are returned naive UTC."""
    name = column.name
    if value is None or (isinstance(value, str) and not value.strip() and column.type != "string"):
        if column.nullable > 0:
            return None, None
        return None, f"{name}: null, but the column is not nullable"
    kind = column.type
    if kind in ("string", "category", "uuid"):
        if not isinstance(value, str):
            return None, f"{name}: expected a string, got {type(value).__name__} {value!r}"
        if kind == "category" and value not in (column.categories or ()):
            return None, f"{name}: {value!r} is not one of {column.categories}"
        if kind == "uuid":
            try:
                value = str(uuid.UUID(value))
            except ValueError:
                return None, f"{name}: {value!r} is not a UUID"
        if column.pattern is not None and not re.fullmatch(column.pattern, value):
            return None, f"{name}: {value!r} does not match the pattern {column.pattern!r}"
        check = _SEMANTIC_CHECKS.get(column.semantic_type or "")
        if check is not None and not check(value):
            return None, f"{name}: {value!r} is not a valid {column.semantic_type}"
        return value, None
    if kind == "boolean":
        if not isinstance(value, bool):
            return None, f"{name}: expected true or false, got {value!r}"
        return value, None
    if kind in ("integer", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{name}: expected a number, got {type(value).__name__} {value!r}"
        if kind == "integer":
            if isinstance(value, float):
                if not value.is_integer():
                    return None, f"{name}: expected an integer, got {value!r}"
                value = int(value)
        else:
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                return None, f"{name}: {value!r} is not a finite number"
            if column.decimals is not None:
                value = round(value, column.decimals)
    elif kind in ("date", "datetime"):
        if not isinstance(value, str):
            return None, f"{name}: expected an ISO 8601 {kind} string, got {value!r}"
        try:
            if kind == "date":
                value = date.fromisoformat(value[:10] if "T" in value else value)
            else:
                value = _naive_utc(datetime.fromisoformat(value))
        except ValueError:
            return None, f"{name}: {value!r} is not an ISO 8601 {kind}"
    low, high = column.bound("min"), column.bound("max")
    if isinstance(low, datetime):
        low = _naive_utc(low)
    if isinstance(high, datetime):
        high = _naive_utc(high)
    if low is not None and value < low:  # type: ignore[operator]
        return None, f"{name}: {value!r} is below the minimum {column.min!r}"
    if high is not None and value > high:  # type: ignore[operator]
        return None, f"{name}: {value!r} is above the maximum {column.max!r}"
    return value, None


# ---------------------------------------------------------------------------------------------
# Row backend
# ---------------------------------------------------------------------------------------------

_FILL_SYSTEM = """You fill in missing columns of synthetic table rows. The user sends one JSON \
object: the table, the columns to fill (with their types and constraints) and the rows, each \
with the values of its other columns. Answer with one JSON object {"rows": [...]}: one object per \
input row, in the same order, with exactly the columns to fill as keys. Each value must fit its \
column (type, categories, pattern, min/max; dates as ISO 8601) and make sense with the rest of \
its row. If "problems" is present, your previous answer was rejected for those reasons: fix \
them. Answer with the JSON object only."""

_JSON_TYPES = {
    "string": "string",
    "category": "string",
    "uuid": "string",
    "date": "string",
    "datetime": "string",
    "integer": "integer",
    "float": "number",
    "boolean": "boolean",
}


def _column_brief(column: Column) -> dict[str, Any]:
    brief = column.model_dump(
        exclude_defaults=True, exclude={"source", "distribution", "mean", "std", "weights"}
    )
    brief["nullable"] = column.nullable > 0
    return brief


def _rows_response_format(columns: list[Column]) -> dict[str, Any]:
    properties = {}
    for column in columns:
        spec: dict[str, Any] = {"type": _JSON_TYPES[column.type]}
        if column.nullable > 0:
            spec = {"type": [spec["type"], "null"]}
        if column.type == "category":
            spec["enum"] = list(column.categories or [])
        properties[column.name] = spec
    row = {"type": "object", "properties": properties, "required": [c.name for c in columns]}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "rows",
            "schema": {
                "type": "object",
                "properties": {"rows": {"type": "array", "items": row}},
                "required": ["rows"],
            },
            "strict": False,
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _arrow_type(column: Column) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "category": pa.string(),
        "uuid": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
    }[column.type]


@dataclass
class _Batch:
    start: int
    context: list[dict[str, Any]]


def _fill_batch(
    client: OpenAI,
    *,
    model: str,
    schema: TableSchema,
    targets: list[Column],
    batch: _Batch,
    max_attempts: int,
    limiter: TokenBucket | None,
    backoff: float,
    stop: threading.Event,
) -> tuple[dict[int, dict[str, Any]], int]:
    """({row index: {column: value}} for the rows answered validly, rejected row answers)."""
    accepted: dict[int, dict[str, Any]] = {}
    rejected = 0
    pending = list(range(len(batch.context)))
    problems: list[str] = []
    response_format = _rows_response_format(targets)
    for _ in range(max(1, max_attempts)):
        request: dict[str, Any] = {
            "table": {"name": schema.name, "description": schema.description},
            "columns_to_fill": [_column_brief(column) for column in targets],
            "rows": [batch.context[i] for i in pending],
        }
        if problems:
            request["problems"] = problems[:20]
        content = _complete(
            client,
            model=model,
            messages=[
                {"role": "system", "content": _FILL_SYSTEM},
                {"role": "user", "content": json.dumps(request, ensure_ascii=False)},
            ],
            response_format=response_format,
            limiter=limiter,
            max_attempts=max_attempts,
            backoff=backoff,
            stop=stop,
        )
        try:
            answer = _parse_json(content)
            if isinstance(answer, dict) and isinstance(answer.get("rows"), list):
                answer = answer["rows"]
            if not isinstance(answer, list):
                raise ValueError('expected {"rows": [...]}, a JSON array of row objects')
            if len(answer) != len(pending):
                raise ValueError(f"expected {len(pending)} rows, got {len(answer)}")
        except ValueError as exc:
            rejected += len(pending)
            problems = [str(exc)]
            continue
        problems = []
        still: list[int] = []
        for position, (index, row) in enumerate(zip(pending, answer, strict=True)):
            values, errors = _validate_row(targets, row)
            if errors:
                rejected += 1
                still.append(index)
                problems.append(f"row {position}: " + "; ".join(errors))
            else:
                accepted[index] = values
        pending = still
        if not pending:
            break
    return accepted, rejected


def _validate_row(targets: list[Column], row: Any) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(row, dict):
        return {}, [f"expected an object, got {type(row).__name__}"]
    values: dict[str, Any] = {}
    errors: list[str] = []
    for column in targets:
        if column.name not in row:
            errors.append(f"{column.name}: missing")
            continue
        value, error = validate_value(column, row[column.name])
        if error:
            errors.append(error)
        else:
            values[column.name] = value
    return values, errors


def fill_llm_columns(
    client: OpenAI,
    *,
    model: str,
    schema: TableSchema,
    table: pa.Table,
    columns: list[str],
    chunk_rows: int = 50,
    max_workers: int = 4,
    rate_limit_per_second: float | None = None,
    max_attempts: int = 3,
    progress: Progress | None = None,
    limiter: TokenBucket | None = None,
    backoff: float = 0.5,
) -> tuple[pa.Table, int]:
    """Fill `columns` of `table` with an LLM; (the table with those columns, rejected answers).

    Rows go in batches of `chunk_rows`, each with its other columns' values as context, on up to
    `max_workers` threads; `rate_limit_per_second` (or a shared `limiter`) caps requests across
    them. Each answer is checked value by value against its Column (`validate_value`): a row with
    any invalid value is rejected and asked for again, with the problems, up to `max_attempts`
    answers; an unusable answer (not JSON, wrong number of rows) rejects all its rows and the
    batch is asked again. Rows with no valid answer by then keep nulls in those columns.

    The count returned is every rejected row answer over all attempts (a row rejected twice
    counts twice). Columns already in `table` are replaced (cast back to their Arrow type where
    possible), others are appended. 429/5xx are retried with backoff, an unreachable endpoint
    raises LLMUnavailableError and stops the other batches."""
    import pyarrow as pa

    if not columns:
        return table, 0
    targets: list[Column] = []
    for name in columns:
        try:
            targets.append(schema.column(name))
        except KeyError:
            raise FieldError("columns", f"column {name!r} is not in the schema") from None
    if chunk_rows < 1:
        raise FieldError("chunk_rows", f"chunk_rows must be at least 1, got {chunk_rows}")
    if limiter is None and rate_limit_per_second:
        limiter = TokenBucket(rate_limit_per_second)
    target_names = {column.name for column in targets}
    context_names = [name for name in table.column_names if name not in target_names]
    total = table.num_rows
    context_rows = (
        [
            {key: _jsonable(value) for key, value in row.items()}
            for row in table.select(context_names).to_pylist()
        ]
        if context_names
        else [{} for _ in range(total)]
    )
    batches = [
        _Batch(start, context_rows[start : start + chunk_rows])
        for start in range(0, total, chunk_rows)
    ]
    filled: dict[str, list[Any]] = {column.name: [None] * total for column in targets}
    rejected = 0
    done = 0
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="llm") as pool:
        futures: dict[Future, _Batch] = {
            pool.submit(
                _fill_batch,
                client,
                model=model,
                schema=schema,
                targets=targets,
                batch=batch,
                max_attempts=max_attempts,
                limiter=limiter,
                backoff=backoff,
                stop=stop,
            ): batch
            for batch in batches
        }
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    stop.set()
                    for other in remaining:
                        other.cancel()
                    raise error
                accepted, batch_rejected = future.result()
                batch = futures[future]
                rejected += batch_rejected
                for offset, values in accepted.items():
                    for name, value in values.items():
                        filled[name][batch.start + offset] = value
                done += len(batch.context)
                if progress is not None:
                    progress(done, total)
    for column in targets:
        array = pa.array(filled[column.name], type=_arrow_type(column))
        if column.name in table.column_names:
            index = table.column_names.index(column.name)
            existing = table.schema.field(index).type
            if existing != array.type and not pa.types.is_null(existing):
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    array = array.cast(existing)
            table = table.set_column(index, column.name, array)
        else:
            table = table.append_column(column.name, array)
    return table, rejected
