"""Blocks and cells: the land a street office divides, tiled block by block.

The study area (``area=``, else the community polygons, else a hull of the buildings) is
cut by the boundary lines (streets of the classes that bound grids, rivers, canals, the
coast, ground-level railways, community lines) into *blocks* (momepy's ``enclosures``).
Inside each block every building gets the land nearest to it (a Voronoi diagram of
points on the building outlines, clipped to the block: the same construction as
momepy's ``enclosed_tessellation``, done for all blocks in one pass because momepy's
per-block loop is several times slower on a city). Cells and building-less blocks
together tile the area: the union of a grid's land is its territory, with no gaps and no
overlaps.

The *land graph* has one node per building and one per building-less block; two nodes
are neighbours when their land shares a line. Each edge has a class: 0 inside a block,
else the class code of the boundary line it runs along (:data:`EDGE_CLASSES`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import geopandas as gpd
import momepy
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridopt._errors import InputError, RepairWarning
from gridopt.tags import BOUNDARY_CLASSES, HARD_CLASSES, boundary_class, is_coastline

__all__ = ["EDGE_CLASSES", "land_blocks", "study_area"]

log = logging.getLogger("gridopt")

#: Edge classes of the land graph: 0 inside a block, then the boundary classes, then
#: a community line (also hard).
EDGE_CLASSES: tuple[str, ...] = ("block", *BOUNDARY_CLASSES, "community")
HARD_CODES = frozenset(
    EDGE_CLASSES.index(c) for c in (*sorted(HARD_CLASSES), "community")
)
_COMMUNITY = EDGE_CLASSES.index("community")
# how far the middle of a shared boundary may lie from its line (floating point of polygonize)
_LINE_SNAP_M = 0.5
# buffer of the building hull that makes the default study area
_HULL_MARGIN_M = 30.0


@dataclass(frozen=True)
class _Land:
    """Blocks, cells and the land graph (positional arrays; nodes = buildings, then empty blocks)."""

    area: shapely.Geometry
    blocks: np.ndarray  # (b,) Polygons
    block_of: np.ndarray  # (n,) block of each building
    cells: np.ndarray  # (n,) land of each building
    empty: np.ndarray  # (e,) blocks without buildings, in node order n..n+e-1
    i: np.ndarray  # (m,) node pairs i < j
    j: np.ndarray
    shared_m: np.ndarray  # (m,) length of the shared boundary
    cls: np.ndarray  # (m,) int8 index into EDGE_CLASSES
    note: str  # non-empty when the blocks fell back to the area

    @property
    def n_nodes(self) -> int:
        return len(self.cells) + len(self.empty)

    @property
    def land(self) -> np.ndarray:
        """The land of every node: building cells, then the empty blocks."""
        return np.concatenate([self.cells, self.blocks[self.empty]])


# ---------------------------------------------------------------------------
# study area
# ---------------------------------------------------------------------------


def _as_area_geometry(area: object, crs: object) -> shapely.Geometry:
    """A (Multi)Polygon in the buildings' CRS from a geometry, GeoSeries or GeoDataFrame."""
    if isinstance(area, (gpd.GeoDataFrame, gpd.GeoSeries)):
        geo = area.geometry if isinstance(area, gpd.GeoDataFrame) else area
        if len(geo) == 0:
            raise InputError("area= is empty (0 features); pass the study area's polygon(s)")
        if geo.crs is not None and crs is not None and geo.crs != crs:
            warnings.warn(
                f"area is in {geo.crs.to_string()}; it was reprojected to the buildings' CRS",
                RepairWarning,
                stacklevel=4,
            )
            geo = geo.to_crs(crs)
        elif geo.crs is not None and geo.crs.is_geographic and crs is None:
            raise InputError(f"area= has CRS {geo.crs.to_string()} (degrees); gridopt needs metres")
        geoms = geo.to_numpy()
    elif isinstance(area, shapely.Geometry):
        geoms = np.array([area], dtype=object)
    else:
        raise InputError(
            "area must be a shapely (Multi)Polygon, a GeoSeries or a GeoDataFrame of polygons, "
            f"got {type(area).__name__}"
        )
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polys = geoms[np.isin(shapely.get_type_id(geoms), (3, 6))]
    if len(polys) == 0:
        kinds = sorted({g.geom_type for g in geoms}) if len(geoms) else ["empty"]
        raise InputError(f"area= must be polygons; found {kinds}")
    merged = shapely.union_all(shapely.make_valid(polys))
    merged = shapely.union_all([g for g in shapely.get_parts(merged) if g.area > 0])
    if merged.is_empty or merged.area <= 0:
        raise InputError("area= has no surface (zero area); pass the study area's polygon(s)")
    return merged


