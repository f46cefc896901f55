"""Exact grid division of one small component with OR-Tools CP-SAT.

The same objective as the heuristic (:func:`gridopt.partition._model._grid_cost`),
written as a capacitated p-median with a free number of medians: ``x[i, j] = 1`` assigns
building ``i`` to the grid centred on building ``j`` (``y_j = x[j, j]`` opens it) at cost
``w_i |x_i - x_j|^2``; every open grid holds ``min_households``..``max_households``
households (``L y_j <= sum_i w_i x_ij <= U y_j``) and pays
``balance_weight_m2 * |h_j - target|`` through an integer deviation variable. Minimising
over the centres picks each grid's best centre building, which is exactly the
heuristic's cost. The centres break the symmetry between grid numbers.

Contiguity is enforced by separator cuts (exact, unlike "closer neighbour" rules):
building ``i`` in grid ``j`` needs a neighbour in grid ``j`` (added up front), and when a
solution has a piece ``C`` of grid ``j`` cut off from ``j``, every ``i`` in ``C`` gets
``x_ij <= sum_{k in N(C)} x_kj`` (``N(C)``: the neighbours of ``C``), and the model is
solved again, warm-started, until the grids are connected or the time is up. The last
relaxation's bound is a valid lower bound throughout.

Pruning that keeps the optimum: ``j`` is a candidate centre of ``i`` only if a path from
``i`` to ``j`` holds at most ``max_households`` (a grid holds that path) and
``w_i |x_i - x_j|^2`` does not exceed the heuristic's total cost. Costs are scaled to
integers (0.1 m²); the bound allows for the rounding. Where the component prices its
edges (``cut_cost``), each priced edge gets a cut indicator ``y_e >= x_uj - x_vj`` (for
every candidate centre ``j`` of either end) at ``cut_weight`` times its price.
"""

from __future__ import annotations

import heapq
import logging
import math
import time

import numpy as np
from ortools.sat.python import cp_model

from gridopt.partition._model import (
    _POCKET_PENALTY,
    _Component,
    _Graph,
    _grid_cost,
    _Params,
    _total_cost,
)

log = logging.getLogger("gridopt")

# Costs in CP-SAT are integers: 1 unit = 1 / _SCALE m².
_SCALE = 10.0
# Components larger than this are left to the heuristic (the model grows quadratically).
EXACT_MAX_BUILDINGS = 600
# CP-SAT portfolio size (workers share the machine's cores; diversity is what helps here).
EXACT_WORKERS = 8


