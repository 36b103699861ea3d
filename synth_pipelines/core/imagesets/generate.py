"""Profile-guided generation: a synthetic image set whose sizes, brightness, contrast, colour,
sharpness and noise follow a real set's profile, from one of three backends.

- `simulation` (default, no weights): procedural scenes (`scenes.SceneSimulator`), or faces from
  the face simulator when the profile found faces in at least half of the images;
- `diffusion`: a local diffusers text-to-image checkpoint prompted "a photo of {label}";
- `gan`: a local StyleGAN2 checkpoint (`stylegan2.load_stylegan2`), truncated with ψ.

The contract: `build_generator(backend, checkpoint_path=…, device=…, **options)` gives an
`ImageGenerator`; its `generate(profile, count, seed)` streams `ImageRecord`s (PNG bytes, or
JPEG with `image_format="jpeg"`), the same bytes for the same (profile, count, seed), one image
(or one model batch) in memory at a time. Image i follows `sample_targets(profile, count,
seed)[i]`: a size from the profile's size mix, a label from its label mix, and brightness /
contrast / colourfulness / sharpness / noise drawn from its histograms. Each rendered image goes
through `match_statistics`, which moves its luma mean and std and its colourfulness to the
target, so every backend's output follows the profile; the simulation also blurs or sharpens
and adds noise to the target (`scenes.finish`). A record's metadata holds the backend, its own
seed and target, and the backend's parameters (ψ, prompt, steps, face bucket).

The profile is the JSON dict of the profiling step: `features[name]` with `mean`, `quantiles`
and `histogram` {edges (21), counts (20)}, `sizes` [{width, height, count}], `counts.images`,
`labels` {label: count}, `faces.images_with_faces`.
"""

from __future__ import annotations

import inspect
import io
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.imagesets.records import Box, ImageRecord
from synth_pipelines.core.imagesets.scenes import SceneSimulator, finish

BACKENDS = ("simulation", "diffusion", "gan")
FEATURES = ("brightness", "contrast", "colourfulness", "sharpness", "noise")
# Used when a profile lacks a feature: middling values of ordinary photos.
FEATURE_DEFAULTS = {
    "brightness": 115.0,
    "contrast": 55.0,
    "colourfulness": 40.0,
    "sharpness": 400.0,
    "noise": 1.5,
}
DEFAULT_SIZE = (256, 256)
# How records are encoded: lossless PNG (zlib level 1: most of the size gain for little time),
# or JPEG at quality 95 (several times faster to write, as most real photo sets are stored).
IMAGE_FORMATS: dict[str, dict[str, Any]] = {
    "png": {"format": "PNG", "compress_level": 1},
    "jpeg": {"format": "JPEG", "quality": 95},
}
FACE_SHARE = 0.5  # a profile is a face set when this share of its images has a face
DEFAULT_PROMPT = "a photo of {label}"
FALLBACK_PROMPT = "a photo"
DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, watermark, text, frame"
_SEED_BITS = 53
_CLIP_TOLERANCE = 0.002  # share of clipped channel values that needs no further pass
_SATURATION_LIMIT = 4.0  # at most this much more (or 1/this less) chroma than rendered

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Target:
    """What image `index` of a generated set should measure: size, luma mean (brightness) and
    std (contrast), Hasler-Süsstrunk colourfulness, Laplacian variance (sharpness), noise
    sigma, and its label (None when the profile has none). `seed` is the image's own seed."""

    index: int
    seed: int
    width: int
    height: int
    brightness: float
    contrast: float
    colourfulness: float
    sharpness: float
    noise: float
    label: str | None = None


@runtime_checkable
class ImageGenerator(Protocol):
    """Generates image sets to a profile. Deterministic for a given (profile, count, seed)."""

    name: str

    def generate(
        self, profile: Mapping[str, Any], count: int, seed: int, *, progress: Progress | None = None
    ) -> Iterator[ImageRecord]: ...


