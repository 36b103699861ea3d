"""A model directory (adapter, LoRA) as one blob to encrypt and store, and back."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def pack_directory(directory: Path) -> bytes:
    """The files under `directory` as an uncompressed tar (safetensors do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(directory)))
    return buffer.getvalue()


def unpack_directory(data: bytes, directory: Path) -> Path:
    """Unpack `pack_directory`'s bytes into `directory`; member paths are checked ("data" filter:
    nothing outside it, no links out, no devices)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(directory, filter="data")
    return directory
