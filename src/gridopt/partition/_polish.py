"""Exact re-division of small groups of neighbouring grids (a matheuristic move).

The heuristic's moves (single buildings, spanning-tree re-splits) stop in local optima a
few percent above the optimum on small inputs. This move takes two or three touching grids
(at most ``polish_max_nodes`` buildings together), solves their union exactly with the
CP-SAT model of :mod:`gridopt.partition._exact` (one worker, hinted with the current
grids, limited in CP-SAT's deterministic time so the result is the same on every run),
and keeps the new grids when they cost less. Groups are visited in a fixed order until a
sweep changes nothing. The number of grids in a group may change (a triple may become
two or four grids): the model chooses it within the band.
"""

from __future__ import annotations

import time

import numpy as np

from gridopt.partition._exact import _solve_model
from gridopt.partition._model import _Component, _Graph, _grid_cost, _Params, _State


def _groups(state: _State, max_nodes: int) -> list[tuple[int, ...]]:
    """Groups of touching grids (no barrier between them), in a fixed order.

    From each grid, the grids it touches, then theirs (breadth first), while the group
    holds at most ``max_nodes`` buildings; where even the first ring is larger, the grid
    with each neighbour and each two neighbours.
    """
    lab, nbrs, nbr_edge, barrier = state.lab, state.graph.nbrs, state.graph.nbr_edge, state.barrier
    size = {g: len(m) for g, m in state.members.items()}
    touch: dict[int, list[int]] = {}
    for g in sorted(state.members):
        touch[g] = sorted(
            {
                lab[x]
                for v in state.members[g]
                for x, e in zip(nbrs[v], nbr_edge[v], strict=False)
                if lab[x] != g and not barrier[e]
            }
        )
    out: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    for g in sorted(state.members):
        around = touch[g]
        if size[g] + sum(size[k] for k in around) <= max_nodes:
            grp, total, frontier = {g}, size[g], [g]
            while frontier:
                nxt = []
                for u in frontier:
                    for k in touch[u]:
                        if k not in grp and total + size[k] <= max_nodes:
                            grp.add(k)
                            total += size[k]
                            nxt.append(k)
                frontier = nxt
            cands = [tuple(sorted(grp))]
        else:
            cands = [tuple(sorted((g, a))) for a in around]
            cands += [
                tuple(sorted((g, a, b))) for i, a in enumerate(around) for b in around[i + 1 :]
            ]
        for c in cands:
            if len(c) > 1 and c not in seen:
                seen.add(c)
                out.append(c)
    return out


def _sub_component(state: _State, nodes: np.ndarray) -> tuple[_Component, _Graph]:
    """The buildings ``nodes`` with the non-barrier edges among them (local numbering)."""
    comp = state.comp
    pos = np.full(len(comp.w), -1, dtype=np.int64)
    pos[nodes] = np.arange(len(nodes))
    pi, pj = pos[comp.ei], pos[comp.ej]
    keep = (pi >= 0) & (pj >= 0) & ~comp.barrier
    sub = _Component(
        key=comp.key,
        xy=comp.xy[nodes],
        w=comp.w[nodes],
        ei=pi[keep],
        ej=pj[keep],
        barrier=np.zeros(int(keep.sum()), dtype=bool),
        street=comp.street[keep],
        cut_cost=None if comp.cut_cost is None else np.asarray(comp.cut_cost)[keep],
    )
    return sub, _Graph(sub)


def _connected(graph: _Graph, labels: np.ndarray) -> bool:
    """Whether every grid of ``labels`` is connected in ``graph``."""
    for g in np.unique(labels).tolist():
        mem = np.flatnonzero(labels == g).tolist()
        seen = {mem[0]}
        stack = [mem[0]]
        while stack:
            u = stack.pop()
            for x in graph.nbrs[u]:
                if x not in seen and labels[x] == g:
                    seen.add(x)
                    stack.append(x)
        if len(seen) != len(mem):
            return False
    return True


#: the polish may overrun its component's deadline this many times over before the wall
#: clock stops it (a safety cap for callers: beyond it the plan depends on the machine)
POLISH_WALL_FACTOR = 4.0


