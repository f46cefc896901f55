"""Pockets: grids below the minimum joined to, or re-divided with, their neighbouring grids.

Runs after the components are solved, on the whole community-restricted graph, so a
pocket left at the border of a block can join a grid of the next block (across a barrier
or a gap link, but only when no ordinary neighbour can take it). For each pocket, in
this order, the first remedy that works is kept:

1. merge with a neighbouring grid when the union stays within the maximum;
2. re-divide the union with one neighbour into two grids within the band (the best cut
   of many random spanning trees of the union, the ReCom move);
3. re-divide the union with two neighbours into two or three grids within the band.

Neighbours reached by ordinary edges are tried before those reached only across a gap
link, which come before barrier crossings. Every result keeps each grid connected: the
union of adjacent connected sets is connected and both sides of a tree cut are.
"""

from __future__ import annotations

import math
import time
from itertools import combinations

import numpy as np

from gridopt.partition._model import _grid_cost, _Params

__all__ = ["fix_pockets"]

# Tree weights added per edge kind (plain, gap, barrier): a random spanning tree uses a gap
# link or a barrier edge only where the nodes cannot be joined otherwise.
_KIND_TREE_WEIGHT = (0.0, 10.0, 20.0)


class _Pockets:
    def __init__(
        self,
        labels: np.ndarray,
        w: np.ndarray,
        xy: np.ndarray,
        ei: np.ndarray,
        ej: np.ndarray,
        ekind: np.ndarray,
        p: _Params,
        rng: np.random.Generator,
    ) -> None:
        self.p, self.rng, self.xy = p, rng, xy
        self.w = w.astype(np.int64)
        self.wl: list[int] = self.w.tolist()
        self.lab: list[int] = labels.tolist()
        n = len(labels)
        self.nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        lab = self.lab
        for a, b, k in zip(ei.tolist(), ej.tolist(), ekind.tolist(), strict=False):
            if lab[a] >= 0 and lab[b] >= 0:
                self.nbrs[a].append((b, k))
                self.nbrs[b].append((a, k))
        self.members: dict[int, list[int]] = {}
        for v, g in enumerate(lab):
            if g >= 0:
                self.members.setdefault(g, []).append(v)
        self.h = {g: sum(self.wl[v] for v in m) for g, m in self.members.items()}
        self.next_id = max(self.members, default=-1) + 1

    def cost(self, nodes: list[int]) -> float:
        return _grid_cost(self.xy, self.w, np.asarray(nodes, dtype=np.int64), self.p)[0]

    def neighbours(self, g: int) -> dict[int, int]:
        """Neighbouring grid -> the cheapest edge kind reaching it."""
        out: dict[int, int] = {}
        lab = self.lab
        for v in self.members[g]:
            for x, k in self.nbrs[v]:
                gx = lab[x]
                if gx != g and k < out.get(gx, 9):
                    out[gx] = k
        return out

    # -- tree cuts ---------------------------------------------------------------------

    def _tree(self, nodes: list[int]) -> tuple[list[int], dict[int, int], dict[int, list[int]]]:
        inset = set(nodes)
        rng = self.rng
        edges = []
        for u in nodes:
            for x, k in self.nbrs[u]:
                if u < x and x in inset:
                    edges.append((rng.random() + _KIND_TREE_WEIGHT[k], u, x))
        edges.sort()
        parent = {u: u for u in nodes}

        def find(u: int) -> int:
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        adj: dict[int, list[int]] = {u: [] for u in nodes}
        for _, u, x in edges:
            ru, rx = find(u), find(x)
            if ru != rx:
                parent[ru] = rx
                adj[u].append(x)
                adj[x].append(u)
        root = nodes[int(rng.integers(len(nodes)))]
        order, pred = [root], {root: -1}
        for u in order:
            for x in adj[u]:
                if x not in pred:
                    pred[x] = u
                    order.append(x)
        return order, pred, adj

    def split(self, nodes: list[int], k: int, trees: int) -> list[list[int]] | None:
        """``nodes`` cut into ``k`` connected grids within the band (None if none found)."""
        lo, hi = self.p.min_households, self.p.max_households
        total = sum(self.wl[v] for v in nodes)
        if not (k * lo <= total <= k * hi):
            return None
        if k == 1:
            return [nodes]
        xy, w = self.xy, self.wl
        bw, tgt = self.p.balance_weight_m2, self.p.target
        found: list[tuple[float, list[int], list[int]]] = []
        for _ in range(trees):
            order, pred, adj = self._tree(nodes)
            if len(order) != len(nodes):
                return None  # not connected
            acc = {
                u: [w[u], w[u] * xy[u, 0], w[u] * xy[u, 1], w[u] * (xy[u, 0] ** 2 + xy[u, 1] ** 2)]
                for u in nodes
            }
            for u in reversed(order[1:]):
                s, t = acc[u], acc[pred[u]]
                for q in range(4):
                    t[q] += s[q]
            tot = acc[order[0]]
            best, best_u = math.inf, None
            for u in order[1:]:
                s = acc[u]
                o = [tot[q] - s[q] for q in range(4)]
                for side, rest, flip in ((s, o, False), (o, s, True)):
                    h1, h2 = side[0], rest[0]
                    if not (lo <= h1 <= hi and (k - 1) * lo <= h2 <= (k - 1) * hi):
                        continue
                    val = side[3] - (side[1] ** 2 + side[2] ** 2) / h1 + bw * abs(h1 - tgt)
                    if k == 2:
                        val += rest[3] - (rest[1] ** 2 + rest[2] ** 2) / h2 + bw * abs(h2 - tgt)
                    if val < best:
                        best, best_u = val, (u, flip)
            if best_u is None:
                continue
            u, flip = best_u
            sub = {u}
            stack = [u]
            while stack:
                a = stack.pop()
                for x in adj[a]:
                    if x != pred[a] and x not in sub:
                        sub.add(x)
                        stack.append(x)
            inside = [v for v in nodes if v in sub]
            outside = [v for v in nodes if v not in sub]
            side, rest = (outside, inside) if flip else (inside, outside)
            found.append((best, side, rest))
        if not found:
            return None
        found.sort(key=lambda f: f[0])
        if k == 2:
            _, side, rest = found[0]
            return [side, rest]
        # a few alternatives for the last levels; deeper levels take the best cut only
        for _, side, rest in found[: 3 if k == 3 else 1]:
            more = self.split(rest, k - 1, max(4, trees // 4))
            if more is not None:
                return [side, *more]
        return None

    # -- the remedies ------------------------------------------------------------------

    def _apply(self, group: tuple[int, ...], parts: list[list[int]]) -> None:
        ids = list(group)
        for g in group:
            del self.members[g], self.h[g]
        for part in parts:
            gid = ids.pop(0) if ids else self.next_id
            if gid == self.next_id:
                self.next_id += 1
            self.members[gid] = list(part)
            self.h[gid] = sum(self.wl[v] for v in part)
            for v in part:
                self.lab[v] = gid

    def fix(self, g: int, trees: int) -> bool:
        lo, hi = self.p.min_households, self.p.max_households
        nb = self.neighbours(g)
        if not nb:
            return False
        cands = sorted(nb, key=lambda x: (nb[x], self.h[x], x))
        hg = self.h[g]
        fits = [x for x in cands if hg + self.h[x] <= hi]
        if fits:
            level = nb[fits[0]]
            best = min(
                (x for x in fits if nb[x] == level),
                key=lambda x: (
                    self.cost(self.members[x] + self.members[g]) - self.cost(self.members[x]),
                    x,
                ),
            )
            self._apply((best, g), [self.members[best] + self.members[g]])
            return True
        options: list[tuple[int, int, tuple[int, ...]]] = [(nb[x], 1, (x,)) for x in cands]
        for x, y in combinations(cands[:6], 2):
            options.append((max(nb[x], nb[y]), 2, (x, y)))
        # last resort: the pocket with its neighbours and their neighbours (a wider ReCom)
        ring = set(cands[:6])
        for x in cands[:6]:
            ring |= set(self.neighbours(x))
        ring.discard(g)
        ring_l = sorted(ring, key=lambda x: (self.h[x], x))[:8]
        if len(ring_l) > 2:
            inner = {x for x in ring_l if x in nb}
            if inner:  # connected through the pocket's direct neighbours only
                keep = tuple(
                    x for x in ring_l if x in inner or any(y in inner for y in self.neighbours(x))
                )
                options.append((max(nb.get(x, 0) for x in keep), 3, keep))
        options.sort(key=lambda o: (o[0], o[1]))
        k = 0
        while k < len(options):
            level, size = options[k][0], options[k][1]
            best = None
            while k < len(options) and options[k][:2] == (level, size):
                others = options[k][2]
                k += 1
                nodes = list(self.members[g])
                for x in others:
                    nodes += self.members[x]
                total = sum(self.wl[v] for v in nodes)
                for count in range(max(2, -(-total // hi)), min(len(others) + 1, total // lo) + 1):
                    parts = self.split(nodes, count, trees if size < 3 else max(8, trees // 4))
                    if parts is None:
                        continue
                    c = sum(self.cost(part) for part in parts)
                    if best is None or c < best[0]:
                        best = (c, (g, *others), parts)
            if best is not None:
                self._apply(best[1], best[2])
                return True
        return False


def fix_pockets(
    labels: np.ndarray,
    w: np.ndarray,
    xy: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    ekind: np.ndarray,
    p: _Params,
    *,
    seed: int = 0,
    deadline: float = math.inf,
    trees: int = 48,
) -> np.ndarray:
    """Labels with the pockets joined to or re-divided with neighbouring grids.

    Parameters
    ----------
    labels
        Grid number per building, ``-1`` for buildings not in play (exclusive, oversized,
        clusters without households).
    w, xy
        Households and points of the buildings.
    ei, ej, ekind
        Edges among buildings of the same community; kind 0 ordinary, 1 gap link,
        2 barrier.
    p
        Band, target and balance weight.
    seed, deadline, trees
        Randomness, wall-clock deadline (``time.perf_counter``) and spanning trees per try.

    Returns
    -------
    numpy.ndarray
        New grid numbers (not contiguous; ``-1`` kept where it was).
    """
    state = _Pockets(labels, w, xy, ei, ej, ekind, p, np.random.default_rng([seed, 77]))
    lo = p.min_households
    tried: set[tuple[int, int]] = set()
    changed = True
    while changed and time.perf_counter() < deadline:
        changed = False
        for g in sorted(
            (g for g in state.members if state.h[g] < lo), key=lambda g: (state.h[g], g)
        ):
            if g not in state.members or state.h[g] >= lo:
                continue
            # retried only when the pocket or its neighbourhood changed
            nbh = sorted((x, k, state.h[x]) for x, k in state.neighbours(g).items())
            key = (g, len(state.members[g]), tuple(nbh))
            key = (g, hash(key))
            if key in tried:
                continue
            if state.fix(g, trees):
                changed = True
            else:
                tried.add(key)
            if time.perf_counter() > deadline:
                break
    return np.asarray(state.lab, dtype=np.int64)
