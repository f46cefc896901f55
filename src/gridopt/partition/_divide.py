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
    _as_polygons,
    _gap_links,
    _geoms_of,
    _streets_in_crs,
    dissolve_cells,
)
from gridopt.blocks import EDGE_CLASSES, HARD_CODES, _Land, land_graph
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
# settlements more than this many times max_link_m apart are never joined into one grid
_FAR_LINKS = 4.0
# calls of up to this many buildings get the exact polish (gridopt.partition._polish)
_POLISH_MAX_CALL = 150


#: Default weight of the priced boundary against compactness (m² per metre of price):
#: large enough that the boundary decides and compactness only breaks ties.
BOUNDARY_WEIGHT = 1e6


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
    area: object = None,
    boundary_classes: tuple[str, ...] | None = None,
    boundary_weight: float = BOUNDARY_WEIGHT,
) -> Partition:
    """Divide buildings into contiguous grids of ``min_households``-``max_households`` households.

    The study area (``area``, else the community polygons, else a hull of the buildings)
    is cut into blocks by the streets, rivers, coast, railways and community lines
    (:mod:`gridopt.blocks`); inside each block every building gets the land nearest to it,
    so the grids' polygons tile the area. Neighbours are buildings whose land touches,
    inside a block or across a street. The land is cut into solve units (settlements
    between hard barriers and main streets; a unit too small to make a grid joins a
    neighbour across a main street or open land first, a hard barrier last, and the
    crossing is counted). Each unit is divided with whole blocks as nodes where the band
    allows (buildings where it does not) by recursive random-spanning-tree bisection, then
    improved by boundary moves and merge-and-resplit of neighbouring grids. Land without
    households joins the neighbouring grid with the longest shared boundary.

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
        Kept for the callers of the former tessellation; the cells now fill the blocks,
        so it has no effect here (see :func:`gridopt.adjacency.building_graph`).
    max_link_m
        Buildings whose land touches and whose footprints lie within this distance form
        one *settlement*; a settlement is divided on its own, and one below the band joins
        a neighbouring settlement of its community across open land where that makes a
        grid (counted in ``grids["gap_links"]``; never across more than four times this
        distance), else it stays one undersized grid (one per village, never one per
        farmhouse). Separate pieces of land (islands) are
        linked up to this distance.
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
    area
        The study area: a shapely (Multi)Polygon, GeoSeries or GeoDataFrame of polygons;
        the grid polygons tile it. Default: the community polygons, else a concave hull
        of the buildings with a 30 m margin.
    boundary_classes
        The classes of lines that bound blocks (:data:`gridopt.tags.BOUNDARY_CLASSES`:
        ``residential``, ``main``, ``major``, ``water``, ``railway``); default all.
        Lines of other classes (footways, service roads) never bound blocks.
    boundary_weight
        Weight of the priced grid boundary (:data:`CUT_PRICE_PER_M` per metre) against
        compactness: by default the boundary decides and compactness breaks ties; ``0``
        divides by compactness alone (the objective before boundaries were priced).

    Returns
    -------
    Partition

    Raises
    ------
    gridopt.InputError
        Bad band, missing or negative households, all households zero, geographic CRS,
        unknown community/exclusive columns, misaligned ``previous``, an ``area`` that
        misses buildings (the message says how many), unknown ``boundary_classes``.

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
    check(boundary_weight=boundary_weight)
    geoms, hh = _validate(
        buildings, households, min_households, max_households, time_limit_s, method
    )
    budget = _Budget.start(time_limit_s)
    n = len(buildings)
    if not (isinstance(max_link_m, (int, float)) and math.isfinite(max_link_m) and max_link_m >= 0):
        raise InputError(f"max_link_m must be a distance in metres >= 0, got {max_link_m!r}")
    comm = _communities(buildings, communities)
    excl = _exclusive(buildings, exclusive)
    prev_codes, prev_uniques = _previous(buildings, previous)

    if streets is not None:
        streets = _streets_in_crs(streets, buildings.crs)
    comm_polys = _community_polygons(communities, buildings.crs)
    say(f"blocks and cells of {n:,} buildings")
    t = time.perf_counter()
    valid = _as_polygons(np.asarray(geoms, dtype=object))
    land = land_graph(
        valid,
        crs=buildings.crs,
        streets=streets,
        area=area,
        communities=comm_polys,
        boundary_classes=boundary_classes,
    )
    details: dict = {
        "tessellation_s": time.perf_counter() - t,
        "edges": len(land.i),
        "blocks": len(land.blocks),
        "empty_blocks": len(land.empty),
        "blocks_note": land.note,
    }
    if land.note:
        say(land.note)
    # nodes: the buildings, then the blocks without buildings (land with no households)
    nn = land.n_nodes
    node_geoms = np.concatenate([valid, land.blocks[land.empty]])
    xy = np.vstack(
        [
            shapely.get_coordinates(shapely.point_on_surface(valid)),
            shapely.get_coordinates(shapely.point_on_surface(land.blocks[land.empty])),
        ]
    )
    comm = np.concatenate([comm, _empty_communities(land, comm, comm_polys)])
    hh = np.concatenate([hh, np.zeros(len(land.empty), dtype=np.int64)])
    excl = np.concatenate([excl, np.zeros(len(land.empty), dtype=bool)])
    if prev_codes is not None:
        prev_codes = np.concatenate([prev_codes, np.full(len(land.empty), -1, dtype=np.int64)])
    same = comm[land.i] == comm[land.j]  # grids never straddle communities
    ei, ej, ecls, eshared = land.i[same], land.j[same], land.cls[same], land.shared_m[same]
    bar = np.isin(ecls, list(HARD_CODES))
    main = ecls == EDGE_CLASSES.index("main")
    street = (ecls > 0) & ~bar
    # settlements: buildings whose land touches within max_link_m of each other; open land
    # between settlements and the land of empty blocks separate the solve units
    both_b = (ei < n) & (ej < n)
    dist = np.zeros(len(ei))
    dist[both_b] = shapely.distance(valid[ei[both_b]], valid[ej[both_b]])
    open_land = both_b & (dist > float(max_link_m))
    # settlements further apart than a worker walks are never joined
    too_far = both_b & (dist > _FAR_LINKS * float(max_link_m))
    to_empty = ~both_b

    oversized = (hh > max_households) & ~excl
    special = excl | oversized
    grid_of = np.full(nn, -1, dtype=np.int64)  # global grid number per node
    grid_kind: list[str] = []
    grid_reason: list[str] = []

    # exclusive grids: connected clusters of exclusive buildings (same community)
    if excl.any():
        both = excl[ei] & excl[ej] & ~bar
        lab = _components(nn, ei[both], ej[both])
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

    # gap links: clusters of ordinary land that do not touch (parts of the area apart, or
    # separated by an exclusive or oversized building) are linked to the nearest other
    # clusters of their community, to be used only where needed
    reg = ~special
    t = time.perf_counter()
    ga, gb, _ = _gap_links(
        node_geoms, xy, ei, ej, mask=reg, group=comm, max_link_m=float(max_link_m)
    )
    gcls = np.full(len(ga), EDGE_CLASSES.index("residential"), dtype=np.int8)
    details["gap_links_s"] = time.perf_counter() - t
    details["gap_link_candidates"] = len(ga)

    # solve units: settlements within blocks between hard barriers and main streets,
    # merged where one cannot make whole grids (across main streets and open land first)
    keep = reg[ei] & reg[ej] & ~too_far
    rei = np.concatenate([ei[keep], ga])
    rej = np.concatenate([ej[keep], gb])
    rbar = np.concatenate([bar[keep], np.zeros(len(ga), dtype=bool)])
    rgap = np.concatenate([(open_land | to_empty | main)[keep], np.ones(len(ga), dtype=bool)])
    rstreet = np.concatenate([street[keep], np.ones(len(ga), dtype=bool)])
    rcls = np.concatenate([ecls[keep], gcls])
    rshared = np.concatenate([eshared[keep], np.zeros(len(ga))])
    units, crossings_merged = _units(
        nn, reg, hh, rei, rej, rbar | rgap, min_households, max_households, kind=rbar
    )
    details["barrier_merges"] = crossings_merged
    cut_cost = _cut_cost(rcls, rshared)

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
            _component(
                len(comps),
                nodes,
                xy,
                hh,
                rei,
                rej,
                rbar | rgap,
                rstreet,
                prev_codes,
                cut_cost=cut_cost,
            )
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
        cut_weight=float(boundary_weight),
        **_starts(max_starts, sum(len(c.w) for c in comps)),
    )
    say(f"dividing {len(comps):,} components")
    t = time.perf_counter()
    # the grid polygons and tables after the solve take time too (up to about the
    # tessellation's on large, irregular cities): keep that share of the limit for them
    reserve = min(0.6 * time_limit_s, 1.2 * budget.used_s() + 0.03 * time_limit_s)
    if method == "heuristic":
        node_block = np.concatenate([land.block_of, len(land.blocks) + np.arange(len(land.empty))])
        land_edge = np.arange(len(rei)) < len(rei) - len(ga)  # not a gap link
        results = _solve_blockwise(
            comps, unit_nodes, node_block, xy, hh, rei, rej, rbar | rgap, rstreet, prev_codes,
            rei[land_edge], rej[land_edge],
            cut_cost, base, budget, reserve, client, details,
        )  # fmt: skip
    else:
        results = _solve_all(comps, base, budget, reserve, client)
    details["solve_s"] = time.perf_counter() - t
    solved = np.full(nn, -1, dtype=np.int64)
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
            xy,
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
    region = _components(nn, rei, rej)  # the whole connected area within the community
    region_h = np.bincount(region, weights=hh * reg)
    region_n = np.bincount(region, weights=(reg & (np.arange(nn) < n)).astype(float))
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

    # land and buildings without households: the neighbouring grid of their community with
    # the longest shared boundary (hard barriers last), never across open land further than
    # a worker walks, else a grid of their own
    near = ~too_far
    _attach_land(
        zero_units, grid_of, grid_kind, grid_reason,
        ei[near], ej[near], eshared[near], bar[near], n,
    )  # fmt: skip

    labels_num = grid_of
    assert (labels_num >= 0).all(), "a building or a piece of land was left without a grid"
    t = time.perf_counter()
    grids, labels = _assemble(
        buildings,
        land,
        xy,
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
        (ga, gb, np.zeros(len(ga), dtype=bool), node_geoms),
        open_land,
        dist,
    )
    details["assemble_s"] = time.perf_counter() - t
    unit_h = float(sum(hh[nodes].sum() for nodes in unit_nodes))
    cost = float(sum(r.cost for r in results))
    if method == "heuristic" and unit_nodes:
        cost = _plan_cost(xy, hh, codes, np.flatnonzero(inplay), base)
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
        labels, grids, moved = _match_previous(labels, grids, prev_codes[:n], prev_uniques, hh[:n])
    details["component_seconds_max"] = max((r.seconds for r in results), default=0.0)
    details["gap_links"] = grids.attrs.pop("gap_links")
    metrics = _metrics(land, grids, grid_of, n, hh, ei, ej, ecls, max_households)
    metrics["boundary_m"] = grids.attrs.pop("cut_m")
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
        metrics=metrics,
    )


def _metrics(
    land: _Land,
    grids: gpd.GeoDataFrame,
    grid_of: np.ndarray,
    n: int,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    ecls: np.ndarray,
    max_households: int,
) -> dict:
    """Plan-wide figures of how the grids sit on the land (see :attr:`Partition.metrics`)."""
    cut = grid_of[land.i] != grid_of[land.j]
    length = np.nan_to_num(land.shared_m[cut])
    streetish = np.isin(land.cls[cut], [EDGE_CLASSES.index(c) for c in EDGE_CLASSES[1:-1]])
    total = float(length.sum())
    inner = (grid_of[ei] == grid_of[ej]) & (ei < n) & (ej < n)
    straddling = {}
    for c in EDGE_CLASSES[1:-1]:
        m = inner & (ecls == EDGE_CLASSES.index(c))
        straddling[c] = len(np.unique(grid_of[ei[m]]))
    union = shapely.union_all(grids.geometry.to_numpy())
    area = land.area.area
    # blocks that fit into one grid: how many lie whole inside one
    blk = pd.DataFrame({"block": land.block_of, "g": grid_of[:n], "h": hh[:n]})
    per_block = blk.groupby("block").agg(h=("h", "sum"), grids=("g", "nunique"))
    fits = per_block[per_block["h"] <= max_households]
    return {
        "boundary_on_streets": float((length * streetish).sum() / total) if total else float("nan"),
        "grids_straddling": straddling,
        "area_covered": float(shapely.intersection(union, land.area).area / area) if area else 1.0,
        "overlap_m2": float(max(grids.geometry.area.sum() - union.area, 0.0)),
        "undersized": int((grids["kind"] == "undersized").sum()),
        "gap_links": int(grids["gap_links"].sum()),
        "blocks": len(land.blocks),
        "blocks_whole": float((fits["grids"] == 1).mean()) if len(fits) else float("nan"),
        "blocks_note": land.note,
    }


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
            # land without households is no reason to merge (it joins a grid afterwards)
            if w[r] == 0 or _feasible(w[r], lo, hi):
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
    *,
    cut_cost: np.ndarray | None = None,
) -> _Component:
    local = np.full(len(hh), -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    inside = (local[ei] >= 0) & (local[ej] >= 0)
    extra = {}
    # the engine minimises the price of the cut edges where it knows how (issue 15)
    if cut_cost is not None and "cut_cost" in getattr(_Component, "__dataclass_fields__", {}):
        extra["cut_cost"] = np.asarray(cut_cost, dtype=float)[inside]
    return _Component(
        key=key,
        xy=xy[nodes].astype(float),
        w=hh[nodes].astype(np.int64),
        ei=local[ei[inside]],
        ej=local[ej[inside]],
        barrier=bar[inside].astype(bool),
        street=street[inside].astype(bool),
        prev=None if prev_codes is None else prev_codes[nodes],
        **extra,
    )


#: Price per metre of a grid boundary by edge class (index into ``EDGE_CLASSES``): through
#: a block its full length, along a street a fraction (residential streets least), along a
#: hard barrier or a community line (only crossed where one side cannot make a grid) a
#: fraction too; open land between settlements costs like a residential street.
CUT_PRICE_PER_M: dict[str, float] = {
    "block": 1.0,
    "residential": 0.1,
    "main": 0.2,
    "major": 0.3,
    "water": 0.3,
    "railway": 0.3,
    "community": 0.3,
}


def _cut_cost(cls: np.ndarray, shared_m: np.ndarray) -> np.ndarray:
    """Price of cutting each edge: its shared boundary times the price of its class."""
    price = np.array([CUT_PRICE_PER_M[c] for c in EDGE_CLASSES])
    # an edge with no shared line (a link across empty land) costs one metre
    return price[cls] * np.maximum(np.nan_to_num(shared_m), 1.0)


def _community_polygons(communities: object, crs: object) -> gpd.GeoDataFrame | None:
    """Community polygons in the buildings' CRS (``None`` for a column or no communities)."""
    if not isinstance(communities, gpd.GeoDataFrame):
        return None
    polys = communities
    if "community" not in polys.columns:
        polys = polys.assign(community=polys.index.astype(str))
    if polys.crs is not None and crs is not None and polys.crs != crs:
        polys = polys.to_crs(crs)
    return polys


