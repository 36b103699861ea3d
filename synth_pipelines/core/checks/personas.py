"""Checks on a persona's trained adapter, run in the step that trains it (before it is
registered): validation perplexity below the base model's, no PII of the raw corpus in sampled
generations, style closer to the persona's held-out replies than the base model's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth_pipelines.core.checks.names import PERPLEXITY, PII_LEAKAGE, STYLE_SIMILARITY
from synth_pipelines.core.checks.outcome import ERROR, WARN, CheckOutcome

if TYPE_CHECKING:
    from synth_pipelines.core.persona.pipeline import DatasetBundle

# An adapter is served only when its error checks pass; a style no closer than the base
# model's is worth knowing, not a reason to withhold it.
SEVERITY = {PERPLEXITY: ERROR, PII_LEAKAGE: ERROR, STYLE_SIMILARITY: WARN}


def evaluate_adapter(
    result: Any,
    base_model: Path,
    bundle: DatasetBundle,
    pii: list[tuple[str, str]],
    samples: int,
    embedder: Callable[[list[str]], Any] | None,
) -> list[CheckOutcome]:
    """The three adapter checks: perplexity below the base's, no PII of the raw corpus in
    `samples` generations (exact or fuzzy), style closer to the persona's held-out replies than
    the base model's generations. A check with nothing to measure (no PII in the corpus, no
    embedder, nothing generated) is skipped with its reason: it never passes, blocks nothing."""
    from transformers import AutoTokenizer

    from synth_pipelines.core.persona.evaluation import generate_replies, style_similarity
    from synth_pipelines.core.persona.leakage import find_leaks
    from synth_pipelines.core.persona.serving import load_base_model

    outcomes = [
        CheckOutcome(
            PERPLEXITY,
            passed=result.val_perplexity is not None
            and result.base_val_perplexity is not None
            and result.val_perplexity < result.base_val_perplexity,
            severity=SEVERITY[PERPLEXITY],
            description=(
                f"validation perplexity {result.val_perplexity:.1f} with the adapter vs "
                f"{result.base_val_perplexity:.1f} for the base model"
                if result.val_perplexity is not None and result.base_val_perplexity is not None
                else "no validation split to measure perplexity on"
            ),
            metadata={
                "val_perplexity": result.val_perplexity,
                "base_val_perplexity": result.base_val_perplexity,
            },
        )
    ]
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    contexts = [[tuple(turn) for turn in ctx] or [("them", "hey")] for ctx in bundle.val_contexts]
    contexts = [contexts[i % len(contexts)] for i in range(samples)] if contexts else []
    adapted = [
        reply for [reply] in generate_replies(result.model, tokenizer, contexts, n=1, seed=0)
    ]
    leaks = find_leaks(adapted, pii)
    leaked_generations = len({leak.generation_index for leak in leaks})
    if not pii or not adapted:  # nothing that could leak, or nothing generated: not a pass
        outcomes.append(
            CheckOutcome.skip(
                PII_LEAKAGE,
                "the raw corpus holds no PII value to look for"
                if not pii
                else "no generation sampled (SYNTH_PERSONA_SAMPLES or no validation context)",
                {"sampled_generations": len(adapted), "pii_values_checked": len(pii)},
            )
        )
    else:
        outcomes.append(
            CheckOutcome(
                PII_LEAKAGE,
                passed=not leaks,
                severity=SEVERITY[PII_LEAKAGE],
                description=(
                    f"{leaked_generations} of {len(adapted)} sampled generations contain PII "
                    f"of the raw corpus ({len(pii)} PII values; numbers by digits, text exact "
                    "and fuzzy)"
                ),
                metadata={
                    "sampled_generations": len(adapted),
                    "generations_with_pii": leaked_generations,
                    "pii_matches": len(leaks),
                    "pii_values_checked": len(pii),
                    "leaked_types": ",".join(sorted({leak.type for leak in leaks})) or "none",
                },
            )
        )
    texts = [t for t in adapted if t.strip()]
    if embedder is None or not texts or not bundle.val_targets:
        reason = (
            "no text embedder configured"
            if embedder is None
            else "no held-out reply to compare with"
            if not bundle.val_targets
            else "the adapter generated no text"
        )
        outcomes.append(CheckOutcome.skip(STYLE_SIMILARITY, reason, {"style_similarity": None}))
        return outcomes
    base = load_base_model(base_model)
    base_texts = [r for [r] in generate_replies(base, tokenizer, contexts, n=1, seed=0)]
    base_texts = [t for t in base_texts if t.strip()] or [""]
    adapter_score = style_similarity(embedder, texts, bundle.val_targets)
    base_score = style_similarity(embedder, base_texts, bundle.val_targets)
    outcomes.append(
        CheckOutcome(
            STYLE_SIMILARITY,
            passed=adapter_score > base_score,
            severity=SEVERITY[STYLE_SIMILARITY],
            description=(
                f"MiniLM similarity to the persona's held-out replies: {adapter_score:.3f} with "
                f"the adapter vs {base_score:.3f} for the base model"
            ),
            metadata={"style_similarity": adapter_score, "base_style_similarity": base_score},
        )
    )
    return outcomes
