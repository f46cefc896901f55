"""``partition_graph``: connected parts of a weighted graph within a band, fewest cut edges.

The general core of grid division, stated so it can be tested against the literature:
minimum-cut-edge districting (Validi & Buchanan 2022) with a weight band instead of a
fixed count. Each connected component of the graph is solved on its own:

1. the count of parts ``k`` can be any whole number with ``k min <= W <= k max``; the
   smallest few are tried;
2. simulated annealing (:mod:`gridopt.partition._anneal`) from recursive spanning-tree
   splits, alternating fresh starts and reheats of the best plan, finds good plans fast
   even where random tree cuts almost never land in a tight band; ReCom steps that never
   raise the cut (merge two parts, re-split along a random spanning tree) follow;
3. on small graphs, a CP-SAT model (labels with orbitopal symmetry breaking, single-
   commodity flow contiguity, Shirabe 2009) hinted with that plan improves it and, where
   it can, proves it optimal; its bound is reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model
from scipy.sparse import csgraph

from gridopt._errors import InfeasibleError, InputError
from gridopt._status import Status
from gridopt.partition._anneal import anneal

__all__ = ["GraphPartition", "partition_graph"]

# The exact model is built for components up to this many nodes and parts (it has
# n x parts label variables; beyond that it only slows the annealing down).
EXACT_MAX_NODES = 150
EXACT_MAX_PARTS = 12
# Share of the time the annealing gets when the exact model follows it.
_ANNEAL_SHARE = 0.7
# Share of the annealing's time given to ReCom steps on its best plan.
_RECOM_SHARE = 0.1
# Margin kept before the limit (a solve call stops a little after its deadline).
_MARGIN_S = 0.15
# Components up to this many nodes go to the exact model first, with this share of the time.
_EXACT_FIRST_NODES = 40
_EXACT_FIRST_SHARE = 0.4
# Annealing runs per component when time is not the limit (keeps a seed's answer fixed).
_MAX_RUNS = 24
# Counts of parts tried above the smallest feasible one.
_EXTRA_PARTS = 2
# CP-SAT portfolio size (threads share the cores; the portfolio's diversity is what helps).
_WORKERS = 4
# Annealing moves per node and run (bounded below and above).
_ITER_PER_NODE = 5000
# Band penalty schedules (start, end; in cut-cost units per band width): a firm one lands
# in a tight band, a soft one (every fourth run, a fresh start) reaches some cuts the firm
# one misses (see benchmarks/NOTES.md).
_FIRM, _SOFT = (0.5, 5.0), (0.3, 1.0)


@dataclass(frozen=True)
class GraphPartition:
    """Connected parts of a graph.

    Attributes
    ----------
    labels
        Part (0, 1, ...) of every node.
    cut
        Summed cut cost of the edges between parts (the objective).
    status
        ``"optimal"`` (proven by the exact model) or ``"feasible"``.
    bound
        Proven lower bound of ``cut`` where the exact model ran, else ``None``.
    runtime_s
        Wall-clock seconds of the call.
    part_weights
        Total weight of each part, by part number.
    """

    labels: dict[Hashable, int]
    cut: float
    status: Status
    bound: float | None
    runtime_s: float
    part_weights: tuple[float, ...]

    @property
    def n_parts(self) -> int:
        """Number of parts."""
        return len(self.part_weights)

    @property
    def gap_pct(self) -> float | None:
        """Gap between ``cut`` and ``bound`` in percent of ``cut`` (``None`` without bound)."""
        if self.bound is None:
            return None
        if self.cut <= 0:
            return 0.0
        return 100.0 * max(self.cut - self.bound, 0.0) / self.cut

    def summary(self) -> str:
        """One line: parts, cut, status, bound and time."""
        w = self.part_weights
        bound = "" if self.bound is None else f", bound {self.bound:g} (gap {self.gap_pct:.2f}%)"
        return (
            f"{self.n_parts} parts of weight {min(w):g}-{max(w):g}, cut {self.cut:g}, "
            f"{self.status}{bound}, {self.runtime_s:.2f} s"
        )


@dataclass(frozen=True)
class _Arrays:
    """The graph as arrays: integer weights, band, edges with costs."""

    nodes: list[Hashable]
    w: np.ndarray  # (n,) int64
    lo: int
    hi: int
    ei: np.ndarray  # (m,) int64
    ej: np.ndarray
    cost: np.ndarray  # (m,) float
    weight_scale: float


def partition_graph(
    graph: nx.Graph,
    *,
    weight: str,
    min_weight: float,
    max_weight: float,
    cut_cost: str | None = None,
    seed: int = 0,
    time_limit_s: float = 60.0,
) -> GraphPartition:
    """Partition a graph into connected parts whose weights lie in a band, cutting least.

    Parameters
    ----------
    graph
        An undirected :class:`networkx.Graph`; self-loops are ignored.
    weight
        Node attribute with each node's weight (positive; population, households).
    min_weight, max_weight
        The band every part's total weight must lie in.
    cut_cost
        Edge attribute with the cost of putting the edge between two parts (non-negative);
        ``None`` counts 1 per edge (minimum cut edges).
    seed
        Randomness of the annealing. The same seed gives the same plan where the time
        limit does not cut the search short (the annealing makes a fixed number of runs;
        CP-SAT's portfolio may return another plan of the same cut).
    time_limit_s
        Wall-clock limit of the call.

    Returns
    -------
    GraphPartition

    Raises
    ------
    InputError
        Not an undirected simple graph, empty, a node without a positive weight, a
        negative or missing cut cost, or a band with ``min_weight > max_weight``.
    InfeasibleError
        A node heavier than ``max_weight``, a connected component whose total weight no
        whole number of parts can share, or no plan found (proven or within the time).

    Examples
    --------
    >>> import networkx as nx
    >>> from gridopt import partition_graph
    >>> g = nx.grid_2d_graph(4, 4)
    >>> nx.set_node_attributes(g, 1, "pop")
    >>> res = partition_graph(g, weight="pop", min_weight=8, max_weight=8, time_limit_s=5)
    >>> res.cut, res.n_parts, res.status
    (4.0, 2, 'optimal')
    """
    t0 = time.perf_counter()
    arr = _arrays(graph, weight, min_weight, max_weight, cut_cost, time_limit_s)
    n = len(arr.nodes)
    adj = sp.coo_matrix((np.ones(len(arr.ei)), (arr.ei, arr.ej)), shape=(n, n)).tocsr()
    n_comp, comp_of = csgraph.connected_components(adj, directed=False)
    groups = [np.flatnonzero(comp_of == c) for c in range(n_comp)]
    for nodes in groups:
        _check_component(arr, nodes)
    labels = np.full(n, -1, dtype=np.int64)
    cut, bound, proven = 0.0, 0.0, True
    next_part = 0
    # each component gets a share of the remaining time by its size
    for c, nodes in enumerate(sorted(groups, key=len)):
        left = time_limit_s - (time.perf_counter() - t0)
        rest = sum(len(g) for g in sorted(groups, key=len)[c:])
        budget = max(left * len(nodes) / rest, 0.05)
        sub, c_cut, c_bound, c_opt = _solve_component(arr, nodes, seed + c, budget)
        labels[nodes] = sub + next_part
        next_part += int(sub.max()) + 1
        cut += c_cut
        proven &= c_opt
        bound = bound + c_bound if bound is not None and c_bound is not None else None
    part_w = np.bincount(labels, weights=arr.w, minlength=next_part) / arr.weight_scale
    return GraphPartition(
        labels={v: int(labels[i]) for i, v in enumerate(arr.nodes)},
        cut=float(cut),
        status="optimal" if proven else "feasible",
        bound=None if bound is None else float(min(bound, cut)),
        runtime_s=time.perf_counter() - t0,
        part_weights=tuple(float(x) for x in part_w),
    )


# ---------------------------------------------------------------------------
# validation


def _arrays(
    graph: nx.Graph,
    weight: str,
    min_weight: float,
    max_weight: float,
    cut_cost: str | None,
    time_limit_s: float,
) -> _Arrays:
    """Check the input and turn it into arrays (integer weights, scaled if fractional)."""
    if not isinstance(graph, nx.Graph) or graph.is_directed() or graph.is_multigraph():
        raise InputError(
            f"`graph` is a {type(graph).__name__}; partition_graph needs an undirected simple "
            "networkx.Graph: convert it with nx.Graph(graph.to_undirected())"
        )
    if graph.number_of_nodes() == 0:
        raise InputError("`graph` has no nodes: there is nothing to partition")
    if not (math.isfinite(min_weight) and math.isfinite(max_weight)) or min_weight <= 0:
        raise InputError(
            f"the band [{min_weight}, {max_weight}] must be finite with min_weight > 0"
        )
    if min_weight > max_weight:
        raise InputError(
            f"min_weight {min_weight} is above max_weight {max_weight}: swap them or widen the band"
        )
    if not time_limit_s > 0:
        raise InputError(f"time_limit_s must be positive, got {time_limit_s}")
    nodes = list(graph.nodes)
    raw = np.array([_number(graph.nodes[v].get(weight)) for v in nodes], dtype=float)
    bad = [nodes[i] for i in np.flatnonzero(~(np.isfinite(raw) & (raw > 0)))]
    if bad:
        shown = ", ".join(f"{v!r} ({graph.nodes[v].get(weight)!r})" for v in bad[:5])
        raise InputError(
            f"{len(bad)} node(s) have no positive weight in attribute {weight!r}: {shown}"
            f"{' ...' if len(bad) > 5 else ''}; every node needs a weight > 0: drop such "
            "nodes or merge them into a neighbour"
        )
    scale = 1.0 if np.all(raw == np.round(raw)) else 1000.0
    w = np.round(raw * scale).astype(np.int64)
    lo, hi = math.ceil(min_weight * scale - 1e-9), math.floor(max_weight * scale + 1e-9)
    pos = {v: i for i, v in enumerate(nodes)}
    ei, ej, cost, bad_e = [], [], [], []
    for u, v, data in graph.edges(data=True):
        if u == v:
            continue
        c = 1.0 if cut_cost is None else _number(data.get(cut_cost))
        if not (math.isfinite(c) and c >= 0):
            bad_e.append((u, v, data.get(cut_cost)))
            continue
        ei.append(pos[u])
        ej.append(pos[v])
        cost.append(c)
    if bad_e:
        shown = ", ".join(f"{u!r}-{v!r} ({c!r})" for u, v, c in bad_e[:5])
        raise InputError(
            f"{len(bad_e)} edge(s) have no non-negative cut cost in attribute {cut_cost!r}: "
            f"{shown}; give every edge a cost >= 0 (or cut_cost=None for 1 per edge)"
        )
    return _Arrays(
        nodes=nodes,
        w=w,
        lo=lo,
        hi=hi,
        ei=np.asarray(ei, dtype=np.int64),
        ej=np.asarray(ej, dtype=np.int64),
        cost=np.asarray(cost, dtype=float),
        weight_scale=scale,
    )


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _part_counts(total: int, lo: int, hi: int) -> range:
    """Whole numbers k of parts with k lo <= total <= k hi."""
    return range(-(-total // hi), total // lo + 1)


def _check_component(arr: _Arrays, nodes: np.ndarray) -> None:
    """Raise InfeasibleError when no plan of this component can exist."""
    s = arr.weight_scale
    heavy = nodes[arr.w[nodes] > arr.hi]
    if len(heavy):
        v = arr.nodes[int(heavy[0])]
        raise InfeasibleError(
            f"{len(heavy)} node(s) weigh more than max_weight {arr.hi / s:g} (node {v!r}: "
            f"{arr.w[heavy[0]] / s:g}); no part can hold them: raise max_weight or split them",
            max_weight=arr.hi / s,
            heaviest=float(arr.w[heavy].max() / s),
        )
    total = int(arr.w[nodes].sum())
    if len(_part_counts(total, arr.lo, arr.hi)) == 0:
        v = arr.nodes[int(nodes[0])]
        what = (
            "an isolated node"
            if len(nodes) == 1
            else f"a connected component of {len(nodes)} nodes"
        )
        raise InfeasibleError(
            f"{what} (containing {v!r}) weighs {total / s:g} in all, which no whole number of "
            f"parts of {arr.lo / s:g}-{arr.hi / s:g} can share (parts never span components): "
            "connect it to the rest of the graph or widen the band",
            component_weight=total / s,
            min_weight=arr.lo / s,
            max_weight=arr.hi / s,
        )


# ---------------------------------------------------------------------------
# one connected component


def _solve_component(
    arr: _Arrays, nodes: np.ndarray, seed: int, budget_s: float
) -> tuple[np.ndarray, float, float | None, bool]:
    """Labels (0..k-1) of one component's nodes, the cut, a lower bound, proven optimal."""
    t0 = time.perf_counter()
    budget_s = max(budget_s - _MARGIN_S, 0.05)
    deadline = t0 + budget_s
    n = len(nodes)
    pos = np.full(len(arr.nodes), -1, dtype=np.int64)
    pos[nodes] = np.arange(n)
    keep = (pos[arr.ei] >= 0) & (pos[arr.ej] >= 0)
    ei, ej, cost = pos[arr.ei[keep]], pos[arr.ej[keep]], arr.cost[keep]
    w = arr.w[nodes]
    counts = _part_counts(int(w.sum()), arr.lo, arr.hi)
    if counts.start == 1:  # one part holds everything: nothing to cut
        return np.zeros(n, dtype=np.int64), 0.0, 0.0, True
    ks = list(counts)[: 1 + _EXTRA_PARTS]
    exact = n <= EXACT_MAX_NODES and counts.stop - 1 <= EXACT_MAX_PARTS
    best, bound, proven = None, None, False
    if exact and n <= _EXACT_FIRST_NODES:
        # small: the model alone often proves the optimum (or finds the only plan) first
        labels, bound, proven = _exact(
            n, ei, ej, cost, w, arr.lo, arr.hi, counts, None, t0 + _EXACT_FIRST_SHARE * budget_s
        )
        if labels is not None:
            best = (_cut(labels, ei, ej, cost), labels)
        if proven:
            exact = False
    search_until = t0 + (_ANNEAL_SHARE * budget_s if exact else budget_s)
    anneal_until = search_until - _RECOM_SHARE * (search_until - time.perf_counter())
    if not proven:
        found = _anneal_runs(n, ei, ej, cost, w, arr.lo, arr.hi, ks, seed, anneal_until)
        if found is not None and (best is None or found[0] < best[0] - 1e-9):
            best = found
    if not proven and best is not None:
        rng = np.random.default_rng([seed, n, 2])
        labels = _recom(n, ei, ej, cost, w, arr.lo, arr.hi, best[1], rng, search_until)
        best = (_cut(labels, ei, ej, cost), labels)
    if exact and time.perf_counter() < deadline - 0.05:
        labels, bound, proven = _exact(n, ei, ej, cost, w, arr.lo, arr.hi, counts, best, deadline)
        if labels is not None and (best is None or _cut(labels, ei, ej, cost) < best[0] - 1e-9):
            best = (_cut(labels, ei, ej, cost), labels)
    if best is None:
        s = arr.weight_scale
        if proven:
            raise InfeasibleError(
                f"no partition of a component of {n} nodes (weight {w.sum() / s:g}) into "
                f"connected parts of {arr.lo / s:g}-{arr.hi / s:g} exists (proven by CP-SAT): "
                "the node weights cannot be grouped into the band along the edges; widen it",
                component_weight=float(w.sum() / s),
            )
        raise InfeasibleError(
            f"no partition of a component of {n} nodes (weight {w.sum() / s:g}) into "
            f"connected parts of {arr.lo / s:g}-{arr.hi / s:g} was found in {budget_s:.1f} s "
            "(not proven impossible): raise time_limit_s or widen the band",
            component_weight=float(w.sum() / s),
        )
    cut, labels = best
    return _renumber(labels), float(cut), bound, proven


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Parts numbered 0..k-1 in the order of their first node."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inv].astype(np.int64)


def _cut(labels: np.ndarray, ei: np.ndarray, ej: np.ndarray, cost: np.ndarray) -> float:
    return float(cost[labels[ei] != labels[ej]].sum())


def _csr(n: int, ei: np.ndarray, ej: np.ndarray, cost: np.ndarray) -> sp.csr_matrix:
    """Symmetric adjacency whose data is the edge cost (explicit zeros kept)."""
    return sp.csr_matrix(
        (np.concatenate([cost, cost]), (np.concatenate([ei, ej]), np.concatenate([ej, ei]))),
        shape=(n, n),
    )


def _tree_split(
    adj: sp.csr_matrix, nodes: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``k`` connected pieces of ``nodes`` by recursive random-spanning-tree bisection.

    Each cut takes the tree edge whose side is closest to its share of the weight; the
    pieces need not be in the band (the annealing moves them there).
    """
    if k == 1 or len(nodes) <= 1:
        return [nodes]
    sub = adj[nodes][:, nodes].tocoo()
    keys = sp.csr_matrix((1.0 + rng.random(len(sub.data)), (sub.row, sub.col)), shape=sub.shape)
    tree = csgraph.minimum_spanning_tree(keys)
    order, pred = csgraph.breadth_first_order(tree, 0, directed=False)
    sw = w[nodes].astype(float)
    for v in order[:0:-1]:
        sw[pred[v]] += sw[v]
    k1 = k // 2
    target = sw[0] * k1 / k
    below = order[1:]
    v = below[int(np.argmin(np.abs(sw[below] - target)))]
    mark = np.zeros(len(nodes), dtype=bool)
    mark[v] = True
    for u in order:
        if pred[u] >= 0 and mark[pred[u]]:
            mark[u] = True
    k1 = min(max(k1, 1), int(mark.sum()))
    k2 = min(k - k1, int((~mark).sum()))
    return _tree_split(adj, nodes[mark], w, k1, rng) + _tree_split(adj, nodes[~mark], w, k2, rng)


def _anneal_runs(
    n: int,
    ei: np.ndarray,
    ej: np.ndarray,
    cost: np.ndarray,
    w: np.ndarray,
    lo: int,
    hi: int,
    ks: list[int],
    seed: int,
    deadline: float,
) -> tuple[float, np.ndarray] | None:
    """Annealing runs (fresh tree splits and reheats of the best) until the deadline."""
    adj = _csr(n, ei, ej, cost)
    indptr, indices = adj.indptr.astype(np.int64), adj.indices.astype(np.int64)
    acost = adj.data.astype(float)
    positive = cost[cost > 0]
    unit = float(positive.mean()) if len(positive) else 1.0
    iters = int(min(max(_ITER_PER_NODE * n, 200_000), 3_000_000))
    rng = np.random.default_rng([seed, n])
    best: dict[int, tuple[float, np.ndarray]] = {}
    run_s = 0.0
    for run in range(_MAX_RUNS):
        started = time.perf_counter()
        if started + run_s > deadline:  # the next run would end after the deadline
            break
        k = ks[(run // 4) % len(ks)]
        lam0, lam1 = _SOFT if run % 4 == 2 else _FIRM
        if run % 2 == 0 or k not in best:
            pieces = _tree_split(adj, np.arange(n), w, k, rng)
            if len(pieces) != k:
                continue  # fewer nodes than parts on this side
            start = np.empty(n, dtype=np.int64)
            for j, piece in enumerate(pieces):
                start[piece] = j
            t_start = 2.0
        else:
            start, t_start = best[k][1], 0.5
        labels, cut = anneal(
            indptr, indices, acost, w, start, k, lo, hi, iters,
            t_start * unit, 0.05 * unit, lam0 * unit, lam1 * unit, 0.3, int(seed * 1009 + run),
        )  # fmt: skip
        if math.isfinite(cut) and (k not in best or cut < best[k][0] - 1e-9):
            best[k] = (_cut(labels, ei, ej, cost), labels.copy())
        run_s = time.perf_counter() - started
    if not best:
        return None
    return min(best.values(), key=lambda b: b[0])


def _recom(
    n: int,
    ei: np.ndarray,
    ej: np.ndarray,
    cost: np.ndarray,
    w: np.ndarray,
    lo: int,
    hi: int,
    labels: np.ndarray,
    rng: np.random.Generator,
    deadline: float,
) -> np.ndarray:
    """ReCom steps (DeFord, Duchin & Solomon 2021) that never raise the cut.

    Merge two touching parts, draw a random spanning tree of the union and cut the tree
    edge whose two sides both lie in the band at the least cut; keep the plan when its cut
    is no larger (equal plans too: they let the walk cross plateaus). Both sides of a tree
    cut are connected, so every plan stays valid.
    """
    lab = labels.copy()
    adj = _csr(n, ei, ej, np.arange(1, len(ei) + 1, dtype=float))
    while time.perf_counter() < deadline:
        cut_e = np.flatnonzero(lab[ei] != lab[ej])
        if len(cut_e) == 0:
            break
        e = int(cut_e[int(rng.integers(len(cut_e)))])
        a, b = lab[ei[e]], lab[ej[e]]
        nodes = np.flatnonzero((lab == a) | (lab == b))
        inside = (lab[ei] == a) | (lab[ei] == b)
        inside &= (lab[ej] == a) | (lab[ej] == b)
        old = float(cost[inside & (lab[ei] != lab[ej])].sum())
        side = _best_tree_cut(adj, nodes, w, lo, hi, ei[inside], ej[inside], cost[inside], rng)
        if side is None or side[0] > old + 1e-9:
            continue
        lab[nodes] = b
        lab[side[1]] = a
    return lab


def _best_tree_cut(
    adj: sp.csr_matrix,
    nodes: np.ndarray,
    w: np.ndarray,
    lo: int,
    hi: int,
    ei: np.ndarray,
    ej: np.ndarray,
    cost: np.ndarray,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray] | None:
    """Of one random spanning tree of ``nodes``: the cheapest cut with both sides in band.

    ``ei``/``ej``/``cost``: the edges inside ``nodes`` (global numbering). Returns the cut
    cost inside ``nodes`` and the nodes of one side.
    """
    sub = adj[nodes][:, nodes].tocoo()
    keys = sp.csr_matrix((1.0 + rng.random(len(sub.data)), (sub.row, sub.col)), shape=sub.shape)
    tree = csgraph.minimum_spanning_tree(keys)
    order, pred = csgraph.breadth_first_order(tree, 0, directed=False)
    if len(order) != len(nodes):
        return None
    sw = w[nodes].astype(np.int64)
    for v in order[:0:-1]:
        sw[pred[v]] += sw[v]
    total = int(sw[0])
    below = order[1:]
    ok = below[
        (sw[below] >= lo)
        & (sw[below] <= hi)
        & (total - sw[below] >= lo)
        & (total - sw[below] <= hi)
    ]
    if len(ok) == 0:
        return None
    pos = np.full(int(max(nodes.max(), ei.max(initial=0), ej.max(initial=0))) + 1, -1)
    pos[nodes] = np.arange(len(nodes))
    li, lj = pos[ei], pos[ej]
    best = None
    for v in ok.tolist():
        mark = np.zeros(len(nodes), dtype=bool)
        mark[v] = True
        for u in order:
            if pred[u] >= 0 and mark[pred[u]]:
                mark[u] = True
        c = float(cost[mark[li] != mark[lj]].sum())
        if best is None or c < best[0]:
            best = (c, nodes[mark])
    return best


# ---------------------------------------------------------------------------
# exact model


def _exact(
    n: int,
    ei: np.ndarray,
    ej: np.ndarray,
    cost: np.ndarray,
    w: np.ndarray,
    lo: int,
    hi: int,
    counts: range,
    start: tuple[float, np.ndarray] | None,
    deadline: float,
) -> tuple[np.ndarray | None, float | None, bool]:
    """CP-SAT: best labels found (or None), lower bound of the cut, proven optimal.

    Labels ``x[i, j]`` for slots ``j <= i`` with orbitopal symmetry breaking (a node
    takes slot ``j`` only after an earlier node took ``j - 1``), ``y[e]`` for cut edges,
    one root per used slot and a single-commodity flow from the roots that uses uncut
    edges only: every node must receive a unit, so it is joined to its part's root.
    """
    kmin, kmax = counts.start, counts.stop - 1
    scale = 1.0 if np.all(cost == np.round(cost)) else 1e6 / max(float(cost.sum()), 1e-9)
    icost = np.round(cost * scale).astype(np.int64)
    slack = float(np.abs(icost - cost * scale).sum())
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{i}_{j}") for j in range(min(i + 1, kmax))] for i in range(n)]
    used = [m.new_constant(1) if j < kmin else m.new_bool_var(f"u{j}") for j in range(kmax)]
    for j in range(kmin, kmax):
        m.add(used[j] <= used[j - 1])
    for i in range(n):
        m.add_exactly_one(x[i])
    for j in range(kmax):
        load = sum(int(w[i]) * x[i][j] for i in range(j, n))
        m.add(load >= lo * used[j])
        m.add(load <= hi * used[j])
        if j:  # orbitope: slot j opens after slot j - 1
            for i in range(j, n):
                m.add(x[i][j] <= sum(x[t][j - 1] for t in range(j - 1, i)))
    y = [m.new_bool_var(f"y{e}") for e in range(len(ei))]
    for e, (u, v) in enumerate(zip(ei.tolist(), ej.tolist(), strict=True)):
        for j in range(min(max(u, v) + 1, kmax)):
            a = x[u][j] if j <= u else 0
            b = x[v][j] if j <= v else 0
            m.add(y[e] >= a - b)
            m.add(y[e] >= b - a)
    root = [[m.new_bool_var(f"r{i}_{j}") for j in range(len(x[i]))] for i in range(n)]
    for i in range(n):
        for j in range(len(x[i])):
            m.add_implication(root[i][j], x[i][j])
    for j in range(kmax):
        m.add(sum(root[i][j] for i in range(j, n)) == used[j])
    cap = n - kmin
    f_out: list[list] = [[] for _ in range(n)]
    f_in: list[list] = [[] for _ in range(n)]
    flows = {}
    for e, (u, v) in enumerate(zip(ei.tolist(), ej.tolist(), strict=True)):
        a, b = m.new_int_var(0, cap, f"f{u}_{v}"), m.new_int_var(0, cap, f"f{v}_{u}")
        flows[u, v], flows[v, u] = a, b
        m.add(a + b <= cap * (1 - y[e]))
        f_out[u].append(a)
        f_in[v].append(a)
        f_out[v].append(b)
        f_in[u].append(b)
    for i in range(n):
        m.add(sum(f_in[i]) - sum(f_out[i]) >= 1 - n * sum(root[i]))
    m.minimize(sum(int(c) * y[e] for e, c in enumerate(icost.tolist()) if c))
    if start is not None:
        _hint(m, start[1], x, y, root, list(enumerate(used))[kmin:], flows, n, ei, ej)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(deadline - time.perf_counter(), 0.01)
    solver.parameters.num_workers = _WORKERS
    code = solver.solve(m)
    if code == cp_model.INFEASIBLE:
        return None, None, True
    labels = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        labels = np.array(
            [next(j for j, v in enumerate(x[i]) if solver.boolean_value(v)) for i in range(n)],
            dtype=np.int64,
        )
    bound = max((solver.best_objective_bound - slack) / scale, 0.0)
    if scale == 1.0:
        bound = float(math.ceil(bound - 1e-9))
    return labels, bound, code == cp_model.OPTIMAL


def _hint(
    m: cp_model.CpModel,
    labels: np.ndarray,
    x: list[list[cp_model.IntVar]],
    y: list[cp_model.IntVar],
    root: list[list[cp_model.IntVar]],
    used: list[tuple[int, cp_model.IntVar]],
    flows: dict[tuple[int, int], cp_model.IntVar],
    n: int,
    ei: np.ndarray,
    ej: np.ndarray,
) -> None:
    """A complete hint from a plan: slots by first node, roots, BFS-tree flows."""
    lab = _renumber(labels)
    for i in range(n):
        for j, v in enumerate(x[i]):
            m.add_hint(v, int(lab[i] == j))
    for e, (u, v) in enumerate(zip(ei.tolist(), ej.tolist(), strict=True)):
        m.add_hint(y[e], int(lab[u] != lab[v]))
    k = int(lab.max()) + 1
    for j, u in used:
        m.add_hint(u, int(j < k))
    # per part: BFS tree from its first node; flow on a tree arc = nodes below it
    same = lab[ei] == lab[ej]
    adj = _csr(n, ei[same], ej[same], np.ones(int(same.sum())))
    send: dict[tuple[int, int], int] = {}
    for j in range(k):
        r = int(np.flatnonzero(lab == j)[0])
        order, pred = csgraph.breadth_first_order(adj, r, directed=False)
        below = np.ones(n, dtype=np.int64)
        for v in order[:0:-1]:
            below[pred[v]] += below[v]
            send[int(pred[v]), int(v)] = int(below[v])
        for jj, v in enumerate(root[r]):
            m.add_hint(v, int(jj == j))
        for i in order[1:]:
            for v in root[int(i)]:
                m.add_hint(v, 0)
    for arc, var in flows.items():
        m.add_hint(var, send.get(arc, 0))
