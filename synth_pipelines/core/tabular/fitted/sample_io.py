"""Reading a user's sample (CSV or Parquet) into a DataFrame, with errors that name the column.

CSV is read as UTF-8, UTF-8 with a BOM, or UTF-16 with a BOM; anything else (cp1252, latin-1)
is refused rather than guessed. Parquet is recognised by its suffix or its magic bytes. A sample
needs a header and at least `MIN_ROWS` rows; a column may not be entirely null, nor mix numbers
with words (beyond a few codes among text).
"""

import io
import pathlib
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_pipelines.core.errors import FieldError

__all__ = ["MIN_ROWS", "SampleError", "check_frame", "read_sample"]

MIN_ROWS = 10  # fewer rows give no distribution worth fitting (and a model that memorises)
_NUMBER = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_TEXT_NUMBERS_MAX = 0.2  # text columns may hold this share of number-like codes


class SampleError(FieldError):
    """A sample that cannot be fitted; `field` is "sample" or "sample.<column>"."""


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SampleError(
            "sample",
            f"unknown encoding: the file is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}). Save it as UTF-8 (or UTF-16 with a BOM) and upload it again; "
            "cp1252 and latin-1 are not guessed",
        ) from None


def read_sample(data: bytes | pathlib.Path, *, filename: str, max_bytes: int) -> pd.DataFrame:
    """The sample as a DataFrame (CSV: numbers parsed, text as strings; Parquet: its types).
    SampleError when it is empty, over `max_bytes` (checked before reading), undecodable,
    headerless, shorter than MIN_ROWS rows, or has an all-null or mixed-type column."""
    size = data.stat().st_size if isinstance(data, pathlib.Path) else len(data)
    if size > max_bytes:
        raise SampleError(
            "sample",
            f"the sample is {size:,} bytes, over the limit of {max_bytes:,}: upload a smaller "
            "sample (a few thousand rows fit a model well)",
        )
    raw = data.read_bytes() if isinstance(data, pathlib.Path) else bytes(data)
    if not raw.strip():
        raise SampleError("sample", f"the file {filename!r} is empty")
    if filename.lower().endswith((".parquet", ".pq")) or raw[:4] == b"PAR1":
        try:
            df = pq.read_table(pa.BufferReader(raw)).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise SampleError(
                "sample", f"{filename!r} is not a readable Parquet file: {exc}"
            ) from None
    else:
        text = _decode(raw)
        try:
            df = pd.read_csv(io.StringIO(text), dtype=None, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            raise SampleError("sample", f"{filename!r} has no header row") from None
        except pd.errors.ParserError as exc:
            raise SampleError("sample", f"{filename!r} is not a readable CSV: {exc}") from None
        if all(_NUMBER.match(str(name)) for name in df.columns):
            first = ", ".join(map(str, df.columns[:4]))
            raise SampleError(
                "sample",
                f"{filename!r} has no header row: its first row ({first}) is numbers; add a "
                "first row of column names",
            )
    check_frame(df)
    return df


def check_frame(df: pd.DataFrame) -> None:
    """SampleError for a frame that cannot be fitted: too few rows, an unnamed, all-null or
    mixed-type column."""
    if len(df.columns) == 0:
        raise SampleError("sample", "the sample has no columns (no header row)")
    if len(df) < MIN_ROWS:
        raise SampleError(
            "sample",
            f"the sample has {len(df)} row{'s' if len(df) != 1 else ''}: a fit needs at least "
            f"{MIN_ROWS}",
        )
    for name in df.columns:
        series = df[name]
        if str(name).startswith("Unnamed:"):
            raise SampleError("sample", f"column {list(df.columns).index(name) + 1} has no name")
        if series.isna().all():
            raise SampleError(
                f"sample.{name}",
                f"column {name!r} is entirely empty: drop it or give it values",
            )
        if series.dtype == object:
            _check_mixed(str(name), series.dropna())


def _check_mixed(name: str, values: pd.Series) -> None:
    kinds = values.map(lambda v: isinstance(v, int | float) or bool(_NUMBER.match(str(v))))
    share = float(kinds.mean())
    if 0 < share < 1 and share > _TEXT_NUMBERS_MAX:
        numbers = values[kinds].astype(str).unique()[:3].tolist()
        words = values[~kinds].astype(str).unique()[:3].tolist()
        raise SampleError(
            f"sample.{name}",
            f"column {name!r} mixes numbers ({', '.join(numbers)}) with text "
            f"({', '.join(words)}): make it all numbers (empty for missing) or all text",
        )
