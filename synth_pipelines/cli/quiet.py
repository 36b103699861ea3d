"""The ML libraries' own output off for `synth` commands: their progress bars ("Loading weights",
"Loading pipeline components..."), info and warning logs ("requires torchvision", "No LoRA keys
associated") and deprecation warnings, which bury the command's own output. `synth --verbose`
(or SYNTH_VERBOSE=1) leaves them on.

Nothing is imported here: torch, transformers and diffusers take seconds to import and most
commands never load them. The environment variables below are read when, and if, a command
imports them (and by any subprocess); diffusers' progress bar follows no variable, so a hook sets
each library's own switches right after the library's logging module is first imported.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # the Hub's bars, and transformers' (they follow it)
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_VERBOSITY": "error",
}
# Not output but behaviour: a user's own choice stands. "false" stops tokenizers' warning about
# a fork after its thread pool started (the Dagster and uvicorn workers).
DEFAULT_ENVIRONMENT = {"TOKENIZERS_PARALLELISM": "false"}
# Warnings raised inside these packages; one raised in our own code still shows.
THIRD_PARTY_MODULES = (
    r"(transformers|diffusers|peft|accelerate|huggingface_hub|sentence_transformers|torch)(\.|$)"
)
THIRD_PARTY_CATEGORIES = (FutureWarning, DeprecationWarning)


def _quiet_library_logging(logging_module: ModuleType) -> None:
    """transformers.utils.logging and diffusers.utils.logging have the same two switches."""
    logging_module.set_verbosity_error()
    logging_module.disable_progress_bar()


def _quiet_hub(tqdm_module: ModuleType) -> None:
    tqdm_module.disable_progress_bars()


AFTER_IMPORT: dict[str, Callable[[ModuleType], None]] = {
    "transformers.utils.logging": _quiet_library_logging,
    "diffusers.utils.logging": _quiet_library_logging,
    "huggingface_hub.utils.tqdm": _quiet_hub,
}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `hooks[name](module)` once, right after module `name` is first executed."""

    def __init__(self, hooks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.hooks = hooks

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        hook = self.hooks.pop(fullname, None)
        if hook is None:
            return None
        for finder in sys.meta_path:  # the finder that would have found it without us
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_hook(module: ModuleType) -> None:
            exec_module(module)
            hook(module)

        spec.loader.exec_module = exec_then_hook  # this module's own loader instance
        return spec


def quiet_third_party() -> None:
    """Silence the ML libraries for this process and its subprocesses; safe to call twice."""
    os.environ.update(QUIET_ENVIRONMENT)
    for name, value in DEFAULT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for category in THIRD_PARTY_CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY_MODULES)
    pending = {}
    for name, hook in AFTER_IMPORT.items():
        if name in sys.modules:
            hook(sys.modules[name])
        else:
            pending[name] = hook
    finder = next((f for f in sys.meta_path if isinstance(f, _AfterImport)), None)
    if finder is not None:
        finder.hooks.update(pending)
    elif pending:
        sys.meta_path.insert(0, _AfterImport(pending))
