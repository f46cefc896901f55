"""Compiled tabu search for the GAP with adaptive capacity penalties.

The search moves through infeasible space: an agent's load may exceed its
capacity at a price ``w_i`` per unit of excess, and each ``w_i`` adapts (it
grows while the agent stays overloaded and shrinks while the whole solution
is feasible), the strategic oscillation of Yagiura, Ibaraki and Glover and of
Diaz and Fernandez (2001). Moves are shifts (one job to another agent) and
ejection chains of two shifts (job ``j1`` moves into agent ``q``, pushing a
job of ``q`` on to a third agent or back into ``j1``'s place, a swap). Each
job only considers its candidate agents, those of smallest LP reduced cost
(or knapsack-Lagrangian penalty, :mod:`gridopt.staffing._gap_fix`), which
keeps the neighbourhood ``O(n k^2 n/m)`` and the search on the pairs good
solutions use. A move that hands a job back to the agent it recently
left is tabu unless it gives a new best feasible solution. A search that has
not improved for a while restarts from its best solution with a random kick.

:func:`tabu_portfolio` runs one search per thread (numba releases the GIL),
each with its own candidate width and seed, and keeps the best.

Compiled with numba (``cache=True``): the first call in a fresh environment
pays a few seconds of compilation, later processes load the cached code.
"""

from __future__ import annotations

import math
import threading
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


