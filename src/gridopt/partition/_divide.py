"""partition_grids: validation, special grids, components, solving, assembly."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridopt._errors import InputError, RepairWarning
from gridopt.adjacency import _adjacency, _geoms_of, dissolve_cells
from gridopt.partition._heuristic import (
    _Component,
    _ComponentResult,
    _feasible,
    _grid_cost,
    _Params,
    _solve_component,
)
from gridopt.partition._result import Partition

__all__ = ["partition_grids"]

log = logging.getLogger("gridopt")

_KIND_ORDER = {"regular": 0, "undersized": 1, "oversized": 2, "exclusive": 3}


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
        Upper bound on the solve time; the heuristic stops earlier when it converges.
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
    n = len(buildings)
    comm = _communities(buildings, communities)
    excl = _exclusive(buildings, exclusive)
    prev_codes, prev_uniques = _previous(buildings, previous)

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
    for v in np.flatnonzero(oversized):
        grid_of[v] = len(grid_kind)
        grid_kind.append("oversized")
        workers = math.ceil(hh[v] / households_per_worker)
        grid_reason.append(
            f"oversized: one building with {hh[v]} households (> {max_households}) cannot be split; "
            f"needs {workers} grid workers at {households_per_worker} households each "
            "(split by stairwell or floor on site)"
        )

    # components of the ordinary buildings: blocks between barriers, merged where needed
    reg = ~special
    keep = reg[ei] & reg[ej]
    rei, rej, rbar, rstreet = ei[keep], ej[keep], bar[keep], street[keep]
    units, crossings_merged = _units(n, reg, hh, rei, rej, rbar, min_households, max_households)
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
        comps.append(_component(len(comps), nodes, adj.xy, hh, rei, rej, rbar, rstreet, prev_codes))
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
    )
    say(f"dividing {len(comps):,} components")
    t = time.perf_counter()
    # the polygons and tables after the solve take time too: keep a share of the limit for them
    results = _solve_all(comps, base, t0 + 0.85 * time_limit_s, client)
    details["solve_s"] = time.perf_counter() - t
    for nodes, res in zip(unit_nodes, results, strict=False):
        offset = len(grid_kind)
        grid_of[nodes] = offset + res.labels
        for g in range(len(res.pocket)):
            grid_kind.append("undersized" if res.pocket[g] else "regular")
            grid_reason.append(res.reasons[g])

    # clusters without households: attached to a neighbouring grid, else their own
    for nodes in zero_units:
        _attach_zero(nodes, grid_of, grid_kind, grid_reason, ei, ej, bar)

    labels_num = grid_of
    assert (labels_num >= 0).all(), "a building was left without a grid"
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
    )
    unit_h = float(sum(hh[nodes].sum() for nodes in unit_nodes))
    cost = float(sum(r.cost for r in results))
    objective = cost / unit_h if unit_h else 0.0
    bounds_known = [r.bound for r in results]
    bound = (
        float(sum(bounds_known)) / unit_h
        if results and unit_h and all(b is not None for b in bounds_known)
        else None
    )
    statuses = {r.status for r in results}
    status = (
        "time_limit"
        if "time_limit" in statuses
        else "optimal"
        if statuses <= {"optimal"}
        else "feasible"
    )
    moved = None
    if prev_codes is not None:
        labels, grids, moved = _match_previous(labels, grids, prev_codes, prev_uniques, hh)
    details["component_seconds_max"] = max((r.seconds for r in results), default=0.0)
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
    for name, val in (("min_households", lo), ("max_households", hi)):
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool):
            raise InputError(f"{name} must be an integer, got {val!r}")
    if lo <= 0:
        raise InputError(f"min_households must be > 0, got {lo}")
    if hi < lo:
        raise InputError(f"min_households ({lo}) is greater than max_households ({hi}); swap them")
    if not (
        isinstance(time_limit_s, (int, float)) and time_limit_s > 0 and math.isfinite(time_limit_s)
    ):
        raise InputError(f"time_limit_s must be a positive number of seconds, got {time_limit_s!r}")
    if method not in ("heuristic", "exact"):
        raise InputError(f"method must be 'heuristic' or 'exact', got {method!r}")
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
        if polys.crs is not None and buildings.crs is not None and polys.crs != buildings.crs:
            warnings.warn(
                f"communities are in {polys.crs.to_string()}; reprojected to the buildings' CRS",
                RepairWarning,
                stacklevel=3,
            )
            polys = polys.to_crs(buildings.crs)
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
) -> tuple[np.ndarray, int]:
    """Solve unit per ordinary building (-1 for special ones) and the number of merges.

    Blocks are the components without barrier edges; a block whose households cannot make
    whole grids is merged with a neighbouring block across a barrier (the one that makes
    the union feasible, else the smallest), until no such merge is possible.
    """
    block = _components(n, ei[~bar], ej[~bar])
    nb = int(block.max()) + 1 if n else 0
    weight = np.bincount(block, weights=hh * reg, minlength=nb).astype(np.int64)
    parent = list(range(nb))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = (
        pd.Series(1, index=pd.MultiIndex.from_arrays([block[ei[bar]], block[ej[bar]]]))
        .groupby(level=[0, 1])
        .sum()
    )
    nbrs: dict[int, dict[int, int]] = {}
    for (a, b), cnt in pairs.items():
        if a != b:
            nbrs.setdefault(int(a), {})[int(b)] = nbrs.setdefault(int(a), {}).get(int(b), 0) + int(
                cnt
            )
            nbrs.setdefault(int(b), {})[int(a)] = nbrs.setdefault(int(b), {}).get(int(a), 0) + int(
                cnt
            )
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
            for b in _members_nbrs(r, nbrs, find):
                cand[b] = cand.get(b, 0) + 1
            if not cand:
                continue
            best = min(cand, key=lambda b: (not _feasible(w[r] + w[b], lo, hi), -cand[b], w[b], b))
            parent[best] = r
            w[r] += w[best]
            # move the neighbour lists of the merged block onto the root
            for x, c in nbrs.pop(best, {}).items():
                nbrs.setdefault(r, {})[x] = nbrs.setdefault(r, {}).get(x, 0) + c
            merges += 1
            changed = True
    unit = (
        np.array([find(b) for b in range(nb)], dtype=np.int64)[block]
        if nb
        else np.zeros(0, np.int64)
    )
    return np.where(reg, unit, -1), merges


def _members_nbrs(r: int, nbrs: dict[int, dict[int, int]], find: Callable[[int], int]) -> list[int]:
    out = []
    for x in nbrs.get(r, {}):
        fx = find(x)
        if fx != r:
            out.append(fx)
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
    comps: list[_Component], base: _Params, deadline: float, client: object | None
) -> list[_ComponentResult]:
    if not comps:
        return []
    sizes = np.array([len(c.w) for c in comps], dtype=float)
    if client is not None:
        remaining = max(deadline - time.perf_counter(), 0.05)
        # gridopt.parallel: pure keys from the content, retries, results in component order
        from gridopt.parallel import map_components

        return map_components(
            _solve_component, comps, args=(_with_time(base, remaining),), client=client, sizes=sizes
        )
    out = []
    left = sizes.sum()
    for comp, size in zip(comps, sizes, strict=False):
        remaining = max(deadline - time.perf_counter(), 0.0)
        # a fair share of the remaining time by size; small components finish early anyway
        share = max(remaining * size / left, min(0.05, remaining))
        out.append(_solve_component(comp, _with_time(base, max(share, 1e-3))))
        left -= size
    return out


def _with_time(p: _Params, seconds: float) -> _Params:
    from dataclasses import replace

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
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    k = len(grid_kind)
    used = np.unique(labels_num)
    xy = adj.xy
    h = np.bincount(labels_num, weights=hh, minlength=k).astype(np.int64)
    nb = np.bincount(labels_num, minlength=k)
    # barrier crossings: pieces of the grid held together only across barriers, minus one
    same = (labels_num[ei] == labels_num[ej]) & ~bar
    piece = _components(len(labels_num), ei[same], ej[same])
    pieces = (
        pd.Series(piece).groupby(labels_num).nunique().reindex(range(k), fill_value=1).to_numpy()
    )
    cx = np.bincount(labels_num, weights=xy[:, 0], minlength=k) / np.maximum(nb, 1)
    cy = np.bincount(labels_num, weights=xy[:, 1], minlength=k) / np.maximum(nb, 1)
    first_comm = pd.Series(comm).groupby(labels_num).first().reindex(range(k)).to_numpy()
    # ids ordered by community, then north to south, west to east
    order = sorted(
        used.tolist(), key=lambda g: (str(first_comm[g]), -round(cy[g], -1), round(cx[g], -1), g)
    )
    width = max(4, len(str(len(order))))
    gid = {g: f"G{r + 1:0{width}d}" for r, g in enumerate(order)}
    polys = dissolve_cells(adj.cells, labels_num)
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
                "rms_distance_m": rms[g],
                "compactness": 4 * math.pi * area / perim**2 if perim > 0 else 0.0,
                "geometry": geom,
            }
        )
    grids = gpd.GeoDataFrame(rows, geometry="geometry", crs=buildings.crs)
    # non-regular reasons must be non-empty; a regular grid spanning a barrier says why
    for r in grids.index[(grids["kind"] == "regular") & (grids["barrier_crossings"] > 0)]:
        grids.loc[r, "reason"] = (
            f"crosses {grids.loc[r, 'barrier_crossings']} barrier(s): the households on one side "
            "cannot make a grid alone"
        )
    labels = pd.Series([gid[g] for g in labels_num], index=buildings.index, name="grid_id")
    return grids, labels


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