def _empty_communities(land: _Land, comm: np.ndarray, polys: gpd.GeoDataFrame | None) -> np.ndarray:
    """Community of each building-less block: its polygon's, else its longest neighbour's."""
    n, e = len(comm), len(land.empty)
    out = np.full(e, None, dtype=object)
    if not e:
        return out
    if polys is not None:
        pts = shapely.point_on_surface(land.blocks[land.empty])
        tree = shapely.STRtree(polys.geometry.to_numpy())
        bi, pi = tree.query(pts, predicate="within")
        names = polys["community"].astype(str).to_numpy()
        out[bi[::-1]] = names[pi[::-1]]
    known = np.concatenate([comm, out])
    for _ in range(e):  # chains of empty blocks take the community step by step
        todo = pd.isna(known[n:])
        if not todo.any():
            break
        a = np.concatenate([land.i, land.j])
        b = np.concatenate([land.j, land.i])
        length = np.concatenate([land.shared_m, land.shared_m])
        m = (a >= n) & pd.isna(known[a]) & ~pd.isna(known[b])
        if not m.any():
            break
        df = pd.DataFrame({"a": a[m], "c": known[b[m]], "len": length[m]})
        best = (
            df.groupby(["a", "c"])["len"]
            .sum()
            .reset_index()
            .sort_values(["a", "len"], ascending=[True, False], kind="stable")
            .drop_duplicates("a")
        )
        known[best["a"].to_numpy()] = best["c"].to_numpy()
    rest = pd.isna(known[n:])
    known[n:][rest] = comm[0] if n else "all"
    return known[n:].astype(object)


