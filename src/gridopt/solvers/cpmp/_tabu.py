"""Tabu search over site sets for the capacitated single-source p-median.

A move closes one open site and opens one closed site (``p (m - p)`` moves). Each
move is valued by a compiled single-source allocation heuristic: clients start
where they were (the closed site's clients at their cheapest open site, clients
nearer the new site there), then a descent on ``cost + w * excess load`` by
shifts and swaps with ``w`` multiplied by 4 until the loads fit, then a
feasible descent. Screening every move with shifts alone and re-valuing only the
``TOP_MOVES`` most promising with swaps, at three starting ``w``, keeps an
iteration near 10 ms at n = 100, p = 10. The best non-tabu move is made even
when it worsens; a closed site may not reopen for ``tenure`` to ``2 tenure``
iterations (aspiration: a new best). Starts are the Lagrangian packed site sets,
one segment each until ``patience`` iterations bring no improvement; the search
ends after ``STALL_STARTS`` segments in a row without a new best.

Measurements behind the constants: ``benchmarks/NOTES.md`` (site tabu search).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit

import gridopt.solvers._clock as _clock
from gridopt.solvers._instance import Instance, build_instance

__all__ = ["region_search", "site_tabu"]

log = logging.getLogger("gridopt")

# moves re-valued with swaps after the shift-only screening, per iteration
TOP_MOVES = 30
# starting penalty weights (times the largest weighted cost per unit of mean demand)
# of the allocation of a kept move: the best of the three is its value
W_FACTORS = (1.0, 0.1, 0.01)
# ... and of the screening
W_SCREEN = 0.1
# iterations without improvement after which a start's segment ends
PATIENCE = 20
# tabu tenure of a closed site, times sqrt(p) (randomised up to twice that)
TENURE = 2.0
# the search ends after this many starts in a row without a new best
STALL_STARTS = 4
# iterations per compiled call (the deadline is checked between calls)
CHUNK = 5
# dense cost matrices up to this many cells (n x m); larger instances skip the search
MAX_CELLS = 4_000_000
# ... and so do instances whose iteration would cost more than this many steps,
# estimated as p (m - p) screens of n p plus 3 TOP_MOVES allocations of n^2
MAX_ITERATION_STEPS = 3e7


@njit(cache=True, inline="always")
def _ex(load, cap):  # pragma: no cover - numba
    return load - cap if load > cap else 0.0


@njit(cache=True)
def _descent(cs, dem, cap, a, load, w, swaps):  # pragma: no cover - numba
    """Shifts, then swaps, on ``cost + w * excess`` until neither improves (in place)."""
    n, p = cs.shape
    improved = True
    while improved:
        improved = False
        for i in range(n):
            ka = a[i]
            d = dem[i]
            base = cs[i, ka]
            da = _ex(load[ka] - d, cap[ka]) - _ex(load[ka], cap[ka])
            best = -1e-9
            bk = -1
            for k in range(p):
                c = cs[i, k]
                if k == ka or c == np.inf:
                    continue
                delta = c - base + w * (da + _ex(load[k] + d, cap[k]) - _ex(load[k], cap[k]))
                if delta < best:
                    best = delta
                    bk = k
            if bk >= 0:
                load[ka] -= d
                load[bk] += d
                a[i] = bk
                improved = True
        if improved or not swaps:
            continue
        for i in range(n):
            for j in range(i + 1, n):
                ka = a[i]
                kb = a[j]
                if ka == kb:
                    continue
                dc = cs[i, kb] + cs[j, ka] - cs[i, ka] - cs[j, kb]
                if not dc < np.inf:
                    continue
                nla = load[ka] - dem[i] + dem[j]
                nlb = load[kb] - dem[j] + dem[i]
                dex = (
                    _ex(nla, cap[ka]) + _ex(nlb, cap[kb])
                    - _ex(load[ka], cap[ka]) - _ex(load[kb], cap[kb])
                )  # fmt: skip
                if dc + w * dex < -1e-9:
                    load[ka] = nla
                    load[kb] = nlb
                    a[i] = kb
                    a[j] = ka
                    improved = True


@njit(cache=True)
def _allocate(cd, dem, cap, sites, assign, w0, swaps):  # pragma: no cover - numba
    """Single-source allocation to ``sites`` by penalty descent; its cost, inf if none.

    ``assign`` (site per client, -1 for free) is the warm start and receives the
    result.
    """
    n, m = cd.shape
    p = len(sites)
    pos = np.full(m, -1, dtype=np.int64)
    for k in range(p):
        pos[sites[k]] = k
    cs = np.empty((n, p))
    capl = np.empty(p)
    for k in range(p):
        capl[k] = cap[sites[k]]
        for i in range(n):
            cs[i, k] = cd[i, sites[k]]
    a = np.empty(n, dtype=np.int64)
    load = np.zeros(p)
    for i in range(n):
        k = pos[assign[i]] if assign[i] >= 0 else -1
        if k < 0 or cs[i, k] == np.inf:
            k = -1
            for t in range(p):
                if cs[i, t] < np.inf and (k < 0 or cs[i, t] < cs[i, k]):
                    k = t
            if k < 0:
                return np.inf
        a[i] = k
        load[k] += dem[i]
    w = w0
    feasible = False
    for _ in range(12):
        _descent(cs, dem, capl, a, load, w, swaps)
        excess = 0.0
        for k in range(p):
            excess += _ex(load[k], capl[k])
        if excess <= 1e-9:
            feasible = True
            break
        w *= 4.0
    if not feasible:
        return np.inf
    # a weight no cost difference outweighs: only moves that keep the loads feasible
    _descent(cs, dem, capl, a, load, w0 * 1e9, swaps)
    cost = 0.0
    for i in range(n):
        cost += cs[i, a[i]]
        assign[i] = sites[a[i]]
    return cost


@njit(cache=True, inline="always")
def _warm(cd, assign, o, i, trial):  # pragma: no cover - numba
    """Start of move (close o, open i): o's clients free, clients nearer i move there."""
    for c in range(len(assign)):
        if assign[c] == o:
            trial[c] = -1
        elif cd[c, i] < cd[c, assign[c]]:
            trial[c] = i
        else:
            trial[c] = assign[c]