# --- targets ----------------------------------------------------------------------------------


def image_seed(seed: int, index: int) -> int:
    """The seed of image `index` of a set made with `seed` (SeedSequence, 53 bits so that it is
    exact in JSON); image i does not depend on the set's count."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0]
    return int(state) >> (64 - _SEED_BITS)


def _draw_feature(profile: Mapping[str, Any], name: str, rng: np.random.Generator) -> float:
    """A value of feature `name` drawn from the profile's histogram (a bin by its count, then
    uniform inside it); its mean, then a default, where there is no histogram."""
    feature = (profile.get("features") or {}).get(name) or {}
    histogram = feature.get("histogram") or {}
    edges = np.asarray(histogram.get("edges") or [], np.float64)
    counts = np.asarray(histogram.get("counts") or [], np.float64)
    if len(edges) == len(counts) + 1 and len(counts) and counts.sum() > 0:
        bin_index = int(rng.choice(len(counts), p=counts / counts.sum()))
        return float(rng.uniform(edges[bin_index], edges[bin_index + 1]))
    if feature.get("mean") is not None:
        return float(feature["mean"])
    return FEATURE_DEFAULTS.get(name, 0.0)


def _draw_size(profile: Mapping[str, Any], rng: np.random.Generator) -> tuple[int, int]:
    """A (width, height) from the profile's size mix; else width and height from their
    histograms (keeping the profile's median aspect); else 256 x 256."""
    sizes = profile.get("sizes") or []
    if isinstance(sizes, Mapping):  # the profile's {"distinct", "most_common": [...]}
        sizes = sizes.get("most_common") or []
    sizes = [s for s in sizes if int(s.get("count", 0)) > 0]
    if sizes:
        weights = np.array([float(s["count"]) for s in sizes])
        pick = sizes[int(rng.choice(len(sizes), p=weights / weights.sum()))]
        return int(pick["width"]), int(pick["height"])
    features = profile.get("features") or {}
    if features.get("width") and features.get("height"):
        width = max(8, round(_draw_feature(profile, "width", rng)))
        height = max(8, round(_draw_feature(profile, "height", rng)))
        return width, height
    return DEFAULT_SIZE


def _draw_label(profile: Mapping[str, Any], rng: np.random.Generator) -> str | None:
    labels = {str(k): float(v) for k, v in (profile.get("labels") or {}).items() if v and v > 0}
    if not labels:
        return None
    names = sorted(labels)
    weights = np.array([labels[n] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def sample_targets(profile: Mapping[str, Any], count: int, seed: int) -> list[Target]:
    """One Target per image: a size from the profile's size mix, a label from its label mix,
    and brightness / contrast / colourfulness / sharpness / noise each drawn from its feature
    histogram, so that the generated set's distributions follow the real one's. Target i
    depends on (profile, seed, i) only."""
    _check_count_and_seed(count, seed)
    return [_target(profile, index, seed) for index in range(count)]


def _target(profile: Mapping[str, Any], index: int, seed: int) -> Target:
    own_seed = image_seed(seed, index)
    rng = np.random.default_rng(own_seed)
    width, height = _draw_size(profile, rng)
    values = {name: _draw_feature(profile, name, rng) for name in FEATURES}
    return Target(
        index=index,
        seed=own_seed,
        width=width,
        height=height,
        brightness=float(np.clip(values["brightness"], 0, 255)),
        contrast=max(0.0, values["contrast"]),
        colourfulness=max(0.0, values["colourfulness"]),
        sharpness=max(0.0, values["sharpness"]),
        noise=max(0.0, values["noise"]),
        label=_draw_label(profile, rng),
    )


def _check_count_and_seed(count: int, seed: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise InvalidInputError(f"count must be a non-negative integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")


def is_face_profile(profile: Mapping[str, Any]) -> bool:
    """Whether the profiled set is a face set: faces in at least half of its images."""
    images = int((profile.get("counts") or {}).get("images") or 0)
    with_faces = int((profile.get("faces") or {}).get("images_with_faces") or 0)
    return images > 0 and with_faces >= FACE_SHARE * images


# --- statistics matching ----------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def colourfulness(pixels: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness of RGB pixels (float or uint8, 0..255)."""
    rgb = np.asarray(pixels, np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    spread = np.hypot(rg.std(), yb.std())
    centre = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * centre)


def match_statistics(
    image: Image.Image, target: Target, *, colour: bool = True, passes: int = 3
) -> Image.Image:
    """`image` (RGB) with its luma mean and std moved to the target's brightness and contrast
    and, with `colour`, its chroma scaled towards the target's colourfulness.

    Per pixel, rgb' = L' + g (rgb - L), where L is the pixel's luma, g the chroma gain and
    L' = (L - mean) s + brightness the shifted, stretched luma: chroma scaling leaves luma as
    it is and the luma change, the same on all three channels, leaves chroma as it is. Up to
    `passes` passes make up for what clipping to 0..255 took and for a chroma gain limited to
    1/4..4 per pass; a pass that clips (almost) nothing at its full gain is the last.
    """
    rgb = np.array(image.convert("RGB"), np.float32)
    for _ in range(max(1, passes)):
        gray = rgb @ _LUMA
        wanted = gain = 1.0
        if colour:
            current = colourfulness(rgb[::2, ::2])  # a quarter of the pixels measure it well
            if current > 1e-3:
                wanted = target.colourfulness / current
                gain = float(np.clip(wanted, 1 / _SATURATION_LIMIT, _SATURATION_LIMIT))
        mean, std = float(gray.mean()), float(gray.std())
        scale = target.contrast / std if std > 1e-3 else 1.0
        offset = gray * (scale - gain) + (target.brightness - scale * mean)
        rgb *= gain
        rgb += offset[..., None]
        clipped = np.count_nonzero(rgb < 0) + np.count_nonzero(rgb > 255)
        np.clip(rgb, 0, 255, out=rgb)
        if clipped <= _CLIP_TOLERANCE * rgb.size and gain == wanted:
            break
    return Image.fromarray((rgb + 0.5).astype(np.uint8), "RGB")


def fit_to_size(
    image: Image.Image, size: tuple[int, int], box: tuple[int, int, int, int] | None = None
) -> tuple[Image.Image, Box | None]:
    """`image` centre-cropped to the aspect of `size` (w, h) and resized to it; `box`, given as
    (left, top, right, bottom) in the input, comes back as (x, y, w, h) in the output."""
    width, height = size
    src_w, src_h = image.size
    if src_w * height > src_h * width:  # too wide: crop the sides
        crop_w, crop_h = max(1, round(src_h * width / height)), src_h
    else:
        crop_w, crop_h = src_w, max(1, round(src_w * height / width))
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    out = image.crop((left, top, left + crop_w, top + crop_h))
    if out.size != (width, height):
        out = out.resize((width, height), Image.Resampling.LANCZOS)
    if box is None:
        return out, None
    sx, sy = width / crop_w, height / crop_h
    x0 = min(max(0.0, (box[0] - left) * sx), width)
    y0 = min(max(0.0, (box[1] - top) * sy), height)
    x1 = min(max(0.0, (box[2] - left) * sx), width)
    y1 = min(max(0.0, (box[3] - top) * sy), height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return out, None
    return out, (round(x0), round(y0), round(x1 - x0), round(y1 - y0))


# --- the backends -----------------------------------------------------------------------------


@dataclass
class Rendered:
    """One image as a backend drew it, before matching, with its extra metadata and face boxes
    (x, y, w, h, in the final image)."""

    image: Image.Image
    metadata: dict[str, Any]
    boxes: tuple[Box, ...] = ()


class _Backend:
    """The loop every backend shares: targets → render (in batches) → match → encode → record."""

    name = "backend"
    batch_size = 1
    finish = False  # blur/sharpen and noise to the target (simulation only)

    def __init__(self, max_side: int | None = None, image_format: str = "png") -> None:
        if max_side is not None and not 8 <= max_side <= 8192:
            raise InvalidInputError(f"max_side must be from 8 to 8192 px, got {max_side}")
        fmt = str(image_format).lower()
        if fmt not in IMAGE_FORMATS:
            raise InvalidInputError(
                f"image_format {image_format!r} is not one of: {', '.join(IMAGE_FORMATS)}"
            )
        self.max_side = max_side
        self.image_format = fmt

    def render(self, profile: Mapping[str, Any], targets: Sequence[Target]) -> list[Rendered]:
        raise NotImplementedError

    def _limit(self, target: Target) -> Target:
        side = max(target.width, target.height)
        if self.max_side is None or side <= self.max_side:
            return target
        scale = self.max_side / side
        width, height = max(8, round(target.width * scale)), max(8, round(target.height * scale))
        return Target(**(asdict(target) | {"width": width, "height": height}))

    def generate(
        self, profile: Mapping[str, Any], count: int, seed: int, *, progress: Progress | None = None
    ) -> Iterator[ImageRecord]:
        """Stream `count` records following `profile`; the same arguments give the same bytes."""
        _check_count_and_seed(count, seed)
        if not isinstance(profile, Mapping):
            raise InvalidInputError("profile must be a dict (the profile JSON)")
        for start in range(0, count, self.batch_size):
            stop = min(count, start + self.batch_size)
            targets = [self._limit(_target(profile, i, seed)) for i in range(start, stop)]
            for target, rendered in zip(targets, self.render(profile, targets), strict=True):
                yield self._record(target, rendered, seed)
                if progress is not None:
                    progress(target.index + 1, count)

    def _record(self, target: Target, rendered: Rendered, set_seed: int) -> ImageRecord:
        image = match_statistics(rendered.image, target)
        extra: dict[str, Any] = {}
        if self.finish:
            image, extra = finish(image, target.sharpness, target.noise, target.seed)
        buffer = io.BytesIO()
        image.save(buffer, **IMAGE_FORMATS[self.image_format])
        label = target.label
        metadata = {
            "backend": self.name,
            "seed": target.seed,
            "set_seed": set_seed,
            "index": target.index,
            "target": {
                k: round(v, 3) if isinstance(v, float) else v
                for k, v in asdict(target).items()
                if k not in ("index", "seed", "label")
            },
            **rendered.metadata,
            **extra,
        }
        name = f"{target.index:06d}.{'jpg' if self.image_format == 'jpeg' else 'png'}"
        key = f"{label}/{name}" if label else name
        return ImageRecord(key, buffer.getvalue(), label, metadata, rendered.boxes)


class SimulationGenerator(_Backend):
    """No weights: procedural scenes, or procedural faces for a face profile (`mode` "auto"),
    with blur/sharpening and sensor noise matched to the profile's sharpness and noise."""

    name = "simulation"
    finish = True

    def __init__(
        self,
        mode: str = "auto",
        max_objects: int = 6,
        max_side: int | None = None,
        image_format: str = "png",
    ) -> None:
        super().__init__(max_side, image_format)
        if mode not in ("auto", "scenes", "faces"):
            raise InvalidInputError(f"simulation mode must be auto, scenes or faces, got {mode!r}")
        self.mode = mode
        self.scenes = SceneSimulator(max_objects)
        self._face_simulators: dict[int, Any] = {}

    def render(self, profile: Mapping[str, Any], targets: Sequence[Target]) -> list[Rendered]:
        faces = self.mode == "faces" or (self.mode == "auto" and is_face_profile(profile))
        return [self._face(t) if faces else self._scene(t) for t in targets]

    def _scene(self, target: Target) -> Rendered:
        image, info = self.scenes.render(target.width, target.height, target.seed)
        return Rendered(image, {"kind": "scene", "scene": info})

    def _face(self, target: Target) -> Rendered:
        from synth_pipelines.core.faces.buckets import ALL_BUCKETS
        from synth_pipelines.core.faces.simulator import SIZE_RANGE, ProceduralFaceSimulator

        side = int(np.clip(max(target.width, target.height), *SIZE_RANGE))
        simulator = self._face_simulators.get(side)
        if simulator is None:
            simulator = self._face_simulators[side] = ProceduralFaceSimulator(side)
        bucket = ALL_BUCKETS[target.index % len(ALL_BUCKETS)]  # buckets evenly, in turn
        face = simulator.render(bucket, target.seed)
        image, box = fit_to_size(face.image, (target.width, target.height), face.face_box)
        metadata = {
            "kind": "face",
            "generator": simulator.name,
            "bucket": bucket.key,
            "gender": bucket.gender,
            "age_group": bucket.age_group,
            "age": face.attributes.get("age"),
        }
        return Rendered(image, metadata, (box,) if box else ())


def _existing_checkpoint(backend: str, checkpoint_path: str | Path) -> Path:
    if not str(checkpoint_path or "").strip():
        raise MissingCheckpointError(
            f"the {backend} backend needs checkpoint_path: a local "
            + ("diffusers pipeline directory" if backend == "diffusion" else "StyleGAN2 .pt file")
        )
    path = Path(checkpoint_path).expanduser()
    if not path.exists():
        raise MissingCheckpointError(f"{backend} checkpoint '{path}' does not exist")
    return path


class GANGenerator(_Backend):
    """A StyleGAN2 checkpoint (stylegan2-pytorch layout), truncation ψ, each image from the
    latent of its own seed, centre-cropped and resized to its target size."""

    name = "gan"

    def __init__(
        self,
        checkpoint_path: str | Path,
        device: str | None = None,
        psi: float = 0.7,
        batch_size: int = 8,
        max_side: int | None = None,
        image_format: str = "png",
    ) -> None:
        super().__init__(max_side, image_format)
        if not 0.0 <= psi <= 2.0:
            raise InvalidInputError(f"truncation psi must be from 0 to 2, got {psi}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint_path = _existing_checkpoint("gan", checkpoint_path)
        self.device = device
        self.psi = float(psi)
        self.batch_size = batch_size
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            from synth_pipelines.core.imagesets.stylegan2 import load_stylegan2

            self._model = load_stylegan2(self.checkpoint_path, device=self.device)
        return self._model

    def render(self, profile: Mapping[str, Any], targets: Sequence[Target]) -> list[Rendered]:
        model = self.load()
        pixels = model.generate([t.seed for t in targets], psi=self.psi, batch_size=len(targets))
        out = []
        for target, array in zip(targets, pixels, strict=True):
            image, _ = fit_to_size(Image.fromarray(array, "RGB"), (target.width, target.height))
            metadata = {
                "generator": f"stylegan2:{self.checkpoint_path.name}",
                "psi": self.psi,
                "model_size": model.size,
            }
            out.append(Rendered(image, metadata))
        return out


class DiffusionGenerator(_Backend):
    """A local diffusers text-to-image checkpoint, prompted from `prompt_template` with the
    image's label ("a photo of {label}"; `fallback_prompt` for sets without labels), drawn at
    `size` px with the image's seed as its noise, then fitted to its target size."""

    name = "diffusion"

    def __init__(
        self,
        checkpoint_path: str | Path,
        device: str | None = None,
        prompt_template: str = DEFAULT_PROMPT,
        fallback_prompt: str = FALLBACK_PROMPT,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        num_inference_steps: int = 25,
        guidance_scale: float = 5.0,
        size: int = 512,
        batch_size: int = 4,
        max_side: int | None = None,
        image_format: str = "png",
    ) -> None:
        super().__init__(max_side, image_format)
        if "{label}" not in prompt_template:
            raise InvalidInputError(
                f"prompt_template must contain {{label}}, got {prompt_template!r}"
            )
        try:
            prompt_template.format(label="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInputError(
                f"prompt_template {prompt_template!r} has placeholders other than {{label}}"
            ) from exc
        if num_inference_steps < 1:
            raise InvalidInputError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if size < 8 or size % 8:
            raise InvalidInputError(f"size must be a positive multiple of 8, got {size}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint_path = _existing_checkpoint("diffusion", checkpoint_path)
        self.prompt_template = prompt_template
        self.fallback_prompt = fallback_prompt
        self.negative_prompt = negative_prompt
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.size = size
        self.batch_size = batch_size
        # The face line's loader checks the directory, picks the dtype and loads offline.
        from synth_pipelines.core.faces.diffusers_generator import DiffusersFaceGenerator

        self._loader = DiffusersFaceGenerator(
            self.checkpoint_path,
            num_inference_steps=num_inference_steps,
            size=size,
            device=device,
        )
        self._pipeline: Any = None
        self._accepts_size = False
        self._lock = threading.RLock()

    @property
    def device(self) -> str:
        return self._loader.device

    def load(self) -> Any:
        """Load the pipeline now (MissingCheckpointError / MissingBackendError as the face
        line's diffusers generator); returns it."""
        with self._lock:
            if self._pipeline is None:
                self._loader.load()
                pipeline = self._loader._pipeline  # the face generator has no public accessor
                parameters = inspect.signature(pipeline.__call__).parameters
                self._accepts_size = "height" in parameters and "width" in parameters
                self._pipeline = pipeline
            return self._pipeline

    def prompt_for(self, label: str | None) -> str:
        if not label:
            return self.fallback_prompt
        return self.prompt_template.format(label=label.replace("_", " ").replace("-", " "))

    def render(self, profile: Mapping[str, Any], targets: Sequence[Target]) -> list[Rendered]:
        import torch

        pipeline = self.load()
        prompts = [self.prompt_for(t.label) for t in targets]
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "generator": [torch.Generator(self.device).manual_seed(t.seed) for t in targets],
            "output_type": "pil",
        }
        if self.negative_prompt:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(prompts)
        if self._accepts_size:
            kwargs["height"] = kwargs["width"] = self.size
        with self._lock:  # a diffusers pipeline keeps scheduler state per call
            images = pipeline(**kwargs).images
        out = []
        for target, prompt, image in zip(targets, prompts, images, strict=True):
            fitted, _ = fit_to_size(image.convert("RGB"), (target.width, target.height))
            metadata = {
                "generator": f"diffusers:{self.checkpoint_path.name}",
                "prompt": prompt,
                "num_inference_steps": self.num_inference_steps,
                "guidance_scale": self.guidance_scale,
                "render_size": self.size,
            }
            out.append(Rendered(fitted, metadata))
        return out


def build_generator(
    backend: str, *, checkpoint_path: str = "", device: str | None = None, **options: Any
) -> ImageGenerator:
    """The generator for `backend` ("simulation", "diffusion" or "gan"), `options` going to its
    class (SimulationGenerator, DiffusionGenerator, GANGenerator). The checkpoint must exist
    now (MissingCheckpointError naming it); it is loaded on first use."""
    name = str(backend).strip().lower()
    classes: dict[str, type[_Backend]] = {
        "simulation": SimulationGenerator,
        "gan": GANGenerator,
        "diffusion": DiffusionGenerator,
    }
    if name not in classes:
        raise InvalidInputError(
            f"generation backend {backend!r} is not one of: {', '.join(BACKENDS)}"
        )
    cls = classes[name]
    accepted = set(inspect.signature(cls).parameters) - {"checkpoint_path", "device"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InvalidInputError(
            f"option(s) {', '.join(unknown)} not accepted by the {name} backend; it takes: "
            + ", ".join(sorted(accepted))
        )
    if cls is SimulationGenerator:
        return SimulationGenerator(**options)
    return cls(checkpoint_path, device=device, **options)
