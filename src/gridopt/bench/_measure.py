"""Wall time and peak memory of one benchmark call.

Peak memory is the process's resident set size sampled by a background thread,
so memory allocated inside OR-Tools' C++ code counts too (tracemalloc would
miss it). ``peak_mb`` is the whole process's peak RSS during the call (what a
user's machine must hold); ``rss_start_mb`` is the RSS before it, for context.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

__all__ = ["Measured", "measure"]


@dataclass(frozen=True)
class Measured:
    """What :func:`measure` returns: the call's value, seconds and memory."""

    value: Any
    seconds: float
    peak_mb: float
    rss_start_mb: float


def measure(fn: Callable[[], Any], *, interval_s: float = 0.01) -> Measured:
    """Run ``fn()`` and return its value, wall seconds and peak RSS in MB.

    Examples
    --------
    >>> m = measure(lambda: sum(range(1000)))
    >>> m.value
    499500
    """
    proc = psutil.Process()
    start_rss = proc.memory_info().rss
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = proc.memory_info().rss
            if rss > peak[0]:
                peak[0] = rss
            done.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        value = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        thread.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    mb = 1024.0 * 1024.0
    return Measured(value, seconds, (peak[0]) / mb, start_rss / mb)
