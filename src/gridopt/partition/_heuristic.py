"""Per-component grid division: recursive spanning-tree bisection, then local improvement.

Everything here works on one connected component (a community's barrier-bounded block,
or several blocks merged because one alone could not make a grid) given as plain numpy
arrays, so :func:`_solve_component` is a pure function of picklable inputs that can be
mapped over components with Dask.

Feasibility with a flexible count: a connected region of ``W`` households can be cut
into grids of ``[L, U]`` households when ``k L <= W <= k U`` for some integer ``k``
(ignoring building granularity). A bisection only has to leave both sides feasible.

The objective of one grid ``g`` with centre building ``r`` (the best member) is
``sum_i w_i |x_i - x_r|^2 + balance_weight_m2 * |h_g - target|``; :func:`_grid_cost`
computes it in O(|g|) from the sums ``h, sum w x, sum w |x|^2``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse import csgraph

from gridopt.partition import _kernels as _k

log = logging.getLogger("gridopt")

# Weight added to barrier edges in the random spanning trees: a tree uses a barrier edge
# only where the blocks must be joined, so cutting it is always among the candidates.
_BARRIER_TREE_WEIGHT = 10.0
# A pocket (grid below the minimum) costs this much per missing household, far above any
# compactness difference, so improvement first fills pockets, then makes grids compact.
_POCKET_PENALTY = 1e12
# Regions up to this many buildings get their spanning trees from the compiled Kruskal
# (_kruskal_bfs); larger ones from scipy, whose per-call overhead no longer matters there.
_COMPILED_TREE_MAX = 2000


@dataclass(frozen=True)
class _Params:
    min_households: int
    max_households: int
    target: float
    balance_weight_m2: float
    seed: int
    time_limit_s: float
    method: str = "heuristic"
    tries: int = 12
    stall_rounds: int = 1
    min_gain: float = 2e-3  # a round must gain this share of the cost, else it has stalled
    previous_weight_m2: float = 0.0
    # share of the grids (least compact first) re-divided with their neighbours per round
    resolve_share: float = 0.34
    resolve_first_all: bool = True
    max_rounds: int = 50
    recombine_trees: int = 8
    max_starts: int = 8
    perturb: int = 2
    resolve: bool = True
    quick_starts: bool = False
    start_work: int = 300
    call_starts: int = 8  # the call's budget: further starts only on small inputs
    start_patience: int = 3
    # exact re-division of touching grid pairs/triples (small inputs only, see _polish)
    polish: bool = False
    polish_max_nodes: int = 30
    polish_det_time: float = 0.5
    polish_sweeps: int = 4
    polish_reach: float = 1.2  # centres within this many times the widest grid's radius
    polish_max_n: int = 150


@dataclass(frozen=True)
class _Component:
    """One solve unit: positions are local (0..n-1)."""

    key: int
    xy: np.ndarray  # (n, 2) float, metres
    w: np.ndarray  # (n,) int households
    ei: np.ndarray  # (m,) local edge ends
    ej: np.ndarray
    barrier: np.ndarray  # (m,) bool
    street: np.ndarray  # (m,) bool
    prev: np.ndarray | None = None  # (n,) int old grid code, -1 for new buildings


@dataclass(frozen=True)
class _ComponentResult:
    key: int
    labels: np.ndarray  # (n,) local grid number
    pocket: np.ndarray  # (k,) bool: grid below the minimum
    reasons: list[str]
    status: str
    cost: float
    bound: float | None
    seconds: float
    stats: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# feasibility and cost
# ---------------------------------------------------------------------------


def _feasible(weight: np.ndarray | int, lo: int, hi: int) -> np.ndarray:
    """Whether ``weight`` households can make whole grids: some k with k lo <= W <= k hi."""
    weight = np.asarray(weight, dtype=np.int64)
    kmin = -(-weight // hi)
    kmax = weight // lo
    return (kmin <= kmax) & (weight > 0)


def _grid_cost(xy: np.ndarray, w: np.ndarray, members: np.ndarray, p: _Params) -> tuple[float, int]:
    """Cost of one grid and its centre (position in ``members``)."""
    return _k.grid_cost(
        xy, w, np.asarray(members, dtype=np.int64), p.balance_weight_m2, p.target,
        p.min_households, _POCKET_PENALTY,
    )  # fmt: skip


def _total_cost(xy: np.ndarray, w: np.ndarray, labels: np.ndarray, p: _Params) -> float:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return float(sum(_grid_cost(xy, w, g, p)[0] for g in np.split(order, bounds)))


# ---------------------------------------------------------------------------
# recursive bisection
# ---------------------------------------------------------------------------


class _Graph:
    """CSR adjacency of a component; ``data`` holds edge id + 1."""

    def __init__(self, comp: _Component) -> None:
        n, m = len(comp.w), len(comp.ei)
        eid = np.arange(1, m + 1, dtype=np.float64)
        a = sp.coo_matrix(
            (
                np.concatenate([eid, eid]),
                (np.concatenate([comp.ei, comp.ej]), np.concatenate([comp.ej, comp.ei])),
            ),
            shape=(n, n),
        ).tocsr()
        self.csr = a
        self.n = n
        self.barrier = comp.barrier
        self.street = comp.street
        self.barrier_l: list[bool] = comp.barrier.tolist()
        self.nbrs: list[list[int]] = [
            a.indices[a.indptr[k] : a.indptr[k + 1]].tolist() for k in range(n)
        ]
        self.nbr_edge: list[list[int]] = [
            (a.data[a.indptr[k] : a.indptr[k + 1]].astype(np.int64) - 1).tolist() for k in range(n)
        ]
        self.ei = np.asarray(comp.ei, dtype=np.int64)
        self.ej = np.asarray(comp.ej, dtype=np.int64)
        self.tree_bias = _BARRIER_TREE_WEIGHT * comp.barrier.astype(float)
        self.pos = np.full(n, -1, dtype=np.int64)  # scratch: local position of a node


def _random_tree(
    graph: _Graph, nodes: np.ndarray, w: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random spanning tree of ``nodes`` (local positions into ``nodes``).

    Returns the BFS order, the predecessor of each position, the subtree weight of each
    position and, for each position, the id of the edge to its predecessor (-1 at the root).
    """
    if len(nodes) <= _COMPILED_TREE_MAX:
        return _compiled_tree(graph, nodes, w, rng)
    sub = graph.csr[nodes][:, nodes]
    edge_ids = sub.data.astype(np.int64) - 1
    rnd = rng.random(len(graph.barrier))
    weights = 1.0 + rnd[edge_ids] + _BARRIER_TREE_WEIGHT * graph.barrier[edge_ids]
    wsub = sp.csr_matrix((weights, sub.indices, sub.indptr), shape=sub.shape)
    tree = csgraph.minimum_spanning_tree(wsub)
    root = int(rng.integers(len(nodes)))
    order, pred = csgraph.breadth_first_order(tree, root, directed=False, return_predecessors=True)
    if len(order) != len(nodes):  # pragma: no cover - callers pass connected regions
        raise RuntimeError("region is not connected")
    subw = w[nodes].astype(np.int64)
    pred_l = pred.tolist()
    for v in order[:0:-1].tolist():
        subw[pred_l[v]] += subw[v]
    eid = np.full(len(nodes), -1, dtype=np.int64)
    ch = order[1:]
    eid[ch] = np.asarray(sub[ch, pred[ch]]).ravel().astype(np.int64) - 1
    return order, pred, subw, eid


