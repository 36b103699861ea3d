"""A subject's images for its pages: the prepared (accepted) photos, the rejected uploads and the
newest LoRA's validation samples, decrypted per request for the subject's owner or an admin.

Each function loads the subject through core's `load_subject` (404 to anyone else, 410 once
revoked) before it reads a byte, and the pages serve what they return from routes that do the
same: a subject's likeness is never at a public path or in a cache."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from sqlalchemy import select

from synth_pipelines.core.errors import NotFoundError, ObjectNotFoundError
from synth_pipelines.core.flux.pipeline import photos_manifest_key
from synth_pipelines.core.flux.subjects import (
    get_decrypted,
    load_subject,
    read_upload_named,
    subject_key,
    subject_prefix,
)
from synth_pipelines.core.security.accounts import Principal
from synth_pipelines.core.security.crypto import KeyWrapper
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import FluxLora
from synth_pipelines.core.storage.object_store import ObjectStore

THUMBNAIL = 192  # px, the long side of a gallery tile
SAMPLE_NAME = re.compile(r"^(?:final-\d+|step-\d{6}-\d+)$")


def _subject(db: FactoryDatabase, keys: KeyWrapper, who: Principal, subject_id: str):
    """(rejected photos, newest LoRA version or None, data key) of a subject `who` may see."""
    with db.session() as session:
        subject = load_subject(session, who, subject_id)
        version = session.scalar(
            select(FluxLora.version)
            .where(FluxLora.subject_id == subject_id)
            .order_by(FluxLora.version.desc())
        )
        return list(subject.rejected or []), version, subject_key(subject, keys)


def _accepted(store: ObjectStore, key: bytes, subject_id: str) -> list[dict[str, Any]]:
    """The prepared photos' manifest; empty until subject_photos has run."""
    try:
        body = get_decrypted(store, key, subject_id, photos_manifest_key(subject_id))
    except ObjectNotFoundError:
        return []
    return json.loads(body)


def _sample_prefix(subject_id: str, version: int) -> str:
    return f"{subject_prefix(subject_id)}loras/v{version}/samples/"


def _samples(store: ObjectStore, subject_id: str, version: int | None) -> list[str]:
    """The newest LoRA's sample names: the final ones first, then by training step."""
    if version is None:
        return []
    prefix = _sample_prefix(subject_id, version)
    names = [k.removeprefix(prefix).removesuffix(".png.enc") for k in store.list_keys(prefix)]
    return sorted((n for n in names if SAMPLE_NAME.match(n)), key=lambda n: (n[0] != "f", n))


def gallery(
    db: FactoryDatabase, store: ObjectStore, keys: KeyWrapper, who: Principal, subject_id: str
) -> dict[str, Any]:
    """What the subject's page shows of its images: accepted photos (name, caption, size),
    rejected ones (name, reason), and the newest LoRA's samples, each by the index or name its
    image route takes."""
    rejected, version, key = _subject(db, keys, who, subject_id)
    accepted = [
        {"index": i, "name": item["name"], "caption": item.get("caption", ""),
         "size": f"{item.get('width')}x{item.get('height')}"}
        for i, item in enumerate(_accepted(store, key, subject_id))
    ]  # fmt: skip
    return {
        "accepted": accepted,
        "rejected": [{"index": i, **item} for i, item in enumerate(rejected)],
        "samples": _samples(store, subject_id, version),
        "sample_version": version,
    }


def thumbnail(data: bytes, side: int = THUMBNAIL) -> bytes:
    """`data` as a PNG at most `side` px on its long side, upright (EXIF orientation); a
    placeholder tile saying so for a file that is not an image that can be decoded."""
    from PIL import Image, ImageDraw, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((side, side))
            image = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        image = Image.new("RGB", (side, side), (227, 229, 232))
        ImageDraw.Draw(image).text((12, side // 2 - 8), "no preview", fill=(26, 26, 26))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def accepted_thumbnail(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    who: Principal,
    subject_id: str,
    index: int,
) -> bytes:
    _, _, key = _subject(db, keys, who, subject_id)
    manifest = _accepted(store, key, subject_id)
    if not 0 <= index < len(manifest):
        raise NotFoundError(f"subject {subject_id} has no accepted photo {index}")
    return thumbnail(get_decrypted(store, key, subject_id, manifest[index]["key"]))


def rejected_thumbnail(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    who: Principal,
    subject_id: str,
    index: int,
) -> bytes:
    """The `index`th rejected photo as uploaded (its upload is kept until revocation)."""
    rejected, _, key = _subject(db, keys, who, subject_id)
    if not 0 <= index < len(rejected):
        raise NotFoundError(f"subject {subject_id} has no rejected photo {index}")
    return thumbnail(read_upload_named(store, key, subject_id, rejected[index]["name"]))


def sample_png(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    who: Principal,
    subject_id: str,
    version: int,
    name: str,
) -> bytes:
    """One validation sample of LoRA `version`, full size."""
    _, newest, key = _subject(db, keys, who, subject_id)
    if (
        newest is None
        or not 1 <= version <= newest
        or name not in _samples(store, subject_id, version)
    ):
        raise NotFoundError(f"subject {subject_id} has no sample {name!r} of LoRA v{version}")
    object_key = f"{_sample_prefix(subject_id, version)}{name}.png.enc"
    return get_decrypted(store, key, subject_id, object_key)