def exact_polish(state: _State, p: _Params, deadline: float) -> dict:
    """Re-divide pairs and triples of touching grids exactly while it lowers the cost.

    Parameters
    ----------
    state
        The plan, changed in place (every grid stays connected and in the band).
    p
        ``polish_max_nodes`` (largest group), ``polish_det_time`` (CP-SAT deterministic
        time per group), ``polish_sweeps`` (most sweeps over the groups),
        ``polish_max_solves`` (most exact solves: where the polish stops).
    deadline
        ``time.perf_counter()`` value: a safety cap (callers give ``POLISH_WALL_FACTOR``
        times the component's share); the plan stays valid where it stops.

    Returns
    -------
    dict
        ``polish_solves``, ``polish_gains`` (groups improved) and ``polish_s``.
    """
    t0 = time.perf_counter()
    cap = deadline  # the caller's safety cap: the count of solves decides where it stops
    lo, hi = p.min_households, p.max_households
    solves = gains = 0
    for _ in range(p.polish_sweeps):
        changed = False
        for grp in _groups(state, p.polish_max_nodes):
            if solves >= p.polish_max_solves or time.perf_counter() > cap:
                return {"polish_solves": solves, "polish_gains": gains, "polish_s": _since(t0)}
            if any(g not in state.members for g in grp):
                continue
            if any(not lo <= state.h[g] <= hi for g in grp):
                continue  # pockets and oversized grids are the other moves' business
            key = ("exact", *state.key(*grp))
            if key in state.failed:
                continue
            state.failed.add(key)
            nodes = np.array(sorted(set().union(*(state.members[g] for g in grp))), dtype=np.int64)
            if len(nodes) > p.polish_max_nodes or len(nodes) < 3:
                continue
            sub, graph = _sub_component(state, nodes)
            lab = np.asarray(state.lab, dtype=np.int64)[nodes]
            if not _connected(graph, lab):
                continue  # a grid joined across a barrier: leave it as it is
            current = sum(state.cost[g] for g in grp)
            # centres within reach of the current grids' spread only (keeps the model small)
            r2 = max(_spread2(state, g) for g in grp)
            solves += 1
            labels, _, _, _, _ = _solve_model(
                sub,
                graph,
                p,
                lab,
                current,
                cap,
                workers=1,
                det_time=p.polish_det_time,
                max_d2=p.polish_reach**2 * r2,
            )
            if labels is None:
                continue
            new = {int(k): nodes[labels == k].tolist() for k in np.unique(labels)}
            costs = {k: state._cost(m) for k, m in new.items()}
            if sum(costs.values()) >= current - 1e-9 * max(1.0, current):
                continue
            if any(not lo <= sum(state.wl[v] for v in m) <= hi for m in new.values()):
                continue  # pragma: no cover - the model keeps the band
            _replace(state, grp, new, costs)
            gains += 1
            changed = True
        if not changed:
            break
    return {"polish_solves": solves, "polish_gains": gains, "polish_s": _since(t0)}


def _spread2(state: _State, g: int) -> float:
    """Squared distance from grid ``g``'s centre building to its farthest member."""
    mem = np.fromiter(state.members[g], dtype=np.int64, count=len(state.members[g]))
    _, c = _grid_cost(state.xy, state.w, mem, state.p)
    return float(((state.xy[mem] - state.xy[mem[c]]) ** 2).sum(axis=1).max())


def _since(t0: float) -> float:
    return time.perf_counter() - t0


def _replace(
    state: _State, grp: tuple[int, ...], new: dict[int, list[int]], costs: dict[int, float]
) -> None:
    """Put the grids ``new`` in place of the grids ``grp`` (reusing their numbers)."""
    free = sorted(grp, reverse=True)
    nxt = max(state.members) + 1
    for k in sorted(new):
        if free:
            gid = free.pop()
        else:
            gid, nxt = nxt, nxt + 1
        for v in new[k]:
            state.lab[v] = gid
        state.members[gid] = set(new[k])
        state.h[gid] = sum(state.wl[v] for v in new[k])
        state.cost[gid] = costs[k]
        state.touch(gid)
    for gid in free:
        del state.members[gid], state.h[gid], state.cost[gid]
        state.touch(gid)
