"""A small client of the dataset API: submit, wait, download, verify. Used by `synth request`
and the demo; researchers can use it from Python too."""

from __future__ import annotations

import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from synth_pipelines.core.delivery.archive import verify_archive
from synth_pipelines.core.errors import InvalidInputError, StorageError, SynthError

FINAL = ("ready", "failed", "expired")


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


class DatasetClient(ApiClient):
    """The dataset endpoints: submit, wait, download, verify."""

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """POST /datasets; the answer holds the id and the one-time download_url."""
        return self._call("POST", "/datasets", json=spec)

    def status(self, request_id: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{request_id}")

    def wait(
        self,
        request_id: str,
        timeout: float = 600,
        poll: float = 0.25,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the request is ready; raise on failed, expired or timeout."""

        def finished(current: dict[str, Any]) -> bool:
            if current["status"] in FINAL and current["status"] != "ready":
                raise SynthError(
                    f"dataset {request_id} is {current['status']}: "
                    f"{current.get('error') or current.get('reason') or 'no reason given'}"
                )
            return current["status"] == "ready"

        def late(current: dict[str, Any]) -> str:
            return f"dataset {request_id} still {current['status']} after {timeout:.0f} s" + (
                f" ({current['reason']})" if current.get("reason") else ""
            )

        return self._poll(lambda: self.status(request_id), finished, late, timeout, poll, on_update)

    @staticmethod
    def verify_and_extract(archive: Path, out: Path) -> tuple[dict[str, Any], Path]:
        """Check every file against the manifest, then unpack next to the archive."""
        manifest = verify_archive(archive)
        folder = out / archive.name.rsplit(".", 1)[0]
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(folder)
        else:
            with tarfile.open(archive) as bundle:
                bundle.extractall(folder, filter="data")
        return manifest, folder