@njit(cache=True)
def _iterate(
    cd, dem, cap, fixed, sites, assign, state, best_sites, best_assign,
    tabu_open, tabu_close, it0, iters, tenure, w0, seed, top, w_factors, w_screen,
):  # fmt: skip  # pragma: no cover - numba
    """Run ``iters`` tabu iterations (all arrays updated in place).

    ``state`` is ``[current value, best value]``. Returns the iteration count reached
    (early when no move is allowed).
    """
    n, m = cd.shape
    p = len(sites)
    # numba's compiled code has the legacy global generator only (seeded: reproducible)
    np.random.seed(seed)  # noqa: NPY002
    is_open = np.zeros(m, dtype=np.bool_)
    for k in range(p):
        is_open[sites[k]] = True
    trial = np.empty(n, dtype=np.int64)
    trial2 = np.empty(n, dtype=np.int64)
    chosen = np.empty(n, dtype=np.int64)
    tsites = sites.copy()
    screen = np.empty(p * m)
    for it in range(it0, it0 + iters):
        # every move screened by a shift-only allocation (tabu ones only if they
        # might give a new best)
        screen[:] = np.inf
        for ko in range(p):
            o = sites[ko]
            if fixed[o]:
                continue
            tsites[:] = sites
            for i in range(m):
                if is_open[i]:
                    continue
                tsites[ko] = i
                _warm(cd, assign, o, i, trial)
                val = _allocate(cd, dem, cap, tsites, trial, w0 * w_screen, False)
                allowed = tabu_open[i] <= it and tabu_close[o] <= it
                if allowed or val < state[1] - 1e-9:
                    # random tie-break among equal screens
                    screen[ko * m + i] = val + 1e-7 * np.random.random()  # noqa: NPY002
        order = np.argsort(screen)
        best_val = np.inf
        bo = -1
        bi = -1
        for r in range(min(top, p * m)):
            t = order[r]
            if screen[t] == np.inf:
                break
            ko = t // m
            i = t % m
            o = sites[ko]
            tsites[:] = sites
            tsites[ko] = i
            val = np.inf
            for f in w_factors:
                _warm(cd, assign, o, i, trial2)
                v2 = _allocate(cd, dem, cap, tsites, trial2, w0 * f, True)
                if v2 < val:
                    val = v2
                    trial[:] = trial2
            allowed = tabu_open[i] <= it and tabu_close[o] <= it
            if not allowed and val >= state[1] - 1e-9:
                continue
            if val < best_val - 1e-9:
                best_val, bo, bi = val, ko, i
                chosen[:] = trial
        if bo < 0:
            return it
        o = sites[bo]
        is_open[o] = False
        is_open[bi] = True
        sites[bo] = bi
        assign[:] = chosen
        state[0] = best_val
        tabu_open[o] = it + tenure + np.random.randint(tenure + 1)  # noqa: NPY002
        tabu_close[bi] = it + max(1, tenure // 2)
        if best_val < state[1] - 1e-9:
            state[1] = best_val
            best_sites[:] = sites
            best_assign[:] = assign
    return it0 + iters


def _dense(inst: Instance) -> np.ndarray:
    cd = np.full((inst.n, inst.m), np.inf)
    cd[inst.row, inst.site] = inst.wcost
    return cd


def site_tabu(
    inst: Instance,
    starts: list[np.ndarray],
    *,
    deadline: float,
    target: float = -math.inf,
    patience: int = PATIENCE,
) -> tuple[np.ndarray | None, float, int, int]:
    """Tabu search over site swaps from each start in turn.

    Parameters
    ----------
    inst
        Capacitated instance (``inst.capacity`` set).
    starts
        Open-site masks (``p`` sites each, fixed sites included), searched in order.
    deadline
        ``_clock.now()`` value at which to stop.
    target
        Stop once the best value is at most this (a lower bound).
    patience
        Iterations without improvement after which a start's segment ends.

    Returns
    -------
    tuple
        ``(assign, value, starts_used, iterations)``: the best assignment found (None
        when none was feasible) and its value.
    """
    assert inst.capacity is not None
    n, m, p = inst.n, inst.m, inst.p
    steps = p * (m - p) * n * p + 3 * TOP_MOVES * n * n
    if n * m > MAX_CELLS or steps > MAX_ITERATION_STEPS:
        return None, math.inf, 0, 0, []
    cd = _dense(inst)
    dem = inst.demand.astype(np.float64)
    cap = inst.capacity.astype(np.float64)
    w0 = float(inst.wcost.max()) / max(1e-9, float(dem.mean()))
    w0 = max(w0, 1e-9)
    factors = np.array(W_FACTORS)
    tenure = max(2, round(TENURE * math.sqrt(inst.p)))
    best_assign, best_val = None, math.inf
    total_it, used = 0, 0
    segments: list[tuple[float, np.ndarray]] = []
    stalled = 0
    for start in starts:
        if _clock.now() >= deadline or best_val <= target or stalled >= STALL_STARTS:
            break
        used += 1
        sites = np.flatnonzero(start).astype(np.int64)
        assign = np.full(inst.n, -1, dtype=np.int64)
        cur = _allocate(cd, dem, cap, sites, assign, w0 * W_FACTORS[-1], True)
        _clock.charge(n * n, "tabu")
        state = np.array([cur, cur])
        seg_sites, seg_assign = sites.copy(), assign.copy()
        tabu_open = np.zeros(inst.m, dtype=np.int64)
        tabu_close = np.zeros(inst.m, dtype=np.int64)
        it = last_imp = 0
        last = state[1]
        while _clock.now() < deadline and it - last_imp <= patience:
            reached = _iterate(
                cd, dem, cap, inst.fixed, sites, assign, state, seg_sites, seg_assign,
                tabu_open, tabu_close, it, CHUNK, tenure, w0, 7919 * used + it, TOP_MOVES,
                factors, W_SCREEN,
            )  # fmt: skip
            _clock.charge((reached - it) * steps, "tabu")
            if reached < it + CHUNK:
                it = reached
                break  # every move tabu or infeasible
            it = reached
            if state[1] < last - 1e-9:
                last, last_imp = state[1], it
            if state[1] <= target:
                break
        total_it += it
        if math.isfinite(state[1]):
            segments.append((float(state[1]), seg_assign.copy()))
        log.debug(
            "site tabu start %d: %.6g -> %.6g in %d iterations (best at %d)",
            used, cur, state[1], it, last_imp,
        )  # fmt: skip
        if state[1] < best_val - 1e-9 and math.isfinite(state[1]):
            best_val, best_assign = float(state[1]), seg_assign.copy()
            stalled = 0
        else:
            stalled += 1
    return best_assign, best_val, used, total_it, segments


def _region(inst: Instance, assign: np.ndarray, is_open: np.ndarray, seed: int, q: int):
    """Up to ``q`` open sites around ``seed``: first those its clients could use, cheapest first."""
    region = [seed]
    taken = {seed}
    frontier = [seed]
    while len(region) < q and frontier:
        clients = np.flatnonzero(np.isin(assign, frontier))
        frontier = []
        lo, hi = inst.indptr[clients], inst.indptr[clients + 1]
        ent = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        ent = ent[is_open[inst.site[ent]]]
        for j in inst.site[ent[np.argsort(inst.wcost[ent], kind="stable")]]:
            if len(region) >= q:
                break
            if int(j) not in taken:
                taken.add(int(j))
                region.append(int(j))
                frontier.append(int(j))
    return np.array(region, dtype=np.int64)


def _subproblem(inst: Instance, assign: np.ndarray, is_open: np.ndarray, region: np.ndarray):
    """The clients of ``region`` and the sites they may use that no other open site holds."""
    clients = np.flatnonzero(np.isin(assign, region))
    lo, hi = inst.indptr[clients], inst.indptr[clients + 1]
    ent = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    in_region = np.zeros(inst.m, dtype=bool)
    in_region[region] = True
    ent = ent[~is_open[inst.site[ent]] | in_region[inst.site[ent]]]
    sites = np.unique(inst.site[ent])
    pos = np.full(inst.m, -1, dtype=np.int64)
    pos[sites] = np.arange(len(sites))
    cpos = np.full(inst.n, -1, dtype=np.int64)
    cpos[clients] = np.arange(len(clients))
    row = cpos[inst.row[ent]]
    counts = np.bincount(row, minlength=len(clients))
    sub = Instance(
        n=len(clients),
        m=len(sites),
        p=len(region),
        indptr=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
        site=pos[inst.site[ent]],
        cost=inst.cost[ent],
        row=row,
        weights=inst.weights[clients],
        demand=inst.demand[clients],
        capacity=inst.capacity[sites],
        fixed=inst.fixed[sites],
        penalty=inst.penalty,
    )
    return sub, clients, sites, pos


def region_search(
    inst: Instance, assign: np.ndarray, *, deadline: float, q: int = 10, seed: int = 0
) -> tuple[np.ndarray, int, int]:
    """Site tabu search on regions of ``q`` neighbouring open sites, one at a time.

    The clients of the region are re-solved over the sites they may use that no
    other open site holds, so every improvement keeps the whole solution feasible.
    Returns ``(assign, regions improved, regions tried)``.
    """
    assign = assign.copy()
    is_open = np.zeros(inst.m, dtype=bool)
    is_open[assign] = True
    wc = inst.wcost
    rng = np.random.default_rng(seed)
    improved = tried = 0
    while _clock.now() < deadline:
        changed = False
        for o in rng.permutation(np.flatnonzero(is_open)):
            if _clock.now() >= deadline:
                break
            if not is_open[o]:  # closed by an earlier region
                continue
            region = _region(inst, assign, is_open, int(o), q)
            sub, clients, sites, pos = _subproblem(inst, assign, is_open, region)
            start = np.zeros(sub.m, dtype=bool)
            start[pos[region]] = True
            current = float(wc[inst.entry_of(assign)][clients].sum())
            tried += 1
            found, value, *_ = site_tabu(sub, [start], deadline=deadline)
            if found is not None and value < current - 1e-6 * max(1.0, current):
                is_open[region] = False
                assign[clients] = sites[found]
                is_open[assign[clients]] = True
                improved += 1
                changed = True
        if not changed:
            break
    return assign, improved, tried


def warmup() -> None:
    """Compile (or load from numba's cache) the site search on a 6-client instance.

    Benchmarks call this before timing, so that the one-off compilation (about
    8 s on a cold cache) is not charged to the first instance.
    """
    xy = np.arange(6, dtype=float)
    cost = np.abs(xy[:, None] - xy[None, :])
    inst = build_instance(cost, 2, None, np.ones(6), np.full(6, 4.0), None)
    start = np.zeros(6, dtype=bool)
    start[[0, 5]] = True
    site_tabu(inst, [start], deadline=_clock.now() + 1.0, patience=2)
