"""How many CPUs this process may use: the default for worker pools and thread counts."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (a container's cpuset, `taskset`),
    not the host's core count that `os.cpu_count()` gives."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