def study_area(
    geoms: np.ndarray,
    *,
    crs: object = None,
    area: object = None,
    communities: gpd.GeoDataFrame | None = None,
) -> shapely.Geometry:
    """The land to divide: ``area``, else the community polygons, else a hull of the buildings.

    Parameters
    ----------
    geoms
        Building footprints (metric CRS).
    crs
        The buildings' CRS (``area`` in another CRS is reprojected with a warning).
    area
        The study area's polygon(s), or ``None``.
    communities
        Community polygons; their union is the area when ``area`` is not given (with the
        hull of buildings outside them added, so that no building is left out).

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon

    Raises
    ------
    gridopt.InputError
        ``area`` is not polygonal, or misses buildings (the message says how many).
    """
    pts = shapely.point_on_surface(geoms)
    if area is not None:
        out = _as_area_geometry(area, crs)
        shapely.prepare(out)
        miss = ~shapely.covers(out, pts)
        if miss.any():
            raise InputError(
                f"area= misses {int(miss.sum())} of {len(geoms)} buildings (their footprints lie "
                "outside it); pass an area that covers every building, or drop those buildings"
            )
        return out
    hull = _hull(geoms)
    if communities is not None and len(communities):
        comm = _as_area_geometry(communities, crs)
        shapely.prepare(comm)
        outside = ~shapely.covers(comm, pts)
        if outside.any():
            comm = shapely.union(comm, _hull(geoms[outside]))
        return comm
    return hull


def _hull(geoms: np.ndarray) -> shapely.Geometry:
    """A concave hull of the buildings with a margin: the default study area (one Polygon)."""
    coords = np.unique(np.round(shapely.get_coordinates(shapely.centroid(geoms)), 1), axis=0)
    if len(coords) < 3:
        hull = shapely.convex_hull(shapely.union_all(geoms))
    else:
        hull = shapely.concave_hull(shapely.multipoints(coords), ratio=0.3)
    out = shapely.buffer(hull, _HULL_MARGIN_M, quad_segs=4)
    shapely.prepare(out)
    # footprints reaching out of the hull of the centres: the margin around them too
    out_of = ~shapely.covers(out, geoms)
    if out_of.any():
        extra = shapely.buffer(geoms[out_of], _HULL_MARGIN_M, quad_segs=2)
        out = shapely.union_all(np.concatenate([[out], extra]))
        if out.geom_type != "Polygon":  # keep one piece of land: close the gaps
            out = shapely.convex_hull(out) if len(coords) < 3 else shapely.union(
                out, shapely.concave_hull(out, ratio=0.3))
    return shapely.make_valid(out) if not out.is_valid else out


# ---------------------------------------------------------------------------
# boundary lines and blocks
# ---------------------------------------------------------------------------


