"""A tiny GPT-2 causal LM built offline, saved as an ordinary Hugging Face model directory.

It stands in for a real base model in tests and demos: the same `from_pretrained` code path, a real
byte-level BPE tokenizer, and a brief pre-training on generic English so it is a (weak) language
model rather than noise. It is NOT for real use; its model card says so.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

# Plain, formally written English: the "base" style a persona adapter must move away from.
GENERIC_CORPUS: tuple[str, ...] = (
    "The meeting has been moved to Thursday afternoon.",
    "Thank you for your message. I will reply as soon as possible.",
    "The weather today is mild, with light rain expected in the evening.",
    "Please find the attached document for your review.",
    "The train to the city leaves every hour from the main station.",
    "She read the report carefully and made a few notes in the margin.",
    "Our office will be closed on Monday for the public holiday.",
    "He walked to the market and bought bread, cheese and apples.",
    "The committee approved the budget after a short discussion.",
    "Could you confirm the time and place of the appointment?",
    "The library opens at nine in the morning and closes at six.",
    "We are pleased to announce the opening of a new branch.",
    "The children played in the garden until it was dark.",
    "I would be grateful if you could send me the details.",
    "The museum exhibits paintings from the eighteenth century.",
    "Dinner will be served at seven o'clock in the main hall.",
    "The project is on schedule and within the agreed budget.",
    "Yes, that works for me. I will see you there.",
    "I am sorry, but I will not be able to attend tomorrow.",
    "The new policy takes effect at the beginning of next month.",
    "He has worked as an engineer for more than ten years.",
    "Please remember to bring your identification to the interview.",
    "The river flows through the valley towards the sea.",
    "They spent the weekend visiting friends in the countryside.",
    "The results of the survey will be published next week.",
    "Thank you for the invitation. I would be happy to join you.",
    "The store offers a discount to students and senior citizens.",
    "It was a pleasure to meet you at the conference.",
    "The package should arrive within three to five working days.",
    "Good morning. How are you today?",
    "I hope you had a pleasant journey home.",
    "The doctor recommended rest and plenty of water.",
    "Let me know if you have any questions about the schedule.",
    "The old bridge was repaired last summer.",
    "We will discuss the proposal at the next meeting.",
    "Unfortunately, the flight has been delayed by two hours.",
    "The garden is full of roses and tall green trees.",
    "I have finished the first chapter of the book.",
    "The company reported strong growth in the last quarter.",
    "Could you please call me back when you have a moment?",
)

MODEL_CARD = """---
tags:
- test-model
---
# TEST MODEL — tiny, random-init, not for real use

This directory holds a **tiny GPT-2-architecture causal language model** ({n_params:,} parameters:
{n_layer} layers, {n_embd}-dimensional embeddings, {n_head} heads, vocabulary of {vocab_size})
built by `synth_pipelines.core.persona.tiny_model.build_tiny_causal_lm` for tests and demos.

- Weights: random initialisation (seed {seed}, std 0.1), then {pretrain_steps} steps of
  pre-training on a few dozen generic English sentences. It produces barely-English text.
- Tokenizer: byte-level BPE trained offline on that generic text plus the texts passed in.
- It exists so that persona-adapter training, evaluation and serving run through the real
  `AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained` code path without a
  model download. **Do not use it to generate anything anyone will read.**
"""


def _train_tokenizer(texts: Iterable[str], vocab_size: int):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    # The full byte alphabet is seeded, so any text (emoji, accents) tokenizes without <unk>.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=256,
    )


def _pretrain(model, tokenizer, steps: int, seed: int, block: int = 64, batch_size: int = 8):
    """A few AdamW steps of next-token prediction over the generic corpus, in a fixed order."""
    import torch

    ids: list[int] = []
    for sentence in GENERIC_CORPUS:
        ids.extend(tokenizer(sentence + "\n")["input_ids"])
    stream = torch.tensor(ids, dtype=torch.long)
    block = min(block, len(ids) - 1)
    order = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = [order.randrange(0, len(ids) - block) for _ in range(batch_size)]
        batch = torch.stack([stream[s : s + block] for s in starts])
        logits = model(input_ids=batch, attention_mask=torch.ones_like(batch)).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()


def build_tiny_causal_lm(
    path: str | Path,
    texts: Sequence[str] = (),
    vocab_size: int = 1000,
    seed: int = 0,
    pretrain_steps: int = 60,
    n_positions: int = 256,
) -> Path:
    """Save a tiny GPT-2 LM + byte-level BPE tokenizer to `path` (created) and return `path`.

    `texts` join the built-in generic corpus for tokenizer training, so the persona's words get
    their own merges; the model is pre-trained only on the generic corpus (`pretrain_steps`,
    0 for pure random init). Same arguments give the same files. A README labels the directory as
    a test model. Load with `AutoModelForCausalLM.from_pretrained(path)` and
    `AutoTokenizer.from_pretrained(path)`.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer([*GENERIC_CORPUS, *texts], vocab_size)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=2,
        # Wider than GPT-2's 0.02: tied 64-d embeddings that small cap every logit near +-1.3
        # behind the final LayerNorm, so no adapter could make a token pretraining never saw likely.
        initializer_range=0.1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # A forked RNG keeps the caller's torch random stream untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
        if pretrain_steps > 0:
            _pretrain(model, tokenizer, pretrain_steps, seed)
    model.eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    (path / "README.md").write_text(
        MODEL_CARD.format(
            n_params=n_params,
            n_layer=config.n_layer,
            n_embd=config.n_embd,
            n_head=config.n_head,
            vocab_size=config.vocab_size,
            seed=seed,
            pretrain_steps=pretrain_steps,
        ),
        encoding="utf-8",
    )
    return path