def _compiled_tree(
    graph: _Graph, nodes: np.ndarray, w: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_random_tree` for small regions: Kruskal on random keys, compiled.

    scipy's per-call overhead dominates on regions of a few hundred buildings, and this
    is the innermost call of the bisection (thousands of trees per street office).
    """
    k = len(nodes)
    pos = graph.pos
    pos[nodes] = np.arange(k)
    li, lj = pos[graph.ei], pos[graph.ej]
    pos[nodes] = -1  # the scratch array stays all -1 between calls
    sel = np.flatnonzero((li >= 0) & (lj >= 0))
    key = rng.random(len(sel)) + graph.tree_bias[sel]
    sel = sel[np.argsort(key, kind="stable")]
    root = int(rng.integers(k))
    order, pred, subw, eid = _kruskal_bfs(
        li[sel], lj[sel], sel.astype(np.int64), k, root, w[nodes].astype(np.int64)
    )
    if order[-1] < 0:  # pragma: no cover - callers pass connected regions
        raise RuntimeError("region is not connected")
    return order, pred, subw, eid


@njit(cache=True)
def _kruskal_bfs(
    a_of: np.ndarray, b_of: np.ndarray, e_of: np.ndarray, k: int, root: int, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spanning tree from edges in key order, then BFS order, predecessors, subtree sums."""
    parent = np.arange(k)
    # adjacency of the tree as a linked list: head[v] -> (nbr, edge, next)
    head = np.full(k, -1, np.int64)
    nbr = np.empty(2 * k, np.int64)
    edge = np.empty(2 * k, np.int64)
    nxt = np.empty(2 * k, np.int64)
    used = 0
    joined = 0
    for t in range(len(a_of)):
        a, b = a_of[t], b_of[t]
        ra = a
        while parent[ra] != ra:
            parent[ra] = parent[parent[ra]]
            ra = parent[ra]
        rb = b
        while parent[rb] != rb:
            parent[rb] = parent[parent[rb]]
            rb = parent[rb]
        if ra != rb:
            parent[ra] = rb
            # prepend would reverse the neighbour order of the Python version; append keeps it
            for u, x in ((a, b), (b, a)):
                nbr[used], edge[used], nxt[used] = x, e_of[t], -1
                if head[u] < 0:
                    head[u] = used
                else:
                    c = head[u]
                    while nxt[c] >= 0:
                        c = nxt[c]
                    nxt[c] = used
                used += 1
            joined += 1
            if joined == k - 1:
                break
    pred = np.full(k, -9999, np.int64)
    eid = np.full(k, -1, np.int64)
    order = np.full(k, -1, np.int64)
    seen = np.zeros(k, np.bool_)
    order[0] = root
    seen[root] = True
    n_order = 1
    i = 0
    while i < n_order:
        u = order[i]
        c = head[u]
        while c >= 0:
            x = nbr[c]
            if not seen[x]:
                seen[x] = True
                pred[x] = u
                eid[x] = edge[c]
                order[n_order] = x
                n_order += 1
            c = nxt[c]
        i += 1
    subw = w.copy()
    for t in range(n_order - 1, 0, -1):
        v = order[t]
        subw[pred[v]] += subw[v]
    return order, pred, subw, eid


def _subtree(order: np.ndarray, pred: np.ndarray, v: int) -> np.ndarray:
    """Boolean mask of the positions in the subtree below ``v``."""
    mark = np.zeros(len(pred), dtype=bool)
    mark[v] = True
    pred_l = pred.tolist()
    ml = mark.tolist()
    for u in order.tolist():
        if pred_l[u] >= 0 and ml[pred_l[u]]:
            ml[u] = True
    return np.array(ml, dtype=bool)


def _choose_cut(
    sizes: np.ndarray, total: int, eids: np.ndarray, graph: _Graph, p: _Params, k_shift: int = 0
) -> tuple[int, float]:
    """Best cut position in ``sizes`` and its score (lower is better; inf = none).

    See :func:`gridopt.partition._kernels.choose_cut` for the rule.
    """
    return _k.choose_cut(
        np.asarray(sizes, dtype=np.int64), int(total), np.asarray(eids, dtype=np.int64),
        graph.street, graph.barrier, int(p.min_households), int(p.max_households),
        float(p.target), int(k_shift),
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
            raise RuntimeError("no cut found")
        _, v, order, pred = best
        top = False
        part = _subtree(order, pred, v)
        stack.append(nodes[~part])
        stack.append(nodes[part])
    return labels


# ---------------------------------------------------------------------------
# local improvement
# ---------------------------------------------------------------------------


class _State:
    """Grids as member sets with cached costs; moves keep every grid connected."""

    def __init__(self, comp: _Component, graph: _Graph, labels: np.ndarray, p: _Params) -> None:
        self.comp, self.graph, self.p = comp, graph, p
        self.xy = comp.xy
        self.w = comp.w.astype(np.int64)
        self.wl: list[int] = self.w.tolist()
        self.lab: list[int] = labels.tolist()
        self.members: dict[int, set[int]] = {}
        for v, g in enumerate(self.lab):
            self.members.setdefault(g, set()).add(v)
        self.h: dict[int, int] = {g: int(self.w[list(m)].sum()) for g, m in self.members.items()}
        self.cost: dict[int, float] = {g: self._cost(m) for g, m in self.members.items()}
        self.barrier: list[bool] = graph.barrier.tolist()
        self.tried: set = set()
        # a change counter per grid: a move that failed is retried only after a change
        self.version: dict[int, int] = {}
        self.stamp = 0
        self.failed: set = set()

    def touch(self, *grids: int) -> None:
        self.stamp += 1
        for g in grids:
            self.version[g] = self.stamp

    def key(self, *grids: int) -> tuple:
        return tuple((g, self.version.get(g, 0)) for g in grids)

    def _cost(self, members: set[int] | list[int]) -> float:
        if not members:
            return 0.0
        return _grid_cost(
            self.xy, self.w, np.fromiter(members, dtype=np.int64, count=len(members)), self.p
        )[0]

    def total(self) -> float:
        return float(sum(self.cost.values()))

    def _connected_without(self, g: int, v: int) -> bool:
        mem = self.members[g]
        if len(mem) <= 2:
            return True
        start = next(u for u in mem if u != v)
        seen = {start, v}
        stack = [start]
        nbrs, lab = self.graph.nbrs, self.lab
        while stack:
            u = stack.pop()
            for x in nbrs[u]:
                if x not in seen and lab[x] == g:
                    seen.add(x)
                    stack.append(x)
        return len(seen) == len(mem)

    def try_move(self, v: int) -> bool:
        """Move ``v`` to the neighbouring grid that lowers the cost most; True if moved."""
        a = self.lab[v]
        lo, hi = self.p.min_households, self.p.max_households
        wv = self.wl[v]
        targets = set()
        for x, e in zip(self.graph.nbrs[v], self.graph.nbr_edge[v], strict=False):
            b = self.lab[x]
            # a move across a barrier would add a crossing: only within a block
            if b != a and not self.barrier[e]:
                targets.add(b)
        if not targets:
            return False
        ha = self.h[a]
        if ha - wv < lo and ha - wv > 0 and ha >= lo:
            return False  # would turn a regular grid into a pocket
        best_gain, best = 1e-9 * max(1.0, self.cost[a]), None
        mem_a = self.members[a]
        new_a_members = [u for u in mem_a if u != v]
        cost_a = None
        for b in sorted(targets):
            if self.h[b] + wv > hi:
                continue
            if cost_a is None:
                if not self._connected_without(a, v):
                    return False
                cost_a = self._cost(new_a_members)
            cost_b = self._cost([*self.members[b], v])
            gain = self.cost[a] + self.cost[b] - cost_a - cost_b
            if gain > best_gain:
                best_gain, best = gain, (b, cost_a, cost_b)
        if best is None:
            return False
        b, cost_a, cost_b = best
        self._apply(v, a, b, cost_a, cost_b)
        return True

    def _apply(self, v: int, a: int, b: int, cost_a: float, cost_b: float) -> None:
        self.touch(a, b)
        self.members[a].discard(v)
        self.members[b].add(v)
        self.lab[v] = b
        self.h[a] -= self.wl[v]
        self.h[b] += self.wl[v]
        self.cost[b] = cost_b
        if self.members[a]:
            self.cost[a] = cost_a
        else:
            del self.members[a], self.h[a], self.cost[a]

    def neighbour_pairs(self) -> list[tuple[int, int]]:
        pairs = set()
        lab = self.lab
        for e, (u, v) in enumerate(zip(self.comp.ei.tolist(), self.comp.ej.tolist(), strict=False)):
            a, b = lab[u], lab[v]
            if a != b and not self.barrier[e]:
                pairs.add((min(a, b), max(a, b)))
        return sorted(pairs)

    def recombine(self, a: int, b: int, rng: np.random.Generator, trees: int = 8) -> bool:
        """Merge grids ``a`` and ``b`` and re-split them along the best of a few random trees."""
        key = ("pair", *self.key(a, b))
        if key in self.failed:
            return False
        done = self._recombine(a, b, rng, trees)
        if not done:
            self.failed.add(key)
        return done

    def _adjacent(self, a: int, b: int) -> bool:
        """Whether grids ``a`` and ``b`` touch (a pair listed earlier may not any more)."""
        lab, nbrs = self.lab, self.graph.nbrs
        small, other = (a, b) if len(self.members[a]) <= len(self.members[b]) else (b, a)
        return any(lab[x] == other for v in self.members[small] for x in nbrs[v])

    def _recombine(self, a: int, b: int, rng: np.random.Generator, trees: int) -> bool:
        lo, hi = self.p.min_households, self.p.max_households
        if not self._adjacent(a, b):
            return False
        nodes = sorted(self.members[a] | self.members[b])
        total = self.h[a] + self.h[b]
        current = self.cost[a] + self.cost[b]
        if total <= hi:
            # one grid can hold both: merging removes a pocket (or makes a better grid)
            merged = self._cost(nodes)
            if merged < current - 1e-9 * max(1.0, current):
                self._relabel(a, b, nodes, set(), merged, 0.0)
                return True
            if total < 2 * lo:
                return False
        if total < 2 * lo or total > 2 * hi:
            return False
        best = None
        for _ in range(trees):
            cut = _small_tree_cut(self, nodes, lo, hi, rng)
            if cut is None:
                continue
            side_b = cut
            side_a = [u for u in nodes if u not in side_b]
            ca, cb = self._cost(side_a), self._cost(side_b)
            if best is None or ca + cb < best[0]:
                best = (ca + cb, side_a, side_b, ca, cb)
        if best is None or best[0] >= current - 1e-9 * max(1.0, current):
            return False
        _, side_a, side_b, ca, cb = best
        self._relabel(a, b, side_a, set(side_b), ca, cb)
        return True

    def _relabel(
        self, a: int, b: int, side_a: list[int], side_b: set[int], ca: float, cb: float
    ) -> None:
        self.touch(a, b)
        for u in side_a:
            self.lab[u] = a
        for u in side_b:
            self.lab[u] = b
        self.members[a] = set(side_a)
        self.h[a] = sum(self.wl[u] for u in side_a)
        self.cost[a] = ca
        if side_b:
            self.members[b] = set(side_b)
            self.h[b] = sum(self.wl[u] for u in side_b)
            self.cost[b] = cb
        else:
            del self.members[b], self.h[b], self.cost[b]


def _small_tree_cut(
    state: _State, nodes: list[int], lo: int, hi: int, rng: np.random.Generator
) -> set[int] | None:
    """Random spanning tree of a small node set; the most compact cut with both sides in band."""
    arr = np.asarray(nodes, dtype=np.int64)
    try:
        order, pred, _, _ = _compiled_tree(state.graph, arr, state.w, rng)
    except RuntimeError:  # not connected
        return None
    # subtree sums of households, w x, w y, w |x|^2: SSE of each side in O(1) per cut
    v = _k.best_balanced_cut(
        order, pred, state.xy[arr], state.w[arr], lo, hi, state.p.balance_weight_m2, state.p.target
    )
    if v < 0:
        return None
    side = _subtree(order, pred, v)
    return set(arr[side].tolist())


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
        from gridopt.partition._polish import exact_polish

        state = _State(comp, graph, best, p)
        for _ in range(3):  # polish, then the cheap moves again while the polish gains
            info = exact_polish(state, p, deadline)
            for k, v in info.items():
                stats[k] = stats.get(k, 0) + v
            if not info["polish_gains"] or time.perf_counter() > deadline:
                break
            _, timed_out = _improve(state, rng, deadline, p)
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
        from gridopt.partition._exact import solve_exact

        labels, status, bound = solve_exact(comp, p, deadline)
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
    cost = _total_cost(comp.xy, w, labels, p) if n else 0.0
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
