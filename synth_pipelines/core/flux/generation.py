"""Load a Flux.1 pipeline (optionally with a trained LoRA) and draw seeded images as PNG bytes.

torch and diffusers live in the optional `ml` extra, so they are imported inside functions.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def resolve_device(device: Literal["auto", "cpu", "cuda"] | str = "auto") -> Any:
    """`auto`: CUDA when available, else CPU. Asking for CUDA without one is a clear error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but no CUDA device is available")
    return torch.device(device)


def load_pipeline(
    path: str | Path, lora_dir: str | Path | None = None, device: str = "auto"
) -> Any:
    """A `FluxPipeline` from a Flux.1 directory (schnell, dev or a tiny test model), on `device`
    (bfloat16 on CUDA, float32 on CPU), with the LoRA in `lora_dir` loaded (not fused) if given.
    """
    import torch
    from diffusers import FluxPipeline

    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise MissingCheckpointError(
            f"{path} is not a Flux pipeline directory (no model_index.json)"
        )
    target = resolve_device(device)
    dtype = torch.bfloat16 if target.type == "cuda" else torch.float32
    try:
        pipe = FluxPipeline.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MissingCheckpointError(
            f"{path} does not hold a loadable Flux pipeline: {exc}"
        ) from exc
    pipe.to(target)
    pipe.set_progress_bar_config(disable=True)
    if lora_dir is not None:
        lora_dir = Path(lora_dir)
        if not (lora_dir / LORA_WEIGHT_NAME).is_file():
            raise MissingCheckpointError(f"{lora_dir} holds no {LORA_WEIGHT_NAME}")
        pipe.load_lora_weights(str(lora_dir), weight_name=LORA_WEIGHT_NAME)
    pipe.transformer.eval()
    return pipe


def size_multiple(pipe: Any) -> int:
    """Image sides must be multiples of this: the VAE's downsampling times Flux's 2x2 packing."""
    return pipe.vae_scale_factor * 2


def check_size(pipe: Any, width: int, height: int) -> None:
    multiple = size_multiple(pipe)
    if width <= 0 or height <= 0 or width % multiple or height % multiple:
        raise InvalidInputError(
            f"image size {width}x{height} is not allowed: both sides must be positive multiples "
            f"of {multiple}"
        )


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG bytes (deterministic for the same pixels)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def generate(
    pipe: Any,
    prompt: str,
    n: int = 1,
    seed: int = 0,
    steps: int = 4,
    width: int | None = None,
    height: int | None = None,
    guidance_scale: float | None = None,
    max_sequence_length: int = 512,
) -> list[bytes]:
    """`n` PNG images for `prompt`. Image i starts from CPU noise seeded with `seed + i` and is
    drawn on its own: the same for the same arguments on the same device, whatever `n`.
    `width`/`height` default to 1024 (Flux's native size); `guidance_scale` matters only for
    guidance-distilled models (dev) and defaults to 3.5 there; `max_sequence_length` is the T5
    prompt length (at most 512; use the one the LoRA was trained with)."""
    import torch

    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    if n < 1:
        raise InvalidInputError(f"n must be at least 1, got {n}")
    if steps < 1:
        raise InvalidInputError(f"steps must be at least 1, got {steps}")
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed}")
    if not 1 <= max_sequence_length <= 512:
        raise InvalidInputError(f"max_sequence_length must be 1..512, got {max_sequence_length}")
    width, height = width or 1024, height or 1024
    check_size(pipe, width, height)
    # LoRA layers injected by `load_lora_weights` start in training mode (dropout active).
    pipe.transformer.eval()
    with torch.no_grad():
        prompt_embeds, pooled_prompt_embeds, _ = pipe.encode_prompt(
            prompt=prompt, prompt_2=None, max_sequence_length=max_sequence_length
        )
    # One image per call: a batch would change the floating-point sums, and image i would then
    # depend on n. On a GPU one Flux image already fills the device, so little is lost.
    return [
        render_embeddings(
            pipe,
            prompt_embeds,
            pooled_prompt_embeds,
            seed + i,
            steps,
            width,
            height,
            3.5 if guidance_scale is None else guidance_scale,
        )
        for i in range(n)
    ]


def render_embeddings(
    pipe: Any,
    prompt_embeds: Any,
    pooled_prompt_embeds: Any,
    seed: int,
    steps: int,
    width: int,
    height: int,
    guidance_scale: float,
) -> bytes:
    """One PNG from precomputed text embeddings (`pipe.encode_prompt`), from CPU noise seeded
    with `seed`: exactly what `generate` draws for that prompt and seed, without needing the text
    encoders (samples during training use it)."""
    import torch

    image = pipe(
        prompt_embeds=prompt_embeds,
        pooled_prompt_embeds=pooled_prompt_embeds,
        num_inference_steps=steps,
        width=width,
        height=height,
        guidance_scale=guidance_scale,
        generator=[torch.Generator(device="cpu").manual_seed(seed)],
    ).images[0]
    return png_bytes(image)
