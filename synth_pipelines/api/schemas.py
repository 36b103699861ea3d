"""Request and response bodies of the API, as they appear in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DatasetRequestBody(BaseModel):
    """The JSON shape of a request; what the values may be is checked by `DatasetSpec.parse`."""

    # Strict: JSON types as declared, so `true` is not a count of 1 and "yes" is not a boolean.
    model_config = ConfigDict(strict=True)

    buckets: dict[str, int] = Field(
        description='Faces per bucket (gender/age_group), e.g. {"female/adult": 10}',
        examples=[{"female/adult": 10, "male/senior": 5}],
    )
    format: str = Field(default="zip", description="zip | webdataset")
    image_size: int = Field(default=256, description="Side of the delivered images, 32-1024 px")
    exclusive: bool = Field(default=True, description="No other dataset ever receives these faces")


class DatasetStatus(BaseModel):
    id: str
    status: str = Field(description="pending, packaging, backordered, ready, failed, expired")
    counts: dict[str, dict[str, int]] = Field(
        description="requested (and, once ready, delivered) faces per bucket"
    )
    format: str
    image_size: int
    exclusive: bool
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    queue_to_ready_seconds: float | None = None
    download_ready: bool = Field(
        default=False,
        description="true once the archive can be fetched with the download_url given at creation",
    )
    expires_at: datetime | None = Field(
        default=None, description="when the download link stops working (ready or expired)"
    )
    download_url: str | None = Field(
        default=None,
        description=(
            "Only in the answer to the request itself (POST): the link holds a secret code that "
            "is stored only as a hash and never shown again. It answers 409 until the dataset "
            "is ready, then the archive, then 410 once expires_at has passed."
        ),
    )
    downloads: int = Field(default=0, description="archive downloads through the link so far")
    reason: str | None = Field(default=None, description="why it is backordered")
    error: str | None = Field(default=None, description="why it failed")


class ErrorBody(BaseModel):
    detail: str = Field(description="what is wrong and, where there is one, the fix")
    field: str | None = Field(default=None, description="the request field at fault, if any")
