"""Subject photos for Flux LoRAs and the identity check, on real photos with dlib's real models.

The only real face photo of one person that ships offline is scikit-image's astronaut; the
subject's photos are variants of it (mirrored, tilted, cropped off-centre, stored sideways with
an EXIF orientation tag), each far from the others by perceptual hash. Other people's faces come
from scikit-image's LFW subset: 25 px thumbnails of real faces, upscaled until dlib finds them.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance, ImageOps

from synth_pipelines.core.checks.flux_samples import (
    identity_check,
    identity_outcome,
    sample_distances,
)
from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.flux.photos import (
    BUCKET_SIDES,
    MAX_PHOTOS,
    NotEnoughPhotosError,
    PhotoSet,
    PreparedPhoto,
    detect_faces,
    load_captioner,
    prepare_photos,
    read_upload,
)
from synth_pipelines.core.flux.photos_captions import apply_trigger, caption_photo, count_trigger
from tests import face_photos
from tests.face_photos import GREY, encode, tilt

TRIGGER = "ohwx"


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a width x height RGB image, with no pixels behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _lfw_face(index: int) -> Image.Image:
    """LFW thumbnail `index` (25 px, grey) upscaled to 120 px on a 256 px canvas."""
    pixels = (skimage.data.lfw_subset()[index] * 255).astype(np.uint8)
    return _thumbnail_on_canvas(Image.fromarray(pixels))


def _thumbnail_on_canvas(face: Image.Image) -> Image.Image:
    canvas = Image.new("L", (256, 256), 128)
    canvas.paste(face.convert("L").resize((120, 120), Image.Resampling.BICUBIC), (68, 68))
    return canvas.convert("RGB")


@pytest.fixture(scope="module")
def upright(astronaut) -> Image.Image:
    return face_photos.upright(astronaut)


@pytest.fixture(scope="module")
def sideways_pixels(astronaut) -> Image.Image:
    return face_photos.sideways_pixels(astronaut)


@pytest.fixture(scope="module")
def subject_files() -> dict[str, bytes]:
    return face_photos.subject_photos()


@pytest.fixture(scope="module")
def bad_files(astronaut, upright, sideways_pixels, subject_files) -> dict[str, bytes]:
    """One upload for each reason a photo is rejected, by the reason expected."""
    crop = astronaut.crop((100, 0, 400, 300))
    group = Image.new("RGB", (620, 320), (200, 200, 200))
    group.paste(crop, (5, 10))
    group.paste(ImageOps.mirror(crop), (315, 10))
    far = Image.new("RGB", (512, 512), (120, 120, 120))
    far.paste(astronaut.resize((256, 256), Image.Resampling.LANCZOS), (100, 100))  # 44 px face
    front = subject_files["front.jpg"]
    return {
        "group.jpg": encode(group, quality=90),
        "coffee.png": encode(Image.fromarray(skimage.data.coffee()), "PNG"),
        "notes.txt": b"the subject's best side is the left one",
        "cut.jpg": front[: len(front) // 2],
        "small.jpg": encode(astronaut.resize((200, 240)), quality=90),
        "huge.png": _png_claiming(12_000, 10_000),
        "bomb.png": _png_claiming(20_000, 20_000),
        "far.jpg": encode(far, quality=90),
        "front_copy.jpg": front,
        "front_again.jpg": encode(astronaut, quality=70),
        "upright.png": encode(upright, "PNG"),
        "untagged.jpg": encode(sideways_pixels, quality=92),
    }


@pytest.fixture(scope="module")
def prepared(subject_files, bad_files) -> PhotoSet:
    return prepare_photos([*subject_files.items(), *bad_files.items()], TRIGGER)


def test_every_photo_of_the_subject_is_cropped_to_its_face_and_bucketed(prepared, subject_files):
    assert [photo.name for photo in prepared.accepted] == list(subject_files)
    for photo in prepared.accepted:
        image = _decode(photo.image_png)
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (photo.width, photo.height) == photo.bucket
        assert max(photo.bucket) in BUCKET_SIDES
        assert all(side % 16 == 0 for side in photo.bucket)
        # The crop is around the face: dlib finds it again, where face_box says.
        (found,) = detect_faces(np.asarray(image))
        left, top, right, bottom = photo.face_box
        overlap = max(0, min(right, found[2]) - max(left, found[0])) * max(
            0, min(bottom, found[3]) - max(top, found[1])
        )
        assert overlap > 0.5 * (right - left) * (bottom - top)
        assert photo.caption == f"a photo of {TRIGGER}"
        assert photo.source_sha256 != photo.sha256
        # The astronaut's face is ~90 px: a 2.2x crop of it is ~200 px, upscaled to 512.
        assert photo.bucket == (512, 512) and photo.notes[0].startswith("upscaled from")
    hashes = [imagehash.hex_to_hash(photo.phash) for photo in prepared.accepted]
    gaps = [a - b for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(gaps) >= 14  # far from the default near-duplicate distance of 6


def _prepare_alone(name: str, image: Image.Image, **options) -> PreparedPhoto:
    """Prepare one photo: too few to train on, but the error carries the prepared photo."""
    with pytest.raises(NotEnoughPhotosError) as caught:
        prepare_photos([(name, encode(image, quality=92))], TRIGGER, **options)
    assert not caught.value.rejected, caught.value.rejected
    return caught.value.accepted[0]


def test_the_bucket_follows_the_crop_around_the_face(astronaut):
    large = astronaut.resize((1100, 1100), Image.Resampling.LANCZOS)  # a ~195 px face
    photo = _prepare_alone("large.jpg", large, margin=1.5)
    assert photo.bucket == (768, 768) and photo.notes == ()  # a ~780 px crop: no upscaling
    assert _prepare_alone("large.jpg", large, margin=1.5, max_side=512).bucket == (512, 512)
    # A photo narrower than the crop around its face: the crop is cut to the photo, and the
    # bucket takes the nearest aspect (4:3 for 400x320, 3:4 for 320x400).
    medium = astronaut.resize((1024, 1024), Image.Resampling.LANCZOS)
    assert _prepare_alone("wide.jpg", medium.crop((150, 100, 850, 420))).bucket == (512, 384)
    assert _prepare_alone("tall.jpg", medium.crop((300, 0, 620, 700))).bucket == (384, 512)
    # A 91 px face in a 2400 px photo is 30 px in the detection copy: the second pass finds it.
    distant = Image.new("RGB", (2400, 1600), GREY)
    distant.paste(astronaut, (900, 500))
    photo = _prepare_alone("distant.jpg", distant)
    assert photo.bucket == (512, 512) and photo.notes[0].startswith("upscaled from")


def test_exif_orientation_is_honoured(prepared):
    rejected = {photo.name: photo.reason for photo in prepared.rejected}
    # Stored sideways with the tag: accepted, and the same picture as the upright copy.
    assert "sideways.jpg" in [photo.name for photo in prepared.accepted]
    assert rejected["upright.png"] == "near-duplicate of sideways.jpg"
    # The same pixels without the tag show a face on its side, which dlib does not find.
    assert rejected["untagged.jpg"].startswith("no face found")


def test_each_rejected_photo_says_why(prepared):
    rejected = {photo.name: photo.reason for photo in prepared.rejected}
    cut = rejected.pop("cut.jpg")
    assert cut.startswith("corrupt or truncated image (") and "truncated" in cut
    assert rejected == {
        "group.jpg": "2 faces found: use photos of the subject alone",
        "coffee.png": "no face found (the detector needs a frontal face, not in profile)",
        "notes.txt": "not an image (cannot decode)",
        "small.jpg": "too small: 200x240, at least 256 px on the short side",
        "huge.png": "too large: 12000x10000, at most 100 megapixels",
        "bomb.png": "too large: over 178 megapixels, at most 100 megapixels",
        "far.jpg": "face too small: 44 px, at least 64 px: use a closer photo",
        "front_copy.jpg": "duplicate of front.jpg (identical file)",
        "front_again.jpg": "near-duplicate of front.jpg",
        "upright.png": "near-duplicate of sideways.jpg",
        "untagged.jpg": "no face found (the detector needs a frontal face, not in profile)",
    }


def test_too_few_usable_photos_fail_naming_every_rejected_photo(subject_files, bad_files):
    files = [
        ("front.jpg", subject_files["front.jpg"]),
        ("tilted.jpg", subject_files["tilted.jpg"]),
        ("photos/b.jpg", bad_files["group.jpg"]),
        ("c.png", bad_files["notes.txt"]),
        ("edge.jpg", subject_files["edge.jpg"]),
        ("d.jpg", bad_files["front_again.jpg"]),
    ]
    with pytest.raises(NotEnoughPhotosError) as caught:
        prepare_photos(files, TRIGGER)
    assert str(caught.value) == (
        "3 usable photos, at least 4 needed; rejected: "
        "b.jpg: 2 faces found: use photos of the subject alone; "
        "c.png: not an image (cannot decode); "
        "d.jpg: near-duplicate of front.jpg"
    )
    assert isinstance(caught.value, InvalidInputError)
    assert [photo.name for photo in caught.value.accepted] == [
        "front.jpg",
        "tilted.jpg",
        "edge.jpg",
    ]
    assert [photo.name for photo in caught.value.rejected] == ["b.jpg", "c.png", "d.jpg"]
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


def test_captions_name_the_trigger_once(subject_files):
    seen: list[tuple[int, int]] = []

    def captioner(image: Image.Image) -> str:
        seen.append(image.size)
        return "  A woman in an ohwx space suit. "

    files = list(subject_files.items())[:4]
    photos = prepare_photos(files, TRIGGER, captioner=captioner).accepted
    assert seen == [photo.bucket for photo in photos]  # the prepared image, not the upload
    assert {photo.caption for photo in photos} == {f"{TRIGGER} A woman in an space suit"}

    assert apply_trigger("[trigger] smiling, studio light", TRIGGER) == "ohwx smiling, studio light"
    assert apply_trigger("a photo of {trigger}", TRIGGER) == "a photo of ohwx"
    assert apply_trigger("a portrait", TRIGGER) == "ohwx, a portrait"
    assert count_trigger("ohwx_2 and ohwx-x are not ohwx", TRIGGER) == 1
    with pytest.raises(InvalidInputError, match="names the trigger 'ohwx' 2 times"):
        prepare_photos(files, TRIGGER, caption_template="[trigger] and {trigger}")


@pytest.mark.parametrize("trigger", ["", "two words", "x" * 33, "ohwx!", "naïve", None])
def test_bad_trigger_words_are_refused(trigger, subject_files):
    with pytest.raises(InvalidInputError, match="trigger word must be 1-32 letters"):
        prepare_photos(list(subject_files.items()), trigger)


def test_bad_options_are_refused(subject_files):
    files = list(subject_files.items())
    with pytest.raises(InvalidInputError, match="max_side must be an integer >= 512"):
        prepare_photos(files, TRIGGER, max_side=256)
    with pytest.raises(InvalidInputError, match="margin"):
        prepare_photos(files, TRIGGER, margin=-0.1)
    with pytest.raises(InvalidInputError, match="phash_distance"):
        prepare_photos(files, TRIGGER, phash_distance=64)


def test_more_than_50_photos_are_refused(subject_files):
    many = [(f"p{k}.jpg", subject_files["front.jpg"]) for k in range(MAX_PHOTOS + 1)]
    with pytest.raises(InvalidInputError, match="51 photos, at most 50"):
        prepare_photos(many, TRIGGER)
    with pytest.raises(InvalidInputError, match="51 files uploaded, at most 50"):
        read_upload(many)
    archive = _zip({f"p{k}.jpg": b"x" for k in range(MAX_PHOTOS + 1)})
    with pytest.raises(InvalidInputError, match="51 files uploaded, at most 50"):
        read_upload([("all.zip", archive)])
    assert len(read_upload(many[:MAX_PHOTOS])) == MAX_PHOTOS


def test_a_zip_upload_is_expanded_safely(subject_files):
    front, tilted = subject_files["front.jpg"], subject_files["tilted.jpg"]
    archive = _zip(
        {
            "holiday/": b"",
            "holiday/a.jpg": front,
            "holiday/deeper/b.jpg": tilted,
            "../../etc/cron.d/evil.jpg": b"traversal",
            "/abs/evil.jpg": b"absolute",
            "C:/evil.jpg": b"drive",
            "__MACOSX/holiday/._a.jpg": b"resource fork",
            "holiday/.DS_Store": b"finder",
            "holiday/Thumbs.db": b"windows",
            "other/a.jpg": tilted,  # same base name as holiday/a.jpg
        }
    )
    upload = read_upload([("C:\\fakepath\\photos.zip", archive), ("x/loose.png", b"loose")])
    assert upload == [
        ("a.jpg", front),
        ("b.jpg", tilted),
        ("a (2).jpg", tilted),
        ("loose.png", b"loose"),
    ]


def test_broken_empty_and_oversized_zips_are_refused():
    with pytest.raises(InvalidInputError, match=r"'photos\.zip' is not a readable zip archive"):
        read_upload([("photos.zip", b"PK\x03\x04 truncated")])
    with pytest.raises(InvalidInputError, match="no photos in the upload"):
        read_upload([("photos.zip", _zip({"__MACOSX/._a.jpg": b"x", "dir/": b""}))])
    with pytest.raises(InvalidInputError, match="no photos in the upload"):
        read_upload([])
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("bomb.jpg", "w", force_zip64=True) as member,
    ):
        block = bytes(2**24)
        for _ in range(32):  # 512 MB of zeros, ~0.5 MB compressed
            member.write(block)
    with pytest.raises(InvalidInputError, match="unpacks to more than 500 MB"):
        read_upload([("bomb.zip", buffer.getvalue())])


@pytest.fixture(scope="module")
def references(prepared) -> list[bytes]:
    return [photo.image_png for photo in prepared.accepted]


@pytest.fixture(scope="module")
def held_out(astronaut) -> list[bytes]:
    """Two photos of the subject not among the references (variants of the same photo: no
    second photo of her ships offline): mirrored, tilted the other way, grey, smaller, JPEG at
    quality 70; and a brighter off-centre crop at quality 60."""
    grey = ImageOps.grayscale(tilt(ImageOps.mirror(astronaut), -12)).convert("RGB")
    bright = ImageEnhance.Brightness(astronaut.crop((60, 0, 460, 400))).enhance(1.3)
    return [
        encode(grey.resize((400, 400), Image.Resampling.LANCZOS), quality=70),
        encode(bright, quality=60),
    ]


# Four LFW faces dlib detects, typical of the 91 it finds (0.78-0.84 of 0.59-0.94 here). At
# dlib's 0.6, 1 of those 91 would pass on its own (0.589): the threshold is dlib's, not ours.
LFW_FACES = (1, 5, 25, 33)


def test_identity_positive_control_the_subject_passes(embedder, references, held_out):
    distances = sample_distances(embedder, references, held_out)
    assert all(d is not None and d < 0.3 for d in distances.per_sample)  # observed: 0.24, 0.19
    result = identity_outcome(distances)
    assert result.passed and result.blocking, result.description
    assert result.metadata["faces_found"] == 2
    assert result.description.endswith("(threshold 0.6): the subject")


def test_identity_negative_control_other_people_fail(embedder, references, astronaut):
    others = [encode(_lfw_face(k), "PNG") for k in LFW_FACES]
    distances = sample_distances(embedder, references, others)
    assert min(distances.scored) > 0.6  # observed: 0.78-0.84
    result = identity_outcome(distances)
    assert not result.passed, result.description
    assert result.metadata["faces_found"] == len(LFW_FACES)
    assert result.description.endswith("not the subject")
    # Not the blur: the subject reduced to the same 25 px thumbnail stays nearer than any of them.
    thumbnail = astronaut.crop((150, 50, 300, 200)).resize((25, 25), Image.Resampling.BOX)
    self_blurred = sample_distances(
        embedder, references, [encode(_thumbnail_on_canvas(thumbnail), "PNG")]
    )
    assert self_blurred.per_sample[0] < min(distances.scored)


def test_identity_needs_faces_in_half_the_samples(embedder, references, held_out):
    no_face = encode(Image.fromarray(skimage.data.coffee()), "PNG")
    assert sample_distances(embedder, references, [no_face, no_face]).per_sample == [None, None]
    none = identity_check(embedder, references, [no_face, no_face])
    assert (none.passed, none.metadata) == (False, {"faces_found": 0, "threshold": 0.6})
    assert none.description == "no face found in any of the 2 samples"

    few_samples = [held_out[0], no_face, no_face]
    assert sample_distances(embedder, references, few_samples).per_sample[1:] == [None, None]
    few = identity_check(embedder, references, few_samples)
    assert not few.passed and few.metadata["faces_found"] == 1
    assert few.description.startswith("only 1 of 3 samples show a face, at least 2 needed")
    half = identity_check(embedder, references, [held_out[0], no_face])
    assert half.passed and half.metadata["faces_found"] == 1

    with pytest.raises(InvalidInputError, match="none of the 1 reference photos shows a face"):
        identity_check(embedder, [no_face], held_out)
    with pytest.raises(InvalidInputError, match="sample 0 is not an image"):
        identity_check(embedder, references, [b"not a png"])
    with pytest.raises(InvalidInputError, match="threshold must be a positive distance"):
        identity_check(embedder, references, held_out, threshold=0)


def test_a_captioner_path_without_a_model_is_a_missing_checkpoint(tmp_path):
    with pytest.raises(MissingCheckpointError, match="no captioning model at"):
        load_captioner(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text('{"model_type": "blip"}')
    with pytest.raises(
        MissingCheckpointError, match="does not hold a loadable image-to-text model"
    ):
        load_captioner(tmp_path)


def _tiny_blip(folder: Path) -> Path:
    """A tiny random BLIP captioning model (~100 KB) saved under `folder`, built offline."""
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "woman", "in", "space", "suit"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), bos_token="[CLS]")
    size = {"height": 32, "width": 32}
    processor = BlipProcessor(image_processor=BlipImageProcessor(size=size), tokenizer=tokenizer)
    layers = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    special = {"bos_token_id": 2, "sep_token_id": 3, "pad_token_id": 0}
    config = BlipConfig(
        text_config={"vocab_size": len(words), "hidden_size": 16, **special, **layers},
        vision_config={"hidden_size": 16, "image_size": 32, "patch_size": 8, **layers},
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BlipForConditionalGeneration(config)
    model.save_pretrained(folder / "blip")
    processor.save_pretrained(folder / "blip")
    return folder / "blip"


def test_a_local_captioning_model_captions_photos(tmp_path, subject_files):
    captioner = load_captioner(_tiny_blip(tmp_path), max_new_tokens=6)
    for image in (Image.new("RGB", (512, 384), (120, 90, 60)), _decode(subject_files["front.jpg"])):
        text = captioner(image)
        assert isinstance(text, str) and "\n" not in text
        assert set(text.split()) <= {"a", "woman", "in", "space", "suit"}  # random weights
        caption = caption_photo(image, TRIGGER, "unused template", captioner)
        assert caption.split(maxsplit=1)[0] == TRIGGER and count_trigger(caption, TRIGGER) == 1
