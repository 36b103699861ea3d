"""A FaceGenerator backed by a local diffusers text-to-image checkpoint.

torch and diffusers live in the optional `ml` extra, so they are imported inside methods only.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)
from synth_pipelines.core.faces.buckets import AGE_RANGES, Bucket
from synth_pipelines.core.faces.generation import GeneratedFace

DEFAULT_PROMPT_TEMPLATE = (
    "a studio portrait photo, {age}-year-old {age_word} {gender_word}, {hair}, {expression}, "
    "{lighting}, head and shoulders, looking at the camera, neutral background, sharp focus, "
    "natural skin texture"
)
DEFAULT_NEGATIVE_PROMPT = (
    "cartoon, illustration, painting, drawing, 3d render, deformed, distorted face, extra limbs, "
    "blurry, low quality, watermark, text, multiple people"
)

# Words the prompt uses for each bucket; diffusion models know "girl"/"boy" better than ages.
GENDER_WORDS: dict[tuple[str, str], str] = {
    ("female", "child"): "girl",
    ("female", "teen"): "girl",
    ("male", "child"): "boy",
    ("male", "teen"): "boy",
}
ADULT_GENDER_WORDS: dict[str, str] = {"female": "woman", "male": "man"}
AGE_WORDS: dict[str, str] = {
    "child": "young",
    "teen": "teenage",
    "young_adult": "young",
    "adult": "middle-aged",
    "senior": "elderly",
}
HAIR_STYLES: tuple[str, ...] = (
    "short dark hair",
    "long brown hair",
    "curly black hair",
    "straight blond hair",
    "wavy auburn hair",
    "shoulder-length red hair",
    "tied-back hair",
)
SENIOR_HAIR_STYLES: tuple[str, ...] = (
    "short grey hair",
    "white hair",
    "thinning silver hair",
    "salt-and-pepper hair",
)
EXPRESSIONS: tuple[str, ...] = (
    "neutral expression",
    "slight smile",
    "broad smile",
    "serious expression",
    "relaxed expression",
)
LIGHTING: tuple[str, ...] = (
    "soft window light",
    "even studio lighting",
    "warm natural light",
    "overcast daylight",
    "soft diffused light",
)
PROMPT_PLACEHOLDERS: tuple[str, ...] = (
    "gender_word",
    "age_word",
    "age",
    "hair",
    "expression",
    "lighting",
)

_SEED_BITS = 53  # per-face seeds stay exact as JSON numbers (and in JavaScript clients)
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError)


def face_seeds(seed: int, n: int) -> list[int]:
    """The per-face seeds that `generate(bucket, n, seed)` uses: one per index, from
    numpy's SeedSequence over (seed, index), so face i does not depend on n."""
    if seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed}")
    if n < 0:
        raise InvalidInputError(f"n must be a non-negative integer, got {n}")
    return [
        int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])
        >> (64 - _SEED_BITS)
        for index in range(n)
    ]


def face_attributes(bucket: Bucket, face_seed: int) -> dict[str, Any]:
    """The concrete age and look sampled for one face: age inside the bucket's range, hair,
    expression, lighting, plus the words the prompt uses. Deterministic in (bucket, face_seed)."""
    rng = np.random.default_rng(face_seed)
    low, high = AGE_RANGES[bucket.age_group]
    age = int(rng.integers(low, high + 1))
    hair_styles = SENIOR_HAIR_STYLES if bucket.age_group == "senior" else HAIR_STYLES
    return {
        "gender": bucket.gender,
        "age_group": bucket.age_group,
        "age": age,
        "gender_word": GENDER_WORDS.get(
            (bucket.gender, bucket.age_group), ADULT_GENDER_WORDS[bucket.gender]
        ),
        "age_word": AGE_WORDS[bucket.age_group],
        "hair": str(rng.choice(hair_styles)),
        "expression": str(rng.choice(EXPRESSIONS)),
        "lighting": str(rng.choice(LIGHTING)),
    }


def _check_prompt_template(template: str) -> None:
    sample = dict.fromkeys(PROMPT_PLACEHOLDERS, "x")
    try:
        template.format(**sample)
    except KeyError as exc:
        raise InvalidInputError(
            f"prompt template placeholder {{{exc.args[0]}}} is not one of: "
            + ", ".join(f"{{{name}}}" for name in PROMPT_PLACEHOLDERS)
        ) from exc
    except (IndexError, ValueError) as exc:
        raise InvalidInputError(f"prompt template {template!r} is not valid: {exc}") from exc


def _import_ml() -> tuple[Any, Any]:
    try:
        import diffusers
        import torch
    except ImportError as exc:
        raise MissingBackendError(
            f"the diffusers face generator needs the 'ml' extra ({exc.name or exc} is missing): "
            "install torch==2.13.0 first (the CPU build, or a CUDA build on GPU machines), "
            "then pip install 'synth_pipelines[ml]'"
        ) from exc
    return torch, diffusers


