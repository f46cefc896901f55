"""Lagrangian variable fixing for the GAP with the knapsack relaxation.

Relaxing the assignment constraints leaves one 0-1 knapsack per agent:
``L(u) = sum_j u_j + sum_i z_i(u)`` with
``z_i(u) = min {sum_j (c_ij - u_j) x_ij : sum_j a_ij x_ij <= b_i}``.
Forcing one ``x_ij`` to 1 (or to 0) changes only agent ``i``'s knapsack, so
``L(u) - z_i(u) + z_i(u | x_ij = 1)`` bounds every assignment that gives job
``j`` to agent ``i``; when it exceeds the incumbent minus one (integer
costs), no better assignment uses that pair and it is eliminated. Likewise
forcing ``x_ij = 0`` above the incumbent means every better assignment gives
``j`` to ``i``. Posta, Ferland and Michelon (2012) prove the Chu-Beasley type
D instances optimal this way.

All forced knapsack values of an agent come from one forward and one backward
dynamic programme over its items (:func:`knapsack_forced`), ``O(n b_i)``,
the cost of solving the knapsack once more.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def knapsack_forced(
    r: np.ndarray, w: np.ndarray, cap: int, ok: np.ndarray, z_in: np.ndarray, z_out: np.ndarray
) -> float:
    """Minimum of ``sum r_j x_j`` s.t. ``sum w_j x_j <= cap``, also with each item forced.

    Only items with ``ok[j]`` may be chosen. ``z_in[j]`` receives the minimum
    with ``x_j = 1`` (``inf`` when ``j`` does not fit or is not ok),
    ``z_out[j]`` the minimum with ``x_j = 0``; the return value is the plain
    minimum. Items of ``r_j >= 0`` never help, so the programmes run over the
    others only; forcing one of those in just adds ``r_j`` and takes its room.
    """
    n = r.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        if ok[j] and r[j] < 0 and w[j] <= cap:
            idx[k] = j
            k += 1
    # fwd[t, q]: best profit (-r) from the first t useful items in room q
    fwd = np.zeros((k + 1, cap + 1))
    for t in range(k):
        j = idx[t]
        wj = w[j]
        pj = -r[j]
        for q in range(cap + 1):
            v = fwd[t, q]
            if q >= wj:
                v2 = fwd[t, q - wj] + pj
                if v2 > v:
                    v = v2
            fwd[t + 1, q] = v
    # bwd[t, q]: the same from the useful items t.. onwards
    bwd = np.zeros((k + 1, cap + 1))
    for t in range(k - 1, -1, -1):
        j = idx[t]
        wj = w[j]
        pj = -r[j]
        for q in range(cap + 1):
            v = bwd[t + 1, q]
            if q >= wj:
                v2 = bwd[t + 1, q - wj] + pj
                if v2 > v:
                    v = v2
            bwd[t, q] = v
    best = fwd[k, cap]
    for j in range(n):
        z_out[j] = -best
        if ok[j] and w[j] <= cap:
            z_in[j] = r[j] - fwd[k, cap - w[j]]
        else:
            z_in[j] = np.inf
    for t in range(k):
        j = idx[t]
        # without item t: combine the items before and after it
        v_out = 0.0
        for q in range(cap + 1):
            v = fwd[t, q] + bwd[t + 1, cap - q]
            if v > v_out:
                v_out = v
        z_out[j] = -v_out
        room = cap - w[j]
        v_in = 0.0
        for q in range(room + 1):
            v = fwd[t, q] + bwd[t + 1, room - q]
            if v > v_in:
                v_in = v
        z_in[j] = r[j] - v_in
    return -best


def fix_pairs(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    u: np.ndarray,
    upper: int,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Lagrangian value at ``u`` and the pairs it eliminates or forces.

    Returns ``(L, drop, force)``: ``drop[i, j]`` when no assignment cheaper
    than ``upper`` gives job ``j`` to agent ``i``, ``force[i, j]`` when every
    such assignment does. Only pairs in ``allowed`` are considered.
    """
    m, n = c.shape
    z_in = np.empty((m, n))
    z_out = np.empty((m, n))
    z = np.empty(m)
    for i in range(m):
        r = np.where(allowed[i], c[i] - u, np.inf).astype(np.float64)
        z[i] = knapsack_forced(r, a[i], int(b[i]), allowed[i], z_in[i], z_out[i])
    lag = float(u.sum() + z.sum())
    # 1e-6: floating-point slack, never enough to cross an integer
    limit = upper - 1 + 1e-6
    drop = allowed & (lag - z[:, None] + z_in > limit)
    force = allowed & (lag - z[:, None] + z_out > limit)
    return lag, drop, force


def knapsack_subgradient(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    u0: np.ndarray,
    upper: float,
    deadline: float,
    iters: int = 300,
) -> tuple[float, np.ndarray]:
    """Best knapsack Lagrangian value and its multipliers, by subgradient.

    ``L(u) = sum_j u_j + sum_i min {sum_j (c_ij - u_j) x_ij : sum_j a_ij x_ij <= b_i}``
    is a lower bound for any ``u``; the knapsacks are solved exactly by
    dynamic programming (:func:`gridopt.staffing._gap_ts.knapsack_min`),
    which is what makes it stronger than the LP bound (Chu-Beasley d20100:
    6,176 against the LP's 6,142.5, optimum 6,185).
    Steps start from ``u0`` (the LP duals) and follow Polyak's rule towards
    ``upper``; the step factor halves after 15 steps without improvement.
    """
    from gridopt.staffing._gap_ts import knapsack_min

    m, n = c.shape
    cf = np.where(allowed, c, np.inf).astype(np.float64)
    x = np.zeros((m, n), dtype=np.int64)
    u = np.asarray(u0, dtype=np.float64).copy()
    best, best_u, theta, stall = -math.inf, u.copy(), 0.5, 0
    for _ in range(iters):
        if time.perf_counter() > deadline:
            break
        val = float(u.sum())
        for i in range(m):
            val += knapsack_min(cf[i] - u, a[i], int(b[i]), x[i])
        if val > best + 1e-9:
            best, best_u, stall = val, u.copy(), 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        g = 1.0 - x.sum(axis=0)
        norm = float(g @ g)
        if norm == 0 or theta < 1e-4:
            break  # norm 0: the knapsacks form an assignment, L is its cost
        step = max(upper - val, 1e-3 * max(1.0, abs(val)))
        u += theta * step / norm * g
    return best, best_u


def knapsack_penalties(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    u0: np.ndarray,
    upper: float,
    deadline: float,
    iters: int = 300,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Knapsack Lagrangian bound, its multipliers, and the penalty of every pair.

    Multipliers from :func:`knapsack_subgradient`; at the best multipliers ``u``,
    ``pen[i, j]`` is how much the bound rises when job ``j`` is forced onto
    agent ``i`` (``inf`` where not allowed): every assignment using that pair
    costs at least ``L + pen[i, j]``, so the penalties rank and fix pairs like
    reduced costs do, from a stronger bound.
    """
    m, n = c.shape
    cf = np.where(allowed, c, np.inf).astype(np.float64)
    _, best_u = knapsack_subgradient(c, a, b, allowed, u0, upper, deadline, iters)
    z_in = np.empty((m, n))
    z_out = np.empty((m, n))
    z = np.empty(m)
    for i in range(m):
        z[i] = knapsack_forced(cf[i] - best_u, a[i], int(b[i]), allowed[i], z_in[i], z_out[i])
    lag = float(best_u.sum() + z.sum())
    pen = np.where(allowed, np.maximum(z_in - z[:, None], 0.0), np.inf)
    return lag, best_u, pen
