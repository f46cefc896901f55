"""Compiled inner loops of the grid heuristic (numba).

The heuristic calls these tens of thousands of times per street office on arrays of a
few hundred entries, where NumPy's per-call overhead (not the arithmetic) is the cost
(figures in ``benchmarks/NOTES.md``). Each kernel computes exactly what
the NumPy expression it replaces did (same formulas, same tie-breaking: first minimum),
so plans do not change, only their speed. ``cache=True`` keeps the compiled code on disk:
a fresh environment compiles once (a few seconds), later processes (Dask workers
included) load it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["best_balanced_cut", "boundary_cost", "choose_cut", "feasible_many", "grid_cost"]


@njit(cache=True)
def grid_cost(
    xy: np.ndarray,
    w: np.ndarray,
    members: np.ndarray,
    balance_weight_m2: float,
    target: float,
    min_households: int,
    pocket_penalty: float,
) -> tuple[float, int]:
    """Household-weighted squared distances to the best member as centre, plus penalties.

    Returns the cost and the centre's position in ``members``.
    """
    n = len(members)
    h = 0.0
    s1x = 0.0
    s1y = 0.0
    s2 = 0.0
    for t in range(n):
        v = members[t]
        wv = float(w[v])
        x, y = xy[v, 0], xy[v, 1]
        h += wv
        s1x += wv * x
        s1y += wv * y
        s2 += wv * (x * x + y * y)
    best = np.inf
    c = 0
    for t in range(n):
        v = members[t]
        x, y = xy[v, 0], xy[v, 1]
        val = s2 - 2.0 * (x * s1x + y * s1y) + h * (x * x + y * y)
        if val < best:
            best = val
            c = t
    cost = max(best, 0.0) + balance_weight_m2 * abs(h - target)
    if h < min_households:
        cost += pocket_penalty * (min_households - h)
    return cost, c


@njit(cache=True, inline="always")
def _feasible(weight: int, lo: int, hi: int) -> bool:
    """Some whole number k of grids with k lo <= weight <= k hi."""
    return weight > 0 and -(-weight // hi) <= weight // lo


@njit(cache=True)
def boundary_cost(
    indptr: np.ndarray,
    indices: np.ndarray,
    eid: np.ndarray,
    members: np.ndarray,
    mark: np.ndarray,
    cut_cost: np.ndarray,
) -> float:
    """Summed ``cut_cost`` of the edges leaving ``members`` (``mark``: all-False scratch)."""
    for t in range(len(members)):
        mark[members[t]] = True
    total = 0.0
    for t in range(len(members)):
        v = members[t]
        for q in range(indptr[v], indptr[v + 1]):
            if not mark[indices[q]]:
                total += cut_cost[eid[q]]
    for t in range(len(members)):
        mark[members[t]] = False
    return total


@njit(cache=True)
def feasible_many(weights: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """:func:`_feasible` of each weight (the one place the rule is written)."""
    out = np.empty(len(weights), np.bool_)
    for t in range(len(weights)):
        out[t] = _feasible(weights[t], lo, hi)
    return out


@njit(cache=True, inline="always")
def _distance_to_feasible(weight: int, lo: int, hi: int) -> int:
    if _feasible(weight, lo, hi):
        return 0
    if weight < lo:
        return lo - weight
    k = max(weight // lo, 1)
    return min(max(weight - k * hi, 0), max((k + 1) * lo - weight, 0))


@njit(cache=True)
def choose_cut(
    sizes: np.ndarray,
    total: int,
    eids: np.ndarray,
    street: np.ndarray,
    barrier: np.ndarray,
    lo: int,
    hi: int,
    target: float,
    k_shift: int,
    cut_score: np.ndarray,
) -> tuple[int, float]:
    """Best position in ``sizes`` to cut a tree edge; its score (lower is better, inf = none).

    Feasible total: both sides must make whole grids, and the cut aims at about half of
    the expected grids on one side. Infeasible total: cut off the smallest possible
    pocket. Neither possible: the cut closest to feasibility (score 1e6 + households off).
    Cuts along streets are preferred, and along barriers more so; ``cut_score`` adds each
    edge's price (zeros where the component has no cut costs).
    """
    m = len(sizes)
    score = np.full(m, np.inf)
    any_ok = False
    if _feasible(total, lo, hi):
        kmin, kmax = -(-total // hi), total // lo
        k = int(min(max(np.rint(total / target) + k_shift, kmin), kmax))
        ideal = total * (k // 2) / k
        for t in range(m):
            a = sizes[t]
            b = total - a
            if _feasible(a, lo, hi) and _feasible(b, lo, hi):
                score[t] = abs(a - ideal) / target
                any_ok = True
    else:
        for t in range(m):
            a = sizes[t]
            b = total - a
            fa, fb = _feasible(a, lo, hi), _feasible(b, lo, hi)
            if (fa and b < lo and b > 0) or (fb and a < lo and a > 0):
                score[t] = (b if fa else a) / target
                any_ok = True
    if not any_ok:
        for t in range(m):
            a = sizes[t]
            b = total - a
            if a > 0 and b > 0:
                d = _distance_to_feasible(a, lo, hi) + _distance_to_feasible(b, lo, hi)
                score[t] = 1e6 + float(d)
                any_ok = True
        if not any_ok:
            return -1, np.inf
    best = np.inf
    k_best = 0
    for t in range(m):
        s = score[t]
        if s < np.inf:
            e = eids[t]
            s = s + 0.25 * (0.0 if street[e] else 1.0) - 0.5 * (1.0 if barrier[e] else 0.0)
            s += cut_score[e]
        if s < best:
            best = s
            k_best = t
    return k_best, best


@njit(cache=True)
def best_balanced_cut(
    order: np.ndarray,
    pred: np.ndarray,
    xy: np.ndarray,
    w: np.ndarray,
    lo: int,
    hi: int,
    balance_weight_m2: float,
    target: float,
) -> int:
    """Tree position whose subtree cut leaves both sides in the band at the least cost.

    The cost of a side is its weighted sum of squared distances to its weighted centroid
    plus the balance term; subtree sums make each cut O(1). Returns -1 when no cut
    leaves both sides in the band.
    """
    k = len(order)
    acc = np.empty((k, 4))
    for t in range(k):
        wt = float(w[t])
        acc[t, 0] = wt
        acc[t, 1] = wt * xy[t, 0]
        acc[t, 2] = wt * xy[t, 1]
        acc[t, 3] = wt * (xy[t, 0] * xy[t, 0] + xy[t, 1] * xy[t, 1])
    for t in range(k - 1, 0, -1):
        u = order[t]
        for c in range(4):
            acc[pred[u], c] += acc[u, c]
    root = order[0]
    best = np.inf
    v_best = -1
    for t in range(1, k):
        v = order[t]
        h1 = acc[v, 0]
        h2 = acc[root, 0] - h1
        if not (lo <= h1 <= hi and lo <= h2 <= hi):
            continue
        sse1 = acc[v, 3] - (acc[v, 1] ** 2 + acc[v, 2] ** 2) / h1
        s21 = acc[root, 1] - acc[v, 1]
        s22 = acc[root, 2] - acc[v, 2]
        sse2 = (acc[root, 3] - acc[v, 3]) - (s21**2 + s22**2) / h2
        val = sse1 + sse2 + balance_weight_m2 * (abs(h1 - target) + abs(h2 - target))
        if val < best:
            best = val
            v_best = v
    return v_best
