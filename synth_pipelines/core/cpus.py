"""How many CPUs this process may use: the default for worker pools and thread counts."""

from __future__ import annotations

import os
import platform
import time


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (a container's cpuset, `taskset`),
    not the host's core count that `os.cpu_count()` gives."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_description() -> str:
    """The CPU model, usable CPUs and the vector extensions that decide our kernels' speed, for
    benchmark headers: VMs of one type run on different CPUs ("AMD EPYC, 2 CPUs, avx512_vnni
    avx512_bf16" vs an AMX Xeon), and the figures differ by up to 1.5x between them."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    shown = " ".join(f for f in wanted if f in flags)
    return f"{model}, {usable_cpus()} CPUs" + (f", {shown}" if shown else "")


def interpreter_speed() -> str:
    """A reference for benchmark headers: nanoseconds per iteration of a plain Python loop (the
    best of 5), so that figures taken on VMs of different speed can be compared (about 30 ns
    on a fast core, 150 on a slow shared one)."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return f"python loop {best / 200_000 * 1e9:.0f} ns/iteration"
