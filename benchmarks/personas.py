"""Persona benchmark: anonymization messages/s and recall per PII type on the labelled fixture;
adapter training tokens/s on CPU for the tiny test model (LoRA and bottleneck); on a CUDA GPU,
tokens/s and peak memory for a GPT-2-small-sized config (random init) with each method.
Prints markdown tables.

    python benchmarks/personas.py [--steps 60] [--gpu-steps 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description

FIXTURE = Path(__file__).parent.parent / "tests" / "fixtures" / "persona_pii.jsonl"


def anonymization(repeat: int) -> None:
    from synth_pipelines.core.persona.pii_fixture import (
        evaluate_fixture,
        load_fixture,
        with_anonymizers,
    )

    report = evaluate_fixture(FIXTURE, repeat=repeat)
    print(f"## Anonymization ({FIXTURE.name}, {repeat} passes)\n")
    print("```\n" + report.table() + "\n```")
    secret = b"benchmark-secret-32-bytes-long!!"
    jobs = [(a, m.text) for a, m in with_anonymizers(load_fixture(FIXTURE), secret)]
    for anonymizer, text in jobs:  # warm-up: lazy phone metadata, pseudonym caches
        anonymizer.anonymize(text)
    started = time.perf_counter()
    for _ in range(repeat):
        for anonymizer, text in jobs:
            anonymizer.anonymize(text)
    rate = repeat * len(jobs) / (time.perf_counter() - started)
    print(f"\ndetect only: {report.messages_per_s:,.0f} messages/s; detect + pseudonymise: "
          f"{rate:,.0f} messages/s (one core)\n")  # fmt: skip


def _persona_examples(n: int = 400):
    from synth_pipelines.core.persona.dataset import TrainingExample
    from synth_pipelines.core.persona.demo_export import demo_whatsapp_export
    from synth_pipelines.core.persona.parsers import conversation_pairs, parse_export

    export = parse_export(demo_whatsapp_export(n, seed=1), "whatsapp", ["Ada Quill"])
    return [
        TrainingExample(
            tuple(("me" if m.from_persona else m.sender, m.text) for m in pair.context),
            pair.target.text,
        )
        for pair in conversation_pairs(export.messages)
    ]


def train(base: Path, examples, method: str, steps: int, device: str, batch: int) -> dict:
    from transformers import AutoTokenizer

    from synth_pipelines.core.persona.dataset import tokenize_examples
    from synth_pipelines.core.persona.training import TrainConfig, train_adapter

    tokenizer = AutoTokenizer.from_pretrained(base)
    data = tokenize_examples(examples, tokenizer, max_length=256)
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = train_adapter(
            base,
            data,
            None,
            TrainConfig(
                method=method, max_steps=steps, batch_size=batch, device=device, checkpoint_every=0
            ),
            Path(out) / "adapter",
        )
        seconds = time.perf_counter() - started
    peak = None
    if device == "cuda":
        import torch

        peak = torch.cuda.max_memory_allocated() / 2**30
    return {
        "tokens_per_s": result.tokens_per_s,
        "seconds": seconds,
        "trainable": result.trainable_params,
        "total": result.total_params,
        "peak_gib": peak,
    }


def cpu_training(steps: int) -> None:
    from synth_pipelines.core.persona.tiny_model import build_tiny_causal_lm

    examples = _persona_examples()
    print(f"## Training on CPU: tiny test GPT-2, {len(examples)} pairs, batch 8, {steps} steps\n")
    print("| method | tokens/s | seconds | trainable / total params |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_causal_lm(Path(tmp) / "tiny")
        for method in ("lora", "bottleneck"):
            r = train(base, examples, method, steps, "cpu", 8)
            print(f"| {method} | {r['tokens_per_s']:,.0f} | {r['seconds']:.1f} | "
                  f"{r['trainable']:,} / {r['total']:,} |")  # fmt: skip
    print()


def gpu_training(steps: int) -> None:
    import torch

    if not torch.cuda.is_available():
        print("## Training on CUDA\n\nskipped: no CUDA device on this machine\n")
        return
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from synth_pipelines.core.persona.tiny_model import build_tiny_causal_lm

    examples = _persona_examples()
    name = torch.cuda.get_device_name()
    print(f"## Training on {name}: GPT-2-small config (124M, random init), bf16 base\n")
    print("| method | tokens/s | peak memory GiB | trainable / total params |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        # The tiny model's tokenizer, with a GPT-2-small-sized model behind it.
        tiny = build_tiny_causal_lm(Path(tmp) / "tiny", pretrain_steps=0)
        tokenizer = AutoTokenizer.from_pretrained(tiny)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=1024))
        base = Path(tmp) / "gpt2-small"
        model.save_pretrained(base)
        tokenizer.save_pretrained(base)
        for method in ("lora", "bottleneck"):
            r = train(base, examples, method, steps, "cuda", 16)
            print(f"| {method} | {r['tokens_per_s']:,.0f} | {r['peak_gib']:.2f} | "
                  f"{r['trainable']:,} / {r['total']:,} |")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--gpu-steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="passes over the PII fixture")
    parser.add_argument("--skip", nargs="*", default=[], choices=["anonymization", "cpu", "gpu"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"# persona benchmark, {date.today()}, "
          f"{cpu_description()}\n")  # fmt: skip
    if "anonymization" not in args.skip:
        anonymization(args.repeat)
    if "cpu" not in args.skip:
        cpu_training(args.steps)
    if "gpu" not in args.skip:
        gpu_training(args.gpu_steps)


if __name__ == "__main__":
    main()
