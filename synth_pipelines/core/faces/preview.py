"""Contact sheets: many images as one grid of thumbnails, for previews in the Dagster UI."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from synth_pipelines.core.errors import InvalidInputError

_LABEL_HEIGHT = 14
_GAP = 2


def contact_sheet(
    images: Sequence[Image.Image],
    columns: int = 10,
    thumb: int = 128,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """Lay `images` out as a grid of `thumb`-pixel squares, `columns` wide, in order.

    With `labels` (one per image) a small caption sits under each thumbnail. Returns an RGB
    image of `min(columns, len(images))` by `ceil(len(images) / columns)` cells, each
    `thumb + 2` pixels wide and `thumb + 2` (plus the label strip) high.
    """
    if not images:
        raise InvalidInputError("contact_sheet needs at least one image")
    if columns < 1 or thumb < 8:
        raise InvalidInputError(f"columns must be >= 1 and thumb >= 8, got {columns} and {thumb}")
    if labels is not None and len(labels) != len(images):
        raise InvalidInputError(f"got {len(labels)} labels for {len(images)} images; give one each")
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    cell_w = thumb + _GAP
    cell_h = thumb + _GAP + (_LABEL_HEIGHT if labels is not None else 0)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, image in enumerate(images):
        x, y = (i % cols) * cell_w + _GAP // 2, (i // cols) * cell_h + _GAP // 2
        # Fit inside the square without distortion; letterbox on white.
        small = image.convert("RGB")
        small.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
        sheet.paste(small, (x + (thumb - small.width) // 2, y + (thumb - small.height) // 2))
        if labels is not None:
            draw.text((x + 2, y + thumb + 1), str(labels[i]), fill=(20, 20, 20), font=font)
    return sheet
