"""Compiled tabu search for the GAP with adaptive capacity penalties.

The search moves through infeasible space: an agent's load may exceed its
capacity at a price ``w_i`` per unit of excess, and each ``w_i`` adapts (it
grows while the agent stays overloaded and shrinks while the whole solution
is feasible), the strategic oscillation of Yagiura, Ibaraki and Glover and of
Diaz and Fernandez (2001). Moves are shifts (one job to another agent) and
ejection chains of two shifts (job ``j1`` moves into agent ``q``, pushing a
job of ``q`` on to a third agent or back into ``j1``'s place, a swap). Each
job only considers its candidate agents, those of smallest LP reduced cost,
which keeps the neighbourhood ``O(n k^2 n/m)`` and the search on the pairs
good solutions use. A move that hands a job back to the agent it recently
left is tabu unless it gives a new best feasible solution. A search that has
not improved for a while restarts from its best solution with a random kick.

:func:`tabu_portfolio` runs one search per thread (numba releases the GIL),
each with its own candidate width and seed, and keeps the best.

Compiled with numba (``cache=True``): the first call in a fresh environment
pays a few seconds of compilation, later processes load the cached code.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _ex(load: np.int64, cap: np.int64) -> np.int64:
    return load - cap if load > cap else 0


@njit(cache=True)
def _rand(state: np.ndarray) -> np.uint64:
    # xorshift64*: deterministic, seeded from Python, no numba RNG state.
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return x * np.uint64(2685821657736338717)


@njit(cache=True)
def _randint(state: np.ndarray, hi: int) -> int:
    return int((_rand(state) >> np.uint64(33)) % np.uint64(hi))


@njit(cache=True, nogil=True)
def tabu_search(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    cand: np.ndarray,
    ok: np.ndarray,
    assign: np.ndarray,
    w: np.ndarray,
    tabu: np.ndarray,
    best: np.ndarray,
    best_cost: np.int64,
    it0: np.int64,
    iters: np.int64,
    tenure_min: np.int64,
    tenure_span: np.int64,
    up: float,
    down: float,
    w_min: float,
    w_max: float,
    rng: np.ndarray,
    chains: bool,
) -> np.int64:
    """Run ``iters`` tabu iterations from ``assign`` (updated in place).

    ``cand[j]`` lists the agents job ``j`` may go to (cheapest first, ``-1``
    padded) and ``ok`` is the same as an ``(m, n)`` mask; ``w``
    the penalty per unit of excess per agent, ``tabu[i, j]`` the iteration
    until which job ``j`` may not return to agent ``i``. ``best`` receives the
    best feasible assignment seen whose cost beats ``best_cost``; the return
    value is that best cost.
    """
    m, n = c.shape
    k = cand.shape[1]
    load = np.zeros(m, dtype=np.int64)
    for j in range(n):
        load[assign[j]] += a[assign[j], j]
    cost = np.int64(0)
    for j in range(n):
        cost += c[assign[j], j]
    total_ex = np.int64(0)
    for i in range(m):
        total_ex += _ex(load[i], b[i])
    # jobs of each agent, for the swap neighbourhood
    members = np.empty((m, n), dtype=np.int64)
    count = np.zeros(m, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    for j in range(n):
        i = assign[j]
        members[i, count[i]] = j
        pos[j] = count[i]
        count[i] += 1

    for it in range(it0, it0 + iters):
        best_delta = np.inf
        mv_kind = -1
        mv_j1 = -1
        mv_j2 = -1
        mv_i = -1
        mv_r = -1
        ties = 0
        for j1 in range(n):
            p = assign[j1]
            cp1 = c[p, j1]
            ap1 = a[p, j1]
            exp_old = _ex(load[p], b[p])
            for r in range(k):
                q = cand[j1, r]
                if q < 0:
                    break
                if q == p:
                    continue
                t1 = tabu[q, j1] > it
                exq_old = _ex(load[q], b[q])
                # shift j1: p -> q
                lp = load[p] - ap1
                lq = load[q] + a[q, j1]
                dexp = _ex(lp, b[p]) - exp_old
                dexq = _ex(lq, b[q]) - exq_old
                dc = c[q, j1] - cp1
                delta = dc + w[p] * dexp + w[q] * dexq
                asp = total_ex + dexp + dexq == 0 and cost + dc < best_cost
                if (not t1 or asp) and delta <= best_delta:
                    if delta < best_delta:
                        ties = 1
                        best_delta = delta
                        mv_kind, mv_j1, mv_i = 0, j1, q
                    else:
                        ties += 1
                        if _randint(rng, ties) == 0:
                            mv_kind, mv_j1, mv_i = 0, j1, q
                # ejection chain of two shifts: j1 p -> q, then some j2 on q
                # moves on to r (r == p is a swap)
                for s in range(count[q]):
                    j2 = members[q, s]
                    aq2 = a[q, j2]
                    lq2 = lq - aq2
                    dexq2 = _ex(lq2, b[q]) - exq_old
                    dcq = dc - c[q, j2]
                    for r2 in range(k):
                        r = cand[j2, r2]
                        if r < 0:
                            break
                        if r == q or (r != p and not chains):
                            continue
                        if r == p:
                            if j2 < j1:
                                continue  # the same swap is seen from j2's side
                            dexp2 = _ex(lp + a[p, j2], b[p]) - exp_old
                            dexr = 0
                        else:
                            dexp2 = dexp
                            dexr = _ex(load[r] + a[r, j2], b[r]) - _ex(load[r], b[r])
                        dc2 = dcq + c[r, j2]
                        delta = dc2 + w[p] * dexp2 + w[q] * dexq2 + w[r] * dexr
                        if delta > best_delta:
                            continue
                        asp = total_ex + dexp2 + dexq2 + dexr == 0 and cost + dc2 < best_cost
                        if (t1 or tabu[r, j2] > it) and not asp:
                            continue
                        if delta < best_delta:
                            ties = 1
                            best_delta = delta
                            mv_kind, mv_j1, mv_j2, mv_i, mv_r = 1, j1, j2, q, r
                        else:
                            ties += 1
                            if _randint(rng, ties) == 0:
                                mv_kind, mv_j1, mv_j2, mv_i, mv_r = 1, j1, j2, q, r
        if mv_kind < 0:
            # everything tabu: forget the tabu list
            tabu[:, :] = 0
            continue
        ten = tenure_min + (_randint(rng, tenure_span) if tenure_span > 0 else 0)
        p = assign[mv_j1]
        q = mv_i
        r = mv_r if mv_kind == 1 else p
        total_ex -= _ex(load[p], b[p]) + _ex(load[q], b[q])
        if r != p:
            total_ex -= _ex(load[r], b[r])
        _move(c, a, assign, load, members, count, pos, mv_j1, q)
        cost += c[q, mv_j1] - c[p, mv_j1]
        tabu[p, mv_j1] = it + ten
        if mv_kind == 1:
            _move(c, a, assign, load, members, count, pos, mv_j2, r)
            cost += c[r, mv_j2] - c[q, mv_j2]
            tabu[q, mv_j2] = it + ten
        total_ex += _ex(load[p], b[p]) + _ex(load[q], b[q])
        if r != p:
            total_ex += _ex(load[r], b[r])
        if total_ex == 0:
            if cost < best_cost:
                best_cost = cost
                best[:] = assign
            for i in range(m):
                w[i] = max(w_min, w[i] * down)
        else:
            for i in range(m):
                if load[i] > b[i]:
                    w[i] = min(w_max, w[i] * up)
    return best_cost


@njit(cache=True, inline="always")
def _move(c, a, assign, load, members, count, pos, j, q):
    p = assign[j]
    # remove j from p's member list (swap with last)
    last = members[p, count[p] - 1]
    members[p, pos[j]] = last
    pos[last] = pos[j]
    count[p] -= 1
    members[q, count[q]] = j
    pos[j] = count[q]
    count[q] += 1
    load[p] -= a[p, j]
    load[q] += a[q, j]
    assign[j] = q


# Tuned on Chu-Beasley d20100/d20200 (see solve_gap's notes).
_TENURE = 0.5  # tabu tenure in jobs per agent (randomised up to twice that)
_RESTART = 40.0  # iterations without improvement, per job, before a kick
_KICK = 1 / 7  # share of jobs the kick moves at random
_UP, _DOWN = 1.05, 0.98  # penalty weight factors while infeasible / feasible
_CHAINS = True  # two-shift ejection chains besides shifts and swaps
_WIDTHS = (2.5, 4.0, 3.0, 6.0)  # candidate agents per job, one entry per thread


def _candidates(
    red: np.ndarray, allowed: np.ndarray, per_job: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate agents per job: about ``per_job`` on average by reduced cost, at least 3."""
    m, n = red.shape
    r = np.where(allowed, red, np.inf)
    finite = np.sort(r[np.isfinite(r)])
    thr = finite[min(finite.size - 1, max(0, int(per_job * n) - 1))]
    order = np.argsort(r, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(m)[:, None].repeat(n, axis=1), axis=0)
    ok = allowed & ((r <= thr + 1e-9) | (rank < min(m, 3)))
    width = int(ok.sum(axis=0).max())
    cand = np.ascontiguousarray(order[:width].T).astype(np.int64)
    cand = np.where(ok[cand, np.arange(n)[:, None]], cand, -1)
    return cand, ok


