"""The public p-median entry point: :func:`solve_p_median` and :class:`PMedianResult`.

Validates the matrix into an :class:`~gridopt.solvers._instance.Instance`, then hands
it to the uncapacitated solver (:mod:`gridopt.solvers.pmedian`) or, with
``capacity=``, to the capacitated single-source one (:mod:`gridopt.solvers.cpmp`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import gridopt.solvers._clock as _clock
from gridopt._errors import InputError
from gridopt._status import Status
from gridopt.solvers._instance import Instance, build_instance
from gridopt.solvers.cpmp.solve import solve_capacitated
from gridopt.solvers.pmedian.solve import solve_uncapacitated

__all__ = ["PMedianResult", "default_work_s", "solve_p_median"]

#: default work budget per client-site pair, and its bounds (work-seconds)
WORK_S_PER_PAIR = 2e-4
MIN_WORK_S = 5.0
MAX_WORK_S = 30.0


@dataclass(frozen=True, eq=False)
class PMedianResult:
    """Solution of a (capacitated) p-median problem at matrix level.

    Attributes
    ----------
    open
        Sorted indices of the open sites (length ``p``).
    assign
        Site index of every client (always an open site).
    objective
        ``sum(weights * cost[client, assign])``.
    bound
        A proven lower bound on the optimal objective.
    status
        ``"optimal"`` when ``objective - bound`` is within tolerance, else
        ``"feasible"`` (the work budget ended the search), or ``"time_limit"``
        when the wall-clock safety cap stopped it (then, and only then, the
        answer may depend on the machine's load).
    runtime_s
        Wall seconds spent in :func:`solve_p_median`.
    work_s
        Work-seconds of the deterministic budget spent (see ``work_limit_s``).
    method
        The steps that produced the answer (for logs and benchmarks).
    """

    open: np.ndarray
    assign: np.ndarray
    objective: float
    bound: float
    status: Status
    runtime_s: float
    method: str = ""
    work_s: float = 0.0

    @property
    def gap(self) -> float:
        """Relative gap ``(objective - bound) / objective`` (0 when proven optimal)."""
        if self.objective == 0:
            return 0.0 if self.bound >= 0 else math.inf
        return max(0.0, (self.objective - self.bound) / abs(self.objective))

    def cost(self) -> float:
        """The objective value (as PyVRP's ``Result.cost()``)."""
        return self.objective

    def summary(self) -> str:
        """One-paragraph human-readable account of the solution."""
        return (
            f"p-median: {len(self.open)} open sites, {len(self.assign)} clients, "
            f"objective {self.objective:.6g}, bound {self.bound:.6g} "
            f"(gap {100 * self.gap:.3f}%), status {self.status}, "
            f"{self.runtime_s:.2f} s, {self.work_s:.2f} work-s [{self.method}]"
        )


def solve_p_median(
    cost: Any,
    *,
    p: int,
    weights: Any = None,
    demand: Any = None,
    capacity: Any = None,
    fixed_open: Any = None,
    time_limit_s: float = 60.0,
    work_limit_s: float | None = None,
    seed: int = 0,
) -> PMedianResult:
    """Open ``p`` sites and assign every client to one, minimising weighted cost.

    Parameters
    ----------
    cost
        ``(n_clients, n_sites)`` costs: a dense array, or a scipy.sparse matrix in
        which a missing entry means the client may not use that site (for example
        beyond the walking limit). Stored zeros are real zero costs.
    p
        Number of sites to open, ``1 <= p <= n_sites`` (fixed sites count towards it).
    weights
        Per-client multiplier of the cost in the objective (households); default 1.
    demand
        Per-client amount counted against ``capacity``; defaults to ``weights``.
    capacity
        ``None`` (uncapacitated), a scalar for every site, or one value per site.
        Each client is served by exactly one site (single source).
    fixed_open
        Indices of sites that must be open (existing stations).
    time_limit_s
        Wall-clock safety cap: the best solution found and its bound are returned
        when it runs out, with status ``"time_limit"``.
    work_limit_s
        The budget that decides where the search stops, in work-seconds: every
        stage counts the work it does (pairs scanned, DP cells, MIP nodes), never
        the wall clock, so the answer is the same on a busy or an idle machine.
        One work-second is about one second of one core of the benchmark machine.
        Default :func:`default_work_s` of the instance's size.
    seed
        Seed of the randomised parts; the same seed gives the same answer.

    Returns
    -------
    PMedianResult
        Open sites, assignment, objective, proven lower bound and status.

    Raises
    ------
    InputError
        Malformed input (shape, negative or non-finite values, ``p`` out of range).
    InfeasibleError
        A client has no allowed site, or capacity cannot hold the demand; the
        error's ``numbers`` carry the figures.

    Examples
    --------
    >>> import numpy as np
    >>> from gridopt.solvers import solve_p_median
    >>> cost = np.array([[0, 4, 9], [4, 0, 5], [9, 5, 0], [8, 4, 1]])
    >>> res = solve_p_median(cost, p=2)
    >>> res.open.tolist(), res.objective, res.status
    ([1, 2], 5.0, 'optimal')
    """
    t0 = time.perf_counter()
    try:
        limit = float(time_limit_s)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`time_limit_s` must be a number of seconds; got {time_limit_s!r}."
        ) from exc
    if not limit > 0:
        raise InputError(f"`time_limit_s` must be positive; got {time_limit_s!r}.")
    inst = build_instance(cost, p, weights, demand, capacity, fixed_open)
    work = default_work_s(inst) if work_limit_s is None else float(work_limit_s)
    if not work > 0:
        raise InputError(f"`work_limit_s` must be positive; got {work_limit_s!r}.")
    with _clock.running(limit - (time.perf_counter() - t0)) as clock:
        if inst.capacity is not None:
            out = solve_capacitated(inst, deadline=work, seed=int(seed))
        else:
            out = solve_uncapacitated(inst, deadline=work)
    assign, bound, method, proven = out
    objective = float(np.sum(inst.weights * inst.cost[inst.entry_of(assign)]))
    opened = np.unique(assign)
    runtime = time.perf_counter() - t0
    if inst.integral:
        bound = float(math.ceil(bound - 1e-6)) if math.isfinite(bound) else bound
    tol = 1e-6 * max(1.0, abs(objective))
    if proven or objective - bound <= tol:
        status = "optimal"
        bound = min(bound, objective)
    elif clock.hit_cap:
        status = "time_limit"
    else:
        status = "feasible"
    # the open set has p sites: sites without clients may be open too
    open_sites = _complete_open(inst, opened, assign)
    return PMedianResult(
        open_sites, assign, objective, float(bound), status, runtime, method, clock.seconds
    )


def default_work_s(inst: Instance) -> float:
    """Default work budget: ``WORK_S_PER_PAIR`` per client-site pair, within bounds.

    It depends only on the instance's size, never on the machine or its load.
    """
    return float(np.clip(WORK_S_PER_PAIR * len(inst.row), MIN_WORK_S, MAX_WORK_S))


def _complete_open(inst: Instance, opened: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Open set of size p: the used sites, the fixed ones, then cheapest unused ones."""
    mask = np.zeros(inst.m, dtype=bool)
    mask[opened] = True
    mask |= inst.fixed
    if mask.sum() < inst.p:
        extra = np.flatnonzero(~mask)[: inst.p - int(mask.sum())]
        mask[extra] = True
    return np.flatnonzero(mask)
