"""The solvers' clock: deterministic work, with the wall clock only as a safety cap.

Every stage of the solvers stops at a "deadline" and shares its budget out to the
stages below it. If those deadlines were wall-clock seconds, the machine's load would
decide where a search stops, and the same seed would not give the same answer. So the
solvers read :func:`now`, which counts *work*: each loop charges what it did
(:func:`charge`, in entry visits: one pass of a Lagrangian iteration over the
client-site pairs charges their number), and ``now()`` is that work divided by
:data:`UNITS_PER_S`, a fixed rate close to one core of the benchmark machine. A
MIP gets a node budget (:func:`mip_nodes`) instead of seconds.

The wall clock is still watched: past the safety cap ``now()`` returns infinity, every
loop stops at its next check, and :func:`capped` reports it (the answer is then the one
the machine's speed allowed, and the status says ``"time_limit"``).

Outside :func:`running` (kernels called directly, as in the tests) the clock is the
wall clock, as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger("gridopt")

__all__ = [
    "WorkClock",
    "capped",
    "charge",
    "charge_nodes",
    "mip_nodes",
    "note_cap",
    "now",
    "running",
    "wall_left",
]

#: units of work per work-second, by kind of work, measured on one core of the 2-core
#: benchmark machine (``GRIDOPT_CLOCK_PROFILE=1`` logs the CPU-time rates a run sees):
#: ``pass`` numpy passes over the client-site pairs, ``swap`` a swap-evaluation
#: pass, ``tree`` Lagrangian subgradient steps in numba (pairs x iterations), ``dp``
#: knapsack DP cells, ``flow`` min-cost-flow arcs, ``tabu`` tabu-search steps,
#: ``highs`` / ``elloumi`` MIP nodes x model non-zeros (an Elloumi node is cheap, a node
#: of the capacitated models is not), ``scip`` non-zeros x (LP iterations + nodes), as
#: SCIP reports them (:func:`gridopt.solvers._mip.scip_solve`)
UNITS_PER_S: dict[str, float] = {
    "pass": 2.0e7,
    "swap": 2.0e8,
    "tree": 5.0e8,
    "dp": 3.0e10,  # knapsack DP cells (measured 1e10-2e11 per CPU second; kept low)
    "flow": 5.0e5,
    "tabu": 4.0e7,
    "highs": 5.0e4,
    "elloumi": 1.0e6,
    "scip": 2.5e7,
}
#: a MIP's root (presolve, LP, cuts) is charged as this many nodes
ROOT_NODES = 5
#: a MIP is never given fewer nodes than this, nor more than MAX_NODES
MIN_NODES = 200
MAX_NODES = 200_000
_PROFILE = bool(os.environ.get("GRIDOPT_CLOCK_PROFILE"))


@dataclass
class WorkClock:
    """Work done so far (in work-seconds) and the wall-clock safety cap."""

    wall_deadline: float
    seconds: float = 0.0
    hit_cap: bool = False
    last: float = 0.0
    profile: dict[str, list[float]] = field(default_factory=dict)

    def now(self) -> float:
        wall = time.perf_counter()
        if _PROFILE:
            self.last = time.thread_time()
        if wall > self.wall_deadline:
            self.hit_cap = True
            return math.inf
        return self.seconds

    def charge(self, units: float, kind: str) -> None:
        self.seconds += float(units) / UNITS_PER_S[kind]
        if _PROFILE:
            cpu = time.thread_time()
            entry = self.profile.setdefault(kind, [0.0, 0.0])
            entry[0] += float(units)
            entry[1] += cpu - (self.last or cpu)
            self.last = cpu


_CURRENT: contextvars.ContextVar[WorkClock | None] = contextvars.ContextVar(
    "gridopt_solver_clock", default=None
)


@contextlib.contextmanager
def running(wall_cap_s: float) -> Iterator[WorkClock]:
    """Make a fresh work clock current for one solve, with a wall-clock cap in seconds."""
    clock = WorkClock(time.perf_counter() + float(wall_cap_s))
    clock.last = time.thread_time()
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)
        if _PROFILE:
            for kind, (units, wall) in sorted(clock.profile.items()):
                log.warning(
                    "clock %s: %.3g units in %.3f s CPU (%.3g units/s, charged %.3f s)",
                    kind, units, wall, units / max(wall, 1e-9), units / UNITS_PER_S[kind],
                )  # fmt: skip


def now() -> float:
    """Work-seconds done in the current solve (wall seconds outside one; inf past the cap)."""
    clock = _CURRENT.get()
    return time.perf_counter() if clock is None else clock.now()


def charge(units: float, kind: str = "pass") -> None:
    """Add ``units`` of work of one kind (see :data:`UNITS_PER_S`) to the current solve."""
    clock = _CURRENT.get()
    if clock is not None:
        clock.charge(units, kind)


def capped() -> bool:
    """True when the current solve's wall-clock safety cap stopped something."""
    clock = _CURRENT.get()
    return clock is not None and clock.hit_cap


def note_cap() -> None:
    """Record that a solver (a MIP) stopped at the wall-clock safety cap."""
    clock = _CURRENT.get()
    if clock is not None:
        clock.hit_cap = True


def mip_nodes(seconds: float, nonzeros: int, kind: str = "highs") -> int:
    """Node budget of a MIP given ``seconds`` of work and its number of non-zeros."""
    if not math.isfinite(seconds):
        return MIN_NODES
    nodes = max(0.0, seconds) * UNITS_PER_S[kind] / max(1, int(nonzeros))
    return int(min(MAX_NODES, max(MIN_NODES, nodes)))


def charge_nodes(nodes: int, nonzeros: int, kind: str = "highs") -> None:
    """Charge the work of ``nodes`` branch-and-bound nodes of a MIP."""
    charge(max(1, int(nonzeros)) * (nodes + ROOT_NODES), kind)


#: a MIP given ``s`` work-seconds may run at most MIP_WALL_FACTOR * s + MIP_WALL_SLACK_S
#: wall seconds: a node budget does not bound the root (presolve, cuts), and one MIP
#: stuck there must not take the time of every later stage up to the solve's cap
MIP_WALL_FACTOR = 4.0
MIP_WALL_SLACK_S = 5.0


def wall_left(seconds: float) -> float:
    """Wall seconds a MIP given ``seconds`` of work may run (its own cap, within the solve's)."""
    own = (
        MIP_WALL_FACTOR * max(0.0, seconds) + MIP_WALL_SLACK_S
        if math.isfinite(seconds)
        else math.inf
    )
    clock = _CURRENT.get()
    if clock is None:
        return max(0.05, min(seconds, own))
    return max(0.05, min(own, clock.wall_deadline - time.perf_counter()))
