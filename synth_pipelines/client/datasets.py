"""A small client of the dataset API: submit, wait, download, verify. Used by `synth request`
and the demo; researchers can use it from Python too."""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth_pipelines.client.base import ApiClient
from synth_pipelines.core.delivery.verify import verify_archive
from synth_pipelines.core.errors import SynthError

FINAL = ("ready", "failed", "expired")


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
