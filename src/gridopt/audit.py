"""Audit of existing grids against the standards: what violates what, grid by grid.

Street offices already have grids, drawn by hand years ago. :func:`audit`
reads those polygons, puts every building in the grid that holds it, and
measures each grid against the standards the plan itself follows:

``over_band`` / ``under_band``
    households outside ``min_households``-``max_households``. Not a violation
    for a grid of one building above the band (a tower: split by stairwell or
    floor), a grid without households (an exclusive grid of a school, a
    hospital), or a grid below the band that no neighbouring grid of its
    community could absorb without leaving the band.
``not_contiguous``
    the grid's polygon falls apart into separate pieces.
``crosses_community``
    the grid's buildings belong to more than one community (社区).
``overlaps``
    some of its buildings also lie in another grid.
``understaffed``
    fewer grid workers assigned (a ``workers`` column of the grids) than the
    standard asks (one per ``households_per_worker`` households, at least one).
``beyond_walk``
    with ``stations`` given: some of its households walk further than
    ``max_walk_m`` to the nearest one.

Measured as well, not judged: ``barriers_crossed`` (major streets, rivers
and railways that run through the grid's interior). Buildings in no grid are
listed (:attr:`Audit.unassigned`).

:func:`grid_labels` is the same spatial join on its own: the old grid of each
building, for ``gridopt.plan(..., previous=)``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridopt._errors import InputError
from gridopt.crs import reproject, to_wgs84
from gridopt.io import _load, read_buildings, read_streets, write_layers
from gridopt.network import walk_network, walking_distances

__all__ = ["VIOLATIONS", "Audit", "audit", "grid_labels"]

log = logging.getLogger("gridopt")

#: The violation codes, in the order the ``violations`` column lists them.
VIOLATIONS: tuple[str, ...] = (
    "over_band",
    "under_band",
    "not_contiguous",
    "crosses_community",
    "overlaps",
    "understaffed",
    "beyond_walk",
)

# Polygon pieces smaller than this (slivers of a hand-drawn polygon) do not count.
_MIN_PART_M2 = 1.0
# A barrier counts as crossing a grid when it runs through the polygon shrunk by this.
_BARRIER_INSET_M = 5.0
# Grids whose polygons come this close are neighbours.
_NEIGHBOUR_GAP_M = 1.0


@dataclass(frozen=True, eq=False)
class Audit:
    """Existing grids measured against the standards.

    Attributes
    ----------
    grids
        One row per grid: ``grid_id``, ``households``, ``buildings``,
        ``communities``, ``parts``, ``barriers_crossed``, ``workers_needed``,
        ``workers_assigned`` (NaN without a workers column),
        ``share_within_walk`` (NaN without stations), ``violations`` (codes of
        :data:`VIOLATIONS` joined by ``"; "``), ``valid``, ``notes`` and the
        polygon.
    buildings
        The buildings with ``grid_id`` (``None`` where no grid holds them).
    unassigned
        The buildings no grid holds.
    standards
        The figures used (band, households per worker, walk limit).
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    unassigned: gpd.GeoDataFrame
    standards: dict[str, float]

    @property
    def violations(self) -> pd.DataFrame:
        """One row per (grid, violation)."""
        rows = [
            (gid, code)
            for gid, text in zip(self.grids["grid_id"], self.grids["violations"], strict=True)
            for code in filter(None, str(text).split("; "))
        ]
        return pd.DataFrame(rows, columns=["grid_id", "violation"])

    def summary(self) -> str:
        """A few lines: how many grids violate what, and the buildings in no grid."""
        g = self.grids
        v = self.violations
        s = self.standards
        lines = [
            f"audit of {len(g):,} grids ({int(g['households'].sum()):,} households) against "
            f"{s['min_households']:.0f}-{s['max_households']:.0f} households per grid: "
            f"{int(g['valid'].sum()):,} valid, {int((~g['valid']).sum()):,} violate a standard"
        ]
        for code in VIOLATIONS:
            ids = v.loc[v["violation"] == code, "grid_id"].astype(str).tolist()
            if ids:
                shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
                lines.append(f"  {code}: {len(ids)} grid(s) ({shown})")
        if len(self.unassigned):
            lines.append(
                f"{len(self.unassigned):,} buildings ({int(self.unassigned['households'].sum()):,} "
                "households) lie in no grid"
            )
        return "\n".join(lines)

    def to_file(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``audit.gpkg`` (grids, buildings, unassigned), ``audit.csv`` and ``audit.html``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        layers: dict[str, pd.DataFrame] = {"grids": self.grids, "buildings": self.buildings}
        if len(self.unassigned):
            layers["unassigned"] = self.unassigned
        write_layers(out / "audit.gpkg", layers)
        # Excel on Chinese Windows reads UTF-8 only with a BOM
        self.grids.drop(columns="geometry").to_csv(out / "audit.csv", index=False, encoding="utf-8-sig")
        audit_map(self).save(str(out / "audit.html"))
        return out


def grid_labels(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | str | os.PathLike[str],
    *,
    id_column: str | None = None,
) -> pd.Series:
    """The grid holding each building (its point on surface), ``None`` where none does.

    Parameters
    ----------
    buildings
        Buildings in a metric CRS.
    grids
        Grid polygons (file or GeoDataFrame); reprojected to the buildings' CRS.
    id_column
        Column of grid ids; default ``grid_id`` if present, else the first column
        whose values are unique, else the row number.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(5, 0, 6, 1), box(50, 0, 51, 1)],
    ...                      crs=32651)
    >>> g = gpd.GeoDataFrame({"grid_id": ["A"]}, geometry=[box(-1, -1, 10, 2)], crs=32651)
    >>> grid_labels(b, g).tolist()
    ['A', 'A', None]
    """
    polys, ids = _grid_frame(grids, buildings.crs, id_column)
    label, _ = _join(buildings, polys, ids)
    return pd.Series(label, index=buildings.index, name="grid_id", dtype=object)


def audit(
    buildings: gpd.GeoDataFrame | str | os.PathLike[str],
    *,
    grids: gpd.GeoDataFrame | str | os.PathLike[str],
    id_column: str | None = None,
    communities: str | None = "community",
    streets: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    stations: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    workers: str = "workers",
    min_households: int = 200,
    max_households: int = 300,
    households_per_worker: int = 200,
    max_walk_m: float = 1000.0,
) -> Audit:
    """Measure existing grids against the standards.

    Parameters
    ----------
    buildings
        Buildings (file or GeoDataFrame); households are estimated unless a
        ``households`` column exists (see :func:`gridopt.read_buildings`).
    grids
        The existing grid polygons (Shapefile, GeoPackage, ... or GeoDataFrame).
    id_column
        Column of grid ids (default ``grid_id``, else the first unique column).
    communities
        Column of the buildings naming their community; ignored when absent.
    streets
        Street lines (file or GeoDataFrame): barriers crossed and, with
        ``stations``, walking distances. An ``.osm.pbf`` buildings file is its
        own default.
    stations
        Existing station points or polygons: each grid's share of households
        within ``max_walk_m`` of one.
    workers
        Column of ``grids`` with the grid workers assigned (optional).
    min_households, max_households, households_per_worker, max_walk_m
        The standards (Dalian: 200-300 households, one worker per 200, 1,000 m).

    Returns
    -------
    Audit

    Raises
    ------
    InputError
        Unreadable files, grids without polygons, a bad band, an unknown id column.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"households": [150, 50, 100]},
    ...                      geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10), box(60, 0, 70, 10)],
    ...                      crs=32651)
    >>> g = gpd.GeoDataFrame({"grid_id": ["A", "B"]},
    ...                      geometry=[box(-1, -1, 45, 11), box(45, -1, 80, 11)], crs=32651)
    >>> a = audit(b, grids=g)
    >>> a.grids[["grid_id", "households", "violations"]].values.tolist()
    [['A', 200, ''], ['B', 100, 'under_band']]
    """
    if not (0 < min_households <= max_households):
        raise InputError(
            f"impossible grid band {min_households}-{max_households}; pass 0 < min <= max"
        )
    bld = _buildings(buildings)
    polys, ids = _grid_frame(grids, bld.crs, id_column)
    label, overlapping = _join(bld, polys, ids)
    hh = bld["households"].to_numpy(dtype=float)
    n_g = len(ids)
    pos = pd.Series(np.arange(n_g), index=pd.Index(ids, dtype=object))
    code = np.array([pos[lab] if lab is not None else -1 for lab in label], dtype=np.int64)
    has = code >= 0
    households = np.bincount(code[has], weights=hh[has], minlength=n_g)
    n_bld = np.bincount(code[has], minlength=n_g)
    n_res = np.bincount(code[has & (hh > 0)], minlength=n_g)
    biggest = np.zeros(n_g)
    np.maximum.at(biggest, code[has], hh[has])
    geoms = polys.geometry.to_numpy()
    parts = _parts(geoms)
    comm = _communities(bld, communities, code, n_g)
    neighbours = _neighbours(geoms)
    lines = _street_lines(streets, buildings, bld)
    barriers = _barriers_crossed(geoms, lines)
    needed = np.where(households > 0, np.maximum(1, np.ceil(households / households_per_worker)),
                      0).astype(np.int64)
    assigned = (
        pd.to_numeric(polys[workers], errors="coerce").to_numpy(dtype=float)
        if workers in polys.columns
        else np.full(n_g, np.nan)
    )
    within = _walk_share(bld, hh, code, n_g, lines, stations, max_walk_m)

    violations: list[list[str]] = [[] for _ in range(n_g)]
    notes: list[list[str]] = [[] for _ in range(n_g)]
    comm_of = comm["first"]
    for g in range(n_g):
        h = households[g]
        if h > max_households:
            if n_res[g] == 1:
                notes[g].append(f"one building of {h:.0f} households: split by stairwell or floor")
            else:
                violations[g].append("over_band")
        elif h < min_households:
            if h == 0:
                notes[g].append("no households: an exclusive or empty grid")
            elif all(h + households[k] > max_households for k in neighbours[g]
                     if comm_of[k] == comm_of[g]):
                notes[g].append("below the band, but no neighbouring grid of its community can "
                                "absorb it within the band")
            else:
                violations[g].append("under_band")
        if parts[g] > 1:
            violations[g].append("not_contiguous")
        if comm["count"][g] > 1:
            violations[g].append("crosses_community")
        if overlapping[g]:
            violations[g].append("overlaps")
        if np.isfinite(assigned[g]) and assigned[g] < needed[g]:
            violations[g].append("understaffed")
        if np.isfinite(within[g]) and within[g] < 1.0 - 1e-9:
            violations[g].append("beyond_walk")

    out = gpd.GeoDataFrame(
        {
            "grid_id": ids,
            "households": households.round().astype(np.int64),
            "buildings": n_bld.astype(np.int64),
            "communities": comm["text"],
            "parts": parts,
            "barriers_crossed": barriers,
            "workers_needed": needed,
            "workers_assigned": assigned,
            "share_within_walk": np.round(within, 4),
            "violations": ["; ".join(v) for v in violations],
            "valid": [not v for v in violations],
            "notes": ["; ".join(n) for n in notes],
        },
        geometry=geoms,
        crs=bld.crs,
    )
    with_grid = bld.copy()
    with_grid["grid_id"] = label
    unassigned = with_grid.loc[~has, ["households", "geometry"]]
    result = Audit(
        grids=out,
        buildings=with_grid,
        unassigned=gpd.GeoDataFrame(unassigned, geometry="geometry", crs=bld.crs),
        standards={
            "min_households": float(min_households),
            "max_households": float(max_households),
            "households_per_worker": float(households_per_worker),
            "max_walk_m": float(max_walk_m),
        },
    )
    log.info("%s", result.summary())
    return result


def audit_map(result: Audit) -> folium.Map:
    """An interactive map: valid grids green, grids that violate a standard red, with why."""
    g = to_wgs84(result.grids)
    g = g.assign(status=np.where(g["valid"], "valid", g["violations"]))
    bounds = g.total_bounds
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    fields = ["grid_id", "households", "status", "notes", "barriers_crossed"]
    folium.GeoJson(
        g[[*fields, "geometry"]].to_json(),
        name="grids",
        style_function=lambda f: {
            "color": "#1a7f37" if f["properties"]["status"] == "valid" else "#c62828",
            "fillOpacity": 0.15 if f["properties"]["status"] == "valid" else 0.4,
            "weight": 2,
        },
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(fmap)
    if len(result.unassigned):
        folium.GeoJson(
            to_wgs84(result.unassigned)[["households", "geometry"]].to_json(),
            name="buildings in no grid",
            style_function=lambda f: {"color": "#ff8f00", "weight": 1, "fillOpacity": 0.8},
        ).add_to(fmap)
    folium.LayerControl().add_to(fmap)
    return fmap


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _buildings(source: Any) -> gpd.GeoDataFrame:
    if isinstance(source, gpd.GeoDataFrame) and "households" in source.columns:
        if source.crs is None or source.crs.is_geographic:
            raise InputError(
                f"buildings have CRS {source.crs}; the audit measures in metres: read them "
                "with gridopt.read_buildings or reproject with .to_crs()"
            )
        return source
    if isinstance(source, gpd.GeoDataFrame):
        return read_buildings(source)
    if not Path(source).exists():
        raise InputError(f"buildings file not found: {source}")
    fields: list[str] = []
    if not str(source).lower().endswith((".pbf", ".osm")):
        fields = list(pyogrio.read_info(source)["fields"])
    # Counted households win over estimates, as in gridopt.plan.
    return read_buildings(source, households="households" if "households" in fields else None)


def _grid_frame(
    grids: Any, crs: Any, id_column: str | None
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    frame, _ = _load(grids, layer=None, crs=None, what="grids")
    frame = frame[np.isin(shapely.get_type_id(frame.geometry.to_numpy()), [3, 6])]
    if len(frame) == 0:
        raise InputError("the grids have no polygons; pass the grid boundaries as polygons")
    frame = reproject(frame, crs, what="grids").reset_index(drop=True)
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(
                f"id_column {id_column!r} not found in the grids; columns: "
                f"{', '.join(map(str, frame.columns))}"
            )
        ids = frame[id_column]
    elif "grid_id" in frame.columns:
        ids = frame["grid_id"]
    else:
        unique = [c for c in frame.columns if c != frame.geometry.name and frame[c].is_unique
                  and frame[c].notna().all()]
        ids = frame[unique[0]] if unique else pd.Series(np.arange(len(frame)))
    if ids.isna().any() or not ids.is_unique:
        raise InputError("grid ids must be unique and present; pass id_column= with such a column")
    return frame, ids.astype(str).to_numpy(dtype=object)


def _join(
    bld: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grid id per building (None: none) and, per grid, whether it shares buildings."""
    pts = shapely.point_on_surface(bld.geometry.to_numpy())
    bi, gi = shapely.STRtree(polys.geometry.to_numpy()).query(pts, predicate="within")
    label = np.full(len(bld), None, dtype=object)
    overlapping = np.zeros(len(ids), dtype=bool)
    if len(bi):
        order = np.lexsort((gi, bi))
        bi, gi = bi[order], gi[order]
        first = np.ones(len(bi), dtype=bool)
        first[1:] = bi[1:] != bi[:-1]
        label[bi[first]] = ids[gi[first]]
        dup = np.isin(bi, bi[~first])
        overlapping[np.unique(gi[dup])] = True
    return label, overlapping


def _parts(geoms: np.ndarray) -> np.ndarray:
    """Separate pieces of each polygon, slivers left out."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    big = shapely.area(parts) >= _MIN_PART_M2
    return np.bincount(idx[big], minlength=len(geoms)).astype(np.int64)


def _communities(
    bld: gpd.GeoDataFrame, column: str | None, code: np.ndarray, n_g: int
) -> dict[str, Any]:
    count = np.zeros(n_g, dtype=np.int64)
    text = [""] * n_g
    first: list[Any] = [None] * n_g
    if not column or column not in bld.columns:
        return {"count": count, "text": text, "first": first}
    df = pd.DataFrame({"g": code, "c": bld[column].to_numpy()})
    df = df[(df["g"] >= 0) & df["c"].notna()]
    for g, values in df.groupby("g")["c"]:
        names = sorted(map(str, values.unique()))
        count[g], text[g] = len(names), ", ".join(names)
        first[g] = values.mode().iloc[0]
    return {"count": count, "text": text, "first": first}


def _neighbours(geoms: np.ndarray) -> list[list[int]]:
    tree = shapely.STRtree(geoms)
    a, b = tree.query(shapely.buffer(geoms, _NEIGHBOUR_GAP_M), predicate="intersects")
    out: list[list[int]] = [[] for _ in range(len(geoms))]
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        if i != j:
            out[i].append(j)
    return out


def _street_lines(streets: Any, source: Any, bld: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    if streets is None and isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(
        (".pbf", ".osm")
    ):
        streets = source
    if streets is None:
        return None
    return read_streets(streets, to_crs=bld.crs)


def _barriers_crossed(geoms: np.ndarray, lines: gpd.GeoDataFrame | None) -> np.ndarray:
    """Major streets, rivers and railways running through each grid's interior."""
    out = np.zeros(len(geoms), dtype=np.int64)
    if lines is None or "barrier_kind" not in lines.columns:
        return out
    bar = lines[lines["barrier_kind"].notna()].geometry.to_numpy()
    if len(bar) == 0:
        return out
    inner = shapely.buffer(geoms, -_BARRIER_INSET_M)
    gi, _ = shapely.STRtree(bar).query(inner, predicate="intersects")
    return np.bincount(gi, minlength=len(geoms)).astype(np.int64)


def _walk_share(
    bld: gpd.GeoDataFrame,
    hh: np.ndarray,
    code: np.ndarray,
    n_g: int,
    lines: gpd.GeoDataFrame | None,
    stations: Any,
    max_walk_m: float,
) -> np.ndarray:
    """Share of each grid's households within ``max_walk_m`` of a station (NaN: no stations)."""
    if stations is None:
        return np.full(n_g, np.nan)
    st, _ = _load(stations, layer=None, crs=None, what="stations")
    st = reproject(st, bld.crs, what="stations")
    homes = np.flatnonzero((hh > 0) & (code >= 0))
    graph = walk_network(lines, crs=bld.crs) if lines is not None else None
    d = walking_distances(graph, bld.geometry.iloc[homes], st.geometry, max_walk_m=max_walk_m)
    reached = np.diff(d.matrix.indptr) > 0
    total = np.bincount(code[homes], weights=hh[homes], minlength=n_g)
    ok = np.bincount(code[homes[reached]], weights=hh[homes[reached]], minlength=n_g)
    share = np.where(total > 0, ok / np.where(total > 0, total, 1.0), 1.0)
    return share
