"""A small client of the tabular endpoints, for `synth tabular` and Python users."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth_pipelines.client.base import ApiClient
from synth_pipelines.core.errors import SynthError


class TabularClient(ApiClient):
    def draft(self, prompt: str) -> dict[str, Any]:
        return self._call("POST", "/tabular/jobs", json={"prompt": prompt})

    def fit(
        self,
        sample: Path | str,
        api_key: str,
        rows: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """A job fitted to `sample`: a local CSV or Parquet file, uploaded, or an s3:// URI the
        server reads."""
        headers = {"Authorization": f"Bearer {api_key}"}
        if str(sample).startswith("s3://"):
            body = {"sample": str(sample), "seed": seed, **({"rows": rows} if rows else {})}
            return self._call("POST", "/tabular/jobs", json=body, headers=headers)
        path = Path(sample)
        fields = {"seed": str(seed), **({"rows": str(rows)} if rows else {})}
        with path.open("rb") as handle:
            return self._call(
                "POST",
                "/tabular/jobs",
                files={"file": (path.name, handle, "application/octet-stream")},
                data=fields,
                headers=headers,
            )

    def fit_tables(
        self,
        samples: list[Path | str],
        keys: list[str],
        api_key: str,
        rows: int | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """A job fitted to `samples` (one per table: local files, uploaded, or s3:// URIs the
        server reads) joined by `keys` ("child.column=parent.column")."""
        headers = {"Authorization": f"Bearer {api_key}"}
        extra = {"rows": rows} if rows else {}
        if all(str(sample).startswith("s3://") for sample in samples):
            body = {"samples": [str(s) for s in samples], "keys": keys, "seed": seed, **extra}
            return self._call("POST", "/tabular/jobs", json=body, headers=headers)
        with contextlib.ExitStack() as stack:
            files = [
                ("file", (Path(s).name, stack.enter_context(Path(s).open("rb")),
                          "application/octet-stream"))
                for s in samples
            ]  # fmt: skip
            fields = {"key": keys, "seed": str(seed), **{k: str(v) for k, v in extra.items()}}
            return self._call("POST", "/tabular/jobs", files=files, data=fields, headers=headers)

    def edit_schema(self, job_id: str, schema: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"/tabular/jobs/{job_id}/schema", json=schema)

    def confirm(self, job_id: str, **params: Any) -> dict[str, Any]:
        body = {key: value for key, value in params.items() if value is not None}
        return self._call("POST", f"/tabular/jobs/{job_id}/confirm", json=body)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/tabular/jobs/{job_id}")

    def wait(
        self,
        job_id: str,
        timeout: float = 3600,
        poll: float = 0.5,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until completed; raise on failed, on a draft (nothing will run) or timeout."""

        def finished(current: dict[str, Any]) -> bool:
            if current["status"] == "failed":
                raise SynthError(f"tabular job {job_id} failed: {current.get('error')}")
            if current["status"] == "draft":
                raise SynthError(
                    f"tabular job {job_id} is a draft: confirm it first "
                    f"(synth tabular confirm {job_id} --rows N)"
                )
            return current["status"] == "completed"

        def late(current: dict[str, Any]) -> str:
            return f"tabular job {job_id} still {current['status']} after {timeout:.0f} s"

        return self._poll(lambda: self.status(job_id), finished, late, timeout, poll, on_update)

    def fetch(self, job_id: str, fmt: str, out: Path, table: str | None = None) -> Path:
        """The job's table as `fmt` into `out`; of a multi-table job, the `table` named."""
        query = f"format={fmt}" + (f"&table={table}" if table else "")
        return self.download(f"/tabular/jobs/{job_id}/download?{query}", out)
