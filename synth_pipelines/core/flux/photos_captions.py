"""Captions for LoRA training photos: the trigger word, a template, an optional captioning model.

Trigger handling follows ai-toolkit: `[trigger]` in the text is replaced by the trigger word, as
is `{trigger}`; text naming neither gets "<trigger>, " in front. Every caption names the trigger
exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)

Captioner = Callable[[Image.Image], str]

_TRIGGER = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PLACEHOLDERS = ("[trigger]", "{trigger}")
_WORD_CHARS = "A-Za-z0-9_-"


def check_trigger(trigger: str) -> str:
    """`trigger` unchanged, or InvalidInputError: 1-32 letters, digits, '_' or '-'."""
    if not isinstance(trigger, str) or not _TRIGGER.fullmatch(trigger):
        raise InvalidInputError(
            f"trigger word must be 1-32 letters, digits, '_' or '-' with no spaces, got "
            f"{trigger!r}: pick a rare token such as 'ohwx' or 'sks_person'"
        )
    return trigger


def count_trigger(caption: str, trigger: str) -> int:
    """How many times `trigger` appears in `caption` as a whole word."""
    return len(re.findall(_whole_word(trigger), caption))


def _whole_word(trigger: str) -> str:
    return rf"(?<![{_WORD_CHARS}]){re.escape(trigger)}(?![{_WORD_CHARS}])"


def apply_trigger(text: str, trigger: str) -> str:
    """`text` with its `[trigger]` or `{trigger}` replaced, or "<trigger>, <text>" without one.

    InvalidInputError unless the result names the trigger exactly once.
    """
    if any(placeholder in text for placeholder in _PLACEHOLDERS):
        caption = text
        for placeholder in _PLACEHOLDERS:
            caption = caption.replace(placeholder, trigger)
    else:
        caption = f"{trigger}, {text}" if text else trigger
    times = count_trigger(caption, trigger)
    if times != 1:
        raise InvalidInputError(
            f"caption template {text!r} names the trigger '{trigger}' {times} times: write "
            "[trigger] (or {trigger}) once, or leave it out to have it put in front"
        )
    return caption


def caption_photo(
    image: Image.Image, trigger: str, template: str, captioner: Captioner | None
) -> str:
    """The caption of one prepared photo: the template, or "<trigger> <model caption>"."""
    if captioner is None:
        return apply_trigger(template, trigger)
    described = " ".join(str(captioner(image)).split())
    # A model that happens to write the trigger or a placeholder must not name it twice.
    for placeholder in _PLACEHOLDERS:
        described = described.replace(placeholder, " ")
    described = re.sub(_whole_word(trigger), " ", described)
    described = " ".join(described.split()).rstrip(".")
    return apply_trigger(f"{{trigger}} {described}".strip(), trigger)


def load_captioner(
    path: str | Path, max_new_tokens: int = 40, prompt: str | None = None
) -> Captioner:
    """A captioner from a local image-to-text model folder (BLIP, GIT, BLIP-2, ...): PIL image in,
    one-line caption out. `prompt` is passed to the processor for models that take one.

    MissingCheckpointError when `path` holds no loadable model; MissingBackendError without
    transformers installed. Runs on the CPU unless torch sees a GPU.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise MissingCheckpointError(
            f"no captioning model at '{folder}': the folder needs config.json and the weights "
            "(e.g. a local copy of Salesforce/blip-image-captioning-base)"
        )
    try:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
    except ImportError as exc:
        raise MissingBackendError(
            f"captioning needs transformers and torch ({exc}): pip install 'synth_pipelines[ml]'"
        ) from exc
    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise MissingCheckpointError(
            f"'{folder}' does not hold a loadable image-to-text model: {exc}"
        ) from exc
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()

    def caption(image: Image.Image) -> str:
        inputs = processor(images=image.convert("RGB"), text=prompt, return_tensors="pt")
        with torch.inference_mode():
            tokens = model.generate(**inputs.to(device), max_new_tokens=max_new_tokens)
        if prompt and not model.config.is_encoder_decoder:
            tokens = tokens[:, inputs["input_ids"].shape[1] :]  # drop the echoed prompt
        return processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()

    return caption
