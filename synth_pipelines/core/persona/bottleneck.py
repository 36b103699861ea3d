"""Houlsby-style bottleneck adapters for causal LMs, in plain PyTorch.

peft has no bottleneck adapter (peft issue #244), and AdapterHub's `adapters` 1.3.0 requires
`transformers~=4.57.6` (checked from its wheel metadata), which would downgrade our
transformers 5: hence this small module.

Each adapted sublayer output `h` becomes `h + up(act(down(h)))`, inserted (Houlsby et al. 2019)
after each block's attention output and after its MLP output, before the residual add. `up` is
zero-initialised, so a freshly adapted model computes exactly what the base model computes.
Adapters are attached as a child module `bottleneck_adapter` of the adapted sublayer and applied by
a forward hook, so base parameter names, and the base state dict, stay untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError

ADAPTER_ATTR = "bottleneck_adapter"
CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "bottleneck_adapter.safetensors"
FORMAT = "synth_pipelines.bottleneck_adapter"

# Full-match patterns for a block's attention and MLP sublayers: GPT-2 (`transformer.h.N.attn`,
# `.mlp`) and Llama/Mistral/Qwen-style models (`model.layers.N.self_attn`, `.mlp`). They must name
# the sublayer whose output is added to the residual stream (not one that adds it itself).
DEFAULT_TARGET_PATTERNS: tuple[str, ...] = (
    r"(.+\.)?(h|layers|blocks)\.\d+\.(attn|self_attn|attention)",
    r"(.+\.)?(h|layers|blocks)\.\d+\.(mlp|feed_forward|ffn)",
)

NONLINEARITIES = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class BottleneckConfig:
    """Bottleneck width, its nonlinearity, and which sublayers (full-match name regexes) to adapt.

    `hidden_size` defaults to the model config's `hidden_size`.
    """

    bottleneck_size: int = 16
    nonlinearity: str = "gelu"
    target_patterns: tuple[str, ...] = DEFAULT_TARGET_PATTERNS
    hidden_size: int | None = None


class BottleneckAdapter(nn.Module):
    """`x + up(act(down(x)))` with `up` zero-initialised; float32 whatever the base dtype."""

    def __init__(self, hidden_size: int, bottleneck_size: int, nonlinearity: str = "gelu"):
        super().__init__()
        if nonlinearity not in NONLINEARITIES:
            raise InvalidInputError(
                f"bottleneck nonlinearity '{nonlinearity}' is not one of: "
                + ", ".join(NONLINEARITIES)
            )
        self.hidden_size = hidden_size
        self.bottleneck_size = bottleneck_size
        self.nonlinearity = nonlinearity
        self.enabled = True
        self.down = nn.Linear(hidden_size, bottleneck_size)
        self.act = NONLINEARITIES[nonlinearity]()
        self.up = nn.Linear(bottleneck_size, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        delta = self.up(self.act(self.down(x.to(self.down.weight.dtype))))
        return x + delta.to(x.dtype)


def _apply_adapter(module: nn.Module, args: Any, output: Any) -> Any:
    # A module-level hook (not a closure) so deep copies of the model keep working adapters.
    adapter = getattr(module, ADAPTER_ATTR)
    if isinstance(output, torch.Tensor):
        return adapter(output)
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return (adapter(output[0]), *output[1:])
    raise TypeError(
        f"bottleneck adapter on {type(module).__name__}: output {type(output).__name__} is neither "
        "a tensor nor a tuple starting with one; choose another target module"
    )


def add_bottleneck_adapters(model: nn.Module, config: BottleneckConfig) -> list[str]:
    """Freeze `model` and attach a fresh adapter to every sublayer matching the config's patterns.

    Returns the adapted module names. Only adapter parameters have `requires_grad`.
    """
    names = [
        name
        for name, _ in model.named_modules()
        if name and any(re.fullmatch(p, name) for p in config.target_patterns)
    ]
    if not names:
        sample = ", ".join(name for name, _ in list(model.named_modules())[1:9])
        raise InvalidInputError(
            f"no module name matches the bottleneck target patterns {list(config.target_patterns)}"
            f" (module names look like: {sample}, ...)"
        )
    hidden = config.hidden_size or getattr(getattr(model, "config", None), "hidden_size", None)
    if not hidden:
        raise InvalidInputError("the model config has no hidden_size: set it in BottleneckConfig")
    for param in model.parameters():
        param.requires_grad_(False)
    modules = dict(model.named_modules())
    for name in names:
        module = modules[name]
        if hasattr(module, ADAPTER_ATTR):
            raise InvalidInputError(f"module '{name}' already has a bottleneck adapter")
        device = next(module.parameters()).device
        adapter = BottleneckAdapter(hidden, config.bottleneck_size, config.nonlinearity)
        module.add_module(ADAPTER_ATTR, adapter.to(device))
        module.register_forward_hook(_apply_adapter)
    return names


def adapted_modules(model: nn.Module) -> dict[str, BottleneckAdapter]:
    """Adapted sublayer name -> its adapter."""
    return {
        name: getattr(module, ADAPTER_ATTR)
        for name, module in model.named_modules()
        if isinstance(getattr(module, ADAPTER_ATTR, None), BottleneckAdapter)
    }


def bottleneck_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter parameters only, keyed by their names in `model`."""
    marker = f".{ADAPTER_ATTR}."
    return {name: p for name, p in model.named_parameters() if marker in name}


@contextmanager
def bottleneck_disabled(model: nn.Module) -> Iterator[None]:
    """Within the block, the model computes as the base model (adapters bypassed)."""
    adapters = list(adapted_modules(model).values())
    previous = [adapter.enabled for adapter in adapters]
    for adapter in adapters:
        adapter.enabled = False
    try:
        yield
    finally:
        for adapter, was in zip(adapters, previous, strict=True):
            adapter.enabled = was


def save_bottleneck_adapter(model: nn.Module, directory: str | Path) -> Path:
    """Write the adapter weights (safetensors) and a json config that names each adapted module."""
    from safetensors.torch import save_file

    directory = Path(directory)
    adapters = adapted_modules(model)
    if not adapters:
        raise InvalidInputError("the model has no bottleneck adapters to save")
    first = next(iter(adapters.values()))
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: p.detach().to("cpu", torch.float32).contiguous()
        for name, p in bottleneck_state_dict(model).items()
    }
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "version": 1,
        "bottleneck_size": first.bottleneck_size,
        "nonlinearity": first.nonlinearity,
        "hidden_size": first.hidden_size,
        "target_modules": list(adapters),
        "base_model_type": getattr(getattr(model, "config", None), "model_type", None),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def load_bottleneck_adapter(model: nn.Module, directory: str | Path) -> nn.Module:
    """Attach the adapters saved in `directory` to (base) `model` and load their weights.

    The model is frozen and its adapters trainable, as after `add_bottleneck_adapters`.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise MissingCheckpointError(
            f"{directory} holds no bottleneck adapter ({CONFIG_FILE} and {WEIGHTS_FILE} expected)"
        )
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    targets: Sequence[str] = saved["target_modules"]
    config = BottleneckConfig(
        bottleneck_size=saved["bottleneck_size"],
        nonlinearity=saved["nonlinearity"],
        target_patterns=tuple(re.escape(name) for name in targets),
        hidden_size=saved["hidden_size"],
    )
    found = add_bottleneck_adapters(model, config)
    if sorted(found) != sorted(targets):
        missing = sorted(set(targets) - set(found))
        raise InvalidInputError(f"the base model lacks the adapted modules {missing}")
    weights = load_file(str(weights_path))
    params = bottleneck_state_dict(model)
    if set(weights) != set(params):
        raise InvalidInputError(
            f"{weights_path} does not match the adapters: "
            f"missing {sorted(set(params) - set(weights))[:4]}, "
            f"unexpected {sorted(set(weights) - set(params))[:4]}"
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(weights[name])
    return model
