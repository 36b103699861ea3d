"""How good, how private and how in-style a persona adapter is: perplexity on held-out replies,
seeded sampling of replies, PII leak search in generations, and style similarity by embeddings."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synth_pipelines.core.persona.dataset import (
    IGNORE_INDEX,
    TokenizedDataset,
    TrainingExample,
    render_prompt,
)


def _device(model: Any):
    return next(model.parameters()).device


def mean_token_loss(model: Any, dataset: TokenizedDataset, batch_size: int = 8) -> float:
    """Mean cross-entropy (nats) over the reply tokens of `dataset` (context tokens excluded)."""
    import torch
    import torch.nn.functional as F

    if dataset.n_target_tokens == 0:
        raise ValueError("the dataset has no reply tokens to evaluate")
    pad = getattr(getattr(model, "config", None), "pad_token_id", None) or 0
    device, was_training = _device(model), model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = dataset.collate(range(start, min(start + batch_size, len(dataset))), pad)
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            labels = batch["labels"][:, 1:]
            total += F.cross_entropy(
                logits[:, :-1].float().flatten(0, 1),
                labels.flatten(),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            ).item()
            count += int((labels != IGNORE_INDEX).sum())
    model.train(was_training)
    return total / count


def perplexity(model: Any, dataset: TokenizedDataset, batch_size: int = 8) -> float:
    """exp(mean reply-token cross-entropy): how surprised the model is by the persona's replies."""
    return math.exp(mean_token_loss(model, dataset, batch_size))


ContextLike = str | TrainingExample | Sequence[tuple[str, str]]


def _prompt(context: ContextLike) -> str:
    if isinstance(context, str):
        return context
    if isinstance(context, TrainingExample):
        return render_prompt(context.context)
    return render_prompt(context)


def generate_replies(
    model: Any,
    tokenizer: Any,
    contexts: Sequence[ContextLike],
    n: int = 1,
    max_new_tokens: int = 40,
    seed: int = 0,
    temperature: float = 0.8,
    top_p: float = 0.95,
) -> list[list[str]]:
    """Sample `n` replies per context (a rendered prompt, a `TrainingExample` or its turns).

    Returns one list of `n` single-line replies per context. Context `i` is sampled with seed
    `seed + i` in a forked RNG, so results do not depend on batching and the caller's RNG is left
    alone. The prompt is cut from the left to leave room for `max_new_tokens`.
    """
    import torch

    device = _device(model)
    limit = getattr(getattr(model, "config", None), "n_positions", None) or getattr(
        getattr(model, "config", None), "max_position_embeddings", 2048
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    replies: list[list[str]] = []
    devices = [device] if device.type == "cuda" else []
    for i, context in enumerate(contexts):
        ids = tokenizer(_prompt(context), add_special_tokens=False)["input_ids"]
        ids = ids[-max(1, limit - max_new_tokens) :]
        input_ids = torch.tensor([ids], device=device)
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed + i)
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
        texts = tokenizer.batch_decode(out[:, input_ids.shape[1] :], skip_special_tokens=True)
        # The reply ends where the next turn ("sender: ...") would start.
        replies.append([text.split("\n", 1)[0].strip() for text in texts])
    model.train(was_training)
    return replies


@dataclass(frozen=True)
class PiiLeak:
    """A PII string found in a generation; indexes only, so a leak report never repeats the PII."""

    generation_index: int
    pii_index: int
    kind: Literal["exact", "fuzzy"]
    score: float


FUZZY_MIN_LENGTH = 6


def pii_leaks(
    generations: Sequence[str], pii_strings: Sequence[str], fuzzy_threshold: float = 90
) -> list[PiiLeak]:
    """Every (generation, PII string) pair where the PII appears: case-insensitively as a whole
    word or phrase (`exact`, score 100), or, for PII of 6+ characters, with
    `rapidfuzz.fuzz.partial_ratio` >= `fuzzy_threshold` (`fuzzy`: a near copy such as
    "jon.smith@exmaple.com"; a generation shorter than the PII must match it as a whole).
    Whitespace runs count as one space.

    Exact matches need word edges so that a short name ("Bo") is not found inside "about".
    """
    from rapidfuzz import fuzz

    leaks = []
    needles = [" ".join(p.casefold().split()) for p in pii_strings]
    patterns = [re.compile(rf"(?<!\w){re.escape(n)}(?!\w)") if n else None for n in needles]
    for g, generation in enumerate(generations):
        hay = " ".join(generation.casefold().split())
        for p, (needle, pattern) in enumerate(zip(needles, patterns, strict=True)):
            if pattern is None:
                continue
            if pattern.search(hay):
                leaks.append(PiiLeak(g, p, "exact", 100.0))
            elif len(needle) >= FUZZY_MIN_LENGTH:
                # partial_ratio aligns the shorter string, so a generation shorter than the PII
                # (".") would match any PII containing it: compare whole strings then.
                similarity = fuzz.partial_ratio if len(hay) >= len(needle) else fuzz.ratio
                score = similarity(needle, hay, score_cutoff=fuzzy_threshold)
                if score:
                    leaks.append(PiiLeak(g, p, "fuzzy", float(score)))
    return leaks


def style_similarity(
    embedder: Callable[[list[str]], np.ndarray],
    generations: Sequence[str],
    heldout_messages: Sequence[str],
) -> float:
    """Mean cosine similarity of each generation's embedding to the held-out messages' centroid.

    `embedder` maps texts to L2-normalised rows (e.g. `MiniLMEmbedder`). The centroid (rather
    than each generation's best match) measures the persona's overall style and does not reward
    copying one held-out message verbatim. In [-1, 1]; higher is closer in style.
    """
    if not generations or not heldout_messages:
        raise ValueError("style similarity needs at least one generation and one held-out message")
    reference = np.asarray(embedder(list(heldout_messages)), dtype=np.float64)
    centroid = reference.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    vectors = np.asarray(embedder(list(generations)), dtype=np.float64)
    return float((vectors @ centroid).mean())
