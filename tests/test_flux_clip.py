"""The prompt-relevance scorer on a tiny CLIP saved to disk (the real loading path)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from synth_pipelines.core.errors import MissingCheckpointError
from synth_pipelines.core.flux.clip_score import ClipScorer
from tests.tiny_models import build_tiny_clip


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_clip_scores_are_bounded_deterministic_and_depend_on_the_pair(tmp_path) -> None:
    scorer = ClipScorer(build_tiny_clip(tmp_path / "clip"))
    pngs = [_png((255, 0, 0)), _png((0, 0, 255))]
    prompts = ["a red square", "a blue square"]
    similarities = scorer.similarities(pngs, prompts)
    assert len(similarities) == 2 and all(-1.0 <= s <= 1.0 for s in similarities)
    assert scorer.similarities(pngs, prompts) == similarities
    # Each image is scored with its own prompt: swapping the prompts changes the scores.
    assert scorer.similarities(pngs, prompts[::-1]) != similarities
    assert scorer.score(pngs, prompts) == [100 * max(s, 0.0) for s in similarities]


def test_a_missing_clip_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(MissingCheckpointError, match=r"SYNTH_CLIP_MODEL=.*config\.json missing"):
        ClipScorer(tmp_path)
