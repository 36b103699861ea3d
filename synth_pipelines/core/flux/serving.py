"""Serving a subject's LoRA: a bounded queue in front of a fixed number of concurrent
generations, and a small cache of loaded pipelines (one base model, LoRA per subject)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_pipelines.core.errors import BusyError
from synth_pipelines.core.storage.bundles import unpack_directory


class GenerationLimiter:
    """At most `concurrency` generations run; at most `queue_size` more wait (for at most
    `wait_seconds`); anyone beyond that is turned away at once with BusyError (HTTP 429)."""

    def __init__(self, concurrency: int = 1, queue_size: int = 8, wait_seconds: float = 300):
        self.concurrency, self.queue_size, self.wait_seconds = concurrency, queue_size, wait_seconds
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one generation slot; yields the seconds spent waiting in the queue."""
        with self._lock:
            if self.waiting >= self.queue_size and self.running >= self.concurrency:
                raise BusyError(
                    f"generation queue full: {self.running} running, {self.waiting} waiting "
                    f"(SYNTH_FLUX_CONCURRENCY={self.concurrency}, "
                    f"SYNTH_FLUX_QUEUE={self.queue_size}); retry shortly"
                )
            self.waiting += 1
        started = time.perf_counter()
        acquired = self._slots.acquire(timeout=self.wait_seconds)
        with self._lock:
            self.waiting -= 1
            if acquired:
                self.running += 1
        if not acquired:
            raise BusyError(f"waited {self.wait_seconds:.0f} s for a generation slot; retry later")
        try:
            yield time.perf_counter() - started
        finally:
            with self._lock:
                self.running -= 1
            self._slots.release()


@dataclass
class _Loaded:
    subject_id: str
    pipe: Any


class PipelineCache:
    """Loaded pipelines by LoRA id, least recently used dropped first. A LoRA's bytes come
    decrypted from the caller and live on disk only while the pipeline loads them."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self._pipes: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, lora_id: str, subject_id: str, base_model: Path, lora_tar: Any) -> Any:
        """The pipeline with LoRA `lora_id`; `lora_tar()` gives its tar bytes on a miss."""
        from synth_pipelines.core.flux.generation import load_pipeline

        with self._lock:
            if lora_id in self._pipes:
                self._pipes.move_to_end(lora_id)
                return self._pipes[lora_id].pipe
            with tempfile.TemporaryDirectory() as scratch:
                lora_dir = unpack_directory(lora_tar(), Path(scratch))
                pipe = load_pipeline(base_model, lora_dir=lora_dir)
            self._pipes[lora_id] = _Loaded(subject_id, pipe)
            while len(self._pipes) > self.capacity:
                self._pipes.popitem(last=False)
            return pipe

    def drop_subject(self, subject_id: str) -> None:
        with self._lock:
            for lora_id in [k for k, v in self._pipes.items() if v.subject_id == subject_id]:
                del self._pipes[lora_id]
