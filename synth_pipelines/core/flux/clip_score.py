"""Prompt relevance: CLIP score of images against their prompts, from a local CLIP directory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from synth_pipelines.core.errors import MissingCheckpointError


class ClipScorer:
    """`score(pngs, prompts)` → CLIP score per image: 100 * max(cosine(image, text), 0), as
    torchmetrics' CLIPScore defines it. The model loads from a local directory, once."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise MissingCheckpointError(
                f"SYNTH_CLIP_MODEL={path}: no CLIP model there (config.json missing)"
            )
        from transformers import CLIPModel, CLIPProcessor

        self.model: Any = CLIPModel.from_pretrained(path).eval()
        self.processor: Any = CLIPProcessor.from_pretrained(path)

    def score(self, pngs: list[bytes], prompts: list[str]) -> list[float]:
        return [100 * max(value, 0.0) for value in self.similarities(pngs, prompts)]

    def similarities(self, pngs: list[bytes], prompts: list[str]) -> list[float]:
        """Cosine similarity of each image's CLIP embedding with its prompt's, in [-1, 1]."""
        import torch
        from PIL import Image

        images = [Image.open(io.BytesIO(data)).convert("RGB") for data in pngs]
        inputs = self.processor(
            text=prompts, images=images, return_tensors="pt", padding=True, truncation=True
        )
        with torch.no_grad():
            image = self.model.get_image_features(pixel_values=inputs["pixel_values"])
            text = self.model.get_text_features(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            )
        # transformers 5 may hand back a model output instead of the projected tensor.
        image = image if isinstance(image, torch.Tensor) else image.pooler_output
        text = text if isinstance(text, torch.Tensor) else text.pooler_output
        image = image / image.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        return [float(v) for v in (image * text).sum(dim=-1).tolist()]