@njit(cache=True, nogil=True)
def regret_greedy(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Martello-Toth regret heuristic with desirability ``f`` (lower is better).

    Each open job keeps its best and second-best agent among those it still
    fits; only jobs whose best or second-best agent just lost the room for
    them are re-scanned, so a run costs about ``O(n^2 + n m)`` instead of the
    ``O(m n^2)`` of recomputing everything per step (80 x 1600 in
    milliseconds). Returns the agent per job, ``-1`` for every job once some
    open job fits nowhere.
    """
    n = f.shape[1]
    resid = b.copy()
    assign = np.full(n, -1, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    second = np.full(n, -1, dtype=np.int64)
    open_ = np.ones(n, dtype=np.bool_)
    for j in range(n):
        _best_two(f, a, resid, j, first, second)
    for _ in range(n):
        sel = -1
        sel_regret = -1.0
        for j in range(n):
            if not open_[j]:
                continue
            if first[j] < 0:
                assign[:] = -1
                return assign
            if second[j] < 0:
                r = np.inf
            else:
                r = f[second[j], j] - f[first[j], j]
            if r > sel_regret:
                sel, sel_regret = j, r
        i = first[sel]
        assign[sel] = i
        resid[i] -= a[i, sel]
        open_[sel] = False
        for j in range(n):
            if open_[j] and (first[j] == i or second[j] == i) and a[i, j] > resid[i]:
                _best_two(f, a, resid, j, first, second)
    return assign


@njit(cache=True, inline="always")
def _best_two(f, a, resid, j, first, second):
    m = f.shape[0]
    i1 = -1
    i2 = -1
    for i in range(m):
        if a[i, j] > resid[i]:
            continue
        if i1 < 0 or f[i, j] < f[i1, j]:
            i2 = i1
            i1 = i
        elif i2 < 0 or f[i, j] < f[i2, j]:
            i2 = i
    first[j] = i1
    second[j] = i2


@njit(cache=True, nogil=True)
def shift_swap_descent(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, assign: np.ndarray, swaps: bool
) -> None:
    """First-improvement shifts, then swaps, until neither improves (in place).

    Keeps a feasible ``assign`` feasible. A pass costs ``O(m n)`` for shifts
    and ``O(n^2)`` for swaps.
    """
    m, n = c.shape
    load = np.zeros(m, dtype=np.int64)
    for j in range(n):
        load[assign[j]] += a[assign[j], j]
    improved = True
    while improved:
        improved = False
        for j in range(n):
            p = assign[j]
            bi = p
            bd = 0
            for i in range(m):
                if i != p and load[i] + a[i, j] <= b[i]:
                    d = c[i, j] - c[p, j]
                    if d < bd:
                        bd, bi = d, i
            if bi != p:
                load[p] -= a[p, j]
                load[bi] += a[bi, j]
                assign[j] = bi
                improved = True
        if improved or not swaps:
            continue
        for j1 in range(n):
            p = assign[j1]
            for j2 in range(j1 + 1, n):
                q = assign[j2]
                if q == p:
                    continue
                d = c[q, j1] + c[p, j2] - c[p, j1] - c[q, j2]
                if d >= 0:
                    continue
                if load[p] - a[p, j1] + a[p, j2] > b[p]:
                    continue
                if load[q] - a[q, j2] + a[q, j1] > b[q]:
                    continue
                load[p] += a[p, j2] - a[p, j1]
                load[q] += a[q, j1] - a[q, j2]
                assign[j1], assign[j2] = q, p
                p = q
                improved = True


@njit(cache=True, nogil=True)
def knapsack_min(r: np.ndarray, w: np.ndarray, cap: int, out: np.ndarray) -> float:
    """Minimise ``sum r_j x_j`` subject to ``sum w_j x_j <= cap`` (0-1, exact).

    Dynamic programme over the capacity, on the items with ``r_j < 0`` only;
    ``out`` receives the chosen items (0/1), the return value is the minimum.
    """
    n = r.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        out[j] = 0
        if r[j] < 0 and w[j] <= cap:
            idx[k] = j
            k += 1
    val = np.zeros(cap + 1)
    keep = np.zeros((k, cap + 1), dtype=np.bool_)
    for t in range(k):
        j = idx[t]
        wj = w[j]
        pj = -r[j]
        for q in range(cap, wj - 1, -1):
            v = val[q - wj] + pj
            if v > val[q]:
                val[q] = v
                keep[t, q] = True
    q = cap
    for t in range(k - 1, -1, -1):
        if keep[t, q]:
            out[idx[t]] = 1
            q -= w[idx[t]]
    return -val[cap]


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
_CROSS = True  # restarts from crossovers of elite solutions
_CP_THREAD = True  # one of the threads runs CP-SAT on the cheapest pairs instead
# The dive gives up when its root column generation needs more than this
# share of the CP-SAT thread's time left (many jobs per agent: tailing off).
_DIVE_ROOT_SHARE = 0.5
_CP_WIDTH = 2.5  # candidate agents per job in that CP-SAT model


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


class _Elite:
    """Best distinct local optima found by all searches (shared, thread-safe)."""

    def __init__(self, size: int, target: int | None = None) -> None:
        self.size = size
        # reaching the target (a lower bound) means optimal: everybody stops
        self.target = target
        self.done = False
        # an assignment proven optimal (by CP-SAT), if any
        self.proven: np.ndarray | None = None
        self.items: list[tuple[int, np.ndarray]] = []
        self.lock = threading.Lock()

    def raise_target(self, target: int) -> None:
        """A better lower bound: stop everybody if the best solution reaches it."""
        with self.lock:
            if self.target is None or target > self.target:
                self.target = target
            if self.items and self.items[0][0] <= self.target:
                self.done = True

    def best_cost(self) -> float:
        with self.lock:
            return float(self.items[0][0]) if self.items else math.inf

    def best(self) -> np.ndarray | None:
        with self.lock:
            return self.items[0][1].copy() if self.items else None

    def prove(self, assign: np.ndarray) -> None:
        with self.lock:
            self.proven = assign.copy()
            self.done = True

    def add(self, cost: int, assign: np.ndarray) -> None:
        with self.lock:
            if self.target is not None and cost <= self.target:
                self.done = True
            if any(cost == c0 and np.array_equal(assign, a0) for c0, a0 in self.items):
                return
            self.items.append((cost, assign.copy()))
            self.items.sort(key=lambda t: t[0])
            del self.items[self.size :]

    def pick_two(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        with self.lock:
            if len(self.items) < 2:
                return None
            i, k = rng.choice(len(self.items), size=2, replace=False)
            return self.items[min(i, k)][1].copy(), self.items[max(i, k)][1].copy()


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
    elite: _Elite,
) -> tuple[np.ndarray | None, int]:
    m, n = c.shape
    huge = np.iinfo(np.int64).max
    cand, ok = _candidates(red, allowed, per_job)
    ok[start, np.arange(n)] = True
    rng_py = np.random.default_rng(seed)
    rng = np.array([np.uint64(seed * 7919 + 104729)], dtype=np.uint64)
    w0 = max(1e-6, float(c.max() - c.min()) / max(1.0, float(a.mean())))
    w = np.full(m, w0)
    tabu = np.zeros((m, n), dtype=np.int64)
    assign = start.astype(np.int64).copy()
    best, best_cost = assign.copy(), huge
    # each restart segment keeps its own best, which goes to the elite pool
    seg, seg_cost = assign.copy(), np.int64(huge)
    ten = np.int64(max(3, int(_TENURE * n / m)))
    it, chunk = 0, 4  # grows to ~20 ms of work; 80 x 1600 iterations are slow
    restart_after = int(_RESTART * n)
    last_best, last_imp = seg_cost, 0
    while True:
        t = time.perf_counter()
        if t >= deadline or elite.done:
            break
        seg_cost = tabu_search(
            c, a, b, cand, ok, assign, w, tabu, seg, seg_cost,
            np.int64(it), np.int64(chunk), ten, ten, _UP, _DOWN, w0 * 1e-3, w0 * 1e3, rng, _CHAINS,
        )  # fmt: skip
        it += chunk
        # chunks of about 20 ms keep the deadline check cheap and timely
        dt = time.perf_counter() - t
        chunk = int(min(max(8, chunk * (0.02 / max(dt, 1e-4))), 100_000))
        if seg_cost < last_best:
            last_best, last_imp = seg_cost, it
            if elite.target is not None and seg_cost <= elite.target:
                elite.add(int(seg_cost), seg)
        elif it - last_imp > restart_after and seg_cost < huge:
            # restart: a crossover of two elite solutions (path relinking
            # in one random step), or a random kick of this search's best
            if seg_cost < best_cost:
                best, best_cost = seg.copy(), int(seg_cost)
            elite.add(int(seg_cost), seg)
            pair = elite.pick_two(rng_py) if _CROSS else None
            if pair is None:
                assign = best.copy()
                kick = int(_KICK * n)
            else:
                assign, other = pair
                differ = np.flatnonzero(assign != other)
                take = differ[rng_py.random(differ.size) < 0.5]
                assign[take] = other[take]
                kick = int(_KICK * n / 3)
            for j in rng_py.choice(n, size=max(2, kick), replace=False):
                cj = cand[j][cand[j] >= 0]
                assign[j] = cj[rng_py.integers(cj.size)]
            ok[assign, np.arange(n)] = True
            w[:] = w0
            tabu[:] = 0
            seg_cost = np.int64(huge)
            last_best, last_imp = seg_cost, it
    if seg_cost < best_cost:
        best, best_cost = seg.copy(), int(seg_cost)
    if best_cost == huge:
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
    target: int | None = None,
    incumbent: np.ndarray | None = None,
    lower: float | None = None,
    prove_from: float | None = None,
    prove_until: float | None = None,
    build_s_per_pair: float = 6e-5,
    duals: np.ndarray | None = None,
    dive: bool = False,
    info: dict | None = None,
) -> tuple[np.ndarray | None, int, bool]:
    """Best feasible assignment found by ``threads`` tabu searches before ``deadline``.

    ``red`` holds LP reduced costs or knapsack-Lagrangian penalties, with
    ``lower`` the matching bound (``inf`` where ``allowed`` is False); the
    searches differ in seed and in how many candidate agents each job gets.
    ``incumbent`` (a feasible assignment, optional) joins the elite pool.
    All stop as soon as one reaches ``target`` (a proven lower bound).

    With more than one thread, the last runs CP-SAT (one worker). When the
    LP bound ``lower`` is given, from ``prove_from`` (when the searches have
    had a moment to improve on ``incumbent``) until ``prove_until`` it solves
    the exact model on the pairs whose reduced cost keeps ``lower`` below
    the best solution so far (they hold every better solution), with that
    solution as hint: this proves the easy instances optimal in a fraction
    of the limit and stops everybody. It skips that step when the model
    would take more than a tenth of the time left to build (Python holds
    the GIL the searches need), at ``build_s_per_pair`` seconds per pair.
    Next, given the LP ``duals``, it computes the knapsack Lagrangian bound
    (:func:`gridopt.staffing._gap_fix.knapsack_subgradient`, stored in
    ``info["knapsack_bound"]``), which becomes the searches' stopping target
    when higher. Then, with ``dive``, it dives over the column-generation
    master (:func:`gridopt.staffing._gap_dive.dive`), whose solutions join
    the elite pool and whose root LP bound becomes the target when higher
    (``info["dive_root_lp"]``). With the time left it runs a heuristic model
    on each job's few cheapest pairs.

    Returns ``(assignment, cost, proven)``: ``(None, huge, False)`` when no
    search found a feasible assignment; ``proven`` when CP-SAT proved the
    returned assignment optimal.
    """
    widths = _WIDTHS
    elite = _Elite(10, target)
    if incumbent is not None:
        elite.add(int(c[incumbent, np.arange(c.shape[1])].sum()), incumbent)
    n_ts = max(1, min(threads - (1 if _CP_THREAD and threads > 1 else 0), len(widths)))
    args = [
        (c, a, b, red, allowed, start, deadline, seed + 101 * t, widths[t], elite)
        for t in range(n_ts)
    ]
    with ThreadPoolExecutor(max_workers=n_ts + 1) as pool:
        futures = [pool.submit(_one_search, *x) for x in args]
        if n_ts < threads:
            cp_args = (c, a, b, red, allowed, deadline, seed, elite, lower)
            futures.append(
                pool.submit(
                    _cp_thread,
                    *cp_args,
                    prove_from,
                    prove_until,
                    build_s_per_pair,
                    duals,
                    info,
                    dive,
                )
            )
        results = [f.result() for f in futures]
    if elite.proven is not None:
        sol = elite.proven
        return sol, int(c[sol, np.arange(c.shape[1])].sum()), True
    best = min(results, key=lambda r: r[1])
    pooled = elite.best()  # the dive's solutions live only in the pool
    if pooled is not None and _cost(c, pooled) < best[1]:
        return pooled, _cost(c, pooled), False
    return best[0], best[1], False


def _cp_thread(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    red: np.ndarray,
    allowed: np.ndarray,
    deadline: float,
    seed: int,
    elite: _Elite,
    lower: float | None,
    prove_from: float | None,
    prove_until: float | None,
    build_s_per_pair: float,
    duals: np.ndarray | None = None,
    info: dict | None = None,
    dive: bool = False,
) -> tuple[np.ndarray | None, int]:
    """Exact CP-SAT on the fixed model until ``prove_until``, then the dive and
    the heuristic model."""
    from ortools.sat.python import cp_model

    from gridopt.staffing._gap import _cpsat

    huge = int(np.iinfo(np.int64).max)
    if lower is not None and prove_from is not None and prove_until is not None:
        while time.perf_counter() < prove_from and not elite.done:
            time.sleep(0.005)
        incumbent = elite.best()
        limit = min(prove_until, deadline) - time.perf_counter()
        exact = None
        if incumbent is not None and not elite.done:
            exact = allowed & (lower + red <= _cost(c, incumbent) + 1e-6)
            if exact.sum() * build_s_per_pair > 0.1 * (deadline - time.perf_counter()):
                exact = None
        if exact is not None and limit > 0.05:
            status, sol, _ = _cpsat(
                c, a, b, exact, hint=incumbent, time_limit_s=limit, seed=seed, workers=1
            )
            if status == cp_model.OPTIMAL and sol is not None:
                if incumbent is not None and _cost(c, incumbent) <= _cost(c, sol):
                    sol = incumbent
                elite.prove(sol)
                return sol, _cost(c, sol)
            if status == cp_model.INFEASIBLE and incumbent is not None:
                # the fixed pairs hold every better solution, and there is none
                elite.prove(incumbent)
                return incumbent, _cost(c, incumbent)
            if sol is not None:
                elite.add(_cost(c, sol), sol)
            if elite.done:
                return (sol, _cost(c, sol)) if sol is not None else (None, huge)
    best = elite.best()
    if duals is not None and best is not None and not elite.done:
        from gridopt.staffing._gap_fix import knapsack_subgradient

        kb, _ = knapsack_subgradient(c, a, b, allowed, duals, _cost(c, best), deadline, 400)
        if info is not None:
            info["knapsack_bound"] = kb
        elite.raise_target(math.ceil(kb - 1e-6))
        if elite.done:
            return None, huge
    if dive and not elite.done:
        from gridopt.staffing._gap_dive import dive as run_dive

        now = time.perf_counter()
        root = run_dive(
            c, a, b, deadline=deadline, upper=elite.best_cost, on_solution=elite.add,
            root_deadline=now + _DIVE_ROOT_SHARE * (deadline - now), info=info,
        )  # fmt: skip
        if math.isfinite(root):
            elite.raise_target(math.ceil(root - 1e-6))
        if elite.done or time.perf_counter() > deadline - 0.05:
            return None, huge
    return _restricted_cpsat(c, a, b, red, allowed, deadline, seed, elite)


def _cost(c: np.ndarray, assign: np.ndarray) -> int:
    return int(c[assign, np.arange(c.shape[1])].sum())


def _restricted_cpsat(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    red: np.ndarray,
    allowed: np.ndarray,
    deadline: float,
    seed: int,
    elite: _Elite,
) -> tuple[np.ndarray | None, int]:
    """One-worker CP-SAT on each job's few cheapest pairs by reduced cost.

    A heuristic (the restriction may cut off the optimum), but on some type D
    instances it finds what the tabu search misses; its solutions go to the
    elite pool where the searches' restarts recombine them.
    """
    from ortools.sat.python import cp_model

    m, n = c.shape
    _, ok = _candidates(red, allowed, _CP_WIDTH)
    ii, jj = np.nonzero(ok)
    model = cp_model.CpModel()
    xs = [model.new_bool_var("") for _ in range(ii.size)]
    for j in range(n):
        model.add_exactly_one(xs[k] for k in np.flatnonzero(jj == j))
    for i in range(m):
        ks = np.flatnonzero(ii == i)
        model.add(sum(int(a[i, jj[k]]) * xs[k] for k in ks) <= int(b[i]))
    model.minimize(sum(int(c[ii[k], jj[k]]) * xs[k] for k in range(ii.size)))
    found: list[tuple[np.ndarray | None, int]] = [(None, int(np.iinfo(np.int64).max))]

    class _Collect(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            sol = np.empty(n, dtype=np.int64)
            for k, v in enumerate(xs):
                if self.boolean_value(v):
                    sol[jj[k]] = ii[k]
            val = int(c[sol, np.arange(n)].sum())
            found[0] = (sol, val)
            elite.add(val, sol)
            if elite.done:
                self.stop_search()

    limit = deadline - time.perf_counter()
    if limit <= 0.05:
        return found[0]
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = int(seed)
    solver.solve(model, _Collect())
    return found[0]


def warmup() -> None:
    """Compile (or load from numba's cache) the search on a 2 x 3 instance.

    Benchmarks (and the tests) call this before timing so that a one-off
    compilation (a few seconds in a fresh environment) is not charged to the
    first instance.
    """
    c = np.array([[1, 2, 3], [3, 2, 1]], dtype=np.int64)
    a = np.ones((2, 3), dtype=np.int64)
    b = np.array([2, 2], dtype=np.int64)
    cand = np.array([[0, 1], [0, 1], [0, 1]], dtype=np.int64)
    ok = np.ones((2, 3), dtype=np.bool_)
    assign = np.zeros(3, dtype=np.int64)
    tabu_search(
        c, a, b, cand, ok, assign, np.ones(2), np.zeros((2, 3), dtype=np.int64),
        assign.copy(), np.int64(np.iinfo(np.int64).max), np.int64(0), np.int64(5),
        np.int64(1), np.int64(1), 1.05, 0.98, 0.01, 100.0,
        np.array([np.uint64(1)], dtype=np.uint64), True,
    )  # fmt: skip
    sol = regret_greedy(c.astype(np.float64), a, b)
    shift_swap_descent(c, a, b, sol, True)
