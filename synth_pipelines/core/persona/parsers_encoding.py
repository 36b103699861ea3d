"""Decoding export bytes as UTF-8, with the line of the first bad byte when they are not."""

from __future__ import annotations

from synth_pipelines.core.persona.messages import ExportFormatError


def line_of_offset(data: bytes, offset: int) -> int:
    """The 1-based line number of byte `offset` in `data`."""
    return data.count(b"\n", 0, offset) + 1


def decode_utf8(data: bytes, what: str) -> str:
    """`data` decoded as UTF-8 without a leading BOM; ExportFormatError at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = line_of_offset(data, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ExportFormatError(
            f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "re-export it as UTF-8",
            line,
        ) from None
    return text.removeprefix("\ufeff")


def split_lines(text: str) -> list[str]:
    """`text` split on newlines only (not on the Unicode separators `str.splitlines` honours),
    so list positions are the file's line numbers minus one."""
    return [line.removesuffix("\r") for line in text.split("\n")]
