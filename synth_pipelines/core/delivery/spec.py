"""What a dataset request asks for: the validated spec, parsed from the API's body or read back
from a stored request (one typed view, so no caller reads the stored JSON by key)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

from synth_pipelines.core.errors import FieldError, InvalidInputError
from synth_pipelines.core.faces.buckets import ALL_BUCKET_KEYS, Bucket
from synth_pipelines.core.storage.models import DatasetRequest

FORMATS = ("zip", "webdataset")
IMAGE_SIZE_RANGE = (32, 1024)
NO_LIMIT = 2**63 - 1  # a stored request was checked against the limit when it was made


class SpecError(FieldError):
    """A request spec that is not valid; `field` names the offending field."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a researcher asks for: faces per bucket, archive format, image size, exclusivity."""

    buckets: dict[str, int]
    format: str = "zip"
    image_size: int = 256
    exclusive: bool = True

    @classmethod
    def parse(cls, raw: dict[str, Any], max_total: int) -> DatasetSpec:
        """Validate a raw spec; SpecError names the field and the accepted values."""
        buckets = raw.get("buckets")
        if not isinstance(buckets, dict) or not buckets:
            raise SpecError(
                "buckets",
                "buckets must map bucket names to counts, e.g. "
                '{"female/adult": 10}; buckets: ' + ", ".join(ALL_BUCKET_KEYS),
            )
        parsed: dict[str, int] = {}
        for name, count in buckets.items():
            try:
                key = Bucket.parse(name).key
            except InvalidInputError as exc:
                raise SpecError(f"buckets.{name}", str(exc)) from None
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise SpecError(
                    f"buckets.{name}", f"count for {key} must be an integer of at least 1"
                )
            parsed[key] = parsed.get(key, 0) + count
        total = sum(parsed.values())
        if total > max_total:
            raise SpecError(
                "buckets",
                f"{total} faces requested; at most {max_total} per request "
                "(SYNTH_MAX_DATASET_SIZE)",
            )
        fmt = raw.get("format", "zip")
        if fmt not in FORMATS:
            raise SpecError("format", f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
        size = raw.get("image_size", 256)
        low, high = IMAGE_SIZE_RANGE
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
            raise SpecError("image_size", f"image_size must be an integer from {low} to {high}")
        exclusive = raw.get("exclusive", True)
        if not isinstance(exclusive, bool):
            raise SpecError("exclusive", "exclusive must be true or false")
        return cls(dict(sorted(parsed.items())), fmt, size, exclusive)

    @property
    def total(self) -> int:
        return sum(self.buckets.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "format": self.format,
            "image_size": self.image_size,
            "exclusive": self.exclusive,
        }


def buckets_from_csv(text: str) -> dict[str, Any]:
    """The `buckets` of a spec from CSV lines `bucket,count` (a `bucket,count` header line is
    optional; blank lines are skipped). Only the shape is read here: `DatasetSpec.parse` checks
    the bucket names and counts. SpecError (field "csv") names the line at fault."""
    buckets: dict[str, Any] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and [cell.lower() for cell in cells] == ["bucket", "count"]:
            continue
        if len(cells) != 2:
            raise SpecError("csv", f"line {number}: expected 'bucket,count', got {','.join(row)!r}")
        name, count = cells
        if not count.isdigit():
            raise SpecError("csv", f"line {number}: count {count!r} is not a whole number")
        buckets[name] = buckets.get(name, 0) + int(count)
    if not buckets:
        raise SpecError("csv", "the CSV has no 'bucket,count' lines, e.g. 'female/adult,10'")
    return buckets


def request_spec(request: DatasetRequest) -> DatasetSpec:
    """The typed spec of a stored request (validated when it was made; no size limit applies)."""
    return DatasetSpec.parse(request.spec, max_total=NO_LIMIT)
