"""Images inside Markdown, as the Dagster UI shows them in metadata: a PNG as a data URL, and a
thumbnail of any image Pillow reads. One place for what the flux, image set and fitted-table
metadata each show."""

from __future__ import annotations

import base64
import io


def png_markdown(png: bytes, caption: str) -> str:
    """`![caption](data:image/png;base64,...)`: the PNG shown inline."""
    return f"![{caption}](data:image/png;base64,{base64.b64encode(png).decode()})"


def thumbnail_png(data: bytes, side: int) -> bytes:
    """The image in `data` (any format Pillow reads) as an RGB PNG at most `side` px a side;
    Pillow's error when it does not decode."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()
