"""Wall time and peak memory of one benchmark call.

Peak memory is the process's resident set size sampled by a background thread,
so memory allocated inside OR-Tools' C++ code counts too (tracemalloc would
miss it). ``peak_mb`` is the whole process's peak RSS during the call (what a
user's machine must hold); ``rss_start_mb`` is the RSS before it, for context.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

__all__ = ["Measured", "measure", "run_peer_script"]


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


def run_peer_script(script: str, arg: str, *, timeout_s: float) -> dict[str, Any]:
    """Run a peer's solve in a fresh Python process and return its last JSON line.

    Peers run apart from gridopt because OR-Tools and ``highspy`` cannot be
    loaded in one process, and so that a hung peer can be stopped. The script
    receives ``arg`` as ``sys.argv[1]`` and prints one JSON object per result;
    failures come back as ``{"error": ...}``, never as an exception.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, arg],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"peer process did not return within {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": f"peer failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])
