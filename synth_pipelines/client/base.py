"""The HTTP client every command and script shares: JSON calls with clear errors, polling,
streamed downloads. One client per line builds on it (datasets, tabular)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from synth_pipelines.core.errors import InvalidInputError, StorageError, SynthError


class ApiClient:
    """Talks to the synth_pipelines API at `base_url`: JSON calls with clear errors, and
    streamed downloads."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, follow_redirects=True)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StorageError(f"API at {self.base_url} is not reachable: {exc}") from exc
        if response.status_code == 422:
            raise InvalidInputError(response.json().get("detail", response.text))
        if response.status_code >= 400:
            detail = response.json().get("detail") if response.content else response.reason_phrase
            raise SynthError(f"{method} {path} → {response.status_code}: {detail}")
        return response.json()

    @staticmethod
    def _poll(
        status: Callable[[], dict[str, Any]],
        finished: Callable[[dict[str, Any]], bool],
        late: Callable[[dict[str, Any]], str],
        timeout: float,
        poll: float,
        on_update: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        """Call `status` every `poll` s until `finished` (which raises for a dead end) says so;
        past `timeout`, SynthError with `late`'s message."""
        deadline = time.monotonic() + timeout
        while True:
            current = status()
            if on_update is not None:
                on_update(current)
            if finished(current):
                return current
            if time.monotonic() > deadline:
                raise SynthError(late(current))
            time.sleep(poll)

    def download(
        self,
        download_url: str,
        out: Path,
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Stream a file into `out` (named as the server names it); returns its path."""
        out.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", download_url) as response:
            if response.status_code >= 400:
                response.read()
                raise SynthError(f"download failed ({response.status_code}): {response.text}")
            name = response.headers.get("content-disposition", "").partition("filename=")[2]
            path = out / (name.strip('"') or download_url.rstrip("/").rsplit("/", 2)[-2])
            total = int(response.headers.get("content-length") or 0) or None
            done = 0
            with open(path, "wb") as handle:
                for chunk in response.iter_bytes(1 << 20):
                    handle.write(chunk)
                    done += len(chunk)
                    if on_bytes is not None:
                        on_bytes(done, total)
        return path
