"""Where models live: the base model's local directory, adapters as encrypted tarballs in the
object store, and a small in-process cache of loaded base+adapter models for serving."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.persona.sources import persona_prefix
from synth_pipelines.core.security.crypto import decrypt, encrypt
from synth_pipelines.core.storage.bundles import (
    TINY_TEST_MODEL,
    build_once,
    pack_directory,
    unpack_directory,
)
from synth_pipelines.core.storage.object_store import ObjectStore


def resolve_base_model(setting: str, home: Path) -> Path:
    """The base model directory for SYNTH_PERSONA_BASE_MODEL.

    A path must hold a Hugging Face causal LM (config.json). `tiny-test` builds (once) the
    labelled tiny GPT-2 test model under SYNTH_HOME/models; it is for tests and demos only.
    """
    if not setting:
        raise InvalidInputError(
            "SYNTH_PERSONA_BASE_MODEL is not set: name a local Hugging Face model directory "
            f"(e.g. a GPT-2 or Llama checkout), or '{TINY_TEST_MODEL}' for the tiny test model"
        )
    if setting == TINY_TEST_MODEL:
        from synth_pipelines.core.persona.tiny_model import build_tiny_causal_lm

        return build_once(home / "models" / "tiny-test-gpt2", "config.json", build_tiny_causal_lm)
    path = Path(setting).expanduser()
    if not (path / "config.json").is_file():
        raise MissingCheckpointError(
            f"SYNTH_PERSONA_BASE_MODEL={setting}: no Hugging Face model there (config.json "
            "missing); save one with save_pretrained or download it to that directory"
        )
    return path


def adapter_object_key(persona_id: str, version: int) -> str:
    return f"{persona_prefix(persona_id)}adapters/v{version}.tar.enc"


def _context(persona_id: str, key: str) -> str:
    return f"persona/{persona_id}/{key}"


def save_adapter(
    store: ObjectStore, data_key: bytes, persona_id: str, version: int, directory: Path
) -> tuple[str, int]:
    """Tar `directory`, encrypt it under the persona's key, store it; (object key, bytes)."""
    key = adapter_object_key(persona_id, version)
    blob = encrypt(data_key, pack_directory(directory), _context(persona_id, key))
    store.put_bytes(key, blob)
    return key, len(blob)


def unpack_adapter(
    store: ObjectStore, data_key: bytes, persona_id: str, key: str, directory: Path
) -> Path:
    """Decrypt and unpack a stored adapter into `directory` (member paths are checked)."""
    raw = decrypt(data_key, store.get_bytes(key), _context(persona_id, key))
    return unpack_directory(raw, directory)


class AdapterCache:
    """Loaded (model, tokenizer) pairs by adapter id, least recently used dropped first.

    Loading decrypts the adapter into a temporary directory that is deleted right after."""

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._models: OrderedDict[str, tuple[str, Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        adapter_id: str,
        persona_id: str,
        store: ObjectStore,
        data_key: bytes,
        object_key: str,
        base_model: Path,
    ) -> tuple[Any, Any]:
        with self._lock:
            if adapter_id in self._models:
                self._models.move_to_end(adapter_id)
                _, model, tokenizer = self._models[adapter_id]
                return model, tokenizer
            from transformers import AutoTokenizer

            from synth_pipelines.core.persona.serving import load_adapted_model

            with tempfile.TemporaryDirectory() as scratch:
                directory = unpack_adapter(store, data_key, persona_id, object_key, Path(scratch))
                model = load_adapted_model(base_model, directory)
            tokenizer = AutoTokenizer.from_pretrained(base_model)
            self._models[adapter_id] = (persona_id, model, tokenizer)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model, tokenizer

    def drop_persona(self, persona_id: str) -> None:
        with self._lock:
            for adapter_id in [k for k, v in self._models.items() if v[0] == persona_id]:
                del self._models[adapter_id]