def _solve_all(
    comps: list[_Component], base: _Params, budget: _Budget, reserve_s: float, client: object | None
) -> list[_ComponentResult]:
    if not comps:
        return []
    sizes = np.array([len(c.w) for c in comps], dtype=float)
    # the exact model runs in CP-SAT's worker threads, which this thread's CPU time does
    # not see: its limit is wall-clock (it is not reproducible under load anyway)
    left = budget.wall_left_s if base.method == "exact" else budget.left_s
    if client is not None:
        remaining = max(left(reserve_s), 0.05)
        # pure keys from the content, retries, results in component order
        return map_components(
            _solve_component, comps, args=(_with_time(base, remaining),), client=client, sizes=sizes
        )
    out = []
    size_left = sizes.sum()
    for comp, size in zip(comps, sizes, strict=False):
        remaining = left(reserve_s)
        # a share of the remaining time by size, four times the fair one (most components
        # converge well before it, and what they leave goes to the later ones)
        share = max(remaining * min(1.0, 4 * size / size_left), min(0.5, remaining))
        out.append(_solve_component(comp, _with_time(base, max(share, 1e-3))))
        size_left -= size
    return out


def _block_groups(
    nodes: np.ndarray,
    node_block: np.ndarray,
    hh: np.ndarray,
    cap: int,
    ei: np.ndarray,
    ej: np.ndarray,
) -> np.ndarray:
    """Local group of each node: one per connected piece of a block (over the land edges
    ``ei``-``ej``) that holds at most ``cap`` households, else the node alone.

    A block's buildings can lie in pieces that do not touch (an oversized or exclusive
    building's land between them): a group never joins land that is not connected.
    """
    a, b = _inside_edges(nodes, ei, ej)
    within = node_block[a] == node_block[b]
    piece = _components(len(node_block), a[within], b[within])[nodes]
    codes, _ = pd.factorize(pd.MultiIndex.from_arrays([node_block[nodes], piece]))
    h = np.bincount(codes, weights=hh[nodes])
    whole = h[codes] <= cap
    key = np.where(whole, codes, len(h) + np.arange(len(nodes)))
    return pd.factorize(key)[0].astype(np.int64)


