"""Exact grid division of one small component with OR-Tools CP-SAT.

The same objective as the heuristic (:func:`gridopt.partition._heuristic._grid_cost`):
every building ``i`` is assigned to a centre building ``j`` of its grid (``x[i, j]``;
``x[j, j]`` opens grid ``j``), paying ``w_i |x_i - x_j|^2``, plus the balance term
``balance_weight_m2 * |h_j - target|`` and a large penalty per household a grid lacks
below the minimum (pockets are allowed, as in the heuristic, but only when unavoidable).

Contiguity: every non-centre building picks one neighbour as its parent in the same grid
with a strictly smaller level (an arborescence rooted at the centre, MTZ-style), so every
grid is connected. Candidate centres of ``i`` are pruned to buildings reachable from ``i``
along a path whose buildings hold at most ``max_households`` together (exact pruning: a
grid holds that path). The heuristic's plan is the solution hint.
"""

from __future__ import annotations

import heapq
import logging
import math
import time

import numpy as np
from ortools.sat.python import cp_model

from gridopt.partition._heuristic import (
    _bisect,
    _Component,
    _Graph,
    _grid_cost,
    _improve,
    _Params,
    _State,
)

log = logging.getLogger("gridopt")

# Squared distances are scaled to integers: 1 unit = 0.1 m².
_SCALE = 10.0


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


def solve_exact(
    comp: _Component, p: _Params, deadline: float
) -> tuple[np.ndarray, str, float | None]:
    """Optimal labels of one component (or the best found by the deadline).

    Returns
    -------
    labels, status, bound
        ``status`` is ``"optimal"`` or ``"time_limit"``; ``bound`` is a lower bound of
        the component's cost (the same units as :func:`_grid_cost`, pockets excluded).
    """
    n = len(comp.w)
    w = comp.w.astype(np.int64)
    xy = comp.xy
    lo, hi = p.min_households, p.max_households
    graph = _Graph(comp)
    rng = np.random.default_rng([p.seed, comp.key, 1])

    # heuristic start (also the hint)
    labels0 = _bisect(comp, graph, p, rng, deadline)
    state = _State(comp, graph, labels0, p)
    _improve(state, rng, min(deadline, time.perf_counter() + max(0.2, 0.2 * p.time_limit_s)), p)
    hint = np.asarray(state.lab, dtype=np.int64)

    cand = [_reachable(graph, w, i, hi) for i in range(n)]
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)  # n <= a few hundred
    worst = float(sum(w[i] * max(d2[i, j] for j in cand[i]) for i in range(n)))
    big = int(2 * _SCALE * worst + 2 * p.balance_weight_m2 * w.sum() * 2) + 1

    m = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for i in range(n):
        for j in cand[i]:
            x[i, j] = m.new_bool_var(f"x{i}_{j}")
    for i in range(n):
        m.add_exactly_one(x[i, j] for j in cand[i])
        for j in cand[i]:
            if j != i:
                m.add_implication(x[i, j], x[j, j])
    members_of: dict[int, list[int]] = {j: [] for j in range(n)}
    for i, j in x:
        members_of[j].append(i)
    obj = []
    t2 = round(2 * p.target)
    for j in range(n):
        root = x[j, j]
        h = sum(int(w[i]) * x[i, j] for i in members_of[j])
        m.add(h <= hi * root)
        short = m.new_int_var(0, lo, f"short{j}")
        m.add(short >= lo * root - h)
        dev2 = m.new_int_var(0, 2 * hi + t2, f"dev{j}")
        m.add(dev2 >= 2 * h - t2 * root)
        m.add(dev2 >= t2 * root - 2 * h)
        obj.append(big * 2 * short)
        if p.balance_weight_m2:
            obj.append(round(p.balance_weight_m2 * _SCALE) * dev2)
    for (i, j), var in x.items():
        c = round(2 * _SCALE * w[i] * d2[i, j])
        if c:
            obj.append(c * var)
    # arborescence: parent arcs and levels
    level = [m.new_int_var(0, n - 1, f"l{i}") for i in range(n)]
    arcs: dict[tuple[int, int], cp_model.IntVar] = {}
    for i in range(n):
        parents = []
        for k in graph.nbrs[i]:
            a = m.new_bool_var(f"a{i}_{k}")
            arcs[i, k] = a
            parents.append(a)
            m.add(level[i] >= level[k] + 1).only_enforce_if(a)
            for j in cand[i]:
                if j == i:
                    continue
                if (k, j) in x:
                    m.add_implication(x[i, j], x[k, j]).only_enforce_if(a)
                else:
                    m.add_bool_or([a.Not(), x[i, j].Not()])
            if (i, i) in x:
                m.add_implication(a, x[i, i].Not())
        m.add(sum(parents) + x[i, i] == 1)
        m.add(level[i] == 0).only_enforce_if(x[i, i])
    m.minimize(sum(obj))

    # hint: centre = best member of each heuristic grid, BFS tree inside the grid
    for g in np.unique(hint):
        mem = np.flatnonzero(hint == g)
        _, c = _grid_cost(xy, w, mem, p)
        centre = int(mem[c])
        for i in mem:
            for j in cand[int(i)]:
                m.add_hint(x[int(i), j], j == centre)
        depth = {centre: 0}
        queue = [centre]
        inset = set(mem.tolist())
        parent: dict[int, int] = {}
        for u in queue:
            for v in graph.nbrs[u]:
                if v in inset and v not in depth:
                    depth[v] = depth[u] + 1
                    parent[v] = u
                    queue.append(v)
        for i in mem.tolist():
            m.add_hint(level[i], depth.get(i, 0))
            for k in graph.nbrs[i]:
                m.add_hint(arcs[i, k], parent.get(i) == k)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, deadline - time.perf_counter())
    solver.parameters.num_workers = 2
    solver.parameters.random_seed = int(p.seed)
    code = solver.solve(m)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        log.warning(
            "CP-SAT found no solution (%s); keeping the heuristic plan", solver.status_name(code)
        )
        return hint, "time_limit", None
    labels = np.empty(n, dtype=np.int64)
    for (i, j), var in x.items():
        if solver.boolean_value(var):
            labels[i] = j
    h = np.bincount(labels, weights=w, minlength=n)
    roots = np.unique(labels)
    short = float(np.maximum(lo - h[roots], 0).sum())
    raw_bound = solver.best_objective_bound / (2 * _SCALE) - big * 2 * short / (2 * _SCALE)
    status = "optimal" if code == cp_model.OPTIMAL else "time_limit"
    return labels, status, max(raw_bound, 0.0)
