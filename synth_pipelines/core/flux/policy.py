"""Content policy: prompts matching the deny list are refused before anything is generated."""

from __future__ import annotations

import re
from collections.abc import Iterable

from synth_pipelines.core.errors import PermissionDeniedError

# A conservative default; SYNTH_FLUX_DENY_TERMS replaces it. Whole words, case-insensitive;
# a term ending in "*" matches as a prefix ("nud*" covers nude, nudity).
DEFAULT_DENY_TERMS = (
    "nude",
    "naked",
    "nud*",
    "nsfw",
    "porn*",
    "sexual*",
    "explicit",
    "undress*",
    "lingerie",
    "child",
    "minor",
    "underage",
    "gore",
    "corpse",
    "beheading",
    "swastika",
)


class ContentPolicyError(PermissionDeniedError):
    """A prompt the content policy refuses (HTTP 403, naming the matched term)."""


class ContentPolicy:
    """Whole-word (or prefix, for `term*`) matching of a prompt against deny terms."""

    def __init__(self, terms: Iterable[str] = DEFAULT_DENY_TERMS) -> None:
        self.terms = tuple(t.strip().lower() for t in terms if t.strip())
        patterns = [
            re.escape(t[:-1]) + r"\w*" if t.endswith("*") else re.escape(t) for t in self.terms
        ]
        self._pattern = (
            re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE) if patterns else None
        )

    @classmethod
    def from_text(cls, text: str) -> ContentPolicy:
        """From a comma-separated list; empty means the default list."""
        terms = [t for t in text.split(",") if t.strip()]
        return cls(terms or DEFAULT_DENY_TERMS)

    def violation(self, prompt: str) -> str | None:
        """The first denied term the prompt contains, or None."""
        if self._pattern is None:
            return None
        match = self._pattern.search(prompt)
        return match.group(0).lower() if match else None

    def check(self, prompt: str) -> None:
        term = self.violation(prompt)
        if term is not None:
            raise ContentPolicyError(
                f"prompt refused by the content policy: it contains {term!r} "
                "(SYNTH_FLUX_DENY_TERMS sets the list)"
            )
