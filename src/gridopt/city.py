"""City and province scale: cut the area into pieces, plan each piece, stitch the results.

Grids nest inside communities and stations and staff are planned per street office, so
a city decomposes into independent pieces:

- :func:`split_city` cuts a city into pieces: by a community / street-office column,
  or, without one, into blocks bounded by barriers (major streets, rivers, railways),
  merging a block that cannot make a grid on its own with a neighbour. No building
  is ever dropped.
- :func:`partition_city` runs :func:`gridopt.partition_grids` per piece (tessellation
  included) and stitches one :class:`~gridopt.partition.Partition`.
- :func:`plan_city` runs :func:`gridopt.plan` per street office and returns a
  :class:`CityPlan` that writes one ``plan.gpkg`` and a map of one office.

The pieces run on the execution layer (:func:`gridopt.execution.map_components`):
sequentially by default, or on a ``dask.distributed.Client``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError, SolverError
from gridopt._status import combine_status
from gridopt._validate import check, check_band
from gridopt.crs import reproject
from gridopt.defaults import (
    CITY_TIME_LIMIT_S,
    MAX_HOUSEHOLDS,
    MIN_HOUSEHOLDS,
    MIN_PIECE_S,
    SEED,
)
from gridopt.execution import map_components, worker_threads
from gridopt.io import read_buildings, read_buildings_chunked, write_layers
from gridopt.mapping import plan_map
from gridopt.partition import Partition, partition_grids
from gridopt.pipeline import PlanConfig, plan

if TYPE_CHECKING:
    import folium

__all__ = ["CityPlan", "OfficePlan", "partition_city", "plan_city", "split_city"]

log = logging.getLogger("gridopt")


# ---------------------------------------------------------------------------
# split_city
# ---------------------------------------------------------------------------


def _feasible(weight: np.ndarray | int, lo: int, hi: int) -> np.ndarray:
    """Whether ``weight`` households make whole grids of ``[lo, hi]``: k lo <= W <= k hi."""
    weight = np.asarray(weight, dtype=np.int64)
    return (-(-weight // hi) <= weight // lo) & (weight > 0)


def split_city(
    buildings: gpd.GeoDataFrame,
    *,
    by: str | None = None,
    streets: gpd.GeoDataFrame | None = None,
    households: str = "households",
    min_households: int = MIN_HOUSEHOLDS,
    max_households: int = MAX_HOUSEHOLDS,
    margin_m: float = 100.0,
) -> pd.Series:
    """Cut a city into independent pieces: communities, or barrier-bounded blocks.

    Parameters
    ----------
    buildings
        Buildings in a metric CRS with a households column.
    by
        A column that already names the pieces (``"community"`` or a street-office
        column). Its pieces are kept as they are, also when one is too small for a
        grid: grids never straddle two communities, so such a piece becomes an
        ``undersized`` grid downstream, with its reason.
    streets
        Street/river/railway lines with a ``barrier_kind`` column; used when ``by`` is
        not given. The barrier lines are polygonized into blocks (closed by a frame
        ``margin_m`` around the buildings) and each building goes to the block that
        holds its representative point. Only closed rings of barriers make blocks: a
        major street that ends inside the town (a dangle) cuts nothing, so an extract
        whose barriers do not meet is one piece (the small OSM town is; the synthetic
        city's major-street grid is not).
    households
        Households column.
    min_households, max_households
        The grid band. A block whose households cannot make whole grids of the band
        (no k with k min <= W <= k max) is merged with the neighbouring block it
        shares the longest boundary with (the nearest block when none touches), until
        every piece can or only one piece is left.
    margin_m
        Width of the frame closing the outermost blocks.

    Returns
    -------
    pandas.Series
        Piece label (str) per building, aligned with ``buildings.index``, no missing
        values. Without ``by`` and without barrier lines, the whole city is one piece.

    Raises
    ------
    InputError
        Missing column, missing households, geographic CRS.

    Examples
    --------
    >>> from gridopt.synthetic import synthetic_city
    >>> city = synthetic_city(400, seed=1)
    >>> pieces = split_city(city.buildings, streets=city.streets)
    >>> len(pieces) == len(city.buildings) and bool(pieces.notna().all())
    True
    """
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(f"buildings must be a GeoDataFrame, got {type(buildings).__name__}")
    if households not in buildings.columns:
        raise InputError(
            f"buildings has no {households!r} column; pass households= or use gridopt.read_buildings"
        )
    check_band(min_households, max_households)
    check(margin_m=margin_m)
    if by is not None:
        if by not in buildings.columns:
            raise InputError(
                f"buildings has no column {by!r}; available: {', '.join(map(str, buildings.columns))}"
            )
        col = buildings[by]
        if col.isna().any():
            rows = list(buildings.index[col.isna().to_numpy()][:10])
            raise InputError(
                f"{int(col.isna().sum())} buildings have no {by!r} value (first: {rows}); "
                "fill them or split without `by`"
            )
        return col.astype(str).rename("piece")
    if buildings.crs is not None and buildings.crs.is_geographic:
        raise InputError(
            "buildings are in degrees; reproject to a metric CRS (gridopt.read_buildings does)"
        )
    n = len(buildings)
    if n == 0:
        return pd.Series([], index=buildings.index, dtype=object, name="piece")
    w = buildings[households].to_numpy()
    if pd.isna(w).any():
        raise InputError(f"{int(pd.isna(w).sum())} buildings have no {households!r} value")
    lines = _barrier_lines(streets, buildings.crs)
    pts = shapely.point_on_surface(buildings.geometry.to_numpy())
    if lines is None:
        return pd.Series("B0", index=buildings.index, name="piece")
    frame = shapely.box(*shapely.total_bounds(pts)).buffer(margin_m, join_style="mitre").exterior
    noded = shapely.union_all(np.append(lines, frame))
    faces = np.asarray(
        shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object
    )
    face_of = _locate(pts, faces)
    used, piece = np.unique(face_of, return_inverse=True)
    used_faces = faces[used]
    weight = np.bincount(piece, weights=w.astype(float), minlength=len(used)).astype(np.int64)
    group = _merge_infeasible(used_faces, weight, min_households, max_households)
    labels = group[piece]
    # Renumber the pieces by first building so the labels read B0, B1, ... in input order.
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return pd.Series([f"B{r}" for r in rank[inv]], index=buildings.index, name="piece")


def _barrier_lines(streets: gpd.GeoDataFrame | None, crs: Any) -> np.ndarray | None:
    if streets is None or len(streets) == 0:
        return None
    if "barrier_kind" not in streets.columns:
        raise InputError(
            "streets has no barrier_kind column; read them with gridopt.read_streets, "
            "or set barrier_kind to 'major_street', 'river', 'railway' or null"
        )
    if crs is not None and streets.crs is not None and streets.crs != crs:
        streets = reproject(streets, crs, what="streets")
    bar = streets[streets["barrier_kind"].notna()].geometry.to_numpy()
    bar = bar[~(shapely.is_missing(bar) | shapely.is_empty(bar))]
    return bar if len(bar) else None


def _locate(pts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Index of the face holding each point (the nearest face for a point on no face)."""
    out = np.full(len(pts), -1, dtype=np.int64)
    tree = shapely.STRtree(faces)
    p_idx, f_idx = tree.query(pts, predicate="intersects")
    # A point on a shared edge hits two faces: keep the lowest face index (deterministic).
    order = np.lexsort((f_idx, p_idx))
    p_idx, f_idx = p_idx[order], f_idx[order]
    first = np.r_[True, p_idx[1:] != p_idx[:-1]] if len(p_idx) else np.zeros(0, bool)
    out[p_idx[first]] = f_idx[first]
    lost = np.flatnonzero(out < 0)
    if len(lost):
        inp, near = tree.query_nearest(pts[lost], all_matches=False)
        out[lost[inp]] = near
    return out


def _merge_infeasible(faces: np.ndarray, weight: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Union-find merge of infeasible blocks into neighbours; returns a group id per face."""
    k = len(faces)
    parent = np.arange(k)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    tree = shapely.STRtree(faces)
    a_idx, b_idx = tree.query(faces, predicate="intersects")
    keep = a_idx < b_idx
    a_idx, b_idx = a_idx[keep], b_idx[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(faces[a_idx]), shapely.boundary(faces[b_idx]))
    )
    nbr: list[dict[int, float]] = [{} for _ in range(k)]
    for a, b, s in zip(a_idx.tolist(), b_idx.tolist(), shared.tolist(), strict=True):
        if s > 0:
            nbr[a][b] = nbr[a].get(b, 0.0) + s
            nbr[b][a] = nbr[b].get(a, 0.0) + s
    total = weight.astype(np.int64).copy()
    members: dict[int, list[int]] = {i: [i] for i in range(k)}
    while len(members) > 1:
        bad = [g for g in members if not _feasible(total[g], lo, hi)]
        if not bad:
            break
        g = min(bad, key=lambda r: (total[r], r))  # smallest first, ties by id
        # Boundary shared with every other group.
        border: dict[int, float] = {}
        for f in members[g]:
            for o, s in nbr[f].items():
                r = find(o)
                if r != g:
                    border[r] = border.get(r, 0.0) + s
        if border:
            # Prefer a neighbour that makes the merged piece feasible, then the longest border.
            target = max(
                border, key=lambda r: (bool(_feasible(total[g] + total[r], lo, hi)), border[r], -r)
            )
        else:
            # An island (no touching block): join the nearest group.
            mine = shapely.union_all(faces[members[g]])
            others = [r for r in members if r != g]
            dist = [shapely.distance(mine, shapely.union_all(faces[members[r]])) for r in others]
            target = others[int(np.argmin(dist))]
        keep_root, gone = (g, target) if g < target else (target, g)
        parent[gone] = keep_root
        members[keep_root].extend(members.pop(gone))
        total[keep_root] += total[gone]
    return np.array([find(i) for i in range(k)])


# ---------------------------------------------------------------------------
# partition_city: whole partitions per piece, stitched
# ---------------------------------------------------------------------------


def _merge_empty(buildings: gpd.GeoDataFrame, pieces: pd.Series, households: str) -> pd.Series:
    """Give each piece without households to the nearest piece with households.

    A piece of only non-residential buildings (an office of schools and shops, say)
    cannot be planned on its own; its buildings join the nearest piece instead of
    being dropped or failing the whole call. With no households anywhere nothing changes
    (the solver then says so).
    """
    h = buildings[households].groupby(pieces.to_numpy(), sort=False).sum()
    empty = h.index[h.to_numpy() == 0]
    full = h.index[h.to_numpy() > 0]
    if len(empty) == 0 or len(full) == 0:
        return pieces
    geoms = buildings.geometry.to_numpy()
    labels = pieces.to_numpy()
    hulls = {k: shapely.convex_hull(shapely.union_all(geoms[labels == k])) for k in h.index}
    full_hulls = np.array([hulls[k] for k in full], dtype=object)
    tree = shapely.STRtree(full_hulls)
    out = pieces.copy()
    for k in empty:
        near = int(tree.query_nearest(hulls[k], all_matches=False)[0])
        out[labels == k] = full[near]
        log.info(
            "piece %s has no households; its buildings join the nearest piece %s", k, full[near]
        )
    return out


class _NearLines:
    """The street lines near one piece of a city (one spatial index over all lines)."""

    def __init__(self, streets: gpd.GeoDataFrame | None, crs: Any) -> None:
        self.lines = None
        if streets is not None and len(streets):
            if crs is not None and streets.crs is not None and streets.crs != crs:
                streets = reproject(streets, crs, what="streets")
            self.lines = streets
            self.tree = shapely.STRtree(streets.geometry.to_numpy())

    def near(self, part: gpd.GeoDataFrame, margin_m: float) -> gpd.GeoDataFrame | None:
        """The lines within ``margin_m`` of the piece's bounding box (None without lines)."""
        if self.lines is None:
            return None
        box = shapely.box(*part.total_bounds).buffer(margin_m)
        return self.lines.iloc[np.sort(self.tree.query(box))]


def _partition_piece(
    task: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, float], options: dict[str, Any]
) -> Any:
    """One piece's grids (a Dask task): :func:`gridopt.partition_grids` on its buildings."""
    buildings, streets, time_limit_s = task
    return partition_grids(buildings, streets=streets, time_limit_s=time_limit_s, **options)


def partition_city(
    buildings: gpd.GeoDataFrame,
    *,
    by: str | None = "street",
    streets: gpd.GeoDataFrame | None = None,
    households: str = "households",
    min_households: int = MIN_HOUSEHOLDS,
    max_households: int = MAX_HOUSEHOLDS,
    communities: str | None = "community",
    time_limit_s: float = CITY_TIME_LIMIT_S,
    seed: int = SEED,
    client: Any = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> Partition:
    """Grids of a whole city or province, piece by piece (street offices or blocks), stitched.

    :func:`gridopt.partition_grids` on every piece (tessellation included, so no stage
    ever holds the whole city's adjacency), sequentially or on a Dask cluster, then one
    :class:`~gridopt.partition.Partition` for the whole area: grid ids renumbered
    ``G00001...`` in piece order, grid polygons of neighbouring pieces made disjoint
    (a strip claimed by two pieces goes to the first).

    Parameters
    ----------
    buildings
        Buildings in a metric CRS with a households column.
    by
        Column naming the pieces (default the street office, ``"street"``); ``None``
        cuts the city into barrier-bounded blocks with :func:`split_city` (a block too
        small for a grid is merged with a neighbour). A missing default column falls
        back to blocks.
    streets
        Streets with ``barrier_kind``; each piece gets the lines near it.
    households, min_households, max_households, seed
        As for :func:`gridopt.partition_grids`.
    communities
        Community column passed on (grids never straddle two communities); ignored when
        the column does not exist.
    time_limit_s
        Limit for the whole call; each piece gets a share proportional to its buildings
        (times the number of workers), at least one second.
    client
        ``None`` (sequential), a ``dask.distributed.Client`` or ``"local"`` (see
        :func:`map_components`).
    progress
        Optional callable receiving progress lines.
    **options
        Further options of :func:`gridopt.partition_grids` (``exclusive``, ``method``,
        ``max_gap_m`` ...); ``previous`` is not supported here.

    Returns
    -------
    gridopt.partition.Partition
        ``details`` adds ``pieces`` and per-stage sums over the pieces.

    Examples
    --------
    >>> from gridopt.synthetic import synthetic_city
    >>> city = synthetic_city(400, seed=2)
    >>> part = partition_city(city.buildings, streets=city.streets)
    >>> bool(part.labels.index.equals(city.buildings.index)), part.share_in_band
    (True, 1.0)
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    if "previous" in options:
        raise InputError(
            "partition_city does not take previous=; use gridopt.partition_grids for re-gridding"
        )
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(f"buildings must be a GeoDataFrame, got {type(buildings).__name__}")
    if not buildings.index.is_unique:
        raise InputError("buildings.index has duplicate ids; building ids must be unique")
    check(min_households=min_households, max_households=max_households,
          time_limit_s=time_limit_s, seed=seed)  # fmt: skip
    if by is not None and by not in buildings.columns and by == "street":
        by = None
    pieces = split_city(
        buildings, by=by, streets=streets, households=households,
        min_households=min_households, max_households=max_households,
    )  # fmt: skip
    pieces = _merge_empty(buildings, pieces, households)
    opts = dict(
        options,
        households=households,
        min_households=min_households,
        max_households=max_households,
        seed=seed,
    )
    if communities is not None and communities in buildings.columns:
        opts["communities"] = communities
    max_gap_m = float(options.get("max_gap_m", 80.0))
    codes, names = pd.factorize(pieces, sort=False)
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    n = len(buildings)
    threads = worker_threads(client)
    lines = _NearLines(streets, buildings.crs)
    tasks = []
    for grp in groups:
        part = buildings.iloc[grp]
        near = lines.near(part, max_gap_m)
        # a share of the city's limit by size, but never below MIN_PIECE_S: a small piece
        # gets the exact polish and a piece stops once it converges, so the floor costs
        # time only where it buys quality (benchmarks/NOTES.md)
        share = time_limit_s * threads * len(grp) / max(n, 1)
        tasks.append((part, near, float(min(time_limit_s, max(MIN_PIECE_S, share)))))
    say(f"partitioning {n:,} buildings in {len(tasks):,} pieces")
    t = time.perf_counter()
    results = map_components(
        _partition_piece, tasks, args=(opts,), client=client, sizes=[len(g) for g in groups],
        name="gridopt-partition-piece", progress=progress,
    )  # fmt: skip
    solve_s = time.perf_counter() - t
    del tasks
    return _stitch(buildings, names, results, min_households, max_households, t0, solve_s)


def _stitch(
    buildings: gpd.GeoDataFrame,
    names: Any,
    results: list[Partition],
    lo: int,
    hi: int,
    t0: float,
    solve_s: float,
) -> Partition:
    """One Partition from the pieces' partitions: global grid ids, disjoint polygons."""
    frames = []
    label_parts = []
    total = sum(len(r.grids) for r in results)
    width = max(5, len(str(total)))
    k = 0
    for piece, res in zip(names, results, strict=True):
        g = res.grids.copy()
        new_ids = [f"G{k + r + 1:0{width}d}" for r in range(len(g))]
        k += len(g)
        rename = dict(zip(g["grid_id"], new_ids, strict=True))
        g["grid_id"] = new_ids
        g["piece"] = str(piece)
        frames.append(g)
        label_parts.append(res.labels.map(rename))
    grids = pd.concat(frames, ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=buildings.crs)
    grids["geometry"] = _disjoint(grids.geometry.to_numpy(), grids["piece"].to_numpy())
    labels = pd.concat(label_parts).reindex(buildings.index).rename("grid_id")
    missing = labels.isna()
    if missing.any():  # never expected: every piece labels all its buildings
        raise SolverError(f"{int(missing.sum())} buildings lost while stitching pieces")
    h = np.array(
        [
            r.grids.loc[r.grids["kind"].isin(["regular", "undersized"]), "households"].sum()
            for r in results
        ]
    )
    objective = float(np.dot([r.objective for r in results], h) / h.sum()) if h.sum() else 0.0
    status = combine_status(r.status for r in results)
    bounds = [r.bound for r in results]
    bound = (
        float(np.dot(bounds, h) / h.sum())
        if h.sum() and all(b is not None for b in bounds)
        else None
    )
    details: dict[str, Any] = {"pieces": len(results), "pieces_s": solve_s}
    for key in ("tessellation_s", "solve_s", "edges", "components", "barrier_merges"):
        vals = [r.details.get(key) for r in results if isinstance(r.details.get(key), (int, float))]
        if vals:
            details[key] = float(sum(vals)) if key.endswith("_s") else int(sum(vals))
    details["piece_seconds_max"] = max((r.runtime_s for r in results), default=0.0)
    # which pieces stopped at their time limit (their grids are valid, maybe less compact)
    details["pieces_time_limit"] = [
        str(piece) for piece, r in zip(names, results, strict=True) if r.status == "time_limit"
    ]
    return Partition(
        labels=labels,
        grids=grids,
        status=status,
        objective=objective,
        bound=bound,
        runtime_s=time.perf_counter() - t0,
        min_households=lo,
        max_households=hi,
        households_moved=None,
        details=details,
    )


def _disjoint(geoms: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """Remove from each grid polygon what grids of earlier pieces already cover.

    Each piece was tessellated alone, so cells at a piece border reach into the
    neighbouring piece's land (at most ``max_gap_m / 2``). Inside a piece the polygons
    are disjoint already; only pairs from different pieces are cut.
    """
    geoms = geoms.copy()
    rank = pd.factorize(piece)[0]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = rank[a] < rank[b]
    a, b = a[keep], b[keep]
    if not len(a):
        return geoms
    inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    a, b = a[inter > 1e-6], b[inter > 1e-6]
    for j in np.unique(b):
        earlier = geoms[a[b == j]]
        cut = shapely.difference(geoms[j], shapely.union_all(earlier), grid_size=0.01)
        if cut.geom_type == "MultiPolygon":
            cut = max(cut.geoms, key=lambda g: g.area)  # a sliver cut off at the seam
        if not cut.is_empty:
            geoms[j] = cut
    return geoms


# ---------------------------------------------------------------------------
# plan_city: gridopt.plan per street office, stitched
# ---------------------------------------------------------------------------

#: columns holding ids that are unique only inside one street office's plan.
_LOCAL_ID_COLUMNS = ("grid_id", "station", "site", "site_id", "station_id")


@dataclass(frozen=True)
class OfficePlan:
    """The light result of one street office's :func:`gridopt.plan` (what travels back)."""

    name: str
    layers: dict[str, pd.DataFrame]
    report: pd.DataFrame
    runtime_s: dict[str, float]
    summary: str
    n_grids: int
    share_in_band: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CityPlan:
    """A city's plan made street office by street office.

    Attributes
    ----------
    offices
        One :class:`OfficePlan` per street office, in input order.
    runtime_s
        Wall seconds of the call (``"total"``) and per stage summed over the offices
        (CPU-side work: larger than the wall time on a cluster).
    """

    offices: tuple[OfficePlan, ...]
    runtime_s: dict[str, float]
    min_households: int = MIN_HOUSEHOLDS
    max_households: int = MAX_HOUSEHOLDS

    def layer(self, name: str) -> pd.DataFrame:
        """One layer of all offices together, ids prefixed ``"<office>/"`` (``office`` column added)."""
        frames = []
        for office in self.offices:
            frame = office.layers.get(name)
            if frame is None or len(frame) == 0:
                continue
            frame = frame.copy()
            for col in _LOCAL_ID_COLUMNS:
                if col in frame.columns:
                    frame[col] = frame[col].map(
                        lambda v, o=office.name: None if v is None or v != v else f"{o}/{v}"
                    )
            if frame.index.name in _LOCAL_ID_COLUMNS:
                frame.index = pd.Index(
                    [f"{office.name}/{v}" for v in frame.index], name=frame.index.name
                )
            frame.insert(0, "office", office.name)
            frames.append(frame)
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames)
        if isinstance(frames[0], gpd.GeoDataFrame):
            out = gpd.GeoDataFrame(out, geometry=frames[0].geometry.name, crs=frames[0].crs)
        return out

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """All grids (``grid_id`` is ``"<office>/<grid>"``)."""
        return self.layer("grids")

    def report(self) -> pd.DataFrame:
        """One row per grid over all offices (see :meth:`gridopt.Plan.report`)."""
        frames = [o.report.assign(office=o.name) for o in self.offices]
        out = pd.concat(frames, ignore_index=True)
        out["grid_id"] = out["office"] + "/" + out["grid_id"].astype(str)
        return out

    def summary(self) -> str:
        """Totals over the offices: buildings, households, grids, band, time."""
        g = self.grids
        kinds = g["kind"].value_counts()
        reg = g.loc[g["kind"] == "regular", "households"]
        inside = (
            float(reg.between(self.min_households, self.max_households).mean())
            if len(reg)
            else float("nan")
        )
        b = self.layer("buildings")
        st = self.layer("stations")
        lines = [
            f"{len(self.offices):,} street offices, {len(b):,} buildings, {int(b['households'].sum()):,} households",
            f"grids: {len(g):,} ({', '.join(f'{int(kinds.get(k, 0))} {k}' for k in ('regular', 'exclusive', 'oversized', 'undersized'))}), "
            f"{inside:.1%} of regular grids inside the band",
            f"stations: {len(st):,}",
            "time " + ", ".join(f"{k} {v:.1f} s" for k, v in self.runtime_s.items()),
        ]
        return "\n".join(lines)

    def to_file(self, directory: str | os.PathLike[str], *, map_office: str | None = None) -> Path:
        """Write ``plan.gpkg`` (all offices), ``report.csv``, ``summary.txt`` and ``map.html``.

        The map shows one street office (``map_office``; default the first), because a
        map of a whole city in one browser page is neither fast nor readable.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted({n for o in self.offices for n in o.layers})
        order = [n for n in ("buildings", "grids", "stations") if n in names] + [
            n for n in names if n not in ("buildings", "grids", "stations")
        ]
        layers = {n: self.layer(n) for n in order}
        write_layers(directory / "plan.gpkg", {n: f for n, f in layers.items() if len(f)})
        self.report().to_csv(directory / "report.csv", index=False, encoding="utf-8-sig")
        (directory / "summary.txt").write_text(self.summary() + "\n", encoding="utf-8")
        self.office_map(map_office).save(str(directory / "map.html"))
        return directory

    def office_map(self, office: str | None = None) -> folium.Map:
        """The interactive map (:func:`gridopt.mapping.plan_map`) of one street office."""
        pick = (
            self.offices[0]
            if office is None
            else next((o for o in self.offices if o.name == office), None)
        )
        if pick is None:
            raise InputError(
                f"no street office {office!r}; offices: {', '.join(o.name for o in self.offices[:20])}"
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plan.gpkg"
            write_layers(path, {n: f for n, f in pick.layers.items() if len(f)})
            return plan_map(path)


def _plan_piece(
    task: tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame | None], config: dict[str, Any]
) -> OfficePlan:
    """One street office's plan (a Dask task), reduced to its layers and report."""
    name, buildings, streets = task
    p = plan(buildings, streets=streets, config=config)
    return OfficePlan(
        name=name,
        layers=p.layers(),
        report=p.report(),
        runtime_s=dict(p.runtime_s),
        summary=p.summary(),
        n_grids=len(p.partition.grids),
        share_in_band=float(p.partition.share_in_band),
        notes=tuple(p.notes),
    )


def plan_city(
    buildings: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    by: str = "street",
    streets: gpd.GeoDataFrame | None = None,
    config: PlanConfig | Mapping[str, Any] | None = None,
    client: Any = None,
    chunk_rows: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CityPlan:
    """:func:`gridopt.plan` for every street office, sequentially or on Dask.

    Street offices are independent for every stage (grids nest in communities, stations
    and staff are planned per office), so each office is one task: buildings, grids,
    walking network, stations and staff, with the streets near the office.

    Parameters
    ----------
    buildings
        A GeoDataFrame (metric CRS, households) or a file. A GeoParquet/GeoPackage path
        with ``chunk_rows`` is read a few offices at a time
        (:func:`gridopt.io.read_buildings_chunked`), so the whole file never sits in one frame.
    by
        Column naming the street office of each building.
    streets
        Street lines with ``barrier_kind`` (all offices; each task gets the lines near
        its office).
    config
        A :class:`gridopt.PlanConfig` or a dict of its fields, for every office. The time
        limit applies per office.
    client
        ``None`` (sequential), a ``dask.distributed.Client`` or ``"local"``.
    chunk_rows
        Read a file in pieces of about this many rows (whole offices per piece).
    progress
        Optional callable receiving progress lines.

    Returns
    -------
    CityPlan
    """
    t0 = time.perf_counter()
    cfg = PlanConfig.from_any(config)
    cfg_dict = dataclasses.asdict(cfg)
    cfg_dict["progress"] = False  # no progress bars inside workers
    if isinstance(buildings, (str, os.PathLike)) and chunk_rows:
        frames: Iterator[gpd.GeoDataFrame] = read_buildings_chunked(
            buildings, chunk_rows=chunk_rows, by=by
        )
    elif isinstance(buildings, (str, os.PathLike)):
        frames = iter([read_buildings(buildings)])
    elif isinstance(buildings, gpd.GeoDataFrame):
        frames = iter([buildings])
    else:
        raise InputError(
            f"buildings must be a path or a GeoDataFrame, got {type(buildings).__name__}"
        )
    lines: _NearLines | None = None
    offices: list[OfficePlan] = []
    for frame in frames:
        if by not in frame.columns:
            raise InputError(
                f"buildings have no street-office column {by!r}; pass by= (columns: {', '.join(map(str, frame.columns))})"
            )
        if lines is None:  # the first piece's CRS is every piece's (read_buildings)
            lines = _NearLines(streets, frame.crs)
        tasks = []
        offices_of = _merge_empty(frame, frame[by].astype(str), "households")
        for name, part in frame.groupby(offices_of.to_numpy(), sort=False):
            tasks.append((str(name), part, lines.near(part, 1.5 * cfg.max_walk_m)))
        if progress:
            progress(f"planning {len(tasks)} street offices ({len(frame):,} buildings)")
        offices += map_components(
            _plan_piece, tasks, args=(cfg_dict,), client=client, sizes=[len(t[1]) for t in tasks],
            name="gridopt-plan-office", progress=progress,
        )  # fmt: skip
    runtime: dict[str, float] = {}
    for o in offices:
        for k, v in o.runtime_s.items():
            if k != "total":
                runtime[k] = runtime.get(k, 0.0) + float(v)
    runtime["total"] = time.perf_counter() - t0
    return CityPlan(
        offices=tuple(offices),
        runtime_s=runtime,
        min_households=cfg.min_households,
        max_households=cfg.max_households,
    )