def _line_classes(streets: gpd.GeoDataFrame | None) -> np.ndarray:
    """Class code (index into :data:`EDGE_CLASSES`, 0 = no boundary) of every line."""
    if streets is None or not len(streets):
        return np.zeros(0, dtype=np.int8)
    if "boundary_class" in streets.columns:
        cls = streets["boundary_class"].astype(object).where(streets["boundary_class"].notna(), None)
    elif any(c in streets.columns for c in ("highway", "waterway", "railway", "other_tags")):
        cls = boundary_class(streets)
    else:
        # plain lines without tags: every one is a street
        cls = pd.Series("residential", index=streets.index, dtype=object)
    if "barrier_kind" in streets.columns:
        kind = streets["barrier_kind"]
        # the user's barrier_kind is authoritative: set means that hard class, null means
        # no barrier (a hard class from the tags becomes a main street)
        for value, c in (("major_street", "major"), ("river", "water"), ("railway", "railway")):
            cls = cls.where(~(kind == value).to_numpy(), c)
        soft = kind.isna().to_numpy() & cls.isin(sorted(HARD_CLASSES)).to_numpy()
        cls = cls.where(~soft, "main")
        unknown = kind.notna() & ~kind.isin(["major_street", "river", "railway"])
        if unknown.any():
            bad = sorted(set(kind[unknown].astype(str)))
            raise InputError(
                f"streets has barrier_kind values {bad} in {int(unknown.sum())} rows; allowed are "
                "'major_street', 'river', 'railway' or null (ordinary street)"
            )
    codes = np.zeros(len(streets), dtype=np.int8)
    for k, name in enumerate(EDGE_CLASSES):
        if k:
            codes[(cls == name).to_numpy()] = k
    return codes


