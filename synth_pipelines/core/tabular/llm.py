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

The pieces live by concept: `llm_request` (one completion: rate limit, retries, errors, JSON
answers), `llm_rows` (the row backend and per-value validation) and this module (schema
drafting and the `LLM` settings object). Everything is importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.errors import FieldError, InvalidInputError, LLMError
from synth_pipelines.core.tabular.drafter import DEFAULT_ROWS, draft_schema, parse_row_count
from synth_pipelines.core.tabular.llm_request import (
    MAX_BACKOFF_SECONDS,
    TokenBucket,
    _base_url,
    _complete,
    _parse_json,
)
from synth_pipelines.core.tabular.llm_rows import (
    Progress,
    fill_llm_columns,
    llm_columns,
    validate_value,
)
from synth_pipelines.core.tabular.schema import (
    COLUMN_TYPES,
    SEMANTIC_TYPES,
    SchemaError,
    TableSchema,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from openai import OpenAI

__all__ = [
    "LLM",
    "MAX_BACKOFF_SECONDS",
    "Progress",
    "TokenBucket",
    "draft",
    "draft_schema_with_llm",
    "fill_llm_columns",
    "llm_columns",
    "validate_value",
]


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
- currency (an ISO 4217 code such as EUR) and unit (celsius, percent, V, kg) only on integer and \
float columns, when the request names them.
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


NO_KEY = "not-needed"  # local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) need none
DEFAULT_TIMEOUT = 60.0  # seconds per request: a dead endpoint fails in seconds, not minutes
DEFAULT_MAX_RETRIES = 1  # the openai client's own retries per request


def llm_configured(base_url: str | None, api_key: str | None) -> bool:
    """Whether an LLM endpoint is configured: a base URL (local server) or an OpenAI key."""
    return bool(base_url or api_key)


def openai_client(
    base_url: str | None,
    api_key: str | None,
    model: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    organization: str | None = None,
    project: str | None = None,
) -> OpenAI:
    """An `openai.OpenAI` client for an OpenAI-compatible endpoint (no network I/O). The Dagster
    resource and the API both build their client here."""
    from openai import OpenAI

    if not model.strip():
        raise InvalidInputError("the LLM needs a model name (SYNTH_LLM_MODEL)")
    return OpenAI(
        api_key=api_key or NO_KEY,
        organization=organization,
        project=project,
        base_url=base_url or None,
        timeout=timeout,
        max_retries=max_retries,
    )
