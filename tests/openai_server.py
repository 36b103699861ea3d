"""A small OpenAI-compatible HTTP server for tests: the stand-in for the external API.

    with FakeOpenAI() as server:
        server.reply('{"name": "t", "columns": [...]}')   # canned assistant contents, in order
        server.handler = lambda request: "..."            # or computed from the request JSON
        client = OpenAI(base_url=server.base_url, api_key="k", max_retries=0)

It serves `POST /v1/chat/completions` on 127.0.0.1 (a free port, a thread), records every
request (`server.requests`: path, headers, JSON body), and answers from the queue first, then the
handler. A queued or returned item is the assistant content (str, or a dict/list sent as JSON),
or a `Fail(status, ...)` for an HTTP error (429/500 with an OpenAI error body), or `Garbage(body)`
for a 200 whose body is not a chat completion. `Reply(content, delay=s)` answers after a pause.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fail:
    """An HTTP error answer."""

    status: int = 500
    message: str = "internal error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Garbage:
    """A 200 answer whose body is not a chat completion."""

    body: bytes = b"<html>not json</html>"


@dataclass
class Reply:
    """An assistant message, optionally after `delay` seconds."""

    content: Any
    delay: float = 0.0


Answer = str | dict | list | Fail | Garbage | Reply


@dataclass
class Request:
    path: str
    # lower-cased names
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def last_user_content(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.handler: Callable[[dict[str, Any]], Answer] | None = None
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------

    def reply(self, *answers: Answer) -> FakeOpenAI:
        with self._lock:
            self._queue.extend(answers)
        return self

    def _next(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body)
        return Fail(500, "the fake server has no scripted answer left")

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(
                        Request(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    answer = server._next(body)
                except Exception as exc:  # a broken test handler: say so in the response
                    answer = Fail(500, f"test handler raised {exc!r}")
                if isinstance(answer, Reply):
                    time.sleep(answer.delay)
                    answer = answer.content
                if isinstance(answer, Fail):
                    error = {"message": answer.message, "type": "server_error", "code": None}
                    self._send(answer.status, {"error": error}, answer.headers)
                elif isinstance(answer, Garbage):
                    self._send_raw(200, answer.body, "text/html")
                else:
                    content = answer if isinstance(answer, str) else json.dumps(answer)
                    self._send(200, _completion(body.get("model", "test-model"), content))

            def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, data: bytes, kind: str, headers: dict | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a delayed reply (the timeout tests) is expected: say nothing.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }
