"""A small real image set for `synth demo` and the tests: crops of the photographs that ship
inside scikit-image and scikit-learn (nothing is downloaded), saved as JPEGs in class folders
(`photos/`, `textures/`, `documents/`), a few with GPS in their EXIF so that stripping it on
export shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# skimage.data loaders that read files shipped in the package, by class.
SOURCES = {
    "photos": ("astronaut", "coffee", "chelsea", "rocket", "cat", "hubble_deep_field", "retina"),
    "textures": ("grass", "gravel", "brick", "immunohistochemistry", "colorwheel"),
    "documents": ("page", "text", "coins", "clock", "horse"),
}
SIDES = (192, 256, 320)
GPS_IFD = 0x8825


def _loaded() -> dict[str, list[np.ndarray]]:
    import skimage.data
    from skimage.util import img_as_ubyte

    images: dict[str, list[np.ndarray]] = {}
    for label, names in SOURCES.items():
        for name in names:
            array = img_as_ubyte(getattr(skimage.data, name)())  # horse is boolean
            if array.ndim == 2:
                array = np.stack([array] * 3, axis=-1)
            images.setdefault(label, []).append(np.ascontiguousarray(array[..., :3]))
    try:
        from sklearn.datasets import load_sample_images

        images["photos"].extend(load_sample_images().images)
    except ImportError:  # scikit-learn is optional here
        pass
    return images


def _with_gps(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "synth demo camera"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 24.0)})
    from io import BytesIO

    out = BytesIO()
    image.save(out, format="JPEG", quality=88, exif=exif)
    return out.getvalue()


def write_demo_set(folder: Path, count: int = 48, seed: int = 0) -> Path:
    """`count` JPEG crops in class folders under `folder` (made if need be), deterministic by
    seed; every fifth has GPS in its EXIF. Returns `folder`."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    sources = _loaded()
    labels = sorted(sources)
    for index in range(count):
        label = labels[index % len(labels)]
        array = sources[label][int(rng.integers(len(sources[label])))]
        height, width = array.shape[:2]
        side = int(min(rng.choice(SIDES), height, width))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = Image.fromarray(array[top : top + side, left : left + side])
        if rng.random() < 0.3:  # a few landscape images, so the size mix is not one square
            crop = crop.resize((side, max(64, int(side * 0.75))))
        path = folder / label / f"{label}_{index:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if index % 5 == 0:
            path.write_bytes(_with_gps(crop))
        else:
            crop.save(path, format="JPEG", quality=int(rng.integers(70, 96)))
    return folder