def _reachable(graph: _Graph, w: np.ndarray, src: int, cap: int) -> dict[int, int]:
    """Buildings reachable from ``src`` by a path holding at most ``cap`` households."""
    best = {src: int(w[src])}
    heap = [(int(w[src]), src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > best.get(u, math.inf):
            continue
        for x in graph.nbrs[u]:
            nd = d + int(w[x])
            if nd <= cap and nd < best.get(x, math.inf):
                best[x] = nd
                heapq.heappush(heap, (nd, x))
    return best


def _pieces_cut_off(labels: np.ndarray, graph: _Graph) -> list[tuple[int, list[int]]]:
    """``(centre, piece)`` for every piece of a grid not connected to the grid's centre."""
    out = []
    for j in np.unique(labels).tolist():
        members = set(np.flatnonzero(labels == j).tolist())
        seen = {j}
        stack = [j]
        while stack:
            u = stack.pop()
            for x in graph.nbrs[u]:
                if x in members and x not in seen:
                    seen.add(x)
                    stack.append(x)
        rest = members - seen
        while rest:
            start = rest.pop()
            piece = [start]
            stack = [start]
            while stack:
                u = stack.pop()
                for x in graph.nbrs[u]:
                    if x in rest:
                        rest.discard(x)
                        piece.append(x)
                        stack.append(x)
            out.append((j, piece))
    return out


def _centres(labels: np.ndarray, xy: np.ndarray, w: np.ndarray, p: _Params) -> np.ndarray:
    """Each building's grid centre (the grid's best member) for a plan given by labels."""
    out = np.empty(len(labels), dtype=np.int64)
    for g in np.unique(labels):
        mem = np.flatnonzero(labels == g)
        _, c = _grid_cost(xy, w, mem, p)
        out[mem] = mem[c]
    return out


def solve_exact(
    comp: _Component, p: _Params, deadline: float, start: np.ndarray
) -> tuple[np.ndarray, str, float | None]:
    """Optimal labels of one component (or the best found by the deadline).

    ``start`` is a heuristic plan of the component (connected grids): the hint, the upper
    bound for the pruning and the fallback.

    Returns
    -------
    labels, status, bound
        ``status`` is ``"optimal"`` (proven) or ``"time_limit"``; ``bound`` is a lower
        bound of the component's cost in the units of :func:`_grid_cost` (pocket penalties
        left out), or ``None`` where none is known.
    """
    n = len(comp.w)
    w = comp.w.astype(np.int64)
    xy = comp.xy
    lo = p.min_households
    graph = _Graph(comp)
    best = np.asarray(start, dtype=np.int64)
    best_cost = _total_cost(xy, w, best, p, comp)
    if n > EXACT_MAX_BUILDINGS:
        log.warning(
            "component of %d buildings is too large for the exact mode (max %d): heuristic plan",
            n,
            EXACT_MAX_BUILDINGS,
        )
        return best, "feasible", None
    labels, status, bound_units, slack, cuts = _solve_model(
        comp, graph, p, best, best_cost, deadline, workers=EXACT_WORKERS
    )
    pockets = bool((np.bincount(best, weights=w)[np.unique(best)] < lo).any())
    if labels is not None:
        best = labels
    log.debug("exact component %d: %s after %d contiguity cuts", comp.key, status, cuts)
    if status == "optimal":
        return best, status, float(_total_cost(xy, w, best, p, comp) - _pocket_sum(best, w, p))
    if bound_units is None or pockets:
        return best, status, None
    return best, status, max((bound_units - slack) / _SCALE, 0.0)


def _solve_model(
    comp: _Component,
    graph: _Graph,
    p: _Params,
    best: np.ndarray,
    best_cost: float,
    deadline: float,
    *,
    workers: int,
    det_time: float | None = None,
    max_d2: float | None = None,
) -> tuple[np.ndarray | None, str, float | None, float, int]:
    """The CP-SAT model of one component, hinted with ``best`` (cost ``best_cost``).

    Returns the best connected labels found (``None`` where none beat ``best``), the
    status (``"optimal"`` or ``"time_limit"``), CP-SAT's bound in model units, the
    rounding slack in model units and the number of contiguity cuts. ``det_time`` limits
    each solve in CP-SAT's deterministic time (reproducible with one worker). ``max_d2``
    (squared metres) keeps only centres that close to a building (a restriction for the
    polish, not exact).
    """
    n = len(comp.w)
    w = comp.w.astype(np.int64)
    xy = comp.xy
    lo, hi = p.min_households, p.max_households
    total = int(w.sum())
    found = None
    h_best = np.bincount(best, weights=w)
    pockets = bool((h_best[np.unique(best)] < lo).any())

    cand: list[dict[int, float]] = []
    for i in range(n):
        reach = _reachable(graph, w, i, hi)
        js = np.fromiter(reach, dtype=np.int64, count=len(reach))
        d2 = ((xy[js] - xy[i]) ** 2).sum(axis=1)
        c = w[i] * d2
        keep = (c <= best_cost * (1 + 1e-9)) | (js == i) if not pockets else np.ones(len(js), bool)
        if max_d2 is not None:
            keep &= (d2 <= max_d2) | (js == i)
        cand.append(dict(zip(js[keep].tolist(), c[keep].tolist(), strict=False)))

    m = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for i in range(n):
        for j in cand[i]:
            x[i, j] = m.new_bool_var(f"x{i}_{j}")
    members_of: dict[int, list[int]] = {j: [] for j in range(n)}
    for i, j in x:
        members_of[j].append(i)
    obj = []
    slack = 0.0  # rounding of the scaled costs, in CP-SAT units
    for (i, j), var in x.items():
        exact = _SCALE * cand[i][j]
        c = round(exact)
        slack += abs(c - exact)
        if c:
            obj.append(c * var)
        if i != j:
            m.add(var <= x[j, j])
    for i in range(n):
        m.add_exactly_one(x[i, j] for j in cand[i])
    t2 = round(2 * p.target)
    bal = p.balance_weight_m2 * _SCALE / 2.0  # per unit of dev = |2 h - 2 target|
    bal_c = round(bal)
    kmin, kmax = -(-total // hi), total // lo
    big = 0
    if pockets:
        big = int(min(_SCALE * _POCKET_PENALTY, 2**40))
    for j in range(n):
        root = x[j, j]
        h = sum(int(w[i]) * x[i, j] for i in members_of[j])
        m.add(h <= hi * root)
        if pockets:
            short = m.new_int_var(0, lo, f"short{j}")
            m.add(short >= lo * root - h)
            obj.append(big * short)
        else:
            m.add(h >= lo * root)
        if bal_c:
            dev = m.new_int_var(0, 2 * hi + t2, f"dev{j}")
            m.add(dev >= 2 * h - t2 * root)
            m.add(dev >= t2 * root - 2 * h)
            obj.append(bal_c * dev)
    slack += abs(bal_c - bal) * (2 * hi + t2) * max(kmax, 1)
    if not pockets and kmin <= kmax:
        m.add(sum(x[j, j] for j in range(n)) >= kmin)
        m.add(sum(x[j, j] for j in range(n)) <= kmax)
    slack += _add_cut_terms(m, comp, p, x, cand, obj)
    # a building that is not its grid's centre has a neighbour in its grid
    for (i, j), var in x.items():
        if i != j:
            nb = [x[k, j] for k in graph.nbrs[i] if (k, j) in x]
            if nb:
                m.add(var <= sum(nb))
            else:
                m.add(var == 0)
    m.minimize(sum(obj))

    status, bound_units = "time_limit", None
    cuts = 0
    while True:
        remaining = deadline - time.perf_counter()
        if remaining < 0.05:
            break
        m.clear_hints()
        centre = _centres(best, xy, w, p)
        for (i, j), var in x.items():
            m.add_hint(var, int(centre[i] == j))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = remaining
        solver.parameters.random_seed = int(p.seed)
        # the LP-based workers of a portfolio with the stronger linear relaxation prove
        # these p-median models many times faster than a single worker (benchmarks/NOTES.md)
        solver.parameters.num_workers = workers
        if det_time is not None:
            solver.parameters.max_deterministic_time = det_time
        solver.parameters.linearization_level = 2
        code = solver.solve(m)
        if code == cp_model.INFEASIBLE:  # pragma: no cover - the hint is feasible
            break
        bound_units = solver.best_objective_bound
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        labels = np.empty(n, dtype=np.int64)
        for (i, j), var in x.items():
            if solver.boolean_value(var):
                labels[i] = j
        cut_off = _pieces_cut_off(labels, graph)
        if not cut_off:
            cost = _total_cost(xy, w, labels, p, comp)
            if cost <= best_cost:
                best, best_cost, found = labels, cost, labels
            if code == cp_model.OPTIMAL:
                status = "optimal"
            break
        for j, piece in cut_off:
            inside = set(piece)
            border = {k for u in piece for k in graph.nbrs[u] if k not in inside}
            rhs = [x[k, j] for k in border if (k, j) in x]
            for i in piece:
                if (i, j) in x:
                    m.add(x[i, j] <= sum(rhs)) if rhs else m.add(x[i, j] == 0)
                    cuts += 1
        if code != cp_model.OPTIMAL:
            break  # out of time with a plan that is not connected: keep the best connected
    return found, status, bound_units, slack, cuts


def _add_cut_terms(
    m: cp_model.CpModel,
    comp: _Component,
    p: _Params,
    x: dict[tuple[int, int], cp_model.IntVar],
    cand: list[dict[int, float]],
    obj: list,
) -> float:
    """Priced cut edges: ``y_e >= x_uj - x_vj`` for every centre ``j``; the rounding slack."""
    if comp.cut_cost is None:
        return 0.0
    slack = 0.0
    price = np.asarray(comp.cut_cost, dtype=float)
    for e, (u, v) in enumerate(zip(comp.ei.tolist(), comp.ej.tolist(), strict=True)):
        exact = _SCALE * p.cut_weight * price[e]
        c = round(exact)
        slack += abs(c - exact)
        if c <= 0:
            continue
        y = m.new_bool_var(f"y{e}")
        for a, b in ((u, v), (v, u)):
            for j in cand[a]:
                m.add(y >= x[a, j] - x[b, j]) if (b, j) in x else m.add(y >= x[a, j])
        obj.append(c * y)
    return slack


def _pocket_sum(labels: np.ndarray, w: np.ndarray, p: _Params) -> float:
    h = np.bincount(labels, weights=w)[np.unique(labels)]
    return _POCKET_PENALTY * float(np.maximum(p.min_households - h, 0).sum())
