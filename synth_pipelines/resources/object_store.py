"""The object store as a Dagster resource: a local directory by default, S3/R2/MinIO for scale."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from synth_pipelines.core.storage.object_store import ObjectStore, open_object_store


class ObjectStoreResource(dg.ConfigurableResource):
    """Builds the factory's ObjectStore from configuration; call ``get_store()`` in an asset.

    ``backend="local"`` keeps objects under ``root``; ``backend="s3"`` keeps them in ``bucket``
    under ``prefix``. Both are built by ``core.storage.object_store.open_object_store``, the one
    place the API builds its store too (standard credential chain, ``profile_name``,
    ``endpoint_url``, standard retries).
    """

    backend: str = Field(default="local", description="'local' or 's3'.")
    root: str = Field(default="", description="Directory for the local backend.")
    bucket: str = Field(default="", description="Bucket for the s3 backend.")
    prefix: str = Field(default="", description="Key prefix inside the bucket.")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (R2, MinIO); None for AWS S3."
    )
    region_name: str | None = Field(default=None, description="S3 region.")
    profile_name: str | None = Field(default=None, description="AWS profile for credentials.")
    max_attempts: int = Field(
        default=3,
        description="Attempts per S3 call, first included; kept low so a dead endpoint fails fast.",
    )

    _store: ObjectStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail the run at start, not mid-asset, when the configuration is unusable.
        self.get_store()

    def get_store(self) -> ObjectStore:
        """The configured ObjectStore, built once per resource instance (no network I/O)."""
        if self._store is None:
            self._store = self._build_store()
        return self._store

    def _build_store(self) -> ObjectStore:
        return open_object_store(
            self.backend,
            root=self.root,
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            profile_name=self.profile_name,
            max_attempts=self.max_attempts,
        )
