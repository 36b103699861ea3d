"""Request and response bodies of the API, as they appear in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DatasetRequestBody(BaseModel):
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
    expires_at: datetime | None = None
    download_url: str | None = Field(
        default=None,
        description=(
            "Only in the answer to the request itself: the link holds a secret code that is "
            "stored hashed and never shown again. It works once the dataset is ready."
        ),
    )
    downloads: int = 0
    reason: str | None = Field(default=None, description="why it is backordered")
    error: str | None = Field(default=None, description="why it failed")


class ErrorBody(BaseModel):
    detail: str
    field: str | None = None