def _solve_blockwise(
    comps: list[_Component],
    unit_nodes: list[np.ndarray],
    node_block: np.ndarray,
    xy: np.ndarray,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    sep: np.ndarray,
    street: np.ndarray,
    prev_codes: np.ndarray | None,
    land_i: np.ndarray,
    land_j: np.ndarray,
    cut_cost: np.ndarray,
    base: _Params,
    budget: _Budget,
    reserve_s: float,
    client: object | None,
    details: dict,
) -> list[_ComponentResult]:
    """Solve with whole blocks as units first; per unit, buildings where that leaves pockets.

    A block that holds at most the band's maximum becomes one node (its households at its
    household-weighted centre): grids then keep whole blocks and their boundaries run on
    the streets. Where block sizes leave a grid below the band, only that pocket and the
    grids around it are divided again (the pocket's blocks by building, then the ring's
    too, one ring and then two), the rest keeping its whole blocks; the whole unit is
    divided building by building only where pockets remain. A plan replaces the one
    before only with fewer pockets.
    """
    if not comps:
        return []
    coarse, groups = [], []
    for k, nodes in enumerate(unit_nodes):
        grp = _block_groups(nodes, node_block, hh, base.max_households, land_i, land_j)
        groups.append(grp)
        coarse.append(
            _coarse_component(k, nodes, grp, xy, hh, ei, ej, sep, street, prev_codes, cut_cost)
        )
    # the whole-block pass gets half of what is left, the building-by-building redo the rest
    first_reserve = reserve_s + 0.5 * budget.left_s(reserve_s) / budget.pace()
    res_c = _solve_all(coarse, base, budget, first_reserve, client)
    out = []
    redo = []
    for k, (res, grp) in enumerate(zip(res_c, groups, strict=False)):
        lab = res.labels[grp]
        out.append(replace(res, labels=lab))
        if res.pocket.any() and grp.max() + 1 < len(grp):
            redo.append(k)
    details["block_units"] = int(sum(g.max() + 1 for g in groups))
    # pockets first re-divide with the grids around them (one ring, then two): the pocket's
    # blocks building by building and the ring's blocks whole, then the ring's blocks by
    # building too; the rest of the unit keeps its blocks. The whole unit by building only
    # where that still leaves pockets
    refined = 0
    for ring, whole_ring in ((1, True), (2, True), (1, False), (2, False)):
        if not redo:
            break
        subs, sub_groups, sub_comps, owner = [], [], [], []
        for k in redo:
            sub, in_pocket = _around_pockets(unit_nodes[k], out[k], ring, ei, ej)
            fine = in_pocket | (not whole_ring)
            alone = int(groups[k].max()) + 1 + np.arange(len(sub))
            grp = pd.factorize(np.where(fine, alone, groups[k][sub]))[0]
            # solved piece by piece: the pocket's buildings may touch only through its ring
            piece = _components(len(hh), *_inside_edges(unit_nodes[k][sub], ei, ej))
            piece = pd.factorize(piece[unit_nodes[k][sub]])[0]
            for c in range(int(piece.max()) + 1):
                at = np.flatnonzero(piece == c)
                g = pd.factorize(grp[at])[0]
                subs.append(sub[at])
                sub_groups.append(g)
                owner.append(k)
                sub_comps.append(
                    _coarse_component(
                        k,
                        unit_nodes[k][sub[at]],
                        g,
                        xy,
                        hh,
                        ei,
                        ej,
                        sep,
                        street,
                        prev_codes,
                        cut_cost,
                    )
                )
        share = reserve_s + 0.5 * budget.left_s(reserve_s) / budget.pace()
        res_s = _solve_all(sub_comps, base, budget, share, client)
        trial = {k: out[k] for k in redo}
        for k, sub, grp, res in zip(owner, subs, sub_groups, res_s, strict=False):
            trial[k] = _merge_sub(trial[k], sub, res, grp)
        left = []
        for k in redo:
            if int(trial[k].pocket.sum()) < int(out[k].pocket.sum()):
                out[k] = trial[k]
                refined += 1
            if out[k].pocket.any():
                left.append(k)
        redo = left
    details["units_refined_around_pockets"] = refined
    details["units_redone_by_building"] = len(redo)
    if redo:
        res_f = _solve_all([comps[k] for k in redo], base, budget, reserve_s, client)
        for k, res in zip(redo, res_f, strict=False):
            if int(res.pocket.sum()) < int(out[k].pocket.sum()):
                out[k] = res
    return out


