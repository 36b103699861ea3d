"""The training set of a Flux LoRA: validated images and captions (with the trigger word put in),
their VAE latents and text embeddings computed once, and a seeded, size-bucketed batch order.

Latents are cached as the VAE's posterior (mean and std, already shifted and scaled), so each
step still draws a fresh latent sample, as diffusers' `--cache_latents` does.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from synth_pipelines.core.errors import InvalidInputError

TRIGGER_PLACEHOLDER = "[trigger]"
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")


def apply_trigger(
    caption: str, trigger_word: str | None, mode: Literal["prepend", "replace"] = "replace"
) -> str:
    """The caption the model trains on.

    - `replace` (ai-toolkit): every `[trigger]` becomes the trigger word; a caption that still
      lacks the trigger word gets it prepended.
    - `prepend` (SimpleTuner, kohya): `[trigger]` placeholders are dropped and the trigger word
      is put first, exactly once.

    Without a trigger word captions are used as given; one holding `[trigger]` is an error.
    """
    if not trigger_word:
        if TRIGGER_PLACEHOLDER in caption:
            raise InvalidInputError(
                f"caption {caption!r} uses {TRIGGER_PLACEHOLDER} but no trigger_word is set"
            )
        return caption
    if mode == "replace":
        caption = caption.replace(TRIGGER_PLACEHOLDER, trigger_word)
        if trigger_word in caption:
            return caption
    else:
        caption = _SPACES.sub(" ", caption.replace(TRIGGER_PLACEHOLDER, " "))
        caption = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", caption).strip(" ,")
        if re.match(rf"{re.escape(trigger_word)}(\W|$)", caption):
            return caption
    return f"{trigger_word} {caption}".strip()


def fill_trigger(prompt: str, trigger_word: str | None) -> str:
    """A validation prompt: `[trigger]` becomes the trigger word; nothing is prepended, so a
    prompt without the trigger shows what the model draws without it."""
    if TRIGGER_PLACEHOLDER in prompt and not trigger_word:
        raise InvalidInputError(
            f"validation prompt {prompt!r} uses {TRIGGER_PLACEHOLDER} but no trigger_word is set"
        )
    return prompt.replace(TRIGGER_PLACEHOLDER, trigger_word or "")


def _decode(index: int, image: Any) -> Image.Image:
    if isinstance(image, bytes | bytearray):
        try:
            image = Image.open(io.BytesIO(image))
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidInputError(f"image {index} is not a readable image: {exc}") from exc
    if not isinstance(image, Image.Image):
        raise InvalidInputError(
            f"image {index} must be a PIL image or encoded image bytes, got {type(image).__name__}"
        )
    # Phone photos are often stored sideways with an EXIF orientation tag: apply it.
    return ImageOps.exif_transpose(image).convert("RGB")


def prepare_examples(
    images: Sequence[tuple[Any, str]],
    trigger_word: str | None,
    trigger_mode: Literal["prepend", "replace"],
    size_multiple: int,
) -> tuple[list[Image.Image], list[str]]:
    """Validate (image, caption) pairs: decoded RGB images and the captions to train on."""
    if not images:
        raise InvalidInputError("no training images: give at least one (image, caption) pair")
    decoded, captions = [], []
    for index, item in enumerate(images):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise InvalidInputError(f"training item {index} must be an (image, caption) pair")
        image, caption = item
        if not isinstance(caption, str) or not caption.strip():
            raise InvalidInputError(
                f"image {index} has no caption: every training image needs a non-empty caption "
                f"(use {TRIGGER_PLACEHOLDER} where the subject's trigger word goes)"
            )
        picture = _decode(index, image)
        width, height = picture.size
        if width % size_multiple or height % size_multiple:
            raise InvalidInputError(
                f"image {index} is {width}x{height}: both sides must be multiples of "
                f"{size_multiple} for Flux; crop or resize it to a bucket first"
            )
        decoded.append(picture)
        captions.append(apply_trigger(caption.strip(), trigger_word, trigger_mode))
    return decoded, captions


def examples_digest(pictures: Sequence[Image.Image], captions: Sequence[str]) -> str:
    """sha256 over the decoded pixels, sizes and final captions: identifies the training data."""
    digest = hashlib.sha256()
    for picture, caption in zip(pictures, captions, strict=True):
        digest.update(repr((picture.size, caption)).encode())
        digest.update(picture.tobytes())
    return digest.hexdigest()


def _pixels(picture: Image.Image) -> torch.Tensor:
    array = np.asarray(picture, dtype=np.float32) / 127.5 - 1.0  # [-1, 1], as the VAE expects
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


@dataclass
class PromptEmbedding:
    """T5 sequence embedding and CLIP pooled embedding of one prompt (batch of 1)."""

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor


@dataclass
class TrainingSet:
    """Cached latents (per image: posterior mean and std, and their mirror images when flipping)
    and prompt embeddings, on the training device."""

    captions: list[str]
    latent_mean: list[list[torch.Tensor]]  # [image][0: as is, 1: flipped]
    latent_std: list[list[torch.Tensor]]
    embeddings: dict[str, PromptEmbedding]
    text_ids: torch.Tensor
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) per image

    def __len__(self) -> int:
        return len(self.captions)


@torch.no_grad()
def encode_training_set(
    pipe: Any,
    pictures: Sequence[Image.Image],
    captions: Sequence[str],
    extra_prompts: Sequence[str],
    device: torch.device,
    max_sequence_length: int,
    random_flip: bool,
) -> TrainingSet:
    """Encode every image with the VAE and every distinct prompt with CLIP + T5 exactly once.

    Each encoder visits `device` only while it encodes, and is back on the CPU afterwards: the
    caller can then drop the text encoders and keep the VAE off the device while training.
    """
    embeddings: dict[str, PromptEmbedding] = {}
    text_ids = None
    pipe.text_encoder.to(device)
    pipe.text_encoder_2.to(device)
    for prompt in dict.fromkeys([*captions, *extra_prompts]):
        prompt_embeds, pooled, text_ids = pipe.encode_prompt(
            prompt=prompt, prompt_2=None, device=device, max_sequence_length=max_sequence_length
        )
        embeddings[prompt] = PromptEmbedding(prompt_embeds, pooled)
    pipe.text_encoder.to("cpu")
    pipe.text_encoder_2.to("cpu")

    vae = pipe.vae.to(device)
    shift, scale = vae.config.shift_factor or 0.0, vae.config.scaling_factor
    means, stds = [], []
    for picture in pictures:
        pixels = _pixels(picture).to(device, dtype=vae.dtype)
        batch = torch.cat([pixels, pixels.flip(-1)]) if random_flip else pixels
        posterior = vae.encode(batch).latent_dist
        # z = (x - shift) * scale, so a sample is (mean - shift) * scale + std * scale * noise.
        means.append(list(((posterior.mean.float() - shift) * scale).unbind(0)))
        stds.append(list((posterior.std.float() * scale).unbind(0)))
    vae.to("cpu")
    return TrainingSet(
        captions=list(captions),
        latent_mean=means,
        latent_std=stds,
        embeddings=embeddings,
        text_ids=text_ids,
        sizes=[picture.size for picture in pictures],
    )


def _buckets(sizes: Sequence[tuple[int, int]]) -> list[list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(size, []).append(index)
    return [groups[size] for size in sorted(groups)]


@lru_cache(maxsize=8)
def _epoch_batches(
    seed: int, epoch: int, sizes: tuple[tuple[int, int], ...], batch_size: int
) -> list[list[int]]:
    rng = np.random.default_rng([seed, epoch])
    batches = []
    for bucket in _buckets(sizes):
        order = [bucket[i] for i in rng.permutation(len(bucket))]
        batches += [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def batches_per_epoch(sizes: Sequence[tuple[int, int]], batch_size: int) -> int:
    return sum(-(-len(bucket) // batch_size) for bucket in _buckets(sizes))


def batch_indices(
    micro_step: int, sizes: Sequence[tuple[int, int]], batch_size: int, seed: int
) -> list[int]:
    """Image indices of (0-based) micro-batch `micro_step`. Each epoch shuffles every size bucket
    and the batches (seeded by (seed, epoch)); a batch never mixes sizes. Any step's batch is
    known without replaying earlier ones, which keeps resuming exact."""
    per_epoch = batches_per_epoch(sizes, batch_size)
    epoch, position = divmod(micro_step, per_epoch)
    return _epoch_batches(seed, epoch, tuple(sizes), batch_size)[position]