class DiffusersFaceGenerator:
    """Generates faces with a text-to-image pipeline saved by `DiffusionPipeline.save_pretrained`.

    Construction is cheap: the checkpoint is checked and loaded on first use (or by `load()`),
    never downloaded. Each face is reproducible from its own `seed` via `generate_from_seeds`.
    """

    def __init__(
        self,
        checkpoint_path: str | Path,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        num_inference_steps: int = 25,
        guidance_scale: float = 5.0,
        batch_size: int = 4,
        size: int = 512,
        device: str | None = None,
    ) -> None:
        if num_inference_steps < 1:
            raise InvalidInputError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        if size < 8 or size % 8:
            raise InvalidInputError(f"size must be a positive multiple of 8, got {size}")
        _check_prompt_template(prompt_template)
        self.checkpoint_path = Path(checkpoint_path)
        self.prompt_template = prompt_template
        self.negative_prompt = negative_prompt
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.batch_size = batch_size
        self.size = size
        self.name = f"diffusers:{self.checkpoint_path.name}"
        self._device = device
        self._pipeline: Any = None
        self._accepts_size = False
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()  # diffusers pipelines keep scheduler state per call

    @property
    def device(self) -> str:
        """The torch device generation runs on: the one given, else cuda when available."""
        if self._device is None:
            torch, _ = _import_ml()
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def load(self) -> None:
        """Check and load the checkpoint now instead of on first use.

        Raises MissingCheckpointError when the path is missing, is not a saved pipeline, or
        fails to load; MissingBackendError when torch/diffusers are not installed.
        """
        with self._load_lock:
            if self._pipeline is not None:
                return
            torch, diffusers = _import_ml()
            path = self.checkpoint_path
            expected = "a directory written by DiffusionPipeline.save_pretrained (model_index.json)"
            if not path.is_dir():
                raise MissingCheckpointError(
                    f"diffusers checkpoint '{path}' does not exist or is not a directory: "
                    f"expected {expected}"
                )
            if not (path / "model_index.json").is_file():
                raise MissingCheckpointError(
                    f"diffusers checkpoint '{path}' has no model_index.json: expected {expected}"
                )
            device = self.device
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            try:
                # diffusers 0.42 renamed torch_dtype to dtype (torch_dtype still works, deprecated).
                pipeline = diffusers.DiffusionPipeline.from_pretrained(
                    str(path), local_files_only=True, dtype=dtype
                )
            except ImportError as exc:
                raise MissingBackendError(
                    f"diffusers checkpoint '{path}' needs a library that is not installed: {exc}"
                ) from exc
            except _LOAD_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
                raise MissingCheckpointError(
                    f"diffusers checkpoint '{path}' could not be loaded: {reason}"
                ) from exc
            pipeline = pipeline.to(device)
            pipeline.set_progress_bar_config(disable=True)
            parameters = inspect.signature(pipeline.__call__).parameters
            self._accepts_size = "height" in parameters and "width" in parameters
            self._pipeline = pipeline

    def prompt_for(self, attributes: dict[str, Any]) -> str:
        """The prompt for one face's attributes (as made by `face_attributes`)."""
        return self.prompt_template.format(**{k: attributes[k] for k in PROMPT_PLACEHOLDERS})

    def generate(self, bucket: Bucket, n: int, seed: int) -> list[GeneratedFace]:
        """Generate n faces for a bucket; face i uses `face_seeds(seed, n)[i]`."""
        return self.generate_from_seeds(bucket, face_seeds(seed, n))

    def generate_from_seeds(self, bucket: Bucket, seeds: Sequence[int]) -> list[GeneratedFace]:
        """Generate one face per per-face seed (a GeneratedFace.seed), in order, in batches of
        `batch_size`. The same (bucket, seed) gives the same prompt and starting noise."""
        if any(s < 0 for s in seeds):
            raise InvalidInputError("face seeds must be non-negative integers")
        if not seeds:
            return []
        self.load()
        faces: list[GeneratedFace] = []
        for start in range(0, len(seeds), self.batch_size):
            faces.extend(self._generate_batch(bucket, seeds[start : start + self.batch_size]))
        return faces

    def _generate_batch(self, bucket: Bucket, seeds: Sequence[int]) -> list[GeneratedFace]:
        torch, _ = _import_ml()
        attributes = [face_attributes(bucket, s) for s in seeds]
        prompts = [self.prompt_for(a) for a in attributes]
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            # One generator per image: each face's noise depends on its own seed only.
            "generator": [torch.Generator(self.device).manual_seed(int(s)) for s in seeds],
            "output_type": "pil",
        }
        if self.negative_prompt:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(prompts)
        if self._accepts_size:
            kwargs["height"] = kwargs["width"] = self.size
        with self._call_lock:
            images = self._pipeline(**kwargs).images
        faces = []
        for face_seed, attrs, prompt, image in zip(seeds, attributes, prompts, images, strict=True):
            image = image.convert("RGB")
            if image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.Resampling.LANCZOS)
            face_attrs = {
                "prompt": prompt,
                "negative_prompt": self.negative_prompt,
                **attrs,
                "generator": self.name,
                "num_inference_steps": self.num_inference_steps,
                "guidance_scale": self.guidance_scale,
            }
            faces.append(
                GeneratedFace(image=image, bucket=bucket, seed=face_seed, attributes=face_attrs)
            )
        return faces
