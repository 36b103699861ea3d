"""Model directories: an adapter or LoRA as one blob to encrypt and store, and back; a test
model built once on first use."""

from __future__ import annotations

import fcntl
import io
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

# SYNTH_PERSONA_BASE_MODEL / SYNTH_FLUX_BASE_MODEL value that builds the tiny labelled test model.
TINY_TEST_MODEL = "tiny-test"


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


def build_once(path: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """`path`, built by `build(tmp_dir)` the first time (checked by the `marker` file in it):
    built in a temporary sibling and renamed into place, under a file lock, so concurrent runs
    neither build twice nor see a half-built directory."""
    if (path / marker).exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / marker).exists():
            building = Path(tempfile.mkdtemp(dir=path.parent))
            build(building)
            building.rename(path)
    return path
