"""The generation queue (a fixed number running, a bounded number waiting, the rest turned
away) and the content policy, exercised with real threads."""

from __future__ import annotations

import threading
import time

import pytest

from synth_pipelines.core.errors import BusyError
from synth_pipelines.core.flux.pipeline import prompt_for
from synth_pipelines.core.flux.policy import ContentPolicy, ContentPolicyError
from synth_pipelines.core.flux.serving import GenerationLimiter


def test_limiter_runs_n_at_once_queues_m_and_turns_the_rest_away() -> None:
    limiter = GenerationLimiter(concurrency=2, queue_size=1, wait_seconds=5)
    release = threading.Event()
    peak, outcomes, lock = [0], [], threading.Lock()

    def work() -> None:
        try:
            with limiter.slot():
                with lock:
                    peak[0] = max(peak[0], limiter.running)
                release.wait(5)
            outcome = "ran"
        except BusyError:
            outcome = "busy"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 5
    while (limiter.running, limiter.waiting) != (2, 1) and time.time() < deadline:
        time.sleep(0.01)
    assert (limiter.running, limiter.waiting) == (2, 1)
    with pytest.raises(BusyError, match="queue full: 2 running, 1 waiting"), limiter.slot():
        pass
    release.set()
    for thread in threads:
        thread.join(5)
    assert sorted(outcomes) == ["ran", "ran", "ran"] and peak[0] == 2
    assert (limiter.running, limiter.waiting) == (0, 0)


def test_a_waiter_gives_up_after_its_wait() -> None:
    limiter = GenerationLimiter(concurrency=1, queue_size=1, wait_seconds=0.1)
    with limiter.slot(), pytest.raises(BusyError, match="waited"), limiter.slot():
        pass
    with limiter.slot() as waited:  # the slot is free again
        assert waited < 0.1


def test_content_policy_matches_words_and_prefixes_only() -> None:
    policy = ContentPolicy()
    for prompt in ["a NUDE portrait of [trigger]", "[trigger], nudity", "porno style"]:
        with pytest.raises(ContentPolicyError, match="content policy"):
            policy.check(prompt)
    for prompt in ["[trigger] at the beach", "a minority report poster", "Explicitly kind"]:
        policy.check(prompt)  # "minor" and "explicit" are whole words only
    custom = ContentPolicy.from_text("hat, sun*")
    assert custom.violation("a red hat") == "hat" and custom.violation("sunglasses") == "sunglasses"
    assert custom.violation("a nude") is None  # a custom list replaces the default


def test_trigger_handling_in_prompts() -> None:
    assert prompt_for("a photo of [trigger] smiling", "sks") == "a photo of sks smiling"
    assert prompt_for("sks at the beach", "sks") == "sks at the beach"
    assert prompt_for("at the beach", "sks") == "sks, at the beach"
