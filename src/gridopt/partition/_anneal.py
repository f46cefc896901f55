"""Simulated annealing over connected partitions with a fixed number of parts (numba).

The kernel behind :func:`gridopt.partition_graph` on graphs the exact model cannot prove.
A move hands one node to a neighbouring part (or, as a pair move, hands one back the
other way), never disconnecting the part it leaves. With a tight weight band, most single
moves leave the band, so the band is a penalty ``lam * (weight outside the band) / (band
width)`` whose weight grows from ``lam0`` to ``lam1`` while the temperature falls: early on
the search crosses infeasible plans to reach good cuts, at the end it settles inside the
band. Only plans inside the band are returned.
"""

# numba compiles only the legacy np.random functions (seeded per call below)
# ruff: noqa: NPY002
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["anneal"]


@njit(cache=True)
def _part_connected_without(indptr, indices, lab, a, v, size_a, stack, mark, stamp):
    """Whether part ``a`` stays connected when ``v`` leaves it (BFS avoiding ``v``)."""
    start = -1
    for t in range(indptr[v], indptr[v + 1]):
        x = indices[t]
        if lab[x] == a:
            start = x
            break
    if start < 0:
        return size_a == 1
    mark[v] = stamp
    mark[start] = stamp
    top = 0
    stack[top] = start
    top += 1
    seen = 1
    while top > 0:
        top -= 1
        u = stack[top]
        for t in range(indptr[u], indptr[u + 1]):
            x = indices[t]
            if lab[x] == a and mark[x] != stamp:
                mark[x] = stamp
                stack[top] = x
                top += 1
                seen += 1
    return seen == size_a - 1


@njit(cache=True)
def _dev(p: int, lo: int, hi: int) -> int:
    """Weight outside the band."""
    if p < lo:
        return lo - p
    if p > hi:
        return p - hi
    return 0


@njit(cache=True)
def anneal(
    indptr: np.ndarray,
    indices: np.ndarray,
    cost: np.ndarray,
    w: np.ndarray,
    lab0: np.ndarray,
    k: int,
    lo: int,
    hi: int,
    iters: int,
    t0: float,
    t1: float,
    lam0: float,
    lam1: float,
    pswap: float,
    seed: int,
) -> tuple[np.ndarray, float]:
    """Anneal from the connected plan ``lab0`` (parts 0..k-1); the best plan in the band.

    ``indptr``/``indices`` are the CSR adjacency, ``cost`` the cut cost of each adjacency
    entry, ``w`` the integer node weights, ``[lo, hi]`` the band. Returns the best labels
    and their cut (``inf`` when no plan inside the band was met).
    """
    np.random.seed(seed)
    n = len(w)
    lab = lab0.copy()
    pop = np.zeros(k, np.int64)
    size = np.zeros(k, np.int64)
    for v in range(n):
        pop[lab[v]] += w[v]
        size[lab[v]] += 1
    cut = 0.0
    for v in range(n):
        for t in range(indptr[v], indptr[v + 1]):
            if lab[indices[t]] != lab[v]:
                cut += cost[t]
    cut /= 2.0
    dev = 0
    for j in range(k):
        dev += _dev(pop[j], lo, hi)
    scale = float(max(hi - lo, 1))
    stack = np.empty(n, np.int64)
    mark = np.zeros(n, np.int64)
    stamp = 0
    best_lab = lab.copy()
    best_cut = np.inf
    if dev == 0:
        best_cut = cut
    nb_parts = np.empty(k, np.int64)
    for it in range(iters):
        frac = it / iters
        temp = t0 * (t1 / t0) ** frac
        lam = lam0 * (lam1 / lam0) ** frac
        v = np.random.randint(n)
        a = lab[v]
        if size[a] == 1:
            continue
        # a random neighbouring part
        cnt = 0
        for t in range(indptr[v], indptr[v + 1]):
            b = lab[indices[t]]
            if b != a:
                nb_parts[cnt] = b
                cnt += 1
        if cnt == 0:
            continue
        b = nb_parts[np.random.randint(cnt)]
        dcut = 0.0
        for t in range(indptr[v], indptr[v + 1]):
            lx = lab[indices[t]]
            if lx == a:
                dcut += cost[t]
            elif lx == b:
                dcut -= cost[t]
        wv = w[v]
        ddev = (
            _dev(pop[a] - wv, lo, hi)
            + _dev(pop[b] + wv, lo, hi)
            - _dev(pop[a], lo, hi)
            - _dev(pop[b], lo, hi)
        )
        pair = np.random.random() < pswap
        if not pair:
            de = dcut + lam * ddev / scale
            if de > 0 and np.random.random() >= np.exp(-de / temp):
                continue
        stamp += 1
        if not _part_connected_without(indptr, indices, lab, a, v, size[a], stack, mark, stamp):
            continue
        lab[v] = b
        pop[a] -= wv
        pop[b] += wv
        size[a] -= 1
        size[b] += 1
        cut += dcut
        dev += ddev
        if pair:
            # second half: a node u of b next to a neighbour x of v that stayed in a
            cx = 0
            for t in range(indptr[v], indptr[v + 1]):
                if lab[indices[t]] == a:
                    cx += 1
            ok = False
            if cx > 0:
                pick = np.random.randint(cx)
                x = -1
                for t in range(indptr[v], indptr[v + 1]):
                    if lab[indices[t]] == a:
                        if pick == 0:
                            x = indices[t]
                            break
                        pick -= 1
                cu = 0
                for t in range(indptr[x], indptr[x + 1]):
                    y = indices[t]
                    if lab[y] == b and y != v:
                        cu += 1
                if cu > 0:
                    pick = np.random.randint(cu)
                    u = -1
                    for t in range(indptr[x], indptr[x + 1]):
                        y = indices[t]
                        if lab[y] == b and y != v:
                            if pick == 0:
                                u = y
                                break
                            pick -= 1
                    dcut2 = 0.0
                    for t in range(indptr[u], indptr[u + 1]):
                        lx = lab[indices[t]]
                        if lx == b:
                            dcut2 += cost[t]
                        elif lx == a:
                            dcut2 -= cost[t]
                    wu = w[u]
                    ddev2 = (
                        _dev(pop[b] - wu, lo, hi)
                        + _dev(pop[a] + wu, lo, hi)
                        - _dev(pop[b], lo, hi)
                        - _dev(pop[a], lo, hi)
                    )
                    de = dcut + dcut2 + lam * (ddev + ddev2) / scale
                    if de <= 0 or np.random.random() < np.exp(-de / temp):
                        stamp += 1
                        if _part_connected_without(
                            indptr, indices, lab, b, u, size[b], stack, mark, stamp
                        ):
                            lab[u] = a
                            pop[b] -= wu
                            pop[a] += wu
                            size[b] -= 1
                            size[a] += 1
                            cut += dcut2
                            dev += ddev2
                            ok = True
            if not ok:  # undo the first half
                lab[v] = a
                pop[a] += wv
                pop[b] -= wv
                size[a] += 1
                size[b] -= 1
                cut -= dcut
                dev -= ddev
                continue
        if dev == 0 and cut < best_cut - 1e-9:
            best_cut = cut
            best_lab[:] = lab
    return best_lab, best_cut
