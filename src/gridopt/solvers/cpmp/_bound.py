"""Lower bound for the capacitated p-median: Lagrangian over the assignment constraints.

Relaxing "each client is assigned once" with multipliers ``lam`` splits the problem
into one knapsack per site, ``v_j = min sum_i (w_i c_ij - lam_i) x_ij`` subject to
``sum_i d_i x_ij <= Q_j``; the relaxation opens the ``p`` sites of smallest ``v_j``.
Each knapsack is solved as a linear programme (greedy by ratio, one fractional
item), which keeps every iteration a few vectorised passes and the bound valid.
"""

from __future__ import annotations

import numpy as np

import gridopt.solvers._clock as _clock
from gridopt.solvers._instance import Instance

__all__ = ["capacitated_bound"]


def _choose(inst: Instance, v: np.ndarray) -> np.ndarray:
    chosen = inst.fixed.copy()
    free = inst.p - int(chosen.sum())
    if free > 0:
        cand = np.flatnonzero(~chosen)
        pick = cand[np.argpartition(v[cand], free - 1)[:free]] if free < len(cand) else cand
        chosen[pick] = True
    return chosen


def _knapsacks(inst: Instance, red: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value per site and the fractional x of the entries with negative reduced cost."""
    neg = np.flatnonzero(red < 0)
    s = inst.site[neg]
    d = inst.demand[inst.row[neg]]
    r = red[neg]
    ratio = np.where(d > 0, r / np.maximum(d, 1e-300), -np.inf)
    order = np.lexsort((ratio, s))
    neg, s, d, r = neg[order], s[order], d[order], r[order]
    cum = np.cumsum(d)
    start_idx = np.searchsorted(s, s, side="left")
    before = np.concatenate(([0.0], cum))[start_idx]
    cum_in_site = cum - before
    prev = cum_in_site - d
    cap = inst.capacity[s]
    frac = np.clip((cap - prev) / np.where(d > 0, d, 1.0), 0.0, 1.0)
    frac = np.where(d > 0, frac, 1.0)
    v = np.bincount(s, weights=r * frac, minlength=inst.m)
    return v, neg, frac


def capacitated_bound(
    inst: Instance,
    *,
    upper: float,
    deadline: float,
    max_iter: int = 2000,
    sets: list[np.ndarray] | None = None,
) -> float:
    """Best Lagrangian bound reached by subgradient steps before the deadline.

    ``sets``: when given, the relaxation's chosen sites at every improvement of the
    bound are appended (good median sets for a Lagrangian heuristic).
    """
    wc = inst.wcost
    # start from the cheapest allowed weighted cost of each client
    lam = wc[inst.indptr[:-1]].copy()
    if not np.isfinite(upper):
        upper = float(np.sum(wc[inst.indptr[1:] - 1])) + 1.0
    best = -np.inf
    theta = 2.0
    since = 0
    for _ in range(max_iter):
        _clock.charge(len(wc))
        red = wc - lam[inst.row]
        v, ent, frac = _knapsacks(inst, red)
        chosen = _choose(inst, v)
        value = float(lam.sum() + v[chosen].sum())
        if value > best + 1e-12 * max(1.0, abs(value)):
            best = value
            since = 0
            if sets is not None:
                sets.append(chosen.copy())
        else:
            since += 1
            if since >= 20:
                theta /= 2.0
                since = 0
        if theta < 1e-4 or upper - best <= 1e-9 * max(1.0, abs(upper)):
            break
        if _clock.now() > deadline:
            break
        take = chosen[inst.site[ent]]
        g = 1.0 - np.bincount(inst.row[ent[take]], weights=frac[take], minlength=inst.n)
        norm = float(g @ g)
        if norm == 0.0:
            break
        lam = lam + theta * (upper - value) / norm * g
    return best
