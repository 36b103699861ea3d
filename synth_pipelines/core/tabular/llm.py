"""LLMs for tabular jobs, through any OpenAI-compatible chat-completions endpoint.

Two uses:

* `draft_schema_with_llm` turns a prompt into a `TableSchema` with structured output, feeding
  each validation error back to the model until it answers with a valid schema.
* `fill_llm_columns` fills the columns whose `source` is "llm" (free text that must fit the rest
  of its row: a review that matches its rating), in batches of rows sent in parallel threads under
  a shared token-bucket rate limit; every value is checked against its `Column` before it is kept.

The caller passes an `openai.OpenAI` client (the `LLMResource` builds one); timeouts and the
client's own retries are the client's. On top of them, 429 and 5xx answers are retried here with
backoff, a refused or unreachable endpoint fails at once: `LLMUnavailableError` names the
base_url, `LLMError` names what the endpoint said or what was wrong with its output.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.errors import FieldError, LLMError, LLMUnavailableError
from synth_pipelines.core.tabular.drafter import DEFAULT_ROWS, draft_schema, parse_row_count
from synth_pipelines.core.tabular.schema import (
    COLUMN_TYPES,
    SEMANTIC_TYPES,
    Column,
    SchemaError,
    TableSchema,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from openai import OpenAI

Progress = Callable[[int, int], None]
"""progress(rows_done, rows_total), called from the calling thread after each batch."""

MAX_BACKOFF_SECONDS = 30.0


# ---------------------------------------------------------------------------------------------
# Rate limit and one completion
# ---------------------------------------------------------------------------------------------


class TokenBucket:
    """A thread-safe token bucket: `acquire()` blocks until a request may go.

    `rate` tokens per second, at most `capacity` saved up (1: requests are evenly spaced, no
    burst). Each caller reserves its slot under the lock and sleeps outside it, so N threads
    sharing a bucket of 5/s make 5 requests per second between them.
    """

    def __init__(self, rate: float, capacity: float = 1.0):
        if rate <= 0:
            raise FieldError("rate_limit_per_second", f"must be > 0, got {rate}")
        self.rate = float(rate)
        self.capacity = max(1.0, float(capacity))
        self._tokens = self.capacity
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token, sleeping until there is one; the seconds slept."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            delay = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if delay > 0:
            time.sleep(delay)
        return delay


def _base_url(client: Any) -> str:
    return str(getattr(client, "base_url", "") or "the configured endpoint")


def _retry_delay(exc: Any, attempt: int, backoff: float) -> float:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    retry_after = headers.get("retry-after") if hasattr(headers, "get") else None
    if retry_after is not None:
        try:
            return min(MAX_BACKOFF_SECONDS, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(MAX_BACKOFF_SECONDS, backoff * 2 ** (attempt - 1) * (1 + random.random() / 4))


def _complete(
    client: OpenAI,
    *,
    model: str,
    messages: list[dict[str, str]],
    response_format: dict[str, Any] | None,
    limiter: TokenBucket | None,
    max_attempts: int,
    backoff: float,
    stop: threading.Event | None = None,
) -> str:
    """The assistant's content for one chat completion. 429/5xx: retried with backoff up to
    `max_attempts` calls; unreachable: LLMUnavailableError; any other failure: LLMError."""
    import openai

    url = _base_url(client)
    for attempt in range(1, max(1, max_attempts) + 1):
        if stop is not None and stop.is_set():
            raise LLMError("cancelled: another batch failed")
        if limiter is not None:
            limiter.acquire()
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if response_format is not None:
            kwargs["response_format"] = response_format
        try:
            response = client.chat.completions.create(**kwargs)
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            what = "timed out" if isinstance(exc, openai.APITimeoutError) else "connection failed"
            raise LLMUnavailableError(
                f"the LLM endpoint {url} cannot be reached ({what}): check the base URL "
                "(SYNTH_LLM_BASE_URL) and that the server is up"
            ) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            if (status == 429 or status >= 500) and attempt < max_attempts:
                time.sleep(_retry_delay(exc, attempt, backoff))
                continue
            raise LLMError(_status_message(url, model, status, exc, attempt)) from exc
        except openai.APIError as exc:  # an answer the client could not read
            if attempt < max_attempts:
                time.sleep(_retry_delay(exc, attempt, backoff))
                continue
            raise LLMError(f"the LLM endpoint {url} sent an unreadable answer: {exc}") from exc
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):  # a body that is not a chat completion (an HTML page)
            if attempt < max_attempts:
                time.sleep(_retry_delay(None, attempt, backoff))
                continue
            raise LLMError(f"the LLM endpoint {url} answered with something not a chat completion")
        if not choices or getattr(choices[0], "message", None) is None:
            return ""
        message = choices[0].message
        refusal = getattr(message, "refusal", None)
        if refusal and not message.content:
            return json.dumps({"refusal": refusal})
        return message.content or ""
    raise AssertionError("unreachable")  # pragma: no cover


def _status_message(url: str, model: str, status: int, exc: Any, attempts: int) -> str:
    detail = getattr(exc, "message", None) or str(exc)
    if status in (401, 403):
        return (
            f"the LLM endpoint {url} refused the API key (HTTP {status}): set OPENAI_API_KEY "
            f"to a valid key. {detail}"
        )
    if status == 404:
        return f"the LLM endpoint {url} does not know model {model!r} (HTTP 404): {detail}"
    if status == 429 or status >= 500:
        return (
            f"the LLM endpoint {url} kept failing (HTTP {status}) after {attempts} tries: {detail}"
        )
    return f"the LLM endpoint {url} rejected the request (HTTP {status}): {detail}"


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _parse_json(content: str) -> Any:
    """JSON from an assistant message, tolerating a ```json fence; ValueError says why not."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text:
        raise ValueError("the answer was empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from None


# ---------------------------------------------------------------------------------------------
# Schema drafting
# ---------------------------------------------------------------------------------------------

_DRAFT_SYSTEM = f"""You design tables of synthetic data. Given a request in plain English, answer \
with one JSON object: a table schema matching the JSON schema you are given.

- name: the table, snake_case (e.g. financial_transactions); description: one sentence.
- rows: the number of rows the request asks for (10k = 10000, 1.5M = 1500000); \
{DEFAULT_ROWS} when it names none.
- columns: one per field the request names, in its order, snake_case names.
- type: one of {", ".join(COLUMN_TYPES)}.
- semantic_type (optional) makes values realistic: {", ".join(SEMANTIC_TYPES)}. Use "id" for \
identifiers, "currency_code" for currencies, "email" for e-mail addresses.
- Money: type float, min 0.01, distribution lognormal, decimals 2. Ages: integer 18 to 90. \
Dates and datetimes: min/max as ISO 8601 strings.
- category columns need a non-empty list of distinct categories.
- min/max only on integer, float, date and datetime columns; pattern only on strings; \
decimals only on floats; distribution only on numbers.
- depends_on names another column a value derives from (an email from full_name).
- source "llm" only for free text that must agree with other columns of its row (a review \
that fits its rating); everything else "local".
Answer with the JSON object only."""


def _schema_response_format() -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "table_schema",
            "schema": TableSchema.model_json_schema(),
            "strict": False,
        },
    }


def draft_schema_with_llm(
    client: OpenAI,
    *,
    model: str,
    prompt: str,
    max_attempts: int = 3,
    limiter: TokenBucket | None = None,
    backoff: float = 0.5,
) -> TableSchema:
    """A TableSchema for `prompt`, drafted by `model` with structured output.

    An answer that is not JSON or not a valid schema is sent back with the problem, up to
    `max_attempts` answers; then LLMError naming the last problem. LLMUnavailableError when the
    endpoint cannot be reached. `rows` defaults to the count the prompt names (offline parser)
    and `description` to the prompt when the model leaves them out."""
    if prompt is None or not str(prompt).strip():
        raise FieldError("prompt", "prompt is empty: describe the table and name its columns")
    prompt = str(prompt).strip()
    messages = [
        {"role": "system", "content": _DRAFT_SYSTEM},
        {"role": "user", "content": prompt},
    ]
    problem = "no answer"
    for _ in range(max(1, max_attempts)):
        content = _complete(
            client,
            model=model,
            messages=messages,
            response_format=_schema_response_format(),
            limiter=limiter,
            max_attempts=max_attempts,
            backoff=backoff,
        )
        try:
            return _schema_from_answer(content, prompt)
        except (ValueError, SchemaError) as exc:
            problem = str(exc)
        messages = [
            *messages,
            {"role": "assistant", "content": content},
            {
                "role": "user",
                "content": (
                    f"That answer is not a valid table schema: {problem}\n"
                    "Fix it and answer with the corrected JSON object only."
                ),
            },
        ]
    raise LLMError(
        f"the LLM ({model} at {_base_url(client)}) gave no valid table schema in "
        f"{max(1, max_attempts)} attempts; last problem: {problem}"
    )


def _schema_from_answer(content: str, prompt: str) -> TableSchema:
    data = _parse_json(content)
    if isinstance(data, dict) and "refusal" in data and len(data) == 1:
        raise ValueError(f"the model refused: {data['refusal']}")
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if isinstance(data.get("table_schema"), dict):  # some models wrap it in its name
        data = data["table_schema"]
    data = dict(data)
    if not data.get("description"):
        data["description"] = prompt
    if data.get("rows") is None:
        data["rows"] = parse_row_count(prompt) or DEFAULT_ROWS
    schema = TableSchema.parse(data)
    if schema.rows is not None:
        schema.check_rows(schema.rows)
    return schema


@dataclass(frozen=True)
class LLM:
    """An OpenAI-compatible client and the settings its calls share (one rate limiter)."""

    client: OpenAI
    model: str
    max_workers: int = 4
    rate_limit_per_second: float | None = None
    max_attempts: int = 3
    limiter: TokenBucket | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.limiter is None and self.rate_limit_per_second:
            object.__setattr__(self, "limiter", TokenBucket(self.rate_limit_per_second))

    @property
    def base_url(self) -> str:
        return _base_url(self.client)

    def draft_schema(self, prompt: str) -> TableSchema:
        return draft_schema_with_llm(
            self.client,
            model=self.model,
            prompt=prompt,
            max_attempts=self.max_attempts,
            limiter=self.limiter,
        )

    def fill(
        self,
        schema: TableSchema,
        table: pa.Table,
        columns: Sequence[str] | None = None,
        *,
        chunk_rows: int = 50,
        progress: Progress | None = None,
    ) -> tuple[pa.Table, int]:
        """`fill_llm_columns` for `columns` (default: the schema's source="llm" columns)."""
        if columns is None:
            columns = llm_columns(schema)
        return fill_llm_columns(
            self.client,
            model=self.model,
            schema=schema,
            table=table,
            columns=list(columns),
            chunk_rows=chunk_rows,
            max_workers=self.max_workers,
            max_attempts=self.max_attempts,
            progress=progress,
            limiter=self.limiter,
        )


def draft(prompt: str, llm: LLM | None = None) -> TableSchema:
    """The schema for a prompt: drafted by `llm` when given, else by the offline drafter."""
    if llm is None:
        return draft_schema(prompt)
    return llm.draft_schema(prompt)


def llm_columns(schema: TableSchema) -> list[str]:
    """The columns an LLM fills: those with source "llm"."""
    return [column.name for column in schema.columns if column.source == "llm"]


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
