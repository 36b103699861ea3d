"""What every attribute classifier backend shares: images as RGB arrays, face boxes mapped back to
the original image, and importing a backend's optional package with an error that says what to
install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from synth_pipelines.core.errors import MissingBackendError

Box = tuple[int, int, int, int]  # (left, top, right, bottom)


def _rgb_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _clamped_box(box: Sequence[float], width: int, height: int, scale: float = 1.0) -> Box:
    """A detector box mapped back to the original image (divided by `scale`), clipped to it."""
    left, top, right, bottom = (float(v) / scale for v in box)
    return (
        min(max(round(left), 0), width - 1),
        min(max(round(top), 0), height - 1),
        min(max(round(right), 0), width - 1),
        min(max(round(bottom), 0), height - 1),
    )


def _area(box: Sequence[float]) -> float:
    return max(float(box[2]) - float(box[0]), 0.0) * max(float(box[3]) - float(box[1]), 0.0)


def _require_package(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingBackendError(
            f"the '{extra}' classifier needs the {module} package: "
            f"pip install 'synth_pipelines[{extra}]'"
        )


def _import_backend(module: str, backend: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackendError(
            f"the '{backend}' classifier could not import {module} ({exc}): {install}"
        ) from exc
