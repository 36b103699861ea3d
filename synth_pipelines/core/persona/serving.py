"""Load a base model, alone or with a saved persona adapter (LoRA or bottleneck), for inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.persona.bottleneck import CONFIG_FILE as BOTTLENECK_CONFIG_FILE
from synth_pipelines.core.persona.bottleneck import load_bottleneck_adapter

# Written next to the adapter's own files: method, training settings, headline metrics.
ADAPTER_INFO_FILE = "persona_adapter.json"


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The torch device and base-model dtype: "auto" is CUDA if available, bfloat16 there."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was asked for but no CUDA device is available")
    if dtype == "auto":
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        dtype = "bfloat16" if bf16 else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise InvalidInputError(f"dtype '{dtype}' is not one of: auto, float32, bfloat16, float16")
    return torch.device(device), getattr(torch, dtype)


def load_base_model(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Any:
    """`AutoModelForCausalLM.from_pretrained(path)` on `device`, in eval mode."""
    from transformers import AutoModelForCausalLM

    if not (Path(path) / "config.json").is_file():
        raise MissingCheckpointError(
            f"{path} is not a Hugging Face model directory (no config.json): save one there "
            "with save_pretrained"
        )
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(device).eval()


def adapter_method(adapter_dir: str | Path) -> str:
    """ "lora" or "bottleneck", from the adapter info file or the files the adapter dir holds."""
    adapter_dir = Path(adapter_dir)
    info = adapter_dir / ADAPTER_INFO_FILE
    if info.is_file():
        return json.loads(info.read_text(encoding="utf-8"))["method"]
    if (adapter_dir / "adapter_config.json").is_file():
        return "lora"
    if (adapter_dir / BOTTLENECK_CONFIG_FILE).is_file():
        return "bottleneck"
    raise MissingCheckpointError(f"{adapter_dir} holds no LoRA or bottleneck adapter")


def load_adapted_model(
    base_model_path: str | Path,
    adapter_dir: str | Path,
    device: str = "auto",
    dtype: str = "auto",
) -> Any:
    """The base model + the adapter in `adapter_dir`, frozen, in eval mode (load the tokenizer
    from `base_model_path` with `AutoTokenizer`).

    LoRA loads through peft's `PeftModel.from_pretrained`, bottleneck adapters through
    `load_bottleneck_adapter`. All weights are in memory on return: `adapter_dir` may be deleted.
    """
    method = adapter_method(adapter_dir)
    torch_device, torch_dtype = resolve_device(device, dtype)
    model = load_base_model(base_model_path, torch_device, torch_dtype)
    if method == "lora":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    elif method == "bottleneck":
        load_bottleneck_adapter(model, adapter_dir)
    else:
        raise InvalidInputError(f"adapter method '{method}' is not one of: lora, bottleneck")
    for param in model.parameters():
        param.requires_grad_(False)
    return model.to(torch_device).eval()
