"""(context -> reply) pairs as causal-LM training examples: render, tokenize, split, serialise.

An example renders as the conversation so far, one `"<sender>: <text>"` line per turn (the
persona's own turns as `"me: ..."`), then a `"me:"` prompt; the model learns only the reply that
follows it (plus end-of-text): context tokens are masked out of the loss with -100.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_pipelines.core.errors import InvalidInputError

PERSONA_SENDER = "me"
IGNORE_INDEX = -100
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainingExample:
    """One training pair: earlier turns as (sender, text), and the persona's reply to them.

    Senders are already anonymised labels; the persona's own earlier turns use `PERSONA_SENDER`.
    """

    context: tuple[tuple[str, str], ...]
    target: str


ExampleLike = TrainingExample | tuple[Sequence[tuple[str, str]], str]


def as_training_examples(items: Iterable[ExampleLike]) -> list[TrainingExample]:
    """Normalise `TrainingExample`s or `(context, target)` tuples to `TrainingExample`s."""
    examples = []
    for i, item in enumerate(items):
        if isinstance(item, TrainingExample):
            examples.append(item)
            continue
        try:
            context, target = item
            turns = tuple((str(sender), str(text)) for sender, text in context)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"example {i} is not (context, target) with context a list of (sender, text): {exc}"
            ) from exc
        examples.append(TrainingExample(context=turns, target=str(target)))
    return examples


def _one_line(text: str) -> str:
    # A newline inside a turn would read as a new turn from an unknown sender.
    return " ".join(text.split())


def render_prompt(context: Sequence[tuple[str, str]]) -> str:
    """The model input for a context: one `"sender: text"` line per turn, then `"me:"`."""
    lines = [f"{_one_line(sender)}: {_one_line(text)}" for sender, text in context]
    return "".join(line + "\n" for line in lines) + f"{PERSONA_SENDER}:"


def render_target(target: str) -> str:
    """The reply as it follows the `"me:"` prompt (leading space, one line)."""
    return " " + _one_line(target)


@dataclass
class TokenizedDataset:
    """Token ids and loss labels per example (int32 arrays of equal length per example)."""

    input_ids: list[np.ndarray]
    labels: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_target_tokens(self) -> int:
        """Tokens that count in the loss (reply tokens and end-of-text)."""
        return int(sum((lab != IGNORE_INDEX).sum() for lab in self.labels))

    def truncated(self, max_length: int) -> TokenizedDataset:
        """Each example cut from the left to `max_length` tokens (the reply is at the end)."""
        return TokenizedDataset(
            [ids[-max_length:] for ids in self.input_ids],
            [lab[-max_length:] for lab in self.labels],
        )

    def to_bytes(self) -> bytes:
        """Serialise as an in-memory `.npz` (flat tokens + offsets), ready to encrypt and store."""
        lengths = np.array([len(ids) for ids in self.input_ids], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        empty = np.zeros(0, np.int32)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            format_version=np.array(FORMAT_VERSION),
            offsets=offsets,
            input_ids=np.concatenate(self.input_ids) if self.input_ids else empty,
            labels=np.concatenate(self.labels) if self.labels else empty,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenizedDataset:
        """Inverse of `to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                version = int(npz["format_version"])
                offsets, ids, labels = npz["offsets"], npz["input_ids"], npz["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise InvalidInputError(f"not a serialised tokenized dataset: {exc}") from exc
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"tokenized dataset format {version} is not {FORMAT_VERSION}: re-tokenize it"
            )
        bounds = list(itertools.pairwise(offsets))
        return cls([ids[a:b] for a, b in bounds], [labels[a:b] for a, b in bounds])

    def collate(self, indices: Sequence[int], pad_token_id: int) -> dict[str, Any]:
        """Right-padded torch tensors `input_ids`, `attention_mask`, `labels` for `indices`."""
        import torch

        width = max(len(self.input_ids[i]) for i in indices)
        input_ids = torch.full((len(indices), width), pad_token_id, dtype=torch.long)
        labels = torch.full((len(indices), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            input_ids[row, :n] = torch.from_numpy(self.input_ids[i].astype(np.int64))
            labels[row, :n] = torch.from_numpy(self.labels[i].astype(np.int64))
            attention_mask[row, :n] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def tokenize_examples(
    examples: Iterable[ExampleLike], tokenizer: Any, max_length: int = 256
) -> TokenizedDataset:
    """Tokenize examples: prompt ids then reply ids + eos; labels are -100 on the prompt.

    The reply is kept whole when it fits in `max_length - 1` tokens (else cut at the end); the
    context is cut from the left to fill the rest, so the `"me:"` prompt always survives.
    """
    if max_length < 4:
        raise InvalidInputError(f"max_length must be at least 4 tokens, not {max_length}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InvalidInputError("the tokenizer has no eos token; set tokenizer.eos_token first")
    all_ids, all_labels = [], []
    for example in as_training_examples(examples):
        prompt = tokenizer(render_prompt(example.context), add_special_tokens=False)["input_ids"]
        reply = tokenizer(render_target(example.target), add_special_tokens=False)["input_ids"]
        # Leave room for at least a couple of prompt tokens ("me:") before the reply.
        reply = [*reply[: max_length - 3], eos]
        prompt = prompt[-(max_length - len(reply)) :]
        all_ids.append(np.array(prompt + reply, dtype=np.int32))
        all_labels.append(np.array([IGNORE_INDEX] * len(prompt) + reply, dtype=np.int32))
    return TokenizedDataset(all_ids, all_labels)


def _example_hash(example: TrainingExample, seed: int) -> float:
    payload = json.dumps([seed, example.context, example.target], ensure_ascii=False)
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_examples(
    examples: Iterable[ExampleLike], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """Split into (train, validation) by a seeded hash of each example, keeping input order.

    An example's side depends only on its content and `seed`, so adding examples never moves old
    ones across. With 2+ examples each side gets at least one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise InvalidInputError(f"val_fraction must be in [0, 1), not {val_fraction}")
    items = as_training_examples(examples)
    scores = [_example_hash(example, seed) for example in items]
    in_val = [score < val_fraction for score in scores]
    if len(items) >= 2 and not any(in_val):
        in_val[min(range(len(items)), key=scores.__getitem__)] = True
    if len(items) >= 2 and all(in_val):
        in_val[max(range(len(items)), key=scores.__getitem__)] = False
    train = [ex for ex, v in zip(items, in_val, strict=True) if not v]
    val = [ex for ex, v in zip(items, in_val, strict=True) if v]
    return train, val