def _boundary_lines(
    streets: gpd.GeoDataFrame | None,
    boundary_classes: tuple[str, ...],
    communities: gpd.GeoDataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lines that bound blocks and their class codes (streets, water, rail, community lines)."""
    lines, codes = [], []
    if streets is not None and len(streets):
        c = _line_classes(streets)
        wanted = np.isin(c, [EDGE_CLASSES.index(b) for b in boundary_classes])
        g = streets.geometry.to_numpy()[wanted]
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        ok &= np.isin(shapely.get_type_id(g), (1, 2, 5))  # lines, rings, multilines
        lines.append(g[ok])
        codes.append(c[wanted][ok])
    if communities is not None and len(communities) > 1:
        rings = shapely.boundary(communities.geometry.to_numpy())
        lines.append(rings)
        codes.append(np.full(len(rings), _COMMUNITY, dtype=np.int8))
    if not lines:
        return np.empty(0, dtype=object), np.zeros(0, dtype=np.int8)
    return np.concatenate(lines), np.concatenate(codes).astype(np.int8)


def _enclosures(lines: np.ndarray, area: shapely.Geometry, crs: object) -> tuple[np.ndarray, str]:
    """Blocks: the area cut by the lines (momepy ``enclosures``), and a note on fallbacks."""
    parts = shapely.get_parts(area)
    if not len(lines):
        return parts, "no boundary lines (streets, water, railways) given: each part of the area is one block"
    try:
        enc = momepy.enclosures(
            gpd.GeoDataFrame(geometry=lines, crs=crs),
            limit=gpd.GeoSeries([area], crs=crs),
            clip=True,
        )
        blocks = shapely.get_parts(enc.geometry.to_numpy())
    except (shapely.errors.GEOSException, ValueError) as exc:  # pragma: no cover - defensive
        log.warning("polygonising the boundary lines failed (%s): the area is one block", exc)
        return parts, f"the boundary lines could not be polygonised ({exc}): each part of the area is one block"
    blocks = blocks[shapely.area(blocks) > 0]
    covered = float(shapely.area(blocks).sum())
    if not len(blocks) or abs(covered - area.area) > 0.005 * area.area:
        return parts, (
            f"the blocks from the boundary lines cover {covered / area.area:.1%} of the area: "
            "each part of the area is one block"
        )
    if len(blocks) <= len(parts):
        return blocks, "the streets close no block: each part of the area is one block"
    return blocks, ""


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------


def _assign_blocks(geoms: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """The block holding each building's representative point (nearest block as fallback)."""
    pts = shapely.point_on_surface(geoms)
    tree = shapely.STRtree(blocks)
    bi, bj = tree.query(pts, predicate="intersects")
    out = np.full(len(geoms), -1, dtype=np.int64)
    out[bi[::-1]] = bj[::-1]  # the first block wins on a shared edge
    miss = np.flatnonzero(out < 0)
    if len(miss):
        near = tree.query_nearest(pts[miss], all_matches=False)
        out[miss[near[0]]] = near[1]
    return out


def _outline_points(
    geoms: np.ndarray, spacing_m: float, shrink_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points on slightly shrunk outlines, ``spacing_m`` apart, and the building of each."""
    shrunk = shapely.buffer(geoms, -shrink_m, quad_segs=1)
    tiny = shapely.is_empty(shrunk) | (shapely.area(shrunk) <= 0)
    shrunk[tiny] = shapely.point_on_surface(geoms[tiny])
    lines = shapely.boundary(shrunk)
    lines[tiny] = shrunk[tiny]
    lines = shapely.segmentize(lines, spacing_m)
    pts, owner = shapely.get_coordinates(lines, return_index=True)
    return pts, owner


def _cells(
    geoms: np.ndarray,
    blocks: np.ndarray,
    block_of: np.ndarray,
    *,
    spacing_m: float = 5.0,
    shrink_m: float = 0.4,
) -> np.ndarray:
    """The land nearest to each building within its block (cells tile each block)."""
    n = len(geoms)
    pts, owner = _outline_points(geoms, spacing_m, shrink_m)
    # only points inside the owner's block (a footprint drawn across a street keeps its part)
    shapely.prepare(blocks)
    crossing = np.flatnonzero(~shapely.covers(blocks[block_of], geoms))
    if len(crossing):
        check = np.isin(owner, crossing)
        sel = np.flatnonzero(check)
        inside = np.ones(len(pts), dtype=bool)
        inside[sel] = shapely.contains_xy(blocks[block_of[owner[sel]]], pts[sel, 0], pts[sel, 1])
        pts, owner = pts[inside], owner[inside]
    # footprints drawn over each other: a point inside another footprint would give that
    # building's land away, so it goes
    btree = shapely.STRtree(geoms)
    oi, oj = btree.query(geoms, predicate="intersects")
    over = np.unique(oi[oi != oj])
    if len(over):
        sel = np.flatnonzero(np.isin(owner, over))
        pi, pj = btree.query(shapely.points(pts[sel]), predicate="within")
        foreign = pj != owner[sel[pi]]
        drop = np.zeros(len(pts), dtype=bool)
        drop[sel[pi[foreign]]] = True
        pts, owner = pts[~drop], owner[~drop]
    # duplicates break the Voronoi diagram; every building keeps at least one point
    _, first = np.unique(np.round(pts, 2), axis=0, return_index=True)
    first.sort()
    pts, owner = pts[first], owner[first]
    missing = np.setdiff1d(np.arange(n), owner)
    if len(missing):
        inter = shapely.intersection(geoms[missing], blocks[block_of[missing]])
        rep = shapely.point_on_surface(inter)
        bad = shapely.is_empty(rep)
        rep[bad] = shapely.point_on_surface(blocks[block_of[missing[bad]]])
        extra = shapely.get_coordinates(rep)
        extra = extra + np.random.default_rng(0).uniform(-0.02, 0.02, extra.shape)
        pts = np.vstack([pts, extra])
        owner = np.concatenate([owner, missing])
    pblock = block_of[owner]
    order = np.lexsort((owner, pblock))
    pts, owner, pblock = pts[order], owner[order], pblock[order]
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, pts.shape)
    cells = np.empty(n, dtype=object)
    regions, rowner, rblock = [], [], []
    splits = np.flatnonzero(np.diff(pblock)) + 1
    for idx in np.split(np.arange(len(pts)), splits):
        b = int(pblock[idx[0]])
        owners = owner[idx]
        if owners[0] == owners[-1]:  # one building: the whole block
            cells[owners[0]] = blocks[b]
            continue
        reg = _voronoi(pts[idx] + jitter[idx], blocks[b])
        if reg is None:
            reg = _nearest_split(pts[idx], owners, blocks[b])
            for o, g in reg.items():
                cells[o] = g
            continue
        regions.append(reg)
        rowner.append(owners)
        rblock.append(np.full(len(idx), b))
    if regions:
        reg = np.concatenate(regions)
        ro = np.concatenate(rowner)
        rb = np.concatenate(rblock)
        need = ~shapely.contains_properly(blocks[rb], reg)
        # dissolve first, then clip each cell that reaches out of its block once
        _dissolve_into(cells, reg, ro)
        cut = np.unique(ro[need])
        cells[cut] = _safe_intersection(cells[cut], blocks[block_of[cut]])
    return _tidy_cells(cells, geoms, blocks, block_of)


def _voronoi(pts: np.ndarray, block: shapely.Geometry) -> np.ndarray | None:
    """Voronoi regions of ``pts`` in point order, extending over ``block`` (None if degenerate)."""
    origin = pts.min(axis=0)
    xmin, ymin, xmax, ymax = block.bounds
    frame = shapely.box(xmin - origin[0] - 1, ymin - origin[1] - 1, xmax - origin[0] + 1,
                        ymax - origin[1] + 1)  # fmt: skip
    try:
        out = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(pts - origin), extend_to=frame, ordered=True)
        )
    except shapely.errors.GEOSException:
        return None
    if len(out) != len(pts):
        return None
    out = shapely.transform(out, lambda c: c + origin)
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    return out


def _nearest_split(pts: np.ndarray, owners: np.ndarray, block: shapely.Geometry) -> dict:
    """Fallback for a degenerate diagram (all points on a line): strips across the line."""
    uniq = np.unique(owners)
    centre = np.array([pts[owners == o].mean(axis=0) for o in uniq])
    axis = centre[-1] - centre[0]
    axis = axis / (np.linalg.norm(axis) or 1.0)
    t = centre @ axis
    order = np.argsort(t)
    cuts = (t[order][1:] + t[order][:-1]) / 2
    big = 10 * (block.length + 1)
    normal = np.array([-axis[1], axis[0]])
    out = {}
    lo = -np.inf
    for k, o in enumerate(uniq[order]):
        hi = cuts[k] if k < len(cuts) else np.inf
        a, b = max(lo, -big), min(hi, big)
        c0 = axis * a + normal * big
        c1 = axis * b + normal * big
        c2 = axis * b - normal * big
        c3 = axis * a - normal * big
        strip = shapely.Polygon([c0, c1, c2, c3])
        out[o] = _safe_intersection(np.array([strip]), np.array([block]))[0]
        lo = hi
    return out


def _safe_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return shapely.intersection(a, b)
    except shapely.errors.GEOSException:
        out = np.empty(len(a), dtype=object)
        for k in range(len(a)):
            try:
                out[k] = shapely.intersection(a[k], b[k])
            except shapely.errors.GEOSException:
                out[k] = shapely.intersection(
                    shapely.make_valid(a[k]), shapely.make_valid(b[k]), grid_size=0.01
                )
        return out


def _dissolve_into(cells: np.ndarray, regions: np.ndarray, owner: np.ndarray) -> None:
    """Union of the regions of each owner (they form a coverage) into ``cells``."""
    order = np.argsort(owner, kind="stable")
    splits = np.flatnonzero(np.diff(owner[order])) + 1
    for grp in np.split(order, splits):
        parts = regions[grp]
        parts = parts[~shapely.is_empty(parts)]
        o = int(owner[grp[0]])
        if len(parts) == 1:
            cells[o] = parts[0]
            continue
        try:
            cell = shapely.coverage_union_all(parts)
        except shapely.errors.GEOSException:
            cell = _union(parts)
        if not cell.is_valid:
            cell = shapely.make_valid(cell)
        cells[o] = cell


def _union(parts: np.ndarray) -> shapely.Geometry:
    try:
        return shapely.union_all(parts)
    except shapely.errors.GEOSException:
        return shapely.union_all(shapely.make_valid(parts), grid_size=0.01)


def _polygonal(geom: shapely.Geometry) -> list[shapely.Geometry]:
    if geom is None or geom.is_empty:
        return []
    return [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and p.area > 0]


def _tidy_cells(
    cells: np.ndarray, geoms: np.ndarray, blocks: np.ndarray, block_of: np.ndarray
) -> np.ndarray:
    """One Polygon per cell: stray pieces go to the neighbour in the block they share most with."""
    out = cells.copy()
    strays: list[tuple[shapely.Geometry, int]] = []
    pts = shapely.point_on_surface(geoms)
    for k, cell in enumerate(cells):
        parts = _polygonal(cell)
        if not parts:
            out[k] = shapely.Polygon()
            continue
        if len(parts) == 1:
            out[k] = parts[0]
            continue
        own = [p for p in parts if p.intersects(pts[k])]
        main = own[0] if own else max(parts, key=lambda p: p.area)
        out[k] = main
        strays += [(p, k) for p in parts if p is not main]
    if not strays:
        return out
    tree = shapely.STRtree(out)
    for piece, k in strays:
        near = [c for c in tree.query(piece) if block_of[c] == block_of[k] and c != k]
        best, best_len = k, 0.0
        for c in near:
            shared = shapely.intersection(out[c].boundary, piece.boundary).length
            if shared > best_len:
                best, best_len = c, shared
        merged = _union(np.array([out[best], piece]))
        parts = _polygonal(merged)
        out[best] = merged if len(parts) != 1 else parts[0]
    return out


# ---------------------------------------------------------------------------
# the land graph
# ---------------------------------------------------------------------------


def _edges(
    land: np.ndarray,
    node_block: np.ndarray,
    lines: np.ndarray,
    line_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of nodes whose land shares a line, its length and its class."""
    i1, j1, len1 = _shared_segments(land, node_block)
    # candidates by bounding box: across blocks, and inside a block between nodes the
    # identical segments left apart (a union of Voronoi regions may drop a vertex)
    tree = shapely.STRtree(land)
    ci, cj = tree.query(land)
    keep = ci < cj
    ci, cj = ci[keep], cj[keep]
    n = len(land)
    comp = connected_components(
        coo_matrix((np.ones(len(i1), np.int8), (i1, j1)), shape=(n, n)), directed=False
    )[1]
    across = node_block[ci] != node_block[cj]
    apart = ~across & (comp[ci] != comp[cj])
    sel = across | apart
    ci, cj, across = ci[sel], cj[sel], across[sel]
    touch = shapely.relate_pattern(land[ci], land[cj], "****1****")
    ci, cj, across = ci[touch].astype(np.int64), cj[touch].astype(np.int64), across[touch]
    shared = shapely.intersection(shapely.boundary(land[ci]), shapely.boundary(land[cj]))
    len2 = shapely.length(shared)
    cls2 = np.zeros(len(ci), dtype=np.int8)
    if across.any():
        cls2[across] = _class_along(shared[across], lines, line_codes)
    i = np.concatenate([i1, ci])
    j = np.concatenate([j1, cj])
    shared_m = np.concatenate([len1, len2])
    cls = np.concatenate([np.zeros(len(i1), dtype=np.int8), cls2])
    # land that meets the rest only at a point (a pinch of the area's outline) is still
    # joined: an edge without length, so that no piece of land is left alone
    comp = connected_components(
        coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)), directed=False
    )[1]
    pi, pj = tree.query(land)
    keep = (pi < pj) & (comp[pi] != comp[pj])
    pi, pj = pi[keep], pj[keep]
    if len(pi):
        hit = shapely.intersects(land[pi], land[pj])
        pi, pj = pi[hit].astype(np.int64), pj[hit].astype(np.int64)
        i, j = np.concatenate([i, pi]), np.concatenate([j, pj])
        shared_m = np.concatenate([shared_m, np.zeros(len(pi))])
        pcls = np.where(node_block[pi] == node_block[pj], 0, EDGE_CLASSES.index("residential"))
        cls = np.concatenate([cls, pcls.astype(np.int8)])
    order = np.lexsort((j, i))
    return i[order], j[order], shared_m[order], cls[order]


