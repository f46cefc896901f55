"""Per-component grid division: recursive spanning-tree bisection, then local improvement.

Everything here works on one connected component (a community's barrier-bounded block,
or several blocks merged because one alone could not make a grid) given as plain numpy
arrays, so :func:`_solve_component` is a pure function of picklable inputs that can be
mapped over components with Dask.

Feasibility with a flexible count: a connected region of ``W`` households can be cut
into grids of ``[L, U]`` households when ``k L <= W <= k U`` for some integer ``k``
(ignoring building granularity). A bisection only has to leave both sides feasible.

The model these functions share (parameters, components, the grid cost, the graph, the
plan under improvement) lives in :mod:`gridopt.partition._model`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import replace

import numpy as np

from gridopt._errors import SolverError
from gridopt.partition import _kernels as _k
from gridopt.partition._exact import solve_exact
from gridopt.partition._model import (
    _POCKET_PENALTY,
    _Component,
    _ComponentResult,
    _Graph,
    _Params,
    _random_tree,
    _State,
    _subtree,
    _total_cost,
)
from gridopt.partition._polish import POLISH_WALL_FACTOR, exact_polish

log = logging.getLogger("gridopt")


def _choose_cut(
    sizes: np.ndarray, total: int, eids: np.ndarray, graph: _Graph, p: _Params, k_shift: int = 0
) -> tuple[int, float]:
    """Best cut position in ``sizes`` and its score (lower is better; inf = none).

    See :func:`gridopt.partition._kernels.choose_cut` for the rule.
    """
    return _k.choose_cut(
        np.asarray(sizes, dtype=np.int64), int(total), np.asarray(eids, dtype=np.int64),
        graph.street, graph.barrier, int(p.min_households), int(p.max_households),
        float(p.target), int(k_shift), graph.cut_score,
    )  # fmt: skip


def _bisect(
    comp: _Component,
    graph: _Graph,
    p: _Params,
    rng: np.random.Generator,
    deadline: float,
    start: np.ndarray | None = None,
    k_shift: int = 0,
) -> np.ndarray:
    """Labels by recursive spanning-tree bisection; every grid <= max households.

    ``start`` restricts the work to a connected subset (other labels stay -1).
    """
    n = len(comp.w)
    w = comp.w.astype(np.int64)
    labels = np.full(n, -1, dtype=np.int64)
    stack = [np.arange(n) if start is None else np.asarray(start, dtype=np.int64)]
    nxt = 0
    top = True
    while stack:
        nodes = stack.pop()
        total = int(w[nodes].sum())
        if total <= p.max_households or len(nodes) == 1:
            labels[nodes] = nxt
            nxt += 1
            continue
        best: tuple[float, int, np.ndarray, np.ndarray] | None = None
        for t in range(p.tries):
            order, pred, subw, eid = _random_tree(graph, nodes, w, rng)
            ch = order[1:]
            # k_shift (one more or one fewer grid) applies to the first cut only
            k, score = _choose_cut(subw[ch], total, eid[ch], graph, p, k_shift if top else 0)
            if k >= 0 and (best is None or score < best[0]):
                best = (score, int(ch[k]), order, pred)
            # a clean cut found: a few more trees to choose from, then go on
            if best is not None and best[0] < 1e6 and (t >= 2 or time.perf_counter() > deadline):
                break
        if best is None:  # pragma: no cover - a connected region of >= 2 nodes has a cut
            raise SolverError("no cut found in a connected region")
        _, v, order, pred = best
        top = False
        part = _subtree(order, pred, v)
        stack.append(nodes[~part])
        stack.append(nodes[part])
    return labels


# ---------------------------------------------------------------------------
# local improvement
# ---------------------------------------------------------------------------


def _improve(
    state: _State, rng: np.random.Generator, deadline: float, p: _Params
) -> tuple[int, bool]:
    """Boundary moves and merge-and-resplit until no gain or the deadline; (rounds, timed out)."""
    rounds = stall = 0
    best = state.total()
    n = len(state.lab)
    while True:
        rounds += 1
        # boundary moves until a sweep changes nothing
        for _ in range(50):
            moved = 0
            for v in rng.permutation(n).tolist():
                if state.try_move(v):
                    moved += 1
                if (v & 255) == 0 and time.perf_counter() > deadline:
                    return rounds, True
            if not moved:
                break
        # merge-and-resplit of neighbouring grids (pockets first)
        pairs = state.neighbour_pairs()
        lo = p.min_households
        pairs.sort(key=lambda ab: min(state.h[ab[0]], state.h[ab[1]]) >= lo)
        perm = rng.permutation(len(pairs)).tolist()
        pocket_pairs = [
            k for k in range(len(pairs)) if min(state.h[pairs[k][0]], state.h[pairs[k][1]]) < lo
        ]
        for k in pocket_pairs + perm:
            a, b = pairs[k]
            if a in state.members and b in state.members:
                state.recombine(a, b, rng, p.recombine_trees)
            if time.perf_counter() > deadline:
                return rounds, True
        for g in sorted(g for g, h in state.h.items() if h < lo):
            if g in state.members and state.h[g] < lo:
                key = (g, frozenset(state.members[g]))
                if key not in state.tried:
                    state.tried.add(key)
                    _repair_pocket(state, g, rng, deadline)
            if time.perf_counter() > deadline:
                return rounds, True
        # larger moves: re-divide a grid with its neighbours, also with one grid more/fewer
        # (the least compact third of the grids, worst first: where a re-division pays)
        per_h = {g: state.cost[g] / max(state.h[g], 1) for g in state.members}
        worst = sorted(per_h, key=lambda g: (-per_h[g], g)) if p.resolve else []
        if rounds > 1 or not p.resolve_first_all:
            worst = worst[: max(4, int(len(worst) * p.resolve_share))]
        for g in worst:
            if g in state.members:
                _resolve_region(state, g, rng, deadline, tries=3, shifts=(0, 1, -1))
            if time.perf_counter() > deadline:
                return rounds, True
        now = state.total()
        if now < best - p.min_gain * max(1.0, abs(best)):
            best, stall = now, 0
        else:
            stall += 1
        if stall >= p.stall_rounds or rounds >= p.max_rounds:
            return rounds, False


def _repair_pocket(
    state: _State, g: int, rng: np.random.Generator, deadline: float, tries: int = 8
) -> bool:
    """Re-divide a pocket together with its neighbouring grids; keep the result if better."""
    return _resolve_region(state, g, rng, deadline, tries)


def _resolve_region(
    state: _State,
    g: int,
    rng: np.random.Generator,
    deadline: float,
    tries: int = 3,
    shifts: tuple[int, ...] = (0,),
    force: bool = False,
) -> bool:
    """Re-divide grid ``g`` and its neighbouring grids from scratch; keep the result if better.

    ``shifts`` tries one grid fewer/more than the default count, so the number of grids in
    the region can change (the single moves and pair recombinations never change it).
    """
    lab, nbrs, nbr_edge, barrier = state.lab, state.graph.nbrs, state.graph.nbr_edge, state.barrier
    around = {
        lab[x]
        for v in state.members[g]
        for x, e in zip(nbrs[v], nbr_edge[v], strict=False)
        if lab[x] != g and not barrier[e]
    }
    if not around:
        return False
    group = sorted({g} | around)
    key = ("region", shifts, *state.key(*group))
    if key in state.failed and not force:
        return False
    state.failed.add(key)
    nodes = np.array(sorted(set().union(*(state.members[k] for k in group))), dtype=np.int64)
    current = sum(state.cost[k] for k in group)
    best = None
    quick = replace(state.p, tries=2)
    for t in range(tries):
        shift = shifts[t % len(shifts)]
        labels = _bisect(state.comp, state.graph, quick, rng, deadline, start=nodes, k_shift=shift)
        sub = labels[nodes]
        cost = 0.0
        for k in np.unique(sub):
            cost += state._cost(nodes[sub == k].tolist())
        if best is None or cost < best[0]:
            best = (cost, sub)
        if time.perf_counter() > deadline:
            break
    if best is None or (not force and best[0] >= current - 1e-9 * max(1.0, current)):
        return False
    cost, sub = best
    # reuse the group's grid numbers, new ones beyond the current maximum
    free = list(group)
    nxt = max(state.members) + 1
    for k in np.unique(sub):
        gid = free.pop() if free else nxt
        if gid == nxt:
            nxt += 1
        members = nodes[sub == k].tolist()
        for v in members:
            lab[v] = gid
        state.members[gid] = set(members)
        state.h[gid] = sum(state.wl[v] for v in members)
        state.cost[gid] = state._cost(members)
        state.touch(gid)
    for gid in free:
        del state.members[gid], state.h[gid], state.cost[gid]
        state.touch(gid)
    return True


# ---------------------------------------------------------------------------
# the unit of work
# ---------------------------------------------------------------------------


def _multi_start(
    comp: _Component, graph: _Graph, p: _Params, rng: np.random.Generator, deadline: float
) -> tuple[np.ndarray, bool, dict]:
    """Bisection + improvement, then iterated local search; the best plan.

    Local optima of the improvement differ a lot on small components (the band leaves
    few feasible single moves). After the first start, each further start re-divides
    ``perturb`` random neighbourhoods of the best plan so far (whatever that costs) and
    improves again (iterated local search; ``perturb=0``: fresh random starts). Starts
    are made up to ``max_starts`` and ``call_starts`` (set from the whole call's size), while
    the component's work (buildings x starts) stays within ``start_work``, and until
    ``start_patience`` starts in a row gain nothing.
    """
    n = len(comp.w)
    starts = max(1, min(p.max_starts, p.call_starts, p.start_work // max(n, 1)))
    best, best_cost, stale, timed_out = None, math.inf, 0, False
    stats: dict = {"starts": 0}
    # with quick starts, the starts skip the costly region re-divisions; the best start
    # gets them at the end
    quick = replace(p, resolve=False) if p.quick_starts and starts > 1 else p
    best_state = None
    for s in range(starts):
        r = rng if s == 0 else np.random.default_rng([p.seed, 7919 + s, n])
        if s == 0 or not p.perturb:
            labels = _bisect(comp, graph, p, r, deadline)
            state = _State(comp, graph, labels, p)
        else:
            # iterated local search: re-divide a random neighbourhood of the best plan
            # (whatever it costs), then improve again
            state = _State(comp, graph, best, p)
            grids = sorted(state.members)
            for _ in range(p.perturb):
                g = grids[int(r.integers(len(grids)))]
                if g in state.members:
                    shift = (int(r.integers(-1, 2)),)
                    _resolve_region(state, g, r, deadline, tries=1, shifts=shift, force=True)
        if s == 0:
            stats["initial_cost"] = state.total()
        rounds, timed_out = _improve(state, r, deadline, quick)
        stats["starts"] += 1
        stats["rounds"] = stats.get("rounds", 0) + rounds
        cost = state.total()
        if cost < best_cost * (1 - 1e-3):
            stale = 0
        else:
            stale += 1
        if cost < best_cost:
            best, best_cost, best_state = np.asarray(state.lab, dtype=np.int64), cost, state
        if timed_out or stale >= p.start_patience or time.perf_counter() > deadline:
            break
    if quick is not p and best_state is not None and not timed_out:
        rounds, timed_out = _improve(best_state, rng, deadline, p)
        stats["rounds"] += rounds
        best = np.asarray(best_state.lab, dtype=np.int64)
    if p.polish and n <= p.polish_max_n and best is not None and not timed_out:
        state = _State(comp, graph, best, p)
        # counts decide where the polish stops; the deadline, relaxed, only as a safety cap
        cap = time.perf_counter() + POLISH_WALL_FACTOR * max(deadline - time.perf_counter(), 0.0)
        for _ in range(3):  # polish, then the cheap moves again while the polish gains
            info = exact_polish(state, p, cap)
            for k, v in info.items():
                stats[k] = stats.get(k, 0) + v
            if not info["polish_gains"] or time.perf_counter() > cap:
                break
            _, timed_out = _improve(state, rng, cap, p)
            if timed_out:
                break
        best = np.asarray(state.lab, dtype=np.int64)
    return best, timed_out, stats


def _warm_start(
    comp: _Component, graph: _Graph, p: _Params, rng: np.random.Generator, deadline: float
) -> tuple[np.ndarray, bool, dict]:
    """Re-grid from the previous grids, changing only what must change.

    New buildings join an adjacent old grid; an old grid broken into pieces (demolitions)
    becomes one grid per piece; a grid above the maximum hands boundary buildings to
    neighbours with room, else is re-divided with a neighbour or on its own; a grid below
    the minimum merges with, or is re-divided together with, its neighbours. Grids still
    in the band and connected are kept as they are.
    """
    n = len(comp.w)
    lo, hi = p.min_households, p.max_households
    lab = np.asarray(comp.prev, dtype=np.int64).copy()
    nbrs = graph.nbrs
    # new buildings join the old grid they are reached from first (multi-source BFS)
    queue = deque(np.flatnonzero(lab >= 0).tolist())
    while queue:
        u = queue.popleft()
        for x in nbrs[u]:
            if lab[x] < 0:
                lab[x] = lab[u]
                queue.append(x)
    # one grid per connected piece (old grids broken apart; clusters of new buildings)
    out = np.full(n, -1, dtype=np.int64)
    nxt = 0
    for v in range(n):
        if out[v] >= 0:
            continue
        out[v] = nxt
        stack = [v]
        while stack:
            u = stack.pop()
            for x in nbrs[u]:
                if out[x] < 0 and lab[x] == lab[v]:
                    out[x] = nxt
                    stack.append(x)
        nxt += 1
    state = _State(comp, graph, out, p)
    stats: dict = {"warm_start": True, "grids_repaired": 0}
    timed_out = False
    for _ in range(3):  # a repair can push a neighbour out of the band: a few passes
        bad = sorted(g for g, h in state.h.items() if h > hi or h < lo)
        if not bad:
            break
        for g in bad:
            if time.perf_counter() > deadline:
                timed_out = True
                break
            if g not in state.members:
                continue
            if state.h[g] > hi:
                _shed(state, g)
            if g in state.members and state.h[g] > hi:
                _split_over(state, g, rng, deadline)
            if g in state.members and state.h[g] < lo:
                around = sorted(_touching(state, g), key=lambda b: (state.h[b], b))
                for b in around:
                    if g in state.members and b in state.members and state.h[g] < lo:
                        state.recombine(g, b, rng, 16)
                if g in state.members and state.h[g] < lo:
                    _repair_pocket(state, g, rng, deadline)
            stats["grids_repaired"] += 1
    return np.asarray(state.lab, dtype=np.int64), timed_out, stats


def _touching(state: _State, g: int) -> set[int]:
    lab, nbrs, nbr_edge, barrier = state.lab, state.graph.nbrs, state.graph.nbr_edge, state.barrier
    return {
        lab[x]
        for v in state.members[g]
        for x, e in zip(nbrs[v], nbr_edge[v], strict=False)
        if lab[x] != g and not barrier[e]
    }


def _shed(state: _State, g: int) -> None:
    """Move boundary buildings of an over-full grid to neighbours with room (cheapest first)."""
    hi = state.p.max_households
    while g in state.members and state.h[g] > hi:
        best = None
        for v in sorted(state.members[g]):
            wv = state.wl[v]
            for x, e in zip(state.graph.nbrs[v], state.graph.nbr_edge[v], strict=False):
                b = state.lab[x]
                if b == g or state.barrier[e] or state.h[b] + wv > hi:
                    continue
                if not state._connected_without(g, v):
                    break
                ca = state._cost([u for u in state.members[g] if u != v])
                cb = state._cost([*state.members[b], v])
                delta = ca + cb - state.cost[g] - state.cost[b]
                if best is None or delta < best[0]:
                    best = (delta, v, b, ca, cb)
        if best is None:
            return
        _, v, b, ca, cb = best
        state._apply(v, g, b, ca, cb)


def _split_over(state: _State, g: int, rng: np.random.Generator, deadline: float) -> None:
    """Re-divide an over-full grid on its own, keeping the result only if all fit."""
    nodes = np.array(sorted(state.members[g]), dtype=np.int64)
    labels = _bisect(state.comp, state.graph, state.p, rng, deadline, start=nodes)
    sub = labels[nodes]
    nxt = max(state.members) + 1
    first = True
    for k in np.unique(sub):
        members = nodes[sub == k].tolist()
        gid = g if first else nxt
        if not first:
            nxt += 1
        first = False
        for v in members:
            state.lab[v] = gid
        state.members[gid] = set(members)
        state.h[gid] = sum(state.wl[v] for v in members)
        state.cost[gid] = state._cost(members)
        state.touch(gid)


def _exact_start(comp: _Component, p: _Params, deadline: float) -> np.ndarray:
    """The heuristic plan the exact model starts from (hint, pruning bound, fallback)."""
    graph = _Graph(comp)
    rng = np.random.default_rng([p.seed, comp.key, 1])
    state = _State(comp, graph, _bisect(comp, graph, p, rng, deadline), p)
    _improve(state, rng, min(deadline, time.perf_counter() + max(0.2, 0.15 * p.time_limit_s)), p)
    return np.asarray(state.lab, dtype=np.int64)


def _solve_component(comp: _Component, p: _Params) -> _ComponentResult:
    """Divide one connected component into grids (pure function of picklable inputs)."""
    t0 = time.perf_counter()
    deadline = t0 + p.time_limit_s
    n = len(comp.w)
    w = comp.w.astype(np.int64)
    total = int(w.sum())
    rng = np.random.default_rng([p.seed, comp.key])
    stats: dict = {}
    if p.method == "exact" and n > 1 and total > p.max_households:
        labels, status, bound = solve_exact(comp, p, deadline, _exact_start(comp, p, deadline))
    elif total <= p.max_households or n == 1:
        labels, status, bound = np.zeros(n, dtype=np.int64), "optimal", None
    elif comp.prev is not None and (comp.prev >= 0).any():
        graph = _Graph(comp)
        labels, timed_out, stats = _warm_start(comp, graph, p, rng, deadline)
        status, bound = ("time_limit" if timed_out else "feasible"), None
    else:
        graph = _Graph(comp)
        labels, timed_out, stats = _multi_start(comp, graph, p, rng, deadline)
        status, bound = ("time_limit" if timed_out else "feasible"), None
    # renumber 0..k-1 in order of first appearance (deterministic)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    labels = rank[inv]
    k = int(labels.max()) + 1 if n else 0
    h = np.bincount(labels, weights=w, minlength=k).astype(np.int64)
    pocket = h < p.min_households
    reasons = []
    for g in range(k):
        if not pocket[g]:
            reasons.append("")
        elif total < p.min_households:
            reasons.append(
                f"undersized: its {int((labels == g).sum())} connected buildings hold {h[g]} households "
                f"(< {p.min_households}) and no neighbouring grid can take them "
                "(separated by distance, a community boundary, or a barrier with grids on the other side)"
            )
        else:
            reasons.append(
                f"undersized: {h[g]} households (< {p.min_households}) left by building sizes; "
                f"no neighbouring grid could take them without exceeding {p.max_households} households"
            )
    cost = _total_cost(comp.xy, w, labels, p, comp) if n else 0.0
    cost -= _POCKET_PENALTY * float(np.maximum(p.min_households - h, 0).sum())
    if status == "optimal" and bound is None:
        bound = cost  # one grid for the whole component: nothing to choose
    return _ComponentResult(
        key=comp.key,
        labels=labels,
        pocket=pocket,
        reasons=reasons,
        status=status,
        cost=cost,
        bound=bound,
        seconds=time.perf_counter() - t0,
        stats=stats,
    )