def _one_search(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    red: np.ndarray,
    allowed: np.ndarray,
    start: np.ndarray,
    deadline: float,
    seed: int,
    per_job: float,
) -> tuple[np.ndarray | None, int]:
    m, n = c.shape
    cand, ok = _candidates(red, allowed, per_job)
    ok[start, np.arange(n)] = True
    rng_py = np.random.default_rng(seed)
    rng = np.array([np.uint64(seed * 7919 + 104729)], dtype=np.uint64)
    w0 = max(1e-6, float(c.max() - c.min()) / max(1.0, float(a.mean())))
    w = np.full(m, w0)
    tabu = np.zeros((m, n), dtype=np.int64)
    assign = start.astype(np.int64).copy()
    best = assign.copy()
    best_cost = np.int64(np.iinfo(np.int64).max)
    # tenure: about the number of jobs per agent, randomised
    ten = np.int64(max(3, int(_TENURE * n / m)))
    it, chunk = 0, 64
    restart_after = int(_RESTART * n)
    last_best, last_imp = best_cost, 0
    while True:
        t = time.perf_counter()
        if t >= deadline:
            break
        best_cost = tabu_search(
            c, a, b, cand, ok, assign, w, tabu, best, best_cost,
            np.int64(it), np.int64(chunk), ten, ten, _UP, _DOWN, w0 * 1e-3, w0 * 1e3, rng, _CHAINS,
        )  # fmt: skip
        it += chunk
        # chunks of about 20 ms keep the deadline check cheap and timely
        dt = time.perf_counter() - t
        chunk = int(min(max(8, chunk * (0.02 / max(dt, 1e-4))), 100_000))
        if best_cost < last_best:
            last_best, last_imp = best_cost, it
        elif it - last_imp > restart_after and best_cost < np.iinfo(np.int64).max:
            last_imp = it
            assign = best.copy()
            for j in rng_py.choice(n, size=max(2, int(_KICK * n)), replace=False):
                cj = cand[j][cand[j] >= 0]
                assign[j] = cj[rng_py.integers(cj.size)]
            w[:] = w0
            tabu[:] = 0
    if best_cost == np.iinfo(np.int64).max:
        return None, int(best_cost)
    return best, int(best_cost)


def tabu_portfolio(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    red: np.ndarray,
    allowed: np.ndarray,
    start: np.ndarray,
    *,
    deadline: float,
    seed: int,
    threads: int,
) -> tuple[np.ndarray | None, int]:
    """Best feasible assignment found by ``threads`` tabu searches before ``deadline``.

    ``red`` holds LP reduced costs (``inf`` where ``allowed`` is False); the
    searches differ in seed and in how many candidate agents each job gets.
    Returns ``(None, huge)`` when no search found a feasible assignment.
    """
    widths = _WIDTHS
    threads = max(1, min(threads, len(widths)))
    args = [
        (c, a, b, red, allowed, start, deadline, seed + 101 * t, widths[t]) for t in range(threads)
    ]
    if threads == 1:
        results = [_one_search(*args[0])]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda x: _one_search(*x), args))
    return min(results, key=lambda r: r[1])
