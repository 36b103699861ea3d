"""One chat completion against an OpenAI-compatible endpoint, shared by every LLM call.

`_complete` sends one request and returns the assistant's content: it waits on a `TokenBucket`
(a rate limit shared by threads), retries 429 and 5xx answers with backoff (honouring
Retry-After, capped at `MAX_BACKOFF_SECONDS`), fails at once with `LLMUnavailableError` naming
the base_url when the endpoint cannot be reached, and with `LLMError` naming what the endpoint
said otherwise. `_parse_json` reads the JSON out of an answer, tolerating a ```json fence.

Schema drafting (`llm`) and the row backend (`llm_rows`) both build on these.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.errors import FieldError, LLMError, LLMUnavailableError

if TYPE_CHECKING:
    from openai import OpenAI

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