def _shared_segments(
    land: np.ndarray, node_block: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours inside a block: cells of one Voronoi diagram share identical segments."""
    rings, ring_owner = shapely.get_rings(land, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    owner = ring_owner[ring[:-1][same]]
    qa, qb = np.round(a * 100).astype(np.int64), np.round(b * 100).astype(np.int64)
    swap = (qa[:, 0] > qb[:, 0]) | ((qa[:, 0] == qb[:, 0]) & (qa[:, 1] > qb[:, 1]))
    lo = np.where(swap[:, None], qb, qa)
    hi = np.where(swap[:, None], qa, qb)
    seg = pd.DataFrame(
        {"x0": lo[:, 0], "y0": lo[:, 1], "x1": hi[:, 0], "y1": hi[:, 1], "o": owner,
         "len": np.hypot(*(b - a).T)}
    )  # fmt: skip
    seg = seg[seg["len"] > 0]
    pairs = seg.merge(seg, on=["x0", "y0", "x1", "y1"], suffixes=("", "_b"))
    pairs = pairs[(pairs["o"] < pairs["o_b"])]
    pairs = pairs[node_block[pairs["o"].to_numpy()] == node_block[pairs["o_b"].to_numpy()]]
    agg = pairs.groupby(["o", "o_b"], sort=True)["len"].sum()
    i = agg.index.get_level_values(0).to_numpy(dtype=np.int64)
    j = agg.index.get_level_values(1).to_numpy(dtype=np.int64)
    return i, j, agg.to_numpy(dtype=float)


def _class_along(shared: np.ndarray, lines: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The strongest class of the boundary lines along each shared boundary."""
    out = np.full(len(shared), EDGE_CLASSES.index("residential"), dtype=np.int8)
    if not len(lines):
        return out
    # a point in the middle of the longest piece of the shared boundary
    mid = shapely.line_interpolate_point(shapely.line_merge(shapely.force_2d(shared)), 0.5,
                                         normalized=True)  # fmt: skip
    bad = shapely.is_empty(mid) | shapely.is_missing(mid)
    mid[bad] = shapely.point_on_surface(shared[bad])
    tree = shapely.STRtree(lines)
    e, s = tree.query(mid, predicate="dwithin", distance=_LINE_SNAP_M)
    if len(e):
        # community lines rank below the streets that run along them (a street's class is
        # what a resident sees); hard either way
        rank = np.where(codes[s] == _COMMUNITY, 0, codes[s] + 1).astype(np.int16)
        best = np.full(len(shared), -1, dtype=np.int16)
        np.maximum.at(best, e, rank)
        hit = best >= 0
        out[hit] = np.where(best[hit] == 0, _COMMUNITY, best[hit] - 1)
    return out


def land_graph(
    geoms: np.ndarray,
    *,
    crs: object = None,
    streets: gpd.GeoDataFrame | None = None,
    area: object = None,
    communities: gpd.GeoDataFrame | None = None,
    boundary_classes: tuple[str, ...] | None = None,
    spacing_m: float = 5.0,
) -> _Land:
    """Blocks, cells and the land graph of an array of building footprints."""
    classes = _check_classes(boundary_classes)
    area_geom = study_area(geoms, crs=crs, area=area, communities=communities)
    lines, codes = _boundary_lines(streets, classes, communities)
    blocks, note = _enclosures(lines, area_geom, crs)
    block_of = _assign_blocks(geoms, blocks)
    if "water" in classes:
        sea = _sea_blocks(blocks, block_of, _coast_lines(streets), area_geom)
        if sea.any():
            # the sea is no land to divide: the area ends at the coast; buildings on the
            # water (piers, pontoons) keep the land around them
            keep_land = _around_buildings(geoms, blocks, block_of, sea)
            blocks = np.concatenate([blocks[~sea], keep_land])
            area_geom = _union(blocks)
            block_of = _assign_blocks(geoms, blocks)
    cells = _cells(geoms, blocks, block_of, spacing_m=spacing_m)
    empty = np.setdiff1d(np.arange(len(blocks)), block_of)
    land = np.concatenate([cells, blocks[empty]])
    node_block = np.concatenate([block_of, empty])
    i, j, shared_m, cls = _edges(land, node_block, lines, codes)
    return _Land(area_geom, blocks, block_of, cells, empty, i, j, shared_m, cls, note)


def _coast_lines(streets: gpd.GeoDataFrame | None) -> np.ndarray:
    if streets is None or not len(streets):
        return np.empty(0, dtype=object)
    return streets.geometry.to_numpy()[is_coastline(streets).to_numpy()]


def _sea_blocks(
    blocks: np.ndarray, block_of: np.ndarray, coast: np.ndarray, area: shapely.Geometry
) -> np.ndarray:
    """Blocks on the sea side of the coastline (its right), without buildings, at the area's edge."""
    sea = np.zeros(len(blocks), dtype=bool)
    if not len(coast):
        return sea
    lines = shapely.segmentize(shapely.get_parts(coast), 20.0)
    xy, part = shapely.get_coordinates(lines, return_index=True)
    same = part[1:] == part[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length > 0.05
    a, d, length = a[ok], d[ok], length[ok]
    right = np.column_stack([d[:, 1], -d[:, 0]]) / length[:, None]
    probe = a + d / 2 + 0.5 * right
    _bi, bj = shapely.STRtree(blocks).query(shapely.points(probe), predicate="within")
    right = np.bincount(bj, minlength=len(blocks))
    # the same probes on the left: a block with coast on both sides is land between arms
    left_probe = a + d / 2 - 0.5 * np.column_stack([d[:, 1], -d[:, 0]]) / length[:, None]
    _, lj = shapely.STRtree(blocks).query(shapely.points(left_probe), predicate="within")
    left = np.bincount(lj, minlength=len(blocks))
    cand = np.flatnonzero((right > 0) & (left == 0))
    edge = shapely.intersects(blocks[cand], shapely.boundary(area))
    sea[cand[edge]] = True
    return sea


def _around_buildings(
    geoms: np.ndarray, blocks: np.ndarray, block_of: np.ndarray, sea: np.ndarray
) -> np.ndarray:
    """Land kept in sea blocks: 10 m around the buildings standing there."""
    on_sea = np.flatnonzero(sea[block_of])
    if not len(on_sea):
        return np.empty(0, dtype=object)
    near = shapely.union_all(shapely.buffer(geoms[on_sea], 10.0, quad_segs=2))
    parts = []
    for k in np.unique(block_of[on_sea]):
        parts.extend(_polygonal(shapely.intersection(blocks[k], near)))
    return np.array(parts, dtype=object)


def _check_classes(boundary_classes: object) -> tuple[str, ...]:
    if boundary_classes is None:
        return BOUNDARY_CLASSES
    if isinstance(boundary_classes, str):
        boundary_classes = (boundary_classes,)
    out = tuple(boundary_classes)
    bad = [c for c in out if c not in BOUNDARY_CLASSES]
    if bad:
        raise InputError(
            f"boundary_classes has unknown classes {bad}; choose from {list(BOUNDARY_CLASSES)}"
        )
    return out


def land_blocks(
    buildings: gpd.GeoDataFrame,
    *,
    streets: gpd.GeoDataFrame | None = None,
    area: object = None,
    boundary_classes: tuple[str, ...] | None = None,
) -> gpd.GeoDataFrame:
    """The blocks of a study area, with their buildings counted.

    Parameters
    ----------
    buildings
        Footprints in a metric CRS.
    streets
        Lines classified by :func:`gridopt.tags.boundary_class` (or with ``boundary_class``
        / ``barrier_kind`` columns, as :func:`gridopt.read_streets` gives them).
    area
        The study area; default: a hull of the buildings.
    boundary_classes
        Classes that bound blocks (default: all of :data:`gridopt.tags.BOUNDARY_CLASSES`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per block: ``n_buildings`` and the block polygon; the blocks tile the area.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(40, 0, 50, 10)], crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"]}, geometry=[shapely.LineString([(25, -100), (25, 100)])], crs=32651)
    >>> land_blocks(b, streets=s)["n_buildings"].tolist()
    [1, 1]
    """
    geoms = buildings.geometry.to_numpy()
    classes = _check_classes(boundary_classes)
    area_geom = study_area(geoms, crs=buildings.crs, area=area)
    lines, _ = _boundary_lines(streets, classes, None)
    blocks, note = _enclosures(lines, area_geom, buildings.crs)
    count = np.bincount(_assign_blocks(geoms, blocks), minlength=len(blocks))
    out = gpd.GeoDataFrame({"n_buildings": count}, geometry=list(blocks), crs=buildings.crs)
    out.attrs["note"] = note
    return out
