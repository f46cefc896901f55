"""Capacitated p-median start by min-cost flow: transport, relocate, repair.

When capacity is tight (p3038: 80% of all capacity used, about five clients per
median), greedy packing onto uncapacitated medians fails. Here the allocation to
the open sites is a transportation problem (splittable demand), solved exactly by
OR-Tools' min-cost flow over each client's ``k`` cheapest open sites, with an
expensive overflow arc so that it is always feasible. Overflowing demand shows
where a median is missing: the least used median moves there. Medians then move
to the best site of their cluster (``_la.relocate``) while the flow cost
falls. Finally the flow is rounded to single sources (each client to the site
carrying most of its demand) and overloads are repaired by moving the cheapest
clients to open sites with room.
"""

from __future__ import annotations

import numpy as np

import gridopt.solvers._clock as _clock
from gridopt._errors import SolverError
from gridopt.solvers._instance import Instance
from gridopt.solvers.cpmp._la import relocate

__all__ = ["flow_round", "flow_start", "iterative_round", "lagrangian_medians"]

_SCALE = 1000.0  # cost units per flow cost unit: integer arc costs for the flow solver


def _integral_amounts(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Integer demand and capacity for the flow (scaled when the data are fractional)."""
    d, q = inst.demand, inst.capacity
    assert q is not None
    if np.all(np.abs(d - np.round(d)) < 1e-9):
        return np.round(d).astype(np.int64), np.floor(q + 1e-9).astype(np.int64)
    f = 1000.0
    return np.ceil(d * f - 1e-9).astype(np.int64), np.floor(q * f + 1e-9).astype(np.int64)


def _flow(
    inst: Instance, is_open: np.ndarray, k: int, dem: np.ndarray, cap: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Min-cost transport to the open sites.

    Returns (entry index of every flow arc, its flow, overflow per client, cost).
    """
    from ortools.graph.python import min_cost_flow

    _clock.charge(inst.n * k, "flow")
    ent = np.flatnonzero(is_open[inst.site])
    row = inst.row[ent]
    first = np.concatenate(([True], row[1:] != row[:-1]))
    start = np.maximum.accumulate(np.where(first, np.arange(len(row)), 0))
    ent = ent[(np.arange(len(row)) - start) < k]
    row, site = inst.row[ent], inst.site[ent]
    n, m = inst.n, inst.m
    sink = n + m
    # per unit of demand, so that a client sent whole to one site costs w * c
    unit = inst.wcost / np.maximum(dem[inst.row], 1)
    wc = unit[ent]
    big = int(_SCALE * (float(unit.max()) + 1.0) * 10) + 1
    tails = np.concatenate((row, n + np.flatnonzero(is_open), np.arange(n)))
    heads = np.concatenate((n + site, np.full(int(is_open.sum()), sink), np.full(n, sink)))
    caps = np.concatenate((dem[row], cap[is_open], dem))
    costs = np.concatenate(
        (np.round(wc * _SCALE).astype(np.int64), np.zeros(int(is_open.sum()), np.int64),
         np.full(n, big, dtype=np.int64))
    )  # fmt: skip
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), caps, costs
    )
    supplies = np.zeros(n + m + 1, dtype=np.int64)
    supplies[:n] = dem
    supplies[sink] = -int(dem.sum())
    smcf.set_nodes_supplies(np.arange(n + m + 1, dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:  # pragma: no cover - the overflow arcs keep it feasible
        raise SolverError(f"min-cost flow failed with status {status}")
    flows = smcf.flows(np.arange(len(tails), dtype=np.int32))
    e = len(ent)
    overflow = flows[e + int(is_open.sum()) :]
    cost = float(np.dot(flows[:e], wc)) + float(overflow.sum()) * big / _SCALE
    zero = dem == 0
    if zero.any():
        # clients without demand carry no flow: give them their cheapest arc
        first_ent = np.concatenate(([True], row[1:] != row[:-1]))
        fz = np.flatnonzero(first_ent & zero[row])
        ent = np.concatenate((ent, ent[fz]))
        flows = np.concatenate((flows[:e], np.ones(len(fz), dtype=flows.dtype)))
        return ent, flows, overflow, cost
    return ent, flows[:e], overflow, cost


def _primary(inst: Instance, ent: np.ndarray, fl: np.ndarray) -> np.ndarray:
    """Each client's site carrying most of its flow (-1 when none)."""
    assign = np.full(inst.n, -1, dtype=np.int64)
    pos = np.flatnonzero(fl > 0)
    if len(pos) == 0:
        return assign
    order = pos[np.lexsort((-fl[pos], inst.row[ent[pos]]))]
    rows = inst.row[ent[order]]
    firsts = np.concatenate(([True], rows[1:] != rows[:-1]))
    assign[rows[firsts]] = inst.site[ent[order[firsts]]]
    return assign


def _move_to_overflow(
    inst: Instance, is_open: np.ndarray, ent: np.ndarray, fl: np.ndarray, overflow: np.ndarray
) -> np.ndarray:
    """Move the least used free medians to the clients with the most unserved demand."""
    is_open = is_open.copy()
    use = np.bincount(inst.site[ent], weights=fl.astype(float), minlength=inst.m)
    movable = np.flatnonzero(is_open & ~inst.fixed)
    movable = movable[np.argsort(use[movable], kind="stable")]
    needy = np.argsort(-overflow, kind="stable")
    needy = needy[overflow[needy] > 0]
    moves = 0
    for c in needy:
        if moves >= len(movable):
            break
        lo, hi = inst.indptr[c], inst.indptr[c + 1]
        # the cheapest closed site of this client (its own location when allowed)
        closed = inst.site[lo:hi][~is_open[inst.site[lo:hi]]]
        if len(closed) == 0:
            continue
        is_open[movable[moves]] = False
        is_open[closed[0]] = True
        moves += 1
    return is_open


def _round(
    inst: Instance, ent: np.ndarray, fl: np.ndarray, dem: np.ndarray, is_open: np.ndarray
) -> np.ndarray | None:
    """Single sources from a transport solution: unsplit clients keep their site.

    The split clients (at most one per saturated site in a basic solution) go, the
    largest regret first, to the cheapest open site that still has room.
    """
    cap = inst.capacity
    assert cap is not None
    d = inst.demand
    full = fl >= dem[inst.row[ent]]
    assign = np.full(inst.n, -1, dtype=np.int64)
    assign[inst.row[ent[full]]] = inst.site[ent[full]]
    fixed = assign >= 0
    load = np.bincount(assign[fixed], weights=d[fixed], minlength=inst.m)
    split = np.flatnonzero(~fixed)
    if len(split) == 0:
        return assign
    # regret = second cheapest open minus cheapest open, scaled by the demand
    regrets = np.zeros(len(split))
    for t, c in enumerate(split):
        lo, hi = inst.indptr[c], inst.indptr[c + 1]
        w = inst.wcost[lo:hi][is_open[inst.site[lo:hi]]]
        regrets[t] = (w[1] - w[0] if len(w) > 1 else np.inf) + d[c]
    for c in split[np.argsort(-regrets, kind="stable")]:
        lo, hi = inst.indptr[c], inst.indptr[c + 1]
        s = inst.site[lo:hi]
        ok = is_open[s] & (load[s] + d[c] <= cap[s] + 1e-9)
        if ok.any():
            j = int(s[int(np.argmax(ok))])
        else:
            j = _eject(inst, c, assign, load, is_open)
            if j < 0:
                return None
        assign[c] = j
        load[j] += d[c]
    return assign


def _eject(
    inst: Instance, c: int, assign: np.ndarray, load: np.ndarray, is_open: np.ndarray
) -> int:
    """Make room for client ``c`` at one of its open sites by moving one client away.

    Returns the site freed for ``c`` (the move is applied) or -1.
    """
    cap = inst.capacity
    assert cap is not None
    d = inst.demand
    lo, hi = inst.indptr[c], inst.indptr[c + 1]
    best = None
    for t in range(lo, hi):
        j = int(inst.site[t])
        if not is_open[j]:
            continue
        need = load[j] + d[c] - cap[j]
        for c2 in np.flatnonzero(assign == j):
            if d[c2] < need - 1e-9:
                continue
            lo2, hi2 = inst.indptr[c2], inst.indptr[c2 + 1]
            s2 = inst.site[lo2:hi2]
            ok = is_open[s2] & (s2 != j) & (load[s2] + d[c2] <= cap[s2] + 1e-9)
            if not ok.any():
                continue
            u = int(np.argmax(ok))
            here = int(np.flatnonzero(s2 == j)[0])
            delta = inst.wcost[t] + inst.wcost[lo2 + u] - inst.wcost[lo2 + here]
            if best is None or delta < best[0]:
                best = (delta, j, int(c2), int(s2[u]))
    if best is None:
        return -1
    _, j, c2, j2 = best
    assign[c2] = j2
    load[j] -= d[c2]
    load[j2] += d[c2]
    return j


def _repair(inst: Instance, assign: np.ndarray, is_open: np.ndarray) -> np.ndarray | None:
    """Move clients off overloaded sites to open sites with room, cheapest first."""
    cap = inst.capacity
    assert cap is not None
    d = inst.demand
    load = np.bincount(assign, weights=d, minlength=inst.m)
    tol = 1e-9
    for j in np.flatnonzero(load > cap + tol):
        members = np.flatnonzero(assign == j)
        while load[j] > cap[j] + tol:
            best = None
            for c in members:
                if assign[c] != j:
                    continue
                lo, hi = inst.indptr[c], inst.indptr[c + 1]
                s = inst.site[lo:hi]
                ok = is_open[s] & (s != j) & (load[s] + d[c] <= cap[s] + tol)
                if not ok.any():
                    continue
                t = int(np.argmax(ok))
                delta = inst.wcost[lo + t] - inst.wcost[lo + int(np.flatnonzero(s == j)[0])]
                if best is None or delta < best[0]:
                    best = (delta, c, int(s[t]))
            if best is None:
                return None
            _, c, t = best
            assign[c] = t
            load[j] -= d[c]
            load[t] += d[c]
    return assign


def flow_start(
    inst: Instance, is_open: np.ndarray, *, deadline: float, k: int = 20
) -> np.ndarray | None:
    """A feasible single-source assignment built from the open sites, or None."""
    dem, cap_full = _integral_amounts(inst)
    assign = None
    for slack in (1.0, 0.95, 0.9, 0.85):
        # rounding split clients needs room: the flow may use only part of each site
        cap = np.floor(cap_full * slack).astype(np.int64)
        if cap[is_open].sum() < dem.sum():
            break
        assign, is_open = _flow_start(inst, is_open, deadline, k, dem, cap)
        if assign is not None or _clock.now() > deadline:
            break
    return assign


def _flow_start(
    inst: Instance,
    is_open: np.ndarray,
    deadline: float,
    k: int,
    dem: np.ndarray,
    cap: np.ndarray,
) -> tuple[np.ndarray | None, np.ndarray]:
    ent, fl, overflow, cost = _flow(inst, is_open, k, dem, cap)
    best = (cost, is_open, ent, fl, overflow)
    stall = 0
    while _clock.now() < deadline and stall < 3:
        cur_open = best[1]
        if best[4].sum() > 0:
            cand_open = _move_to_overflow(inst, cur_open, best[2], best[3], best[4])
        else:
            assign = _primary(inst, best[2], best[3])
            moved = relocate(inst, assign)
            cand_open = np.zeros(inst.m, dtype=bool)
            cand_open[np.unique(moved)] = True
            cand_open |= inst.fixed
            if int(cand_open.sum()) < inst.p:
                # relocation merged medians: keep the old ones to fill up p
                extra = np.flatnonzero(cur_open & ~cand_open)
                cand_open[extra[: inst.p - int(cand_open.sum())]] = True
        if np.array_equal(cand_open, cur_open):
            break
        ent, fl, overflow, cost = _flow(inst, cand_open, k, dem, cap)
        if cost < best[0] - 1e-9:
            best = (cost, cand_open, ent, fl, overflow)
            stall = 0
        else:
            stall += 1
    _cost, is_open, ent, fl, overflow = best
    if overflow.sum() > 0:
        return None, is_open
    rounded = _round(inst, ent, fl, dem, is_open)
    if rounded is not None:
        return rounded, is_open
    assign = _primary(inst, ent, fl)
    if (assign < 0).any():
        return None, is_open
    return _repair(inst, assign, is_open), is_open


def lagrangian_medians(
    inst: Instance, sets: list[np.ndarray], *, k: int = 20, keep: int = 15
) -> list[np.ndarray]:
    """The ``keep`` median sets of a Lagrangian run with the cheapest transport cost."""
    dem, cap = _integral_amounts(inst)
    scored = []
    seen: set[bytes] = set()
    for is_open in sets:
        key = np.packbits(is_open).tobytes()
        if key in seen or int(is_open.sum()) != inst.p:
            continue
        seen.add(key)
        if cap[is_open].sum() < dem.sum():
            continue
        _ent, _fl, overflow, cost = _flow(inst, is_open, k, dem, cap)
        if overflow.sum() == 0:
            scored.append((cost, len(scored), is_open))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [s for _c, _i, s in scored[:keep]]


def assign_to(
    inst: Instance, is_open: np.ndarray, *, deadline: float, k: int = 20
) -> np.ndarray | None:
    """Single-source assignment from these medians: transport + relocation + rounding."""
    return flow_start(inst, is_open, deadline=deadline, k=k)


def flow_round(inst: Instance, is_open: np.ndarray, *, k: int = 20) -> np.ndarray | None:
    """Single sources for fixed open sites: transport, then round and repair (or None)."""
    dem, cap = _integral_amounts(inst)
    if cap[is_open].sum() < dem.sum():
        return None
    ent, fl, overflow, _cost = _flow(inst, is_open, k, dem, cap)
    if overflow.sum() > 0:
        return None
    rounded = _round(inst, ent, fl, dem, is_open)
    if rounded is not None:
        return rounded
    assign = _primary(inst, ent, fl)
    if (assign < 0).any():
        return None
    return _repair(inst, assign, is_open)


def iterative_round(
    inst: Instance, is_open: np.ndarray, *, k: int = 20, max_rounds: int = 60
) -> np.ndarray | None:
    """Single sources for fixed open sites by repeated transport and partial rounding.

    Clients the transport sends whole to one site keep it; each split client goes to
    the site carrying most of its demand while that site has room (largest share
    first), and the transport is re-solved for the rest with the remaining
    capacities. With about three clients per site (p3038_1000) one rounding of the
    transport costs 10-14% above it; re-solving after each batch keeps the loss small.
    Returns None when the rest cannot be placed.
    """
    dem, cap = _integral_amounts(inst)
    if cap[is_open].sum() < dem.sum():
        return None
    assign = np.full(inst.n, -1, dtype=np.int64)
    residual = cap.copy()
    for _ in range(max_rounds):
        active = assign < 0
        if not active.any():
            return assign
        d_act = np.where(active, dem, 0)
        ent, fl, overflow, _cost = _flow(inst, is_open, k, d_act, residual)
        if overflow[active].sum() > 0:
            return None
        rows = inst.row[ent]
        sel = active[rows] & ((fl > 0) | (d_act[rows] == 0))
        ent, fl, rows = ent[sel], fl[sel], rows[sel]
        share = np.where(d_act[rows] > 0, fl / np.maximum(d_act[rows], 1), 1.0)
        # largest share first; a whole client (share 1) always fits its own flow
        order = np.lexsort((rows, -share))
        progress = False
        for t in order:
            c = int(rows[t])
            if assign[c] >= 0:
                continue
            j = int(inst.site[ent[t]])
            if residual[j] >= dem[c]:
                assign[c] = j
                residual[j] -= dem[c]
                progress = True
        if not progress:
            break
    if (assign < 0).any():
        rest = np.flatnonzero(assign < 0)
        load = np.bincount(assign[assign >= 0], weights=inst.demand[assign >= 0], minlength=inst.m)
        for c in rest:
            lo, hi = inst.indptr[c], inst.indptr[c + 1]
            s = inst.site[lo:hi]
            ok = is_open[s] & (load[s] + inst.demand[c] <= inst.capacity[s] + 1e-9)
            if ok.any():
                j = int(s[int(np.argmax(ok))])
            else:
                j = _eject(inst, int(c), assign, load, is_open)
                if j < 0:
                    return None
            assign[c] = j
            load[j] += inst.demand[c]
    return assign
