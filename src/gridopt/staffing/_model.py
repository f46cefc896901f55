"""The optimisation model of one street office.

The three roles are independent once the rules are fixed, so each gets its own
model:

- information officers and mediators: a min-cost flow (people -> grids or
  communities -> sink, the standard's minimum as negative-cost arcs): exact
  and fast, because the problem is totally unimodular;
- grid workers: the same flow with one arc per extra worker of a grid, whose
  costs (missing worker, uncovered households, load balance) are the
  increments of a convex function of the head count. With equal capacities
  this flow is exact. With unequal ones (part-timers, personal
  ``max_households``, several grids per person) it is a relaxation that gives
  a lower bound and a first plan, and a MIP with the true capacities solved by
  HiGHS (scipy.optimize.milp) finishes the job (CP-SAT did worse on this
  near-network model; see ``benchmarks/NOTES.md``).

``plain_mip=True`` solves the same model without the flows: every role as one
HiGHS MIP over the same arcs. It is the benchmark's peer (``gridopt bench
staffing``), so the flow's speed-up is measured on the model users run.

The answer never depends on the machine's load: the MIPs stop at a node budget
derived from the model's size (:func:`mip_node_limit`); the wall-clock limit
is only a safety cap, and a run that hits it says so (status ``"time_limit"``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from ortools.graph.python import min_cost_flow
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array
from scipy.spatial import cKDTree

from gridopt._errors import SolverError
from gridopt.staffing._rules import StaffingRules

log = logging.getLogger("gridopt")


@dataclass
class Street:
    """One street office: its grids (positional 0..G-1), communities and outlines."""

    name: str
    grids: gpd.GeoDataFrame
    communities: list[str]
    community_geom: dict[str, Any]
    street_geom: Any
    # travel metres of (people index labels, grid positions in ``grids``) pairs; None:
    # straight line from home to the grid (0 inside it)
    travel: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def _candidates(homes: np.ndarray, grids: gpd.GeoDataFrame, k: int) -> np.ndarray:
    cent = np.column_stack([grids.geometry.centroid.x, grids.geometry.centroid.y])
    k = min(k, len(grids))
    _, idx = cKDTree(cent).query(homes, k=k)
    return np.asarray(idx).reshape(len(homes), k)


def _flow(
    units_per_person: np.ndarray,
    idle_cost: np.ndarray,
    pair_p: np.ndarray,
    pair_u: np.ndarray,
    pair_cost: np.ndarray,
    n_units: int,
    unit_arcs: list[tuple[int, int, int]],
    *,
    plain_mip: bool = False,
) -> tuple[np.ndarray, int]:
    """Min-cost flow people -> units; returns (flow per pair, cost).

    With ``plain_mip`` the same network is solved as a HiGHS MIP instead (the
    benchmark's peer); both give the same optimum, the network is totally unimodular.
    """
    if plain_mip:
        return _flow_milp(
            units_per_person, idle_cost, pair_p, pair_u, pair_cost, n_units, unit_arcs
        )
    P = len(units_per_person)
    src, sink = 0, P + n_units + 1
    f = min_cost_flow.SimpleMinCostFlow()
    people = np.arange(1, P + 1)
    f.add_arcs_with_capacity_and_unit_cost(
        np.zeros(P, dtype=np.int64),
        people,
        units_per_person.astype(np.int64),
        np.zeros(P, dtype=np.int64),
    )
    f.add_arcs_with_capacity_and_unit_cost(
        people, np.full(P, sink), np.ones(P, dtype=np.int64), idle_cost.astype(np.int64)
    )
    extra = units_per_person > 1
    if extra.any():
        f.add_arcs_with_capacity_and_unit_cost(
            people[extra],
            np.full(int(extra.sum()), sink),
            (units_per_person[extra] - 1).astype(np.int64),
            np.zeros(int(extra.sum()), dtype=np.int64),
        )
    first_pair = f.num_arcs()
    if len(pair_p):
        f.add_arcs_with_capacity_and_unit_cost(
            pair_p + 1,
            P + 1 + pair_u,
            np.ones(len(pair_p), dtype=np.int64),
            pair_cost.astype(np.int64),
        )
    if unit_arcs:
        ua = np.array(unit_arcs, dtype=np.int64)
        f.add_arcs_with_capacity_and_unit_cost(
            P + 1 + ua[:, 0], np.full(len(ua), sink), ua[:, 1], ua[:, 2]
        )
    total = int(units_per_person.sum())
    f.set_node_supply(src, total)
    f.set_node_supply(sink, -total)
    status = f.solve()
    if status != f.OPTIMAL:  # pragma: no cover - the flow is always feasible
        raise SolverError(f"min-cost flow failed with status {status}")
    flows = np.array([f.flow(first_pair + k) for k in range(len(pair_p))], dtype=np.int64)
    return flows, int(f.optimal_cost())


def _flow_milp(
    units_per_person: np.ndarray,
    idle_cost: np.ndarray,
    pair_p: np.ndarray,
    pair_u: np.ndarray,
    pair_cost: np.ndarray,
    n_units: int,
    unit_arcs: list[tuple[int, int, int]],
) -> tuple[np.ndarray, int]:
    """The network of :func:`_flow` as a plain HiGHS MIP; returns (flow per pair, cost).

    Variables: pair arcs, each person's idle arc (capacity 1) and spare arc, and
    the units' arcs to the sink. Every person sends exactly their units; every
    unit passes on what it receives.
    """
    P, K = len(units_per_person), len(pair_p)
    ua = np.array(unit_arcs, dtype=np.int64).reshape(-1, 3)
    A = len(ua)
    o_idle, o_spare, o_unit = K, K + P, K + 2 * P
    nv = o_unit + A
    c = np.concatenate([pair_cost, idle_cost, np.zeros(P), ua[:, 2]]).astype(float)
    ub = np.concatenate(
        [np.ones(K), np.ones(P), np.maximum(units_per_person - 1, 0), ua[:, 1]]
    ).astype(float)
    people = np.arange(P)
    rows = np.concatenate([pair_p, people, people, P + pair_u, P + ua[:, 0]])
    cols = np.concatenate(
        [np.arange(K), o_idle + people, o_spare + people, np.arange(K), o_unit + np.arange(A)]
    )
    vals = np.concatenate([np.ones(K + 2 * P), np.ones(K), -np.ones(A)])
    a = coo_array((vals, (rows, cols)), shape=(P + n_units, nv)).tocsr()
    rhs = np.concatenate([units_per_person, np.zeros(n_units)]).astype(float)
    res = milp(
        c,
        constraints=LinearConstraint(a, rhs, rhs),
        integrality=np.ones(nv),
        bounds=Bounds(np.zeros(nv), ub),
        options={"disp": False},
    )
    if res.x is None:  # pragma: no cover - the network is always feasible
        raise SolverError(f"HiGHS found no flow: {res.message}")
    return np.round(res.x[:K]).astype(np.int64), round(res.fun)


def solve_street(
    st: Street,
    people: gpd.GeoDataFrame,
    rules: StaffingRules,
    *,
    time_limit_s: float,
    seed: int,
    plain_mip: bool = False,
) -> dict[str, Any]:
    """Post the street office's workers, officers and mediators; returns posts and numbers.

    ``plain_mip`` solves every role as one plain HiGHS MIP (the benchmark's peer)
    instead of flows first.
    """
    t0 = time.perf_counter()
    g = st.grids
    G = len(g)
    hh = g["households"].to_numpy(np.int64)
    gid = g["grid_id"].tolist()
    gid_pos = {str(v): i for i, v in enumerate(gid)}
    geoms = g.geometry.to_numpy()
    hpw = int(rules.households_per_worker)
    move = round(rules.move_weight)
    idle_w = round(rules.idle_weight)

    def travel_pts(metres: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(metres) / 1000.0 * rules.travel_weight_per_km).astype(np.int64)

    def pairs_for(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(person row, grid, metres, cost) of every candidate pair."""
        if not len(frame):
            z = np.zeros(0, dtype=np.int64)
            return z, z, z.astype(float), z
        homes = np.column_stack([frame.geometry.x, frame.geometry.y])
        cand = _candidates(homes, g, rules.candidate_grids)
        cur = np.array([gid_pos.get(str(c), -1) if c else -1 for c in frame["current_post"]])
        extra = np.where(cur >= 0, cur, cand[:, 0])
        allc = np.column_stack([cand, extra])
        pp, gg = [], []
        for r in range(len(frame)):
            u = np.unique(allc[r])
            pp.append(np.full(u.size, r))
            gg.append(u)
        pp_a, gg_a = np.concatenate(pp), np.concatenate(gg)
        if st.travel is not None:
            dist = st.travel(frame.index.to_numpy()[pp_a], gg_a)
        else:
            dist = shapely.distance(frame.geometry.to_numpy()[pp_a], geoms[gg_a])
        cost = travel_pts(dist) + np.where((cur[pp_a] >= 0) & (cur[pp_a] != gg_a), move, 0)
        return pp_a, gg_a, dist, cost

    def idle_costs(frame: gpd.GeoDataFrame) -> np.ndarray:
        held = np.array([c is not None for c in frame["current_post"]], dtype=bool)
        return idle_w + np.where(held, move, 0)

    posts: dict[Any, dict[str, Any]] = {}
    travel: dict[tuple[Any, Any], float] = {}
    parts: dict[str, dict[str, Any]] = {}

    # ---- information officers: exact flow --------------------------------
    officers = people[people["role"] == "info_officer"]
    lo = np.where(hh > 0, np.ceil(hh / rules.max_households_per_officer), 0).astype(int)
    hi = np.maximum(lo, np.floor(hh / rules.min_households_per_officer)).astype(int)
    pp, gg, dist, cost = pairs_for(officers)
    keep = hi[gg] > 0
    pp, gg, dist, cost = pp[keep], gg[keep], dist[keep], cost[keep]
    w_off = round(rules.missing_officer_weight)
    arcs = [(gi, int(lo[gi]), -w_off) for gi in range(G) if lo[gi] > 0]
    arcs += [(gi, int(hi[gi] - lo[gi]), 0) for gi in range(G) if hi[gi] > lo[gi]]
    flows, fcost = _flow(
        np.ones(len(officers), dtype=np.int64),
        idle_costs(officers),
        pp,
        gg,
        cost,
        G,
        arcs,
        plain_mip=plain_mip,
    )
    rows = officers.index.to_numpy()
    for k in np.flatnonzero(flows):
        r, gi = rows[pp[k]], int(gg[k])
        posts[r] = {"level": "grid", "grids": [gi], "carry": [None]}
        travel[r, gi] = float(dist[k])
    off_obj = fcost + w_off * int(lo.sum())
    parts["info_officer"] = {"objective": off_obj, "bound": off_obj, "status": "optimal"}

    # ---- mediators: exact flow over communities and the street committee ----
    mediators = people[people["role"] == "mediator"]
    units = [*st.communities, None]
    unit_geom = np.array(
        [st.community_geom[c] for c in st.communities] + [st.street_geom], dtype=object
    )
    unit_name = [*st.communities, st.name]
    need = [rules.mediators_per_community] * len(st.communities) + [rules.mediators_per_street]
    w_med = round(rules.missing_mediator_weight)
    mp, mu, mdist, mcost = [], [], [], []
    # a unit's grids (for walking travel: to a community = to the nearest of its grids)
    unit_grids = [np.flatnonzero(g["community"].to_numpy() == c) for c in st.communities]
    unit_grids.append(np.arange(G))
    for r, (label, person) in enumerate(mediators.iterrows()):
        if st.travel is not None:
            d = np.array(
                [st.travel(np.full(len(ug), label), ug).min() for ug in unit_grids], dtype=float
            )
        else:
            d = shapely.distance(person.geometry, unit_geom)
        cur = person["current_post"]
        for ui in range(len(units)):
            mp.append(r)
            mu.append(ui)
            mdist.append(float(d[ui]))
            mcost.append(
                int(travel_pts(d[ui])) + (move if cur is not None and cur != unit_name[ui] else 0)
            )
    arcs = [(ui, int(need[ui]), -w_med) for ui in range(len(units)) if need[ui] > 0]
    arcs += [(ui, len(mediators) + 1, 0) for ui in range(len(units))]
    mp_a, mu_a = np.array(mp, dtype=np.int64), np.array(mu, dtype=np.int64)
    flows, fcost = _flow(
        np.ones(len(mediators), dtype=np.int64),
        idle_costs(mediators),
        mp_a,
        mu_a,
        np.array(mcost, dtype=np.int64),
        len(units),
        arcs,
        plain_mip=plain_mip,
    )
    rows = mediators.index.to_numpy()
    for k in np.flatnonzero(flows):
        r, ui = rows[mp_a[k]], int(mu_a[k])
        posts[r] = {"level": "street" if units[ui] is None else "community", "unit": ui}
        travel[r, ("u", ui)] = mdist[k]
    med_obj = fcost + w_med * int(sum(need))
    parts["mediator"] = {"objective": med_obj, "bound": med_obj, "status": "optimal"}

    # ---- grid workers -------------------------------------------------------------
    workers = people[people["role"] == "grid_worker"]
    caps = workers["max_households"].to_numpy(dtype=float)
    default_cap = np.where(workers["full_time"].to_numpy(bool), hpw, hpw * rules.part_time_share)
    caps = np.where(np.isfinite(caps), caps, default_cap)
    caps = np.maximum(1, np.floor(caps)).astype(np.int64)
    max_grids = workers["max_grids"].to_numpy(np.int64)
    wp, wg, wdist, wcost = pairs_for(workers)
    big_c = int(caps.max()) if len(caps) else hpw
    ncand = np.bincount(wg, minlength=G)
    min_w = int(rules.min_workers_per_grid)
    w_miss = round(rules.missing_worker_weight)
    w_unc = round(rules.uncovered_household_weight)

    def kmax_bal(gi: int) -> int:
        return min(int(ncand[gi]), max(min_w, math.ceil(hh[gi] / hpw)) + 1)

    gains = []
    for gi in range(G):
        row = {}
        if hh[gi] > 0 and rules.balance_weight > 0:
            for k in range(2, kmax_bal(gi) + 1):
                gain = round(rules.balance_weight * (hh[gi] / (k - 1) - hh[gi] / k))
                if gain > 0:
                    row[k] = gain
        gains.append(row)

    def grid_cost(gi: int, n: int, carried: int) -> int:
        """Cost of grid ``gi`` with ``n`` workers carrying ``carried`` households."""
        bal = sum(gain for k, gain in gains[gi].items() if n < k)
        return w_miss * max(0, min_w - n) + w_unc * max(0, int(hh[gi]) - carried) + bal

    # Flow relaxation: every worker carries the largest capacity of anyone.
    arcs = []
    const = 0
    for gi in range(G):
        top = max(min_w, math.ceil(hh[gi] / big_c) if hh[gi] else 0, max(gains[gi], default=0))
        prev = grid_cost(gi, 0, 0)
        const += prev
        for k in range(1, top + 1):
            cur = grid_cost(gi, k, min(int(hh[gi]), k * big_c))
            arcs.append((gi, 1, cur - prev))
            prev = cur
        arcs.append((gi, len(workers) + 1, 0))
    if plain_mip:
        # the peer: nobody posted to start with, the MIP alone finds the plan and the bound
        relax_bound = -math.inf
        chosen = np.zeros(len(wp), dtype=bool)
    else:
        flows, fcost = _flow(max_grids, idle_costs(workers), wp, wg, wcost, G, arcs)
        relax_bound = fcost + const
        chosen = flows > 0

    def evaluate(sel: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """True objective of a worker selection (pairs), honouring each person's capacity."""
        n = np.bincount(wg[sel], minlength=G)
        # A person on several grids splits their capacity; give it to the
        # grids in order (a simple rule; the CP-SAT model optimises it).
        carry = np.zeros(len(wp), dtype=np.int64)
        left = caps.copy()
        for k in np.flatnonzero(sel):
            take = min(int(left[wp[k]]), int(hh[wg[k]]))
            carry[k] = take
            left[wp[k]] -= take
        carried = np.bincount(wg[sel], weights=carry[sel], minlength=G).astype(np.int64)
        posted = np.bincount(wp[sel], minlength=len(workers)) > 0
        total = int(wcost[sel].sum()) + int(idle_costs(workers)[~posted].sum())
        total += sum(grid_cost(gi, int(n[gi]), int(carried[gi])) for gi in range(G))
        return total, carry, carried

    w_obj, carry, _ = evaluate(chosen)
    log.info("workers: flow relaxation %d, its true cost %d", relax_bound, w_obj)
    w_status = "optimal" if w_obj <= relax_bound else "feasible"
    w_bound = float(relax_bound)
    if w_status != "optimal":
        # the MIP always runs when the flow is not exact: how much time is left is a
        # safety cap, never what decides whether it runs
        remaining = max(0.1, time_limit_s - (time.perf_counter() - t0))
        sel, cp_carry, cp_obj, cp_bound, cp_status = _workers_milp(
            wp,
            wg,
            wcost,
            caps,
            max_grids,
            hh,
            gains,
            idle_costs(workers),
            rules,
            time_limit_s=remaining,
        )
        log.info("workers: milp %s objective %s bound %s", cp_status, cp_obj, cp_bound)
        w_bound = max(w_bound, cp_bound)
        if sel is not None and cp_obj < w_obj:
            chosen, carry, w_obj = sel, cp_carry, cp_obj
        w_status = "optimal" if w_obj <= w_bound or cp_status == "optimal" else cp_status
        if cp_status == "optimal":
            w_bound = float(w_obj)
    rows = workers.index.to_numpy()
    for k in np.flatnonzero(chosen):
        r, gi = rows[wp[k]], int(wg[k])
        p = posts.setdefault(r, {"level": "grid", "grids": [], "carry": []})
        p["grids"].append(gi)
        p["carry"].append(int(carry[k]))
        travel[r, gi] = float(wdist[k])
    parts["grid_worker"] = {"objective": w_obj, "bound": w_bound, "status": w_status}

    objective = float(sum(p["objective"] for p in parts.values()))
    bound = float(sum(p["bound"] for p in parts.values()))
    statuses = {p["status"] for p in parts.values()}
    status = "optimal" if statuses == {"optimal"} else "feasible"
    if "time_limit" in statuses:
        status = "time_limit"
    return {
        "posts": posts,
        "units": units,
        "travel": travel,
        "status": status,
        "objective": objective,
        "bound": min(bound, objective),
        "variables": len(wp) + len(pp) + len(mp),
        "seconds": time.perf_counter() - t0,
        "parts": parts,
        "lo": lo,
        "need": need,
    }


#: relative gap at which the grid-worker MIP stops (the status says 'optimal' within it)
MIP_REL_GAP = 1e-4
#: branch-and-bound nodes of the grid-worker MIP per grid (and at least MIP_MIN_NODES):
#: the budget that decides where an unproven search stops, the same on any machine
MIP_NODES_PER_GRID = 20
MIP_MIN_NODES = 2_000


def mip_node_limit(n_grids: int) -> int:
    """Deterministic node budget of the grid-worker MIP of a street office."""
    return max(MIP_MIN_NODES, MIP_NODES_PER_GRID * int(n_grids))


def _workers_milp(
    wp: np.ndarray,
    wg: np.ndarray,
    wcost: np.ndarray,
    caps: np.ndarray,
    max_grids: np.ndarray,
    hh: np.ndarray,
    gains: list[dict[int, int]],
    idle: np.ndarray,
    rules: StaffingRules,
    *,
    time_limit_s: float,
) -> tuple[np.ndarray | None, np.ndarray, int, float, str]:
    """The grid-worker model with true capacities, solved by HiGHS (branch and cut).

    The model is a near-network MIP whose LP is almost integral, which is
    what an LP-based branch and cut exploits (see the module docstring).
    """
    t0 = time.perf_counter()
    G, P, K = len(hh), len(caps), len(wp)
    top = np.minimum(caps[wp], hh[wg]).astype(float)
    multi = max_grids[wp] > 1
    mk = np.flatnonzero(multi)
    bk = [(gi, k, gain) for gi in range(G) for k, gain in gains[gi].items()]
    # variable blocks
    ox, os_, op = 0, K, K + len(mk)
    om, ou = op + P, op + P + G
    ob = ou + G
    nv = ob + len(bk)
    c = np.zeros(nv)
    c[ox : ox + K] = wcost
    c[op : op + P] = -idle
    c[om : om + G] = round(rules.missing_worker_weight)
    c[ou : ou + G] = round(rules.uncovered_household_weight)
    c[ob:] = [-gain for _, _, gain in bk]
    const = float(idle.sum() + sum(gain for _, _, gain in bk))
    lb = np.zeros(nv)
    ub = np.ones(nv)
    ub[os_ : os_ + len(mk)] = top[mk]
    ub[om : om + G] = rules.min_workers_per_grid
    ub[ou : ou + G] = hh
    integrality = np.ones(nv)
    integrality[ou : ou + G] = 0
    rows, cols, vals, rhs = [], [], [], []
    r = 0

    def add(cs: Any, vs: Any, bound: float) -> None:
        nonlocal r
        cs = np.atleast_1d(cs)
        rows.extend([r] * len(cs))
        cols.extend(cs.tolist())
        vals.extend(np.broadcast_to(vs, cs.shape).tolist())
        rhs.append(bound)
        r += 1

    by_person = [[] for _ in range(P)]
    for k in range(K):
        by_person[wp[k]].append(k)
    spos = {int(k): os_ + t for t, k in enumerate(mk)}
    for p in range(P):
        ks = np.array(by_person[p], dtype=np.int64)
        add(ks, 1.0, float(max_grids[p]))
        add(np.concatenate([[op + p], ks]), np.concatenate([[1.0], -np.ones(len(ks))]), 0.0)
        mks = [spos[int(k)] for k in ks if multi[k]]
        if mks:
            add(np.array(mks), 1.0, float(caps[p]))
    for k in mk:
        add(np.array([spos[int(k)], k]), np.array([1.0, -top[k]]), 0.0)
    by_grid = [[] for _ in range(G)]
    for k in range(K):
        by_grid[wg[k]].append(k)
    b_by_grid = [[] for _ in range(G)]
    for t, (gi, _, _) in enumerate(bk):
        b_by_grid[gi].append(ob + t)
    min_w = float(rules.min_workers_per_grid)
    for gi in range(G):
        ks = np.array(by_grid[gi], dtype=np.int64)
        add(np.concatenate([ks, [om + gi]]), -1.0, -min_w)
        load_cols = [spos[int(k)] if multi[k] else int(k) for k in ks]
        load_vals = [-1.0 if multi[k] else -top[k] for k in ks]
        add(
            np.array([*load_cols, ou + gi], dtype=np.int64),
            np.array([*load_vals, -1.0]),
            -float(hh[gi]),
        )
        if b_by_grid[gi]:
            add(
                np.array([*b_by_grid[gi], *ks, om + gi], dtype=np.int64),
                np.array([1.0] * len(b_by_grid[gi]) + [-1.0] * (len(ks) + 1)),
                -1.0,
            )
    a = coo_array((vals, (rows, cols)), shape=(r, nv)).tocsr()
    # stop at 0.01% of the bound (the same objective as at 1e-6, faster)
    res = milp(
        c,
        constraints=LinearConstraint(a, -np.inf, np.array(rhs)),
        integrality=integrality,
        bounds=Bounds(lb, ub),
        options={
            "time_limit": max(0.1, time_limit_s),
            "node_limit": mip_node_limit(G),
            "disp": False,
            "mip_rel_gap": MIP_REL_GAP,
        },
    )
    seconds = time.perf_counter() - t0
    # HiGHS reports the node and the time limit alike (status 1): the clock tells them apart
    capped = res.status == 1 and seconds >= 0.98 * time_limit_s
    log.info(
        "workers: HiGHS %s after %s nodes, %.2f s", res.message, res.get("mip_node_count"), seconds
    )
    if res.x is None:
        return None, np.zeros(K, dtype=np.int64), math.inf, -math.inf, "time_limit"
    x = res.x
    sel = x[ox : ox + K] > 0.5
    carry = np.where(sel, top, 0).astype(np.int64)
    for k in mk:
        carry[k] = round(x[spos[int(k)]]) if sel[k] else 0
    bound = res.mip_dual_bound if res.mip_dual_bound is not None else -math.inf
    return (
        sel,
        carry,
        round(res.fun + const),
        float(bound + const),
        "optimal" if res.status == 0 else ("time_limit" if capped else "feasible"),
    )
