"""Capacitated single-source p-median.

A heuristic start (uncapacitated medians, regret assignment under capacity), then
CP-SAT on the assignment model: all allowed pairs when the instance is small
(the answer is then proven), the ``k`` cheapest sites per client otherwise (CP-SAT
then works as a large-neighbourhood search from the hint). The lower bound comes
from CP-SAT on the full model, or from a Lagrangian relaxation of the assignment
constraints with a fractional knapsack per site (``_cpmp_bound``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from gridopt._errors import InfeasibleError
from gridopt.stations._pm_data import Instance, evaluate
from gridopt.stations._pm_local import greedy, local_search

__all__ = ["solve_capacitated"]

log = logging.getLogger("gridopt")

FULL_MODEL_MAX_ENTRIES = 40_000


def _precheck(inst: Instance) -> None:
    cap = inst.capacity
    assert cap is not None
    total = float(inst.demand.sum())
    free = inst.p - int(inst.fixed.sum())
    others = np.sort(cap[~inst.fixed])[::-1][:free]
    best_cap = float(cap[inst.fixed].sum() + others.sum())
    if best_cap + 1e-9 < total:
        raise InfeasibleError(
            f"total demand {total:.6g} exceeds the capacity {best_cap:.6g} of the {inst.p} "
            f"largest sites (short by {total - best_cap:.6g}). Raise p, add capacity, or "
            "add candidates.",
            demand=total,
            capacity=best_cap,
            shortfall=total - best_cap,
        )
    site_cap = cap[inst.site]
    fits = site_cap >= inst.demand[inst.row] - 1e-9
    ok = np.bincount(inst.row[fits], minlength=inst.n) > 0
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise InfeasibleError(
            f"{len(bad)} clients demand more than any site they may use can hold "
            f"(first {bad[:10].tolist()}, demand {inst.demand[bad[:10]].tolist()}).",
            clients=float(len(bad)),
            demand=float(inst.demand[bad].sum()),
        )


def _regret_assign(inst: Instance, is_open: np.ndarray) -> np.ndarray | None:
    """Clients in order of regret, each to its cheapest open site with room; None on failure."""
    cap = inst.capacity.copy()
    cap[~is_open] = 0.0
    ent_open = is_open[inst.site]
    ev = evaluate(inst, is_open)
    regret = np.where(ev.f2 >= 0, ev.d2 - ev.d1, np.inf) * np.maximum(inst.demand, 1e-9)
    order = np.lexsort((np.arange(inst.n), -regret))
    assign = np.full(inst.n, -1, dtype=np.int64)
    for c in order:
        lo, hi = inst.indptr[c], inst.indptr[c + 1]
        sites = inst.site[lo:hi][ent_open[lo:hi]]
        room = cap[sites] >= inst.demand[c] - 1e-9
        if not room.any():
            return None
        j = sites[np.argmax(room)]
        assign[c] = j
        cap[j] -= inst.demand[c]
    return assign


def _initial(inst: Instance, deadline: float) -> np.ndarray | None:
    """A feasible assignment from uncapacitated medians, widening p-coverage if needed."""
    is_open = greedy(inst)
    is_open, _ = local_search(inst, is_open, deadline=deadline)
    assign = _regret_assign(inst, is_open)
    if assign is not None:
        return assign
    # spread the medians: open the largest-capacity sites near the unplaced demand
    order = np.argsort(-inst.capacity, kind="stable")
    alt = inst.fixed.copy()
    free = inst.p - int(alt.sum())
    alt[[j for j in order if not alt[j]][:free]] = True
    return _regret_assign(inst, alt)


def _cpsat(
    inst: Instance,
    *,
    keep: np.ndarray,
    hint: np.ndarray | None,
    time_limit_s: float,
    seed: int,
    full: bool,
) -> tuple[np.ndarray | None, float, bool, bool]:
    """CP-SAT on the entries in ``keep``; returns (assign, bound, optimal, exact_data)."""
    from ortools.sat.python import cp_model

    row, site, cost = inst.row[keep], inst.site[keep], inst.cost[keep]
    wc = inst.weights[row] * cost
    integral = bool(np.all(np.abs(wc - np.round(wc)) < 1e-9))
    scale = 1.0 if integral else min(1e4, 1e12 / max(1.0, float(wc.max()) * inst.n))
    icost = np.round(wc * scale).astype(np.int64)
    dem, cap = inst.demand, inst.capacity
    exact_data = bool(
        np.all(np.abs(dem - np.round(dem)) < 1e-9) and np.all(np.abs(cap - np.round(cap)) < 1e-9)
    )
    dscale = 1.0 if exact_data else 1000.0
    # rounding keeps any CP-SAT solution feasible for the true data
    idem = np.ceil(dem * dscale - 1e-9).astype(np.int64)
    icap = np.floor(cap * dscale + 1e-9).astype(np.int64)
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{j}") for j in range(inst.m)]
    x = [model.new_bool_var("") for _ in range(len(row))]
    for j in np.flatnonzero(inst.fixed):
        model.add(y[j] == 1)
    model.add(sum(y) == inst.p)
    by_row: list[list[int]] = [[] for _ in range(inst.n)]
    by_site: list[list[int]] = [[] for _ in range(inst.m)]
    for e in range(len(row)):
        by_row[row[e]].append(e)
        by_site[site[e]].append(e)
        model.add_implication(x[e], y[site[e]])
    for c in range(inst.n):
        model.add_exactly_one(x[e] for e in by_row[c])
    for j in range(inst.m):
        if by_site[j]:
            model.add(sum(int(idem[row[e]]) * x[e] for e in by_site[j]) <= int(icap[j]) * y[j])
    model.minimize(sum(int(icost[e]) * x[e] for e in range(len(row)) if icost[e]))
    if hint is not None:
        opened = np.zeros(inst.m, dtype=bool)
        opened[hint] = True
        for j in range(inst.m):
            model.add_hint(y[j], bool(opened[j]))
        for e in range(len(row)):
            model.add_hint(x[e], bool(hint[row[e]] == site[e]))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit_s)
    solver.parameters.num_workers = 2
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, -math.inf, False, exact_data
    xv = np.array([solver.boolean_value(v) for v in x])
    assign = np.full(inst.n, -1, dtype=np.int64)
    assign[row[xv]] = site[xv]
    # each client's cost was rounded by at most 0.5 / scale
    bound = solver.best_objective_bound / scale - (0.0 if integral else inst.n * 0.5 / scale)
    optimal = status == cp_model.OPTIMAL and full and exact_data
    if not (full and exact_data):
        bound = -math.inf
    return assign, bound, optimal, exact_data


def _k_nearest_mask(inst: Instance, k: int) -> np.ndarray:
    pos = np.arange(len(inst.row)) - inst.indptr[inst.row]
    return pos < k


def solve_capacitated(
    inst: Instance, *, deadline: float, seed: int
) -> tuple[np.ndarray, float, str, bool]:
    """(assign, bound, method, proven) for the capacitated single-source p-median."""
    from gridopt.stations._cpmp_bound import capacitated_bound

    _precheck(inst)
    t0 = time.perf_counter()
    budget = max(deadline - t0, 0.0)
    steps = ["regret"]
    assign = _initial(inst, deadline=t0 + 0.1 * budget)
    full = len(inst.row) <= FULL_MODEL_MAX_ENTRIES
    if full:
        keep = np.ones(len(inst.row), dtype=bool)
        bound_time = 0.0
    else:
        k = max(8, min(30, int(FULL_MODEL_MAX_ENTRIES // inst.n)))
        keep = _k_nearest_mask(inst, k)
        if assign is not None:
            # the hint's pairs must be in the model
            keep[inst.entry_of(assign)] = True
        bound_time = 0.2 * budget
    remaining = deadline - time.perf_counter() - bound_time
    best_bound = -math.inf
    new, bound, optimal, _ = _cpsat(
        inst, keep=keep, hint=assign, time_limit_s=remaining, seed=seed, full=full
    )
    steps.append("cpsat-full" if full else "cpsat-knearest")
    if new is not None and (new >= 0).all():
        if assign is None or _objective(inst, new) <= _objective(inst, assign):
            assign = new
    best_bound = max(best_bound, bound)
    if not optimal:
        lb = capacitated_bound(
            inst,
            upper=_objective(inst, assign) if assign is not None else math.inf,
            deadline=max(deadline, time.perf_counter() + 0.5),
        )
        steps.append("lagrangian-knapsack")
        best_bound = max(best_bound, lb)
    if assign is None:
        raise InfeasibleError(
            f"no assignment of the clients to {inst.p} sites within capacity was found in "
            "the time limit (total capacity is enough, but single-source packing failed). "
            "Raise p or the capacities, or allow more time.",
            demand=float(inst.demand.sum()),
            p=float(inst.p),
        )
    return assign, best_bound, "+".join(steps), optimal


def _objective(inst: Instance, assign: np.ndarray) -> float:
    return float(np.sum(inst.weights * inst.cost[inst.entry_of(assign)]))