def _inside_edges(
    nodes: np.ndarray, ei: np.ndarray, ej: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The edges (ei, ej) with both ends among ``nodes``."""
    mask = np.zeros(int(max(ei.max(initial=0), ej.max(initial=0), nodes.max())) + 1, dtype=bool)
    mask[nodes] = True
    inside = mask[ei] & mask[ej]
    return ei[inside], ej[inside]


def _around_pockets(
    nodes: np.ndarray, res: _ComponentResult, ring: int, ei: np.ndarray, ej: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``nodes`` of the pocket grids of ``res`` and ``ring`` rings of grids
    around them, and which of those positions lie in a pocket."""
    local = np.full(int(max(ei.max(initial=0), ej.max(initial=0), nodes.max())) + 1, -1)
    local[nodes] = np.arange(len(nodes))
    inside = (local[ei] >= 0) & (local[ej] >= 0)
    la, lb = res.labels[local[ei[inside]]], res.labels[local[ej[inside]]]
    flagged = res.pocket.copy()
    for _ in range(ring):
        touch = flagged[la] & ~flagged[lb]
        flagged[lb[touch]] = True
        touch = flagged[lb] & ~flagged[la]
        flagged[la[touch]] = True
    sub = np.flatnonzero(flagged[res.labels])
    return sub, res.pocket[res.labels[sub]]


def _merge_sub(
    res: _ComponentResult, sub: np.ndarray, sub_res: _ComponentResult, grp: np.ndarray
) -> _ComponentResult:
    """``res`` with the nodes at positions ``sub`` (in groups ``grp``) re-divided as ``sub_res`` says."""
    keep = np.ones(len(res.labels), dtype=bool)
    keep[sub] = False
    kept_grids, kept_labels = np.unique(res.labels[keep], return_inverse=True)
    labels = np.empty(len(res.labels), dtype=np.int64)
    labels[keep] = kept_labels
    labels[sub] = len(kept_grids) + sub_res.labels[grp]
    return replace(
        res,
        labels=labels,
        pocket=np.concatenate([res.pocket[kept_grids], sub_res.pocket]),
        reasons=[res.reasons[g] for g in kept_grids] + list(sub_res.reasons),
        status=combine_status([res.status, sub_res.status]),
        bound=None,
        seconds=res.seconds + sub_res.seconds,
    )


def _coarse_component(
    key: int,
    nodes: np.ndarray,
    grp: np.ndarray,
    xy: np.ndarray,
    hh: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    sep: np.ndarray,
    street: np.ndarray,
    prev_codes: np.ndarray | None,
    cut_cost: np.ndarray,
) -> _Component:
    """The unit ``nodes`` with each group (a whole block) contracted to one node."""
    k = int(grp.max()) + 1
    w = np.bincount(grp, weights=hh[nodes], minlength=k)
    cnt = np.bincount(grp, minlength=k)
    wt = np.where(w[grp] > 0, hh[nodes], 1.0)  # household-weighted, plain mean without any
    norm = np.bincount(grp, weights=wt, minlength=k)
    cx = np.bincount(grp, weights=xy[nodes, 0] * wt, minlength=k) / np.maximum(norm, 1e-9)
    cy = np.bincount(grp, weights=xy[nodes, 1] * wt, minlength=k) / np.maximum(norm, 1e-9)
    local = np.full(len(hh), -1, dtype=np.int64)
    local[nodes] = grp
    inside = (local[ei] >= 0) & (local[ej] >= 0)
    a, b = local[ei[inside]], local[ej[inside]]
    keep = a != b
    df = pd.DataFrame(
        {"a": np.minimum(a, b)[keep], "b": np.maximum(a, b)[keep],
         "sep": sep[inside][keep], "street": street[inside][keep],
         "cost": np.asarray(cut_cost)[inside][keep]}
    )  # fmt: skip
    agg = df.groupby(["a", "b"], sort=True).agg(
        sep=("sep", "min"), street=("street", "max"), cost=("cost", "sum")
    )
    extra = {}
    if "cut_cost" in getattr(_Component, "__dataclass_fields__", {}):
        extra["cut_cost"] = agg["cost"].to_numpy(dtype=float)
    prev = None
    if prev_codes is not None:
        prev = np.full(k, -1, dtype=np.int64)
        prev[grp[::-1]] = prev_codes[nodes][::-1]
    del cnt
    return _Component(
        key=key,
        xy=np.column_stack([cx, cy]),
        w=w.astype(np.int64),
        ei=agg.index.get_level_values(0).to_numpy(dtype=np.int64),
        ej=agg.index.get_level_values(1).to_numpy(dtype=np.int64),
        barrier=agg["sep"].to_numpy(dtype=bool),
        street=agg["street"].to_numpy(dtype=bool),
        prev=prev,
        **extra,
    )


#: the most wall seconds a CPU second of the grid stage may stretch to under load: a
#: thread waiting on other threads (CP-SAT's workers) is not slowed by load
MAX_PACE = 4.0


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

    def pace(self) -> float:
        """Wall seconds per CPU second of this thread so far (between 1 and MAX_PACE)."""
        cpu = self.used_s()
        wall = time.perf_counter() - self.wall0
        return min(max(1.0, wall / cpu), MAX_PACE) if cpu > 0.05 else 1.0

    def left_s(self, reserve_s: float = 0.0) -> float:
        """Wall seconds to give the next solve: CPU seconds left, at the pace so far."""
        return max(self.limit_s - reserve_s - self.used_s(), 0.0) * self.pace()

    def wall_left_s(self, reserve_s: float = 0.0) -> float:
        """Wall seconds left of the limit (for solves whose work runs in other threads)."""
        return max(self.limit_s - reserve_s - (time.perf_counter() - self.wall0), 0.0)


def _with_time(p: _Params, seconds: float) -> _Params:
    return replace(p, time_limit_s=float(seconds))


def _attach_land(
    zero_units: list[np.ndarray],
    grid_of: np.ndarray,
    grid_kind: list[str],
    grid_reason: list[str],
    ei: np.ndarray,
    ej: np.ndarray,
    shared_m: np.ndarray,
    bar: np.ndarray,
    n_buildings: int,
) -> None:
    """Units without households join the neighbouring grid with the longest shared boundary.

    Edges across a hard barrier count only where no other neighbour exists; units that
    touch only other such units wait for them (rounds), and a unit that touches no grid
    at all becomes an undersized grid of its own with the reason.
    """
    pending = [u for u in zero_units if len(u)]
    a = np.concatenate([ei, ej])
    b = np.concatenate([ej, ei])
    length = np.concatenate([np.nan_to_num(shared_m), np.nan_to_num(shared_m)])
    hard = np.concatenate([bar, bar])
    while pending:
        left = []
        for nodes in pending:
            inset = np.zeros(len(grid_of), dtype=bool)
            inset[nodes] = True
            m = inset[a] & ~inset[b] & (grid_of[b] >= 0)
            if not m.any():
                left.append(nodes)
                continue
            df = pd.DataFrame({"g": grid_of[b[m]], "hard": hard[m], "len": length[m]})
            df = df[df["g"].map(lambda g: grid_kind[g] != "exclusive")] if (
                df["g"].map(lambda g: grid_kind[g] != "exclusive").any()
            ) else df  # fmt: skip
            score = df.groupby("g").agg(hard=("hard", "min"), len=("len", "sum"))
            score = score.sort_values(["hard", "len"], ascending=[True, False], kind="stable")
            grid_of[nodes] = int(score.index[0])
        if len(left) == len(pending):
            for nodes in left:
                grid_of[nodes] = len(grid_kind)
                grid_kind.append("undersized")
                nb = int((nodes < n_buildings).sum())
                what = (
                    f"{nb} buildings without households (non-residential) and"
                    if nb
                    else "land without buildings"
                )
                grid_reason.append(
                    f"undersized: {what} no neighbouring grid in its community to join "
                    "within walking distance"
                )
            break
        pending = left


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def _assemble(
    buildings: gpd.GeoDataFrame,
    land: _Land,
    xy: np.ndarray,
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
    open_land: np.ndarray,
    dist: np.ndarray,
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    k = len(grid_kind)
    n = len(buildings)
    nn = len(labels_num)
    used = np.unique(labels_num)
    h = np.bincount(labels_num, weights=hh, minlength=k).astype(np.int64)
    nb = np.bincount(labels_num[:n], minlength=k)
    ga, gb, gbar, valid = gaps

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

    # barrier crossings: pieces of the grid held together only across hard barriers, minus
    # one; gap links: pieces (settlements) held together only across open land
    plain = pieces_of(ei[~bar & ~open_land], ej[~bar & ~open_land])
    nobar = pieces_of(np.concatenate([ei[~bar], ga[~gbar]]), np.concatenate([ej[~bar], gb[~gbar]]))
    pieces = nobar
    gap_used = plain - nobar
    inner = labels_num[ei] == labels_num[ej]
    main_code = EDGE_CLASSES.index("main")
    main_inner = np.bincount(
        labels_num[ei[inner & (land_cls_of(ei, ej, land) == main_code) & (ei < n) & (ej < n)]],
        minlength=k,
    )
    cx = np.bincount(labels_num, weights=xy[:, 0], minlength=k) / np.maximum(
        np.bincount(labels_num, minlength=k), 1
    )
    cy = np.bincount(labels_num, weights=xy[:, 1], minlength=k) / np.maximum(
        np.bincount(labels_num, minlength=k), 1
    )
    first_comm = pd.Series(comm[:n]).groupby(labels_num[:n]).first().reindex(range(k))
    first_comm = first_comm.fillna(
        pd.Series(comm).groupby(labels_num).first().reindex(range(k))
    ).to_numpy()
    # ids ordered by community, then north to south, west to east
    order = sorted(
        used.tolist(), key=lambda g: (str(first_comm[g]), -round(cy[g], -1), round(cx[g], -1), g)
    )
    width = max(4, len(str(len(order))))
    gid = {g: f"G{r + 1:0{width}d}" for r, g in enumerate(order)}
    linked = set(labels_num[ga][labels_num[ga] == labels_num[gb]].tolist())
    # every grid's land as it is (maybe in pieces): joined below, never cut down to a part
    polys = dissolve_cells(land.land, labels_num, keep_pieces=set(used.tolist()))
    links_used = _link_polygons(polys, labels_num, ei, ej, ga, gb, valid, linked)
    _join_pieces(polys)
    order_idx = np.argsort(labels_num, kind="stable")
    splits = np.split(order_idx, np.flatnonzero(np.diff(labels_num[order_idx])) + 1)
    rms = {}
    for members in splits:
        g = int(labels_num[members[0]])
        c, _ = _grid_cost(xy, hh, members, _Params(1, 1, 0.0, 0.0, 0, 1.0))
        rms[g] = math.sqrt(c / h[g]) if h[g] > 0 else 0.0
    on_streets, cut_m = _boundary_shares(land, labels_num, k)
    split = _blocks_split(land, labels_num[:n], k)
    workers, shared_with = _workers(grid_kind, h, per_worker, land, labels_num, k)
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
                "grid_workers": int(workers[g]),
                "barrier_crossings": int(pieces[g] - 1),
                "gap_links": int(gap_used[g]),
                "rms_distance_m": rms[g],
                "compactness": 4 * math.pi * area / perim**2 if perim > 0 else 0.0,
                "boundary_on_streets": on_streets[g],
                "blocks_split": int(split[g]),
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
    by_gid = {gid[g]: g for g in order}
    for r in grids.index[grids["kind"] == "regular"]:
        g = by_gid[grids.loc[r, "grid_id"]]
        notes = []
        if main_inner[g] > 0:
            notes.append(
                "straddles a main street (secondary/tertiary): the households on one side "
                "cannot make a grid alone"
            )
        if grids.loc[r, "gap_links"] > 0:
            notes.append(
                f"joins {grids.loc[r, 'gap_links'] + 1} settlements across open land: a "
                "settlement alone cannot make a grid"
            )
        if notes:
            old = grids.loc[r, "reason"]
            grids.loc[r, "reason"] = "; ".join([old, *notes] if old else notes)
    for g, other in shared_with.items():
        r = grids.index[grids["grid_id"] == gid[g]][0]
        grids.loc[r, "reason"] = f"{grids.loc[r, 'reason']}; shares the grid worker of {gid[other]}"
    labels = pd.Series([gid[g] for g in labels_num[:n]], index=buildings.index, name="grid_id")
    idx = buildings.index
    # links across open land inside grids, and the gap links that join separate land
    inside_open = _joining_links(labels_num, ei, ej, open_land & inner, dist)
    rows_links = [
        (int(ei[e]), int(ej[e]), float(dist[e]), int(labels_num[ei[e]])) for e in inside_open
    ] + [u for u in links_used if u[0] < n and u[1] < n]
    links = pd.DataFrame(
        {
            "building_a": [idx[a] for a, *_ in rows_links],
            "building_b": [idx[b] for _, b, *_ in rows_links],
            "gap_m": [d for *_, d, _ in rows_links],
            "grid_id": [gid[g] for *_, g in rows_links],
        }
    )
    grids.attrs["gap_links"] = links
    grids.attrs["cut_m"] = cut_m
    return grids, labels


def _joining_links(
    labels_num: np.ndarray, ei: np.ndarray, ej: np.ndarray, open_inner: np.ndarray, dist: np.ndarray
) -> np.ndarray:
    """The open-land edges inside grids that join their pieces: the shortest first (Kruskal),
    an edge between pieces already joined is not a link."""
    same = (labels_num[ei] == labels_num[ej]) & ~open_inner
    piece = _components(len(labels_num), ei[same], ej[same])
    cand = np.flatnonzero(open_inner)
    used = cand[_spanning(piece[ei[cand]], piece[ej[cand]], dist[cand])]
    return np.sort(used)


def land_cls_of(ei: np.ndarray, ej: np.ndarray, land: _Land) -> np.ndarray:
    """Class of the land edges ``(ei, ej)`` (pairs of the land graph, any order)."""
    key = pd.Series(np.arange(len(land.i)), index=pd.MultiIndex.from_arrays([land.i, land.j]))
    pos = key.reindex(pd.MultiIndex.from_arrays([np.minimum(ei, ej), np.maximum(ei, ej)]))
    out = np.zeros(len(ei), dtype=np.int8)
    ok = pos.notna().to_numpy()
    out[ok] = land.cls[pos.to_numpy()[ok].astype(np.int64)]
    return out


def _boundary_shares(land: _Land, labels_num: np.ndarray, k: int) -> tuple[np.ndarray, dict]:
    """Per grid: share of its boundary with other grids that runs along a line (class > 0)."""
    cut = labels_num[land.i] != labels_num[land.j]
    length = np.nan_to_num(land.shared_m[cut])
    along = land.cls[cut] > 0
    streetish = np.isin(land.cls[cut], [EDGE_CLASSES.index(c) for c in EDGE_CLASSES[1:-1]])
    gi, gj = labels_num[land.i[cut]], labels_num[land.j[cut]]
    total = np.bincount(gi, weights=length, minlength=k) + np.bincount(
        gj, weights=length, minlength=k
    )
    on = np.bincount(gi, weights=length * streetish, minlength=k) + np.bincount(
        gj, weights=length * streetish, minlength=k
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, on / total, np.nan)
    cut_m = {
        "total_m": float(length.sum()),
        "on_streets_m": float((length * streetish).sum()),
        "on_lines_m": float((length * along).sum()),
    }
    return share, cut_m


def _blocks_split(land: _Land, labels_b: np.ndarray, k: int) -> np.ndarray:
    """Per grid: the blocks with buildings that it shares with another grid."""
    df = pd.DataFrame({"block": land.block_of, "g": labels_b}).drop_duplicates()
    multi = df.groupby("block")["g"].transform("size") > 1
    return np.bincount(df.loc[multi, "g"].to_numpy(dtype=np.int64), minlength=k)


def _workers(
    grid_kind: list[str],
    h: np.ndarray,
    per_worker: int,
    land: _Land,
    labels_num: np.ndarray,
    k: int,
) -> tuple[np.ndarray, dict[int, int]]:
    """Grid workers per grid (1 per ``per_worker`` households); undersized grids share.

    An undersized grid shares the worker of the neighbouring grid (same community, longest
    shared boundary, regular first) instead of having one of its own; the neighbour's count
    covers both grids' households.
    """
    workers = np.where(h > 0, np.maximum(1, np.ceil(h / per_worker)), 0).astype(np.int64)
    shared_with: dict[int, int] = {}
    small = [g for g in range(k) if grid_kind[g] == "undersized" and h[g] > 0]
    if not small:
        return workers, shared_with
    cut = labels_num[land.i] != labels_num[land.j]
    gi, gj = labels_num[land.i[cut]], labels_num[land.j[cut]]
    length = np.nan_to_num(land.shared_m[cut])
    df = pd.DataFrame(
        {"a": np.concatenate([gi, gj]), "b": np.concatenate([gj, gi]),
         "len": np.concatenate([length, length])}
    )  # fmt: skip
    tot = df.groupby(["a", "b"])["len"].sum()
    extra = np.zeros(k, dtype=np.int64)
    for g in small:
        if g in set(shared_with.values()) or g not in tot.index.get_level_values(0):
            continue
        cand = tot.loc[g]
        cand = cand[[grid_kind[b] in ("regular", "undersized") and b not in shared_with
                     and h[b] > 0 for b in cand.index]]  # fmt: skip
        if cand.empty:
            continue
        rank = sorted(cand.index, key=lambda b: (grid_kind[b] != "regular", -cand[b], b))
        host = int(rank[0])
        if host in shared_with:
            continue
        shared_with[g] = host
        extra[host] += h[g]
        workers[g] = 0
    for host in set(shared_with.values()):
        workers[host] = max(1, math.ceil((h[host] + extra[host]) / per_worker))
    return workers, shared_with


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
    chosen: dict[int, list] = {}
    used = []
    # the shortest links that join the pieces
    for e in _spanning(piece[ga], piece[gb], shapely.length(lines)).tolist():
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
        polys[g] = geom
    return used


def _join_pieces(polys: dict, width_m: float = 0.2) -> None:
    """Make each grid's land one Polygon without dropping any of it.

    Pieces that touch at points close with a hair-thin buffer; pieces further apart (cells
    that meet only across another grid's land, or links cut by it) are joined by corridors
    ``width_m`` wide along the shortest lines between them (a spanning tree), kept off
    other grids' land where that still joins them.
    """
    keys = list(polys)
    geoms_all = np.array([polys[g] for g in keys], dtype=object)
    tree = shapely.STRtree(geoms_all)
    for pos, g in enumerate(keys):
        geom = polys[g]
        if geom.geom_type == "Polygon" or geom.is_empty:
            continue
        closed = shapely.buffer(shapely.buffer(geom, 0.05, quad_segs=1), -0.05, quad_segs=1)
        if closed.geom_type == "Polygon":
            polys[g] = closed
            continue
        parts = [q for q in shapely.get_parts(geom) if q.area > 0]
        lines = _spanning_lines(parts)
        raw = shapely.union_all(shapely.buffer(np.array(lines), width_m / 2, quad_segs=1))
        near = [k for k in tree.query(raw, predicate="intersects") if k != pos]
        corridor = shapely.difference(raw, shapely.union_all(geoms_all[near])) if near else raw
        joined = _safe_union([geom, corridor])
        if joined.geom_type != "Polygon":
            # another grid's land cuts a corridor: keep the grid whole (a sliver of overlap)
            joined = _safe_union([geom, raw])
        if joined.geom_type != "Polygon":
            log.warning(
                "grid %s: land in %s pieces after joining", g, len(shapely.get_parts(joined))
            )
        polys[g] = joined


def _spanning_lines(parts: list) -> list:
    """Shortest lines that join ``parts`` into one (Kruskal over the pairwise shortest lines)."""
    arr = np.array(parts, dtype=object)
    i, j = np.triu_indices(len(arr), k=1)
    lines = shapely.shortest_line(arr[i], arr[j])
    return list(lines[_spanning(i, j, shapely.length(lines))])


def _spanning(a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Kruskal: positions of the edges ``a``-``b`` (shortest ``length`` first) that join
    parts not yet joined, in that order."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out = []
    for e in np.argsort(length, kind="stable").tolist():
        ra, rb = find(int(a[e])), find(int(b[e]))
        if ra != rb:
            parent[ra] = rb
            out.append(e)
    return np.array(out, dtype=np.int64)


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
