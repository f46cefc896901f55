"""The shared model of grid division: parameters, components, the grid cost, the graph.

What the heuristic (``_heuristic``), the exact model (``_exact``), its polish (``_polish``)
and the pocket repair (``_pockets``) all work on, so each imports it from below and none
imports another: :class:`_Params` (band, weights, effort), :class:`_Component` (one solve
unit as arrays) and :class:`_ComponentResult`, :func:`_feasible`, the grid cost
(:func:`_grid_cost`, :func:`_total_cost`), the component graph (:class:`_Graph`, random
spanning trees) and the plan under improvement (:class:`_State`, its moves keep every
grid connected).

The objective of one grid ``g`` with centre building ``r`` (the best member) is
``sum_i w_i |x_i - x_r|^2 + balance_weight_m2 * |h_g - target|``; :func:`_grid_cost`
computes it in O(|g|) from the sums ``h, sum w x, sum w |x|^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse import csgraph

from gridopt._errors import SolverError
from gridopt.partition import _kernels as _k

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
    # exact re-divisions per polish call: a count, so the machine's load never decides
    # where the polish stops (the wall deadline, relaxed POLISH_WALL_FACTOR times, is a cap)
    polish_max_solves: int = 12
    polish_reach: float = 1.2  # centres within this many times the widest grid's radius
    polish_max_n: int = 150
    # m² of objective per unit of a component's ``cut_cost`` (where it is set): large, so
    # the boundary's price decides and compactness only breaks ties
    cut_weight: float = 1e6


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
    # (m,) float: the price of putting edge (ei, ej) between two grids (metres of block
    # cut, cheap along streets); None: no price, compactness alone (the old objective)
    cut_cost: np.ndarray | None = None


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
    arr = np.asarray(weight, dtype=np.int64)
    return _k.feasible_many(arr.ravel(), int(lo), int(hi)).reshape(arr.shape)


def _grid_cost(xy: np.ndarray, w: np.ndarray, members: np.ndarray, p: _Params) -> tuple[float, int]:
    """Cost of one grid and its centre (position in ``members``)."""
    return _k.grid_cost(
        xy, w, np.asarray(members, dtype=np.int64), p.balance_weight_m2, p.target,
        p.min_households, _POCKET_PENALTY,
    )  # fmt: skip


def _total_cost(
    xy: np.ndarray, w: np.ndarray, labels: np.ndarray, p: _Params, comp: _Component | None = None
) -> float:
    """The plan's cost: grid costs plus, where ``comp`` has cut costs, the priced cut."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    total = float(sum(_grid_cost(xy, w, g, p)[0] for g in np.split(order, bounds)))
    return total + _cut_term(comp, labels, p)


def _cut_term(comp: _Component | None, labels: np.ndarray, p: _Params) -> float:
    """``cut_weight`` x the summed cut cost of edges between grids (0 without cut costs)."""
    if comp is None or comp.cut_cost is None or len(comp.ei) == 0:
        return 0.0
    cut = labels[comp.ei] != labels[comp.ej]
    return p.cut_weight * float(np.asarray(comp.cut_cost, float)[cut].sum())


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
        self.eid = a.data.astype(np.int64) - 1  # edge id of each CSR entry
        self.mark = np.zeros(n, dtype=np.bool_)  # scratch of _k.boundary_cost, all False
        self.cut_cost = None if comp.cut_cost is None else np.asarray(comp.cut_cost, float)
        # per edge, what the bisection adds to a cut's score (0 without cut costs)
        self.cut_score = np.zeros(m)
        if self.cut_cost is not None and len(self.cut_cost):
            ref = (
                float(np.median(self.cut_cost[self.cut_cost > 0]))
                if (self.cut_cost > 0).any()
                else 1.0
            )
            self.cut_score = 0.25 * np.minimum(self.cut_cost / ref, 4.0)


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
        raise SolverError("region is not connected")
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
        raise SolverError("region is not connected")
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
        """Grid cost, plus half the priced boundary (each cut edge has two sides)."""
        if not members:
            return 0.0
        arr = np.fromiter(members, dtype=np.int64, count=len(members))
        cost = _grid_cost(self.xy, self.w, arr, self.p)[0]
        g = self.graph
        if g.cut_cost is not None:
            csr = g.csr
            edge = _k.boundary_cost(csr.indptr, csr.indices, g.eid, arr, g.mark, g.cut_cost)
            cost += 0.5 * self.p.cut_weight * edge
        return cost

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
    except SolverError:  # not connected
        return None
    # subtree sums of households, w x, w y, w |x|^2: SSE of each side in O(1) per cut
    v = _k.best_balanced_cut(
        order, pred, state.xy[arr], state.w[arr], lo, hi, state.p.balance_weight_m2, state.p.target
    )
    if v < 0:
        return None
    side = _subtree(order, pred, v)
    return set(arr[side].tolist())
