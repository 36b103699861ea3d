"""Photos of one real person, offline, for `synth demo`, tests and benchmarks: variants of
scikit-image's astronaut (mirrored, tilted, cropped off-centre, stored sideways with an EXIF
orientation tag), each far from the others by perceptual hash once prepared.

scikit-image comes with the `dev` extra (`make demo` and `make test` install it)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from synth_pipelines.core.errors import MissingBackendError

EXIF_ORIENTATION = 0x0112
GREY = (90, 90, 90)


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def tilt(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=GREY)


def astronaut() -> Image.Image:
    try:
        import skimage.data
    except ImportError:
        raise MissingBackendError(
            "the demo photos come from scikit-image: pip install 'synth_pipelines[dev]'"
        ) from None
    return Image.fromarray(skimage.data.astronaut())


def upright(face: Image.Image) -> Image.Image:
    """The variant stored sideways: mirrored and tilted 6 degrees."""
    return tilt(ImageOps.mirror(face), 6)


def sideways_pixels(face: Image.Image) -> Image.Image:
    # EXIF orientation 6 says: turn 90 degrees clockwise to display. Store it turned the other way.
    return upright(face).transpose(Image.Transpose.ROTATE_90)


def subject_photos() -> dict[str, bytes]:
    """Five photos of one face, pairwise >= 14 bits apart by perceptual hash once prepared."""
    face = astronaut()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return {
        "front.jpg": encode(face, quality=92),
        "mirrored.png": encode(ImageOps.mirror(face), "PNG"),
        "tilted.jpg": encode(tilt(face, 12), quality=92),
        "edge.jpg": encode(face.crop((150, 40, 450, 340)), quality=92),  # face at the edge
        "sideways.jpg": encode(sideways_pixels(face), quality=92, exif=exif.tobytes()),
    }
