"""Persona adapter training and evaluation on a tiny GPT-2 built offline: LoRA and bottleneck
adapters learn a distinctive style, resume exactly after a crash, reload identically, generate
seeded replies; PII leak search and style similarity behave."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.persona.bottleneck import (
    BottleneckConfig,
    add_bottleneck_adapters,
    bottleneck_state_dict,
    load_bottleneck_adapter,
    save_bottleneck_adapter,
)
from synth_pipelines.core.persona.dataset import (
    IGNORE_INDEX,
    TokenizedDataset,
    TrainingExample,
    render_prompt,
    split_examples,
    tokenize_examples,
)
from synth_pipelines.core.persona.evaluation import (
    generate_replies,
    perplexity,
    pii_leaks,
    style_similarity,
)
from synth_pipelines.core.persona.serving import load_base_model
from synth_pipelines.core.persona.tiny_model import build_tiny_causal_lm
from synth_pipelines.core.persona.training import (
    TrainConfig,
    count_parameters,
    load_adapted_model,
    train_adapter,
)

FRIENDS = ("alex", "sam", "jo", "priya")
QUESTIONS = (
    "Are you coming to the party tonight?",
    "Did you finish the report for Monday?",
    "Do you want to have lunch tomorrow?",
    "How was the concert yesterday?",
    "Could you send me the photos from the trip?",
    "What time does the game start?",
    "Did you see the news this morning?",
    "Are we still meeting on Saturday?",
    "Have you called your mother back?",
    "Can you pick up some bread on the way home?",
    "Which film should we watch this evening?",
    "Is the meeting moved to Thursday afternoon?",
)
# The persona: always lowercase, "lol"/"ngl"/"tbh", a few pet phrases.
OPENERS = ("lol", "omg", "haha", "ngl", "tbh", "lol ok")
CORES = (
    "yes im so in",
    "nah too tired rn",
    "totally forgot about that",
    "sending them rn",
    "it was sooo good",
    "no idea ask jo",
    "gimme 5 min",
    "ya see u there",
    "brb grabbing snacks",
    "same tbh",
)
CLOSERS = ("lol", "ngl", "haha", "lol fr", "no cap lol")
GENERIC_TEXT = (
    "Thank you for your message. I will reply as soon as possible.",
    "The meeting has been moved to Thursday afternoon.",
    "Please find the attached document for your review.",
    "I am sorry, but I will not be able to attend tomorrow.",
    "The committee approved the budget after a short discussion.",
    "Could you confirm the time and place of the appointment?",
)
LORA = TrainConfig(
    method="lora",
    lora_rank=8,
    lora_alpha=16,
    lora_dropout=0.1,  # dropout draws from the RNG, so resume must restore it
    learning_rate=1e-2,
    max_steps=24,
    batch_size=8,
    max_length=96,
    seed=3,
    checkpoint_every=0,
    device="cpu",
)
BOTTLENECK = LORA.model_copy(update={"method": "bottleneck", "bottleneck_size": 16})


def _persona_reply(rng: random.Random) -> str:
    return f"{rng.choice(OPENERS)} {rng.choice(CORES)} {rng.choice(CLOSERS)}"


@pytest.fixture(scope="session")
def persona_examples() -> list[TrainingExample]:
    rng = random.Random(7)
    examples = []
    for _ in range(80):
        context = [(rng.choice(FRIENDS), rng.choice(QUESTIONS))]
        if rng.random() < 0.3:  # sometimes the persona spoke first
            context.insert(0, ("me", _persona_reply(rng)))
        examples.append(TrainingExample(tuple(context), _persona_reply(rng)))
    return examples


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, persona_examples) -> Path:
    texts = [render_prompt(ex.context) + " " + ex.target for ex in persona_examples]
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=600)


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


@pytest.fixture(scope="session")
def datasets(tokenizer, persona_examples) -> tuple[TokenizedDataset, TokenizedDataset]:
    train, val = split_examples(persona_examples, val_fraction=0.2, seed=0)
    return tokenize_examples(train, tokenizer, 96), tokenize_examples(val, tokenizer, 96)


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, tiny_model, datasets):
    train, val = datasets
    out = tmp_path_factory.mktemp("lora")
    return train_adapter(tiny_model, train.to_bytes(), val, LORA, out / "adapter")


@pytest.fixture(scope="session")
def bottleneck_run(tmp_path_factory, tiny_model, datasets):
    train, val = datasets
    out = tmp_path_factory.mktemp("bottleneck")
    return train_adapter(tiny_model, train, val, BOTTLENECK, out / "adapter")


def _adapter_weights(directory: Path) -> dict[str, torch.Tensor]:
    weights = {}
    for file in sorted(directory.glob("*.safetensors")):
        weights.update(load_file(str(file)))
    assert weights, f"no adapter weights in {directory}"
    return weights


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _adapter_weights(a), _adapter_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def _logits(model, tokenizer, text: str = "alex: are you coming?\nme:") -> torch.Tensor:
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_tiny_model_loads_through_auto_classes_and_is_labelled(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    assert model.config.n_layer == 2 and model.config.n_embd == 64
    assert (
        "TEST MODEL — tiny, random-init, not for real use" in (tiny_model / "README.md").read_text()
    )
    text = "lol ok sending them rn 🎉"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert tokenizer.eos_token_id is not None and tokenizer.pad_token_id is not None
    assert (
        tokenizer.unk_token_id is None or tokenizer.unk_token_id not in tokenizer(text)["input_ids"]
    )


def test_examples_train_only_on_the_reply_and_truncate_context_from_the_left(tokenizer):
    long_context = tuple(("alex", f"message number {i} about the weekend plans") for i in range(40))
    examples = [
        ([("alex", "coming tonight?"), ("me", "maybe lol")], "lol yes"),
        TrainingExample(long_context, "omg yes im so in lol"),
    ]
    data = tokenize_examples(examples, tokenizer, max_length=48)
    short_ids, short_labels = data.input_ids[0], data.labels[0]
    assert tokenizer.decode(short_ids) == "alex: coming tonight?\nme: maybe lol\nme: lol yes" + (
        tokenizer.eos_token
    )
    learned = short_labels[short_labels != IGNORE_INDEX]
    assert tokenizer.decode(learned) == " lol yes" + tokenizer.eos_token
    assert (short_labels[: len(short_labels) - len(learned)] == IGNORE_INDEX).all()
    long_ids, long_labels = data.input_ids[1], data.labels[1]
    assert len(long_ids) == 48
    assert tokenizer.decode(long_ids).endswith(
        "number 39 about the weekend plans\nme: omg yes im so in lol<|endoftext|>"
    )
    assert tokenizer.decode(long_labels[long_labels != IGNORE_INDEX]).startswith(" omg yes")


def test_split_is_seeded_stable_and_never_empty(persona_examples):
    train, val = split_examples(persona_examples, val_fraction=0.1, seed=0)
    assert (train, val) == split_examples(persona_examples, val_fraction=0.1, seed=0)
    assert len(train) + len(val) == len(persona_examples) and set(train).isdisjoint(val)
    assert 2 <= len(val) <= 16
    # Adding examples never moves old ones across; another seed gives another split.
    train_more, val_more = split_examples([*persona_examples, TrainingExample((), "x")], 0.1, 0)
    assert set(val) <= set(val_more) and set(train) <= set(train_more)
    assert split_examples(persona_examples, 0.1, seed=1)[1] != val
    pair = persona_examples[:2]
    assert [len(side) for side in split_examples(pair, val_fraction=0.0)] == [1, 1]


def test_tokenized_dataset_roundtrips_through_bytes(datasets):
    train, _ = datasets
    back = TokenizedDataset.from_bytes(train.to_bytes())
    assert len(back) == len(train) and back.n_target_tokens == train.n_target_tokens
    for a, b in zip(train.input_ids + train.labels, back.input_ids + back.labels, strict=True):
        assert (a == b).all()
    with pytest.raises(InvalidInputError, match="not a serialised tokenized dataset"):
        TokenizedDataset.from_bytes(b"definitely not npz")


@pytest.mark.parametrize("run", ["lora_run", "bottleneck_run"])
def test_training_lowers_validation_perplexity_below_the_base_model(request, run, datasets):
    result = request.getfixturevalue(run)
    assert perplexity(result.model, datasets[1]) == pytest.approx(result.val_perplexity)
    assert result.steps == LORA.max_steps and len(result.train_losses) == LORA.max_steps
    assert result.val_perplexity < 0.5 * result.base_val_perplexity, result
    assert sum(result.train_losses[-4:]) < sum(result.train_losses[:4])
    assert 0 < result.trainable_params < result.total_params / 5
    assert result.tokens_per_s > 0 and result.resumed_from_step is None
    assert (result.adapter_dir / "persona_adapter.json").is_file()


def test_bottleneck_starts_as_the_base_model_and_trains_only_adapters(tiny_model, tokenizer):
    base = load_base_model(tiny_model)
    adapted = load_base_model(tiny_model)
    names = add_bottleneck_adapters(adapted, BottleneckConfig(bottleneck_size=16))
    assert names == [f"transformer.h.{i}.{part}" for i in range(2) for part in ("attn", "mlp")]
    assert torch.equal(_logits(base, tokenizer), _logits(adapted, tokenizer))
    # 4 sites x (down 64x16 + 16, up 16x64 + 64).
    trainable, total = count_parameters(adapted)
    assert trainable == 4 * (64 * 16 + 16 + 16 * 64 + 64) == 8512
    assert total == count_parameters(base)[1] + trainable
    assert all(not p.requires_grad for n, p in adapted.named_parameters() if "bottleneck" not in n)
    with pytest.raises(InvalidInputError, match="no module name matches"):
        add_bottleneck_adapters(
            load_base_model(tiny_model), BottleneckConfig(target_patterns=("x",))
        )


def test_bottleneck_save_load_roundtrip_gives_identical_logits(tiny_model, tokenizer, tmp_path):
    model = load_base_model(tiny_model)
    add_bottleneck_adapters(model, BottleneckConfig(bottleneck_size=8, nonlinearity="relu"))
    torch.manual_seed(0)
    with torch.no_grad():
        for param in bottleneck_state_dict(model).values():
            param.normal_(0, 0.2)  # non-zero up-projections: the adapters now change the output
    base_logits = _logits(load_base_model(tiny_model), tokenizer)
    assert not torch.allclose(_logits(model, tokenizer), base_logits)
    save_bottleneck_adapter(model, tmp_path / "adapter")
    loaded = load_bottleneck_adapter(load_base_model(tiny_model), tmp_path / "adapter")
    assert torch.equal(_logits(model, tokenizer), _logits(loaded, tokenizer))


def test_training_is_seeded(tmp_path, tiny_model, datasets, lora_run):
    train, val = datasets
    again = train_adapter(tiny_model, train, val, LORA, tmp_path / "again")
    _assert_same_weights(lora_run.adapter_dir, again.adapter_dir)
    assert again.train_losses == lora_run.train_losses
    other = train_adapter(
        tiny_model, train, None, LORA.model_copy(update={"seed": 4}), tmp_path / "o"
    )
    assert other.train_losses != lora_run.train_losses and other.val_loss is None


class Crash(RuntimeError):
    pass


def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path, tiny_model, datasets, lora_run):
    train, val = datasets
    config = LORA.model_copy(update={"checkpoint_every": 5, "eval_every": 6})
    checkpoints = tmp_path / "checkpoints"

    def crash_after_step_17(event: dict) -> None:
        if event["event"] == "train" and event["step"] == 17:
            raise Crash("killed")

    with pytest.raises(Crash):
        train_adapter(
            tiny_model, train, val, config, tmp_path / "out", checkpoints, crash_after_step_17
        )
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000010", "step-00000015"]
    assert not (tmp_path / "out").exists()

    events: list[dict] = []
    resumed = train_adapter(
        tiny_model, train, val, config, tmp_path / "out", checkpoints, events.append
    )
    assert resumed.resumed_from_step == 15 and resumed.steps == LORA.max_steps
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(16, 25))
    _assert_same_weights(lora_run.adapter_dir, resumed.adapter_dir)
    assert resumed.train_losses == lora_run.train_losses
    assert [s for s, _ in resumed.val_losses] == [6, 12, 18, 24]
    # A checkpoint of other settings is refused rather than silently mixed in.
    with pytest.raises(InvalidInputError, match="different run"):
        other = config.model_copy(update={"learning_rate": 1e-3})
        train_adapter(tiny_model, train, val, other, tmp_path / "other", checkpoints)


@pytest.mark.parametrize("run", ["lora_run", "bottleneck_run"])
def test_load_adapted_model_gives_the_trained_models_logits(
    request, run, tiny_model, tokenizer, tmp_path
):
    result = request.getfixturevalue(run)
    copy = shutil.copytree(result.adapter_dir, tmp_path / "adapter")
    model = load_adapted_model(tiny_model, copy, device="cpu")
    shutil.rmtree(copy)  # everything is in memory: the decrypted adapter dir can go at once
    text = "sam: did you see the news?\nme:"
    expected = _logits(result.model, tokenizer, text)
    assert torch.equal(_logits(model, tokenizer, text), expected)
    assert not torch.allclose(_logits(load_base_model(tiny_model), tokenizer, text), expected)
    assert not any(p.requires_grad for p in model.parameters())


def test_generation_is_seeded_and_one_line(lora_run, tokenizer, persona_examples):
    contexts = [persona_examples[0], [("jo", "want to have lunch tomorrow?")]]
    first = generate_replies(lora_run.model, tokenizer, contexts, n=3, max_new_tokens=12, seed=5)
    again = generate_replies(lora_run.model, tokenizer, contexts, n=3, max_new_tokens=12, seed=5)
    other = generate_replies(lora_run.model, tokenizer, contexts, n=3, max_new_tokens=12, seed=6)
    assert first == again != other
    assert [len(replies) for replies in first] == [3, 3]
    assert all("\n" not in reply for replies in first for reply in replies)
    assert any(reply for replies in first for reply in replies)


def test_pii_leaks_finds_exact_and_fuzzy_copies_only():
    pii = ["Jonathan Smith", "jon.smith@example.com", "Bo", "+44 7700 900123"]
    generations = [
        # Exact despite case and spacing; "bo" inside "about" is no leak.
        "lol ask JONATHAN  SMITH about it",
        "mail me at jon.smith@exmaple.com ok",  # fuzzy: letters swapped
        "call +44 7700 900 123 rn",  # fuzzy: a space added
        "bo knows lol",  # exact for a short string
        "nah too tired rn ngl",  # nothing
    ]
    leaks = {(leak.generation_index, leak.pii_index): leak for leak in pii_leaks(generations, pii)}
    assert leaks.keys() == {(0, 0), (1, 1), (2, 3), (3, 2)}
    assert leaks[(0, 0)].kind == "exact" and leaks[(0, 0)].score == 100
    assert leaks[(1, 1)].kind == "fuzzy" and 90 <= leaks[(1, 1)].score < 100
    assert leaks[(2, 3)].kind == "fuzzy"
    assert pii_leaks(["the meeting is on thursday"], ["Thursday Smithers"]) == []
    assert pii_leaks(["bobcats"], ["Bob"]) == []  # short PII: whole words only
    # A generation shorter than the PII is no leak for being part of it...
    assert pii_leaks([".", "smith", "jon.smith"], ["jon.smith@example.com"]) == []
    # ...but is one when it is nearly all of it (cut off at max_new_tokens).
    assert [leak.kind for leak in pii_leaks(["jon.smith@example.co"], [pii[1]])] == ["fuzzy"]
    # Longer PII inside a longer word still counts, as a fuzzy (partial_ratio 100) leak.
    assert [leak.kind for leak in pii_leaks(["ask jonathans mum"], ["Jonathan"])] == ["fuzzy"]


def test_style_similarity_prefers_persona_like_text(persona_examples):
    from synth_pipelines.core.tabular.semantic_dedup import MiniLMEmbedder

    embedder = MiniLMEmbedder(dtype="float32")
    heldout = [ex.target for ex in persona_examples[:30]]
    persona_like = ["lol ya im down ngl", "omg nah too tired lol", "haha same tbh lol"]
    generic = list(GENERIC_TEXT)
    persona_score = style_similarity(embedder, persona_like, heldout)
    generic_score = style_similarity(embedder, generic, heldout)
    assert persona_score > generic_score + 0.1, (persona_score, generic_score)
    assert -1 <= generic_score < persona_score <= 1
