"""partition_grids: validation, special grids, components, solving, assembly."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridopt._errors import InputError, RepairWarning
from gridopt._status import combine_status
from gridopt._validate import check
from gridopt.adjacency import (
    _adjacency,
    _as_polygons,
    _edge_flags,
    _gap_links,
    _geoms_of,
    _streets_in_crs,
    dissolve_cells,
)
from gridopt.crs import reproject
from gridopt.execution import map_components
from gridopt.partition._heuristic import _solve_component
from gridopt.partition._model import (
    _POCKET_PENALTY,
    _Component,
    _ComponentResult,
    _feasible,
    _grid_cost,
    _Params,
)
from gridopt.partition._pockets import fix_pockets
from gridopt.partition._result import Partition

__all__ = ["partition_grids"]

log = logging.getLogger("gridopt")

_KIND_ORDER = {"regular": 0, "undersized": 1, "oversized": 2, "exclusive": 3}
# Further heuristic starts per call, in buildings x starts: a small input (up to a few
# hundred buildings, where local optima differ most) gets up to max_starts starts per
# component, a city of thousands of buildings one (its speed matters more there).
_SEARCH_BUDGET = 4000
# calls of up to this many buildings get the exact polish (gridopt.partition._polish)
_POLISH_MAX_CALL = 150


def partition_grids(
    buildings: gpd.GeoDataFrame,
    *,
    households: str = "households",
    min_households: int = 200,
    max_households: int = 300,
    streets: gpd.GeoDataFrame | None = None,
    communities: str | gpd.GeoDataFrame | None = None,
    exclusive: bool | pd.Series | None = None,
    previous: pd.Series | None = None,
    seed: int = 0,
    time_limit_s: float = 60.0,
    client: object | None = None,
    method: str = "heuristic",
    households_per_worker: int = 200,
    balance_weight_m2: float = 1000.0,
    max_gap_m: float = 80.0,
    max_link_m: float = 300.0,
    max_starts: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Partition:
    """Divide buildings into contiguous grids of ``min_households``-``max_households`` households.

    Buildings are neighbours when their tessellation cells touch
    (:func:`gridopt.adjacency.building_graph`). The land is cut into components
    (communities x blocks bounded by major streets, rivers and railways; a block too small
    to make a grid is joined to a neighbouring block across the barrier, and the crossing is
    counted). Each component is divided by recursive random-spanning-tree bisection whose
    cuts leave both sides able to make whole grids, then improved by boundary moves and
    merge-and-resplit of neighbouring grids until no move helps or the time limit.

    Parameters
    ----------
    buildings
        Footprints in a metric CRS with a household column (see :func:`gridopt.read_buildings`).
    households
        Name of the household column (integers >= 0).
    min_households, max_households
        The grid size band (Dalian: 200-300).
    streets
        Street/river/railway lines; ``barrier_kind`` marks barriers (see
        :func:`gridopt.read_streets`). Another CRS is reprojected with a warning.
    communities
        Column of ``buildings`` naming each building's community, or community polygons
        (a GeoDataFrame with a ``community`` column). Grids never straddle two communities.
    exclusive
        ``True``: buildings whose ``exclusive_candidate`` is true (schools, hospitals,
        commercial) form exclusive grids of their own; or a boolean Series mask.
    previous
        Old grid id per building (NaN for new buildings): the old grids are kept where they
        are still valid, repaired where they are not, and ``households_moved`` is reported.
    seed
        Random seed; the same seed gives the same grids (when the time limit is not hit).
    time_limit_s
        Upper bound on the solve time, in CPU seconds of the calling thread (so a busy
        machine does not change the grids); the heuristic stops earlier when it converges.
    client
        A ``dask.distributed.Client``: components are solved on its workers.
    method
        ``"heuristic"`` (default) or ``"exact"`` (OR-Tools CP-SAT, proves the optimum of
        the same objective on small components, up to about 150 buildings each).
    households_per_worker
        Households per grid worker (Dalian: 200), for ``grid_workers`` and the reasons.
    balance_weight_m2
        Weight of ``|households - target|`` in the objective (m² per household of deviation
        from the band's middle).
    max_gap_m
        Buildings further apart than this are not neighbours.
    max_link_m
        Clusters of buildings further apart than ``max_gap_m`` are linked across empty land
        up to this distance (*gap links*, flagged and counted in ``grids["gap_links"]``);
        a link is used only where a cluster cannot make a grid alone. A cluster further
        than this from every other one in its community stays on its own.
    max_starts
        Starts of the heuristic per component: the first from a random bisection, the
        others perturb the best plan so far and improve it again (iterated local search),
        until three starts in a row gain nothing. ``None`` (default): up to 8 on inputs of
        up to about 500 buildings (buildings x starts <= 4,000 per call and <= 300 per
        component), one on larger ones, where speed matters more; an integer: up to that
        many on every component (on a synthetic city of 3,200 buildings, 8 starts gave an
        8% lower objective in 3.6 times the CPU time).
        On inputs of up to 150 buildings the best plan is then polished exactly: groups
        of touching grids (up to 30 buildings) are re-divided with the CP-SAT model of
        ``method="exact"`` (one worker, deterministic time limit, so still reproducible)
        while that lowers the cost; measured gap to the proven optimum on 40-80-building
        lattices 0-1.3% (was 1-8%), at some seconds per call.
    progress
        Optional callable receiving short progress messages.

    Returns
    -------
    Partition

    Raises
    ------
    gridopt.InputError
        Bad band, missing or negative households, all households zero, geographic CRS,
        unknown community/exclusive columns, misaligned ``previous``.

    Examples
    --------
    >>> from gridopt.synthetic import synthetic_city
    >>> city = synthetic_city(300, seed=1)
    >>> part = partition_grids(city.buildings, streets=city.streets, communities="community")
    >>> bool(part.labels.notna().all()), part.share_in_band
    (True, 1.0)
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    geoms, hh = _validate(
        buildings, households, min_households, max_households, time_limit_s, method
    )
    budget = _Budget.start(time_limit_s)
    n = len(buildings)
    comm = _communities(buildings, communities)
    excl = _exclusive(buildings, exclusive)
    prev_codes, prev_uniques = _previous(buildings, previous)

    if streets is not None:
        streets = _streets_in_crs(streets, buildings.crs)
    say(f"tessellating {n:,} buildings")
    t = time.perf_counter()
    adj = _adjacency(geoms, streets, crs=buildings.crs, max_gap_m=max_gap_m)
    details: dict = {"tessellation_s": time.perf_counter() - t, "edges": len(adj.i)}
    same = comm[adj.i] == comm[adj.j]  # grids never straddle communities
    ei, ej, bar = adj.i[same], adj.j[same], adj.barrier[same] > 0
    street = adj.street[same]

    oversized = (hh > max_households) & ~excl
    special = excl | oversized
    grid_of = np.full(n, -1, dtype=np.int64)  # global grid number per building
    grid_kind: list[str] = []
    grid_reason: list[str] = []

    # exclusive grids: connected clusters of exclusive buildings (same community)
    if excl.any():
        both = excl[ei] & excl[ej] & ~bar
        lab = _components(n, ei[both], ej[both])
        btype = (
            buildings["building_type"].astype(str).to_numpy()
            if "building_type" in buildings
            else None
        )
        for code in np.unique(lab[excl]):
            members = np.flatnonzero(excl & (lab == code))
            grid_of[members] = len(grid_kind)
            grid_kind.append("exclusive")
            types = sorted(set(btype[members])) if btype is not None else []
            what = ", ".join(types) if types else "exclusive buildings"
            grid_reason.append(f"exclusive grid: {what} ({len(members)} buildings)")
    notes = (
        buildings["households_note"].astype(str).to_numpy()
        if "households_note" in buildings
        else None
    )
    for v in np.flatnonzero(oversized):
        grid_of[v] = len(grid_kind)
        grid_kind.append("oversized")
        workers = math.ceil(hh[v] / households_per_worker)
        grid_reason.append(
            f"oversized: one building with {hh[v]} households (> {max_households}) cannot be split; "
            f"needs {workers} grid workers at {households_per_worker} households each "
            "(split by stairwell or floor on site)"
            + (f"; what it is: {notes[v]}" if notes is not None else "")
        )

    # gap links: clusters of ordinary buildings that are not neighbours (further apart than
    # max_gap_m, or separated by an exclusive or oversized building) are linked to the
    # nearest other clusters of their community, to be used only where needed
    reg = ~special
    t = time.perf_counter()
    valid = _as_polygons(np.asarray(geoms, dtype=object))
    ga, gb, _ = _gap_links(
        valid, adj.xy, ei, ej, mask=reg, group=comm, max_link_m=float(max_link_m)
    )
    gbar_code, gstreet = _edge_flags(valid, ga, gb, streets, buildings.crs)
    gbar = gbar_code > 0
    details["gap_links_s"] = time.perf_counter() - t
    details["gap_link_candidates"] = len(ga)

    # components of the ordinary buildings: blocks between barriers and gaps, merged where needed
    keep = reg[ei] & reg[ej]
    rei = np.concatenate([ei[keep], ga])
    rej = np.concatenate([ej[keep], gb])
    rbar = np.concatenate([bar[keep], gbar])
    rgap = np.concatenate([np.zeros(int(keep.sum()), dtype=bool), np.ones(len(ga), dtype=bool)])
    rstreet = np.concatenate([street[keep], gstreet])
    units, crossings_merged = _units(
        n, reg, hh, rei, rej, rbar | rgap, min_households, max_households, kind=rbar
    )
    details["barrier_merges"] = crossings_merged

    target = (min_households + max_households) / 2.0
    comps: list[_Component] = []
    unit_nodes: list[np.ndarray] = []
    zero_units: list[np.ndarray] = []
    order = np.argsort(units, kind="stable")
    bounds = np.flatnonzero(np.diff(units[order])) + 1
    for nodes in np.split(order, bounds):
        if units[nodes[0]] < 0:
            continue  # special buildings
        if hh[nodes].sum() == 0:
            zero_units.append(nodes)
            continue
        comps.append(
            _component(len(comps), nodes, adj.xy, hh, rei, rej, rbar | rgap, rstreet, prev_codes)
        )
        unit_nodes.append(nodes)
    details["components"] = len(comps)

    base = _Params(
        min_households=int(min_households),
        max_households=int(max_households),
        target=target,
        balance_weight_m2=float(balance_weight_m2),
        seed=int(seed),
        time_limit_s=float(time_limit_s),
        method=method,
        **_starts(max_starts, sum(len(c.w) for c in comps)),
    )
    say(f"dividing {len(comps):,} components")
    t = time.perf_counter()
    # the grid polygons and tables after the solve take time too (up to about the
    # tessellation's on large, irregular cities): keep that share of the limit for them
    reserve = min(0.6 * time_limit_s, 1.2 * budget.used_s() + 0.03 * time_limit_s)
    results = _solve_all(comps, base, budget, reserve, client)
    details["solve_s"] = time.perf_counter() - t
    solved = np.full(n, -1, dtype=np.int64)
    offset = 0
    for nodes, res in zip(unit_nodes, results, strict=False):
        solved[nodes] = offset + res.labels
        offset += len(res.pocket)
    ekind = np.where(rbar, 2, np.where(rgap, 1, 0)).astype(np.int8)
    if method == "heuristic" and unit_nodes:
        # pockets at block borders (or left by building sizes) join or re-divide with
        # neighbouring grids, across blocks where they must
        t = time.perf_counter()
        before = int(_pocket_count(solved, hh, min_households))
        solved = fix_pockets(
            solved,
            hh,
            adj.xy,
            rei,
            rej,
            ekind,
            base,
            seed=int(seed),
            deadline=time.perf_counter() + max(budget.left_s(reserve), 0.02 * time_limit_s),
        )
        details["pocket_fix_s"] = time.perf_counter() - t
        details["pockets_before_fix"] = before
    inplay = solved >= 0
    codes, _ = pd.factorize(solved[inplay])
    grid_of[inplay] = len(grid_kind) + codes
    k_solved = int(codes.max()) + 1 if len(codes) else 0
    h_solved = np.bincount(codes, weights=hh[inplay], minlength=k_solved).astype(np.int64)
    region = _components(n, rei, rej)  # the whole connected area within the community
    region_h = np.bincount(region, weights=hh * reg)
    region_n = np.bincount(region, weights=reg.astype(float))
    first = np.full(k_solved, -1, dtype=np.int64)
    first[codes[::-1]] = np.flatnonzero(inplay)[::-1]
    for g in range(k_solved):
        if h_solved[g] >= min_households:
            grid_kind.append("regular")
            grid_reason.append("")
            continue
        grid_kind.append("undersized")
        grid_reason.append(
            _pocket_reason(
                g,
                codes,
                np.flatnonzero(inplay),
                hh,
                h_solved,
                region,
                region_h,
                region_n,
                first[g],
                rei,
                rej,
                ekind,
                grid_of,
                base,
                max_link_m,
            )
        )

    # clusters without households: attached to a neighbouring grid, else their own
    for nodes in zero_units:
        _attach_zero(nodes, grid_of, grid_kind, grid_reason, rei, rej, rbar | rgap)

    labels_num = grid_of
    assert (labels_num >= 0).all(), "a building was left without a grid"
    t = time.perf_counter()
    grids, labels = _assemble(
        buildings,
        adj,
        labels_num,
        grid_kind,
        grid_reason,
        comm,
        hh,
        ei,
        ej,
        bar,
        base,
        households_per_worker,
        (ga, gb, gbar, valid),
    )
    details["assemble_s"] = time.perf_counter() - t
    unit_h = float(sum(hh[nodes].sum() for nodes in unit_nodes))
    cost = float(sum(r.cost for r in results))
    if method == "heuristic" and unit_nodes:
        cost = _plan_cost(adj.xy, hh, codes, np.flatnonzero(inplay), base)
    objective = cost / unit_h if unit_h else 0.0
    bounds_known = [r.bound for r in results]
    bound = (
        float(sum(bounds_known)) / unit_h
        if results and unit_h and all(b is not None for b in bounds_known)
        else None
    )
    status = combine_status(r.status for r in results)
    moved = None
    if prev_codes is not None:
        labels, grids, moved = _match_previous(labels, grids, prev_codes, prev_uniques, hh)
    details["component_seconds_max"] = max((r.seconds for r in results), default=0.0)
    details["gap_links"] = grids.attrs.pop("gap_links")
    return Partition(
        labels=labels,
        grids=grids,
        status=status,
        objective=objective,
        bound=bound,
        runtime_s=time.perf_counter() - t0,
        min_households=int(min_households),
        max_households=int(max_households),
        households_moved=moved,
        details=details,
    )


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


def _starts(max_starts: int | None, n_solve: int) -> dict:
    """Start settings of the heuristic for a call over ``n_solve`` buildings."""
    # the exact polish of grid pairs/triples only on small inputs (where it closes the
    # last few percent to the optimum; on cities it would cost seconds per block)
    polish = int(n_solve) <= _POLISH_MAX_CALL
    if max_starts is None:
        return {
            "max_starts": 8,
            "call_starts": max(1, _SEARCH_BUDGET // max(1, int(n_solve))),
            "polish": polish,
        }
    k = max(1, int(max_starts))
    return {"max_starts": k, "call_starts": k, "start_work": 10**12, "polish": polish}


def _validate(
    buildings: gpd.GeoDataFrame,
    households: str,
    lo: int,
    hi: int,
    time_limit_s: float,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    geoms = _geoms_of(buildings)
    if len(buildings) == 0:
        raise InputError("buildings is empty: nothing to divide into grids")
    if not buildings.index.is_unique:
        dup = buildings.index[buildings.index.duplicated()].unique()[:10].tolist()
        raise InputError(
            f"buildings.index has duplicate labels (first: {dup}); grid labels need a unique index"
        )
    check(min_households=lo, max_households=hi, time_limit_s=time_limit_s, method=method)
    if households not in buildings.columns:
        raise InputError(
            f"buildings has no column {households!r} (columns: {list(buildings.columns)}); "
            "estimate households with gridopt.estimate_households or pass households=<column>"
        )
    col = pd.to_numeric(buildings[households], errors="coerce")
    bad = col.isna() | (col < 0) | ~np.isfinite(col.fillna(0))
    if bad.any():
        rows = buildings.index[bad.to_numpy()][:10].tolist()
        raise InputError(
            f"column {households!r} has {int(bad.sum())} missing, non-numeric or negative values "
            f"(first rows: {rows}); households must be integers >= 0"
        )
    frac = (col - col.round()).abs() > 1e-6
    if frac.any():
        rows = buildings.index[frac.to_numpy()][:10].tolist()
        raise InputError(
            f"column {households!r} has {int(frac.sum())} non-integer values (first rows: {rows}); round them"
        )
    hh = col.round().astype(np.int64).to_numpy()
    if hh.sum() == 0:
        raise InputError(
            f"all {len(hh)} buildings have 0 households in column {households!r}: there is nothing to divide; "
            "estimate households with gridopt.estimate_households"
        )
    return geoms, hh


def _communities(buildings: gpd.GeoDataFrame, communities: object) -> np.ndarray:
    n = len(buildings)
    if communities is None:
        return np.full(n, "all", dtype=object)
    if isinstance(communities, str):
        if communities not in buildings.columns:
            raise InputError(
                f"communities={communities!r} is not a column of buildings (columns: {list(buildings.columns)})"
            )
        col = buildings[communities]
        if col.isna().any():
            rows = buildings.index[col.isna().to_numpy()][:10].tolist()
            raise InputError(
                f"column {communities!r} has {int(col.isna().sum())} missing values (first rows: {rows})"
            )
        return col.astype(str).to_numpy(dtype=object)
    if isinstance(communities, gpd.GeoDataFrame):
        polys = communities
        if "community" not in polys.columns:
            polys = polys.assign(community=polys.index.astype(str))
        if polys.crs is not None and buildings.crs is not None:
            polys = reproject(polys, buildings.crs, what="communities", warn=True)
        pts = gpd.GeoDataFrame(
            geometry=buildings.geometry.representative_point().to_numpy(), crs=buildings.crs
        )
        tree = shapely.STRtree(polys.geometry.to_numpy())
        bi, pi = tree.query(pts.geometry.to_numpy(), predicate="within")
        out = np.full(n, None, dtype=object)
        names = polys["community"].astype(str).to_numpy()
        out[bi[::-1]] = names[pi[::-1]]  # first polygon wins where polygons overlap
        miss = np.flatnonzero(pd.isna(out))
        if len(miss):
            near = tree.query_nearest(
                pts.geometry.to_numpy()[miss], return_distance=False, all_matches=False
            )
            out[miss[near[0]]] = names[near[1]]
            warnings.warn(
                f"{len(miss)} buildings lie outside every community polygon (first rows: "
                f"{buildings.index[miss][:10].tolist()}); each was given the nearest community",
                RepairWarning,
                stacklevel=3,
            )
        return out
    raise InputError(
        f"communities must be a column name or a GeoDataFrame of community polygons, got {type(communities).__name__}"
    )


def _exclusive(buildings: gpd.GeoDataFrame, exclusive: object) -> np.ndarray:
    n = len(buildings)
    if exclusive is None or exclusive is False:
        return np.zeros(n, dtype=bool)
    if exclusive is True:
        if "exclusive_candidate" not in buildings.columns:
            raise InputError(
                "exclusive=True needs an 'exclusive_candidate' column (from gridopt.read_buildings); "
                "pass a boolean Series instead"
            )
        return buildings["exclusive_candidate"].fillna(False).astype(bool).to_numpy()
    if isinstance(exclusive, pd.Series):
        if not exclusive.index.equals(buildings.index):
            missing = buildings.index.difference(exclusive.index)
            if len(missing):
                raise InputError(
                    f"the exclusive mask lacks {len(missing)} building labels (first: {missing[:10].tolist()})"
                )
            exclusive = exclusive.reindex(buildings.index)
        return exclusive.fillna(False).astype(bool).to_numpy()
    raise InputError(
        f"exclusive must be None, True/False or a boolean Series, got {type(exclusive).__name__}"
    )


def _previous(
    buildings: gpd.GeoDataFrame, previous: object
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if previous is None:
        return None, None
    if not isinstance(previous, pd.Series):
        raise InputError(
            f"previous must be a Series of old grid ids, got {type(previous).__name__}"
        )
    extra = previous.index.difference(buildings.index)
    if len(extra) and len(extra) == len(previous):
        raise InputError(
            "previous shares no labels with buildings.index; align it with the buildings"
        )
    prev = previous.reindex(buildings.index)
    codes, uniques = pd.factorize(prev, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


# ---------------------------------------------------------------------------
# components
# ---------------------------------------------------------------------------


def _components(n: int, ei: np.ndarray, ej: np.ndarray) -> np.ndarray:
    m = coo_matrix((np.ones(len(ei), dtype=np.int8), (ei, ej)), shape=(n, n))
    return connected_components(m, directed=False)[1]


def _units(
    n: int,
    reg: np.ndarray,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    bar: np.ndarray,
    lo: int,
    hi: int,
    kind: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Solve unit per ordinary building (-1 for special ones) and the number of merges.

    Blocks are the components without separating edges ``bar`` (barriers and gap links);
    a block whose households cannot make whole grids is merged with a neighbouring block
    across a separating edge (the one that makes the union feasible, else the smallest;
    across a gap link before a barrier, ``kind`` marking the barrier edges), until no such
    merge is possible.
    """
    kind = np.zeros(len(ei), dtype=bool) if kind is None else np.asarray(kind, dtype=bool)
    block = _components(n, ei[~bar], ej[~bar])
    nb = int(block.max()) + 1 if n else 0
    weight = np.bincount(block, weights=hh * reg, minlength=nb).astype(np.int64)
    parent = list(range(nb))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # count of separating edges between two blocks, and whether all of them are barriers
    pairs = (
        pd.DataFrame({"a": block[ei[bar]], "b": block[ej[bar]], "k": kind[bar].astype(int)})
        .groupby(["a", "b"])["k"]
        .agg(["size", "min"])
    )
    nbrs: dict[int, dict[int, int]] = {}
    only_barrier: dict[tuple[int, int], bool] = {}
    for (a, b), cnt, kmin in zip(pairs.index, pairs["size"], pairs["min"], strict=False):
        a, b = int(a), int(b)
        if a != b:
            for x, y in ((a, b), (b, a)):
                nbrs.setdefault(x, {})[y] = nbrs.setdefault(x, {}).get(y, 0) + int(cnt)
                only_barrier[x, y] = only_barrier.get((x, y), True) and bool(kmin)
    w = weight.tolist()
    merges = 0
    changed = True
    while changed:
        changed = False
        roots = {find(b) for b in list(nbrs)}
        for r in sorted(roots, key=lambda x: (w[x], x)):
            r = find(r)
            if _feasible(w[r], lo, hi):
                continue
            cand: dict[int, int] = {}
            barrier_only: dict[int, bool] = {}
            for x, b in _members_nbrs(r, nbrs, find):
                cand[b] = cand.get(b, 0) + 1
                barrier_only[b] = barrier_only.get(b, True) and only_barrier.get((r, x), True)
            if not cand:
                continue
            best = min(
                cand,
                key=lambda b: (
                    not _feasible(w[r] + w[b], lo, hi),
                    barrier_only[b],
                    -cand[b],
                    w[b],
                    b,
                ),
            )
            parent[best] = r
            w[r] += w[best]
            # move the neighbour lists of the merged block onto the root
            for x, c in nbrs.pop(best, {}).items():
                nbrs.setdefault(r, {})[x] = nbrs.setdefault(r, {}).get(x, 0) + c
                only_barrier[r, x] = only_barrier.get((r, x), True) and only_barrier.get(
                    (best, x), True
                )
            merges += 1
            changed = True
    unit = (
        np.array([find(b) for b in range(nb)], dtype=np.int64)[block]
        if nb
        else np.zeros(0, np.int64)
    )
    return np.where(reg, unit, -1), merges


def _members_nbrs(
    r: int, nbrs: dict[int, dict[int, int]], find: Callable[[int], int]
) -> list[tuple[int, int]]:
    """(neighbour block as listed, its current root) for the neighbours of root ``r``."""
    out = []
    for x in nbrs.get(r, {}):
        fx = find(x)
        if fx != r:
            out.append((x, fx))
    return out


def _component(
    key: int,
    nodes: np.ndarray,
    xy: np.ndarray,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    bar: np.ndarray,
    street: np.ndarray,
    prev_codes: np.ndarray | None,
) -> _Component:
    local = np.full(len(hh), -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    inside = (local[ei] >= 0) & (local[ej] >= 0)
    return _Component(
        key=key,
        xy=xy[nodes].astype(float),
        w=hh[nodes].astype(np.int64),
        ei=local[ei[inside]],
        ej=local[ej[inside]],
        barrier=bar[inside].astype(bool),
        street=street[inside].astype(bool),
        prev=None if prev_codes is None else prev_codes[nodes],
    )


def _solve_all(
    comps: list[_Component], base: _Params, budget: _Budget, reserve_s: float, client: object | None
) -> list[_ComponentResult]:
    if not comps:
        return []
    sizes = np.array([len(c.w) for c in comps], dtype=float)
    if client is not None:
        remaining = max(budget.left_s(reserve_s), 0.05)
        # pure keys from the content, retries, results in component order
        return map_components(
            _solve_component, comps, args=(_with_time(base, remaining),), client=client, sizes=sizes
        )
    out = []
    left = sizes.sum()
    for comp, size in zip(comps, sizes, strict=False):
        remaining = budget.left_s(reserve_s)
        # a share of the remaining time by size, four times the fair one (most components
        # converge well before it, and what they leave goes to the later ones)
        share = max(remaining * min(1.0, 4 * size / left), min(0.5, remaining))
        out.append(_solve_component(comp, _with_time(base, max(share, 1e-3))))
        left -= size
    return out


@dataclass(frozen=True)
class _Budget:
    """The grid stage's time limit, counted in CPU seconds of the calling thread.

    A wall-clock deadline stops the search after less work on a busy machine, so the
    same seed would give other grids under load. The limit is therefore counted in the
    CPU time of the thread that runs the search (other processes and solver threads do
    not count), and what is left is handed to a solve as wall seconds at the pace the
    thread has had so far (``wall / cpu`` since the start, at least 1). A solve then
    stops after about the same work whatever the load, and the search's own work limits
    (starts, rounds, patience) end it long before on ordinary inputs.
    """

    limit_s: float
    wall0: float
    cpu0: float

    @classmethod
    def start(cls, limit_s: float) -> _Budget:
        return cls(float(limit_s), time.perf_counter(), time.thread_time())

    def used_s(self) -> float:
        """CPU seconds used so far."""
        return time.thread_time() - self.cpu0

    def left_s(self, reserve_s: float = 0.0) -> float:
        """Wall seconds to give the next solve: CPU seconds left, at the pace so far."""
        cpu = self.used_s()
        wall = time.perf_counter() - self.wall0
        pace = max(1.0, wall / cpu) if cpu > 0.05 else 1.0
        return max(self.limit_s - reserve_s - cpu, 0.0) * pace


def _with_time(p: _Params, seconds: float) -> _Params:
    return replace(p, time_limit_s=float(seconds))


def _attach_zero(
    nodes: np.ndarray,
    grid_of: np.ndarray,
    grid_kind: list[str],
    grid_reason: list[str],
    ei: np.ndarray,
    ej: np.ndarray,
    bar: np.ndarray,
) -> None:
    """Buildings without households join a neighbouring grid (any edge, barrier last)."""
    inset = np.zeros(len(grid_of), dtype=bool)
    inset[nodes] = True
    cand = []
    for a, b, is_bar in ((ei, ej, bar), (ej, ei, bar)):
        m = inset[a] & ~inset[b] & (grid_of[b] >= 0)
        for g, ib in zip(grid_of[b[m]], is_bar[m], strict=False):
            kind = grid_kind[g]
            cand.append((bool(ib), kind == "exclusive", kind == "undersized", int(g)))
    if cand:
        grid_of[nodes] = min(cand)[3]
        return
    grid_of[nodes] = len(grid_kind)
    grid_kind.append("undersized")
    grid_reason.append(
        f"undersized: {len(nodes)} buildings without households (non-residential) and no neighbouring "
        "grid in their community to attach to"
    )


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def _assemble(
    buildings: gpd.GeoDataFrame,
    adj: object,
    labels_num: np.ndarray,
    grid_kind: list[str],
    grid_reason: list[str],
    comm: np.ndarray,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    bar: np.ndarray,
    p: _Params,
    per_worker: int,
    gaps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    k = len(grid_kind)
    used = np.unique(labels_num)
    xy = adj.xy
    h = np.bincount(labels_num, weights=hh, minlength=k).astype(np.int64)
    nb = np.bincount(labels_num, minlength=k)
    ga, gb, gbar, valid = gaps
    nn = len(labels_num)

    def pieces_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        same = labels_num[a] == labels_num[b]
        piece = _components(nn, a[same], b[same])
        return (
            pd.Series(piece)
            .groupby(labels_num)
            .nunique()
            .reindex(range(k), fill_value=1)
            .to_numpy()
        )

    # barrier crossings: pieces of the grid held together only across barriers, minus one;
    # gap links: pieces held together only by links across empty land
    plain = pieces_of(ei[~bar], ej[~bar])
    pieces = pieces_of(np.concatenate([ei[~bar], ga[~gbar]]), np.concatenate([ej[~bar], gb[~gbar]]))
    gap_used = plain - pieces
    cx = np.bincount(labels_num, weights=xy[:, 0], minlength=k) / np.maximum(nb, 1)
    cy = np.bincount(labels_num, weights=xy[:, 1], minlength=k) / np.maximum(nb, 1)
    first_comm = pd.Series(comm).groupby(labels_num).first().reindex(range(k)).to_numpy()
    # ids ordered by community, then north to south, west to east
    order = sorted(
        used.tolist(), key=lambda g: (str(first_comm[g]), -round(cy[g], -1), round(cx[g], -1), g)
    )
    width = max(4, len(str(len(order))))
    gid = {g: f"G{r + 1:0{width}d}" for r, g in enumerate(order)}
    linked = set(labels_num[ga][labels_num[ga] == labels_num[gb]].tolist())
    polys = dissolve_cells(adj.cells, labels_num, keep_pieces=linked)
    used = _link_polygons(polys, labels_num, ei, ej, ga, gb, valid, linked)
    _close_pieces(polys, linked)
    order_idx = np.argsort(labels_num, kind="stable")
    splits = np.split(order_idx, np.flatnonzero(np.diff(labels_num[order_idx])) + 1)
    rms = {}
    for members in splits:
        g = int(labels_num[members[0]])
        c, _ = _grid_cost(xy, hh, members, _Params(1, 1, 0.0, 0.0, 0, 1.0))
        rms[g] = math.sqrt(c / h[g]) if h[g] > 0 else 0.0
    rows = []
    for g in order:
        geom = polys[g]
        area, perim = geom.area, geom.length
        rows.append(
            {
                "grid_id": gid[g],
                "community": first_comm[g],
                "households": int(h[g]),
                "n_buildings": int(nb[g]),
                "kind": grid_kind[g],
                "reason": grid_reason[g],
                "grid_workers": max(1, math.ceil(h[g] / per_worker)) if h[g] > 0 else 0,
                "barrier_crossings": int(pieces[g] - 1),
                "gap_links": int(gap_used[g]),
                "rms_distance_m": rms[g],
                "compactness": 4 * math.pi * area / perim**2 if perim > 0 else 0.0,
                "geometry": geom,
            }
        )
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=buildings.crs)
    # non-regular reasons must be non-empty; a regular grid spanning a barrier or a gap says why
    for r in grids.index[(grids["kind"] == "regular") & (grids["barrier_crossings"] > 0)]:
        grids.loc[r, "reason"] = (
            f"crosses {grids.loc[r, 'barrier_crossings']} barrier(s): the households on one side "
            "cannot make a grid alone"
        )
    for r in grids.index[(grids["kind"] == "regular") & (grids["gap_links"] > 0)]:
        note = (
            f"joins {grids.loc[r, 'gap_links'] + 1} clusters of buildings across empty land: "
            "a cluster alone cannot make a grid"
        )
        old = grids.loc[r, "reason"]
        grids.loc[r, "reason"] = f"{old}; {note}" if old else note
    labels = pd.Series([gid[g] for g in labels_num], index=buildings.index, name="grid_id")
    idx = buildings.index
    links = pd.DataFrame(
        {
            "building_a": [idx[a] for a, *_ in used],
            "building_b": [idx[b] for _, b, *_ in used],
            "gap_m": [d for *_, d, _ in used],
            "grid_id": [gid[g] for *_, g in used],
        }
    )
    grids.attrs["gap_links"] = links
    return grids, labels


def _link_polygons(
    polys: dict,
    labels_num: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    ga: np.ndarray,
    gb: np.ndarray,
    geoms: np.ndarray,
    linked: set,
    width_m: float = 0.2,
) -> list[tuple[int, int, float, int]]:
    """Join the separate pieces of a grid's land by thin corridors along its gap links.

    The cells of buildings linked across empty land do not touch; a corridor ``width_m``
    wide along the shortest line between the two footprints (minus other grids' land)
    keeps the grid one Polygon. Edits ``polys`` in place; returns the links used as
    ``(building a, building b, length, grid)`` positions.
    """
    inside = labels_num[ga] == labels_num[gb]
    if not inside.any():
        return []
    ga, gb = ga[inside], gb[inside]
    same = labels_num[ei] == labels_num[ej]
    piece = _components(len(labels_num), ei[same], ej[same])
    cross = piece[ga] != piece[gb]
    ga, gb = ga[cross], gb[cross]
    if not len(ga):
        return []
    lines = shapely.shortest_line(geoms[ga], geoms[gb])
    order = np.argsort(shapely.length(lines), kind="stable")
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    chosen: dict[int, list] = {}
    used = []
    for e in order.tolist():  # Kruskal: the shortest links that join the pieces
        a, b = find(int(piece[ga[e]])), find(int(piece[gb[e]]))
        if a != b:
            parent[a] = b
            chosen.setdefault(int(labels_num[ga[e]]), []).append(lines[e])
            used.append((int(ga[e]), int(gb[e]), float(lines[e].length), int(labels_num[ga[e]])))
    keys = list(polys)
    geoms_all = np.array([polys[g] for g in keys], dtype=object)
    tree = shapely.STRtree(geoms_all)
    for g, links in chosen.items():
        corridor = shapely.union_all(shapely.buffer(np.array(links), width_m / 2, quad_segs=1))
        near = [k for k in tree.query(corridor, predicate="intersects") if keys[k] != g]
        if near:
            corridor = shapely.difference(corridor, shapely.union_all(geoms_all[near]))
        # the grid's land (already dissolved, maybe in pieces) plus the corridors
        geom = _safe_union([polys[g], corridor])
        if geom.geom_type != "Polygon":
            # another grid's land cuts the corridor: keep the grid whole (a sliver of overlap)
            raw = shapely.union_all(shapely.buffer(np.array(links), width_m / 2, quad_segs=1))
            geom = _safe_union([geom, raw])
        if geom.geom_type != "Polygon":
            closed = shapely.buffer(shapely.buffer(geom, 0.05, quad_segs=1), -0.05, quad_segs=1)
            geom = closed if closed.geom_type == "Polygon" else geom
        if geom.geom_type != "Polygon":
            log.warning("grid %s: land in %s pieces after linking", g, len(shapely.get_parts(geom)))
            geom = max(shapely.get_parts(geom), key=lambda q: q.area)
        polys[g] = geom
    return used


def _close_pieces(polys: dict, labels: set) -> None:
    """Grids whose land still touches only at points: a hair-thin closing, as in dissolve."""
    for g in labels:
        geom = polys[g]
        if geom.geom_type != "Polygon" and not geom.is_empty:
            closed = shapely.buffer(shapely.buffer(geom, 0.05, quad_segs=1), -0.05, quad_segs=1)
            polys[g] = (
                closed
                if closed.geom_type == "Polygon"
                else max(shapely.get_parts(geom), key=lambda q: q.area)
            )


def _safe_union(geoms: list) -> shapely.Geometry:
    try:
        return shapely.union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms, grid_size=0.01)


def _pocket_count(labels: np.ndarray, hh: np.ndarray, lo: int) -> int:
    inplay = labels >= 0
    if not inplay.any():
        return 0
    codes, _ = pd.factorize(labels[inplay])
    return int((np.bincount(codes, weights=hh[inplay]) < lo).sum())


def _plan_cost(
    xy: np.ndarray, hh: np.ndarray, codes: np.ndarray, idx: np.ndarray, p: _Params
) -> float:
    """The objective's cost of the solved grids (pocket penalties left out)."""
    if not len(codes):
        return 0.0
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    total = 0.0
    for grp in np.split(order, bounds):
        members = idx[grp]
        c, _ = _grid_cost(xy, hh, members, p)
        short = max(p.min_households - int(hh[members].sum()), 0)
        total += c - _POCKET_PENALTY * short
    return total


def _pocket_reason(
    g: int,
    codes: np.ndarray,
    idx: np.ndarray,
    hh: np.ndarray,
    h_solved: np.ndarray,
    region: np.ndarray,
    region_h: np.ndarray,
    region_n: np.ndarray,
    first: int,
    ei: np.ndarray,
    ej: np.ndarray,
    ekind: np.ndarray,
    grid_of: np.ndarray,
    p: _Params,
    max_link_m: float,
) -> str:
    """Why grid ``g`` stays below the minimum, with the numbers."""
    lo, hi = p.min_households, p.max_households
    members = idx[codes == g]
    h = int(h_solved[g])
    r = region[first]
    whole_h, whole_n = int(region_h[r]), int(region_n[r])
    if whole_h < lo:
        return (
            f"undersized: its {len(members)} buildings hold {h} households (< {lo}); the whole "
            f"connected area around them in their community ({whole_n} buildings, {whole_h} "
            f"households, counting barrier crossings and links across up to {max_link_m:.0f} m "
            "of empty land) holds fewer than the minimum, so there is no grid to join"
        )
    inset = np.zeros(len(hh), dtype=bool)
    inset[members] = True
    nb_grids = set()
    for a, b in ((ei, ej), (ej, ei)):
        m = inset[a] & ~inset[b] & (grid_of[b] >= 0)
        nb_grids |= set(grid_of[b[m]].tolist())
    nb_h = sorted(int(hh[grid_of == x].sum()) for x in nb_grids)
    biggest = int(hh[members].max()) if len(members) else 0
    return (
        f"undersized: {h} households (< {lo}) in {len(members)} buildings (largest {biggest}); "
        f"joining or re-dividing it with its neighbouring grids ({', '.join(map(str, nb_h))} "
        f"households) gives no grids within {lo}-{hi} because of the building sizes"
    )


def _match_previous(
    labels: pd.Series,
    grids: gpd.GeoDataFrame,
    prev_codes: np.ndarray,
    prev_uniques: np.ndarray,
    hh: np.ndarray,
) -> tuple[pd.Series, gpd.GeoDataFrame, int]:
    """Give each new grid the old id it shares most households with; count households moved."""
    known = prev_codes >= 0
    df = pd.DataFrame(
        {"new": labels.to_numpy()[known], "old": prev_codes[known], "h": hh[known] + 1e-3}
    )
    overlap = df.groupby(["new", "old"])["h"].sum().sort_values(ascending=False, kind="stable")
    rename: dict[str, str] = {}
    taken: set[int] = set()
    for (new, old), _ in overlap.items():
        if new in rename or old in taken:
            continue
        rename[new] = str(prev_uniques[old])
        taken.add(old)
    # new grids without an old partner keep fresh ids that do not clash with old ones
    old_ids = {str(u) for u in prev_uniques}
    fresh = (f"N{k:04d}" for k in range(1, 10**7))
    for new in grids["grid_id"]:
        if new not in rename:
            nid = next(fresh)
            while nid in old_ids:
                nid = next(fresh)
            rename[new] = nid
    new_labels = labels.map(rename)
    grids = grids.assign(grid_id=grids["grid_id"].map(rename))
    prev_str = np.array([str(prev_uniques[c]) if c >= 0 else "" for c in prev_codes], dtype=object)
    moved = int(hh[known & (new_labels.to_numpy(dtype=object) != prev_str)].sum())
    return new_labels, grids, moved
