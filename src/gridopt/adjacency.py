"""Building adjacency: which buildings are neighbours, and which neighbours a barrier separates.

The built-up land is cut into one cell per building (a tessellation: the Voronoi
diagram of points sampled on the building outlines, dissolved per building and
limited to ``max_gap_m / 2`` around each building). Two buildings are neighbours when
their cells share a boundary. Because the cells tile the land without overlaps, the
union of the cells of a connected set of buildings is one polygon: that is where the
grid polygons come from ("no gaps, no overlaps").

An edge whose shortest connecting line crosses a major street, a river or a railway
(``barrier_kind`` not null in the streets frame) is a *barrier edge*; one that crosses
an ordinary street is a *street edge*. Grid division cuts barrier edges first and
prefers street edges as grid boundaries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError
from gridopt.crs import reproject
from gridopt.tags import barrier_kind, boundary_class

__all__ = ["BARRIER_KINDS", "building_graph", "dissolve_cells", "tessellate"]

log = logging.getLogger("gridopt")

#: barrier kinds in the order of precedence used when an edge crosses several.
BARRIER_KINDS: tuple[str, ...] = ("river", "railway", "major_street")



@dataclass(frozen=True)
class _Adjacency:
    """Positional adjacency of buildings (internal: arrays, no pandas, no networkx).

    ``i < j`` are positions into the buildings frame; ``barrier`` holds an index into
    ``("",) + BARRIER_KINDS`` (0: no barrier); ``street`` marks edges crossing any street.
    """

    n: int
    i: np.ndarray
    j: np.ndarray
    shared_m: np.ndarray
    barrier: np.ndarray
    street: np.ndarray
    cells: np.ndarray  # shapely Polygons, one per building (may be empty for degenerate input)
    xy: np.ndarray  # (n, 2) representative points


def _as_polygons(geoms: np.ndarray) -> np.ndarray:
    """Valid polygonal geometries (make_valid keeps every building, never drops one)."""
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def _sample_points(
    geoms: np.ndarray, spacing_m: float, shrink_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points on slightly shrunk outlines, ``spacing_m`` apart, and the building of each."""
    # Shrinking keeps the points of two buildings that share a wall apart, so the
    # Voronoi edge between them runs along the wall.
    shrunk = shapely.buffer(geoms, -shrink_m, quad_segs=1)
    tiny = shapely.is_empty(shrunk) | (shapely.area(shrunk) <= 0)
    shrunk[tiny] = shapely.point_on_surface(geoms[tiny])
    lines = shapely.boundary(shrunk)
    lines[tiny] = shrunk[tiny]
    lines = shapely.segmentize(lines, spacing_m)
    pts, owner = shapely.get_coordinates(lines, return_index=True)
    # Duplicates (closing vertices of rings, identical buildings) break an ordered
    # Voronoi diagram: keep the first occurrence.
    _, first = np.unique(np.round(pts, 3), axis=0, return_index=True)
    first.sort()
    pts, owner = pts[first], owner[first]
    # A building whose every point was a duplicate of another one's still needs a point.
    missing = np.setdiff1d(np.arange(len(geoms)), owner)
    if len(missing):
        extra = shapely.get_coordinates(shapely.centroid(geoms[missing]))
        extra = extra + np.random.default_rng(0).uniform(-1e-3, 1e-3, extra.shape)
        pts = np.vstack([pts, extra])
        owner = np.concatenate([owner, missing])
    return pts, owner


def _cells(geoms: np.ndarray, *, max_gap_m: float, spacing_m: float, shrink_m: float) -> np.ndarray:
    n = len(geoms)
    reach = shapely.buffer(geoms, max_gap_m / 2.0, quad_segs=2)
    if n == 1:
        return reach
    pts, owner = _sample_points(geoms, spacing_m, shrink_m)
    xmin, ymin, xmax, ymax = shapely.total_bounds(reach)
    # Local coordinates and a centimetre of deterministic jitter: regular layouts (rows of
    # identical blocks) put many points on one line or circle, where GEOS's Voronoi
    # diagram comes out with degenerate, self-touching regions.
    origin = np.array([xmin, ymin])
    local = pts - origin + np.random.default_rng(0).uniform(-0.01, 0.01, pts.shape)
    frame = shapely.box(-1, -1, xmax - xmin + 1, ymax - ymin + 1)
    regions = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(local), extend_to=frame, ordered=True)
    )
    regions = shapely.transform(regions, lambda c: c + origin)
    if len(regions) != len(pts):  # degenerate (e.g. all points on one line)
        log.warning(
            "tessellation degenerate (%d regions for %d points): using buffers",
            len(regions),
            len(pts),
        )
        return _disjoint_buffers(reach)
    bad = ~shapely.is_valid(regions)
    if bad.any():  # GEOS Voronoi leaves a few near-degenerate rings; repair them
        regions[bad] = [_largest_polygon(shapely.make_valid(r)) for r in regions[bad]]
    clipped = _clip(regions, reach[owner], pts, max_gap_m / 2.0 * 0.9 - shrink_m)
    order = np.argsort(owner, kind="stable")
    bounds = np.flatnonzero(np.diff(owner[order])) + 1
    cells = np.empty(n, dtype=object)
    for grp in np.split(order, bounds):
        parts = clipped[grp]
        parts = parts[~shapely.is_empty(parts)]
        try:
            cell = shapely.coverage_union_all(parts)
        except shapely.errors.GEOSException:
            try:
                cell = shapely.union_all(parts)
            except shapely.errors.GEOSException:  # pragma: no cover - defensive
                cell = shapely.union_all(shapely.make_valid(parts), grid_size=0.01)
        if not cell.is_valid:
            cell = shapely.make_valid(cell)
        cells[owner[grp[0]]] = _largest_polygon(cell)
    return cells


def _clip(regions: np.ndarray, reach: np.ndarray, pts: np.ndarray, safe_r: float) -> np.ndarray:
    """``regions`` cut to ``reach``; regions entirely near their point need no cut."""
    coords, idx = shapely.get_coordinates(regions, return_index=True)
    d2 = ((coords - pts[idx]) ** 2).sum(axis=1)
    far = np.zeros(len(regions), dtype=bool)
    np.logical_or.at(far, idx, d2 > safe_r * safe_r)
    out = regions.copy()
    sel = np.flatnonzero(far)
    try:
        out[sel] = shapely.intersection(regions[sel], reach[sel])
    except shapely.errors.GEOSException:
        # a region GEOS finds degenerate: repair and cut one by one
        for k in sel:
            try:
                out[k] = shapely.intersection(regions[k], reach[k])
            except shapely.errors.GEOSException:
                out[k] = shapely.intersection(
                    shapely.make_valid(regions[k]), shapely.make_valid(reach[k])
                )
    return out


def _disjoint_buffers(reach: np.ndarray) -> np.ndarray:
    """Fallback cells: buffers with the earlier cells removed, so none overlap."""
    out = np.empty(len(reach), dtype=object)
    taken = shapely.Polygon()
    for k, g in enumerate(reach):
        out[k] = _largest_polygon(shapely.difference(g, taken))
        taken = shapely.union(taken, out[k])
    return out


def _largest_polygon(geom: shapely.Geometry) -> shapely.Geometry:
    """The largest polygon of ``geom`` (slivers from floating point are dropped)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if geom.geom_type == "Polygon":
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
    if not polys:
        return shapely.Polygon()
    return max(polys, key=lambda g: g.area)


def _barrier_codes(streets: gpd.GeoDataFrame) -> np.ndarray:
    """0 for an ordinary street, else 1 + index into :data:`BARRIER_KINDS`."""
    n = len(streets)
    if "barrier_kind" in streets.columns:
        kinds = streets["barrier_kind"].astype(object).where(streets["barrier_kind"].notna(), None)
    else:
        # Raw OSM-like lines: the one classification of gridopt.tags (hard classes only)
        classes = (
            streets["boundary_class"]
            if "boundary_class" in streets.columns
            else boundary_class(streets)
        )
        kinds = barrier_kind(classes.astype(object))
    codes = np.zeros(n, dtype=np.int8)
    for k, kind in enumerate(BARRIER_KINDS, start=1):
        codes[(kinds == kind).to_numpy()] = k
    unknown = kinds.notna().to_numpy() & (codes == 0)
    if unknown.any():
        bad = sorted(set(kinds[unknown]))
        raise InputError(
            f"streets has barrier_kind values {bad} in {int(unknown.sum())} rows; "
            f"allowed are {list(BARRIER_KINDS)} or null (ordinary street)"
        )
    return codes


def _streets_in_crs(streets: gpd.GeoDataFrame, crs: object) -> gpd.GeoDataFrame:
    if not isinstance(streets, gpd.GeoDataFrame):
        raise InputError(f"streets must be a GeoDataFrame of lines, got {type(streets).__name__}")
    if streets.crs is None or crs is None:
        return streets
    return reproject(streets, crs, what="streets", warn=True)


def _adjacency(
    geoms: np.ndarray,
    streets: gpd.GeoDataFrame | None = None,
    *,
    crs: object = None,
    max_gap_m: float = 80.0,
    spacing_m: float = 5.0,
    shrink_m: float = 0.4,
    min_shared_m: float = 0.0,
    shared: bool = False,
) -> _Adjacency:
    """Cells, neighbour pairs and barrier flags for an array of building geometries."""
    geoms = _as_polygons(np.asarray(geoms, dtype=object))
    n = len(geoms)
    xy = shapely.get_coordinates(shapely.point_on_surface(geoms)) if n else np.zeros((0, 2))
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return _Adjacency(
            0, e, e, np.zeros(0), np.zeros(0, np.int8), np.zeros(0, bool), np.empty(0, object), xy
        )
    cells = _cells(geoms, max_gap_m=max_gap_m, spacing_m=spacing_m, shrink_m=shrink_m)
    tree = shapely.STRtree(cells)
    i, j = tree.query(cells)  # bounding boxes only: the exact test follows
    keep = i < j
    i, j = i[keep], j[keep]
    # the boundaries share a line (not just a point): much cheaper than the intersection
    keep = shapely.relate_pattern(cells[i], cells[j], "****1****")
    i, j = i[keep].astype(np.int64), j[keep].astype(np.int64)
    shared_m = np.full(len(i), np.nan)
    if shared or min_shared_m > 0:
        shared_m = shapely.length(shapely.intersection(cells[i], cells[j]))
        keep = shared_m >= min_shared_m
        i, j, shared_m = i[keep], j[keep], shared_m[keep]
    barrier, street = _edge_flags(geoms, i, j, streets, crs)
    return _Adjacency(n, i, j, shared_m, barrier, street, cells, xy)


def _edge_flags(
    geoms: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    streets: gpd.GeoDataFrame | None,
    crs: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Barrier code (0: none) and street flag of the links ``geoms[i]``-``geoms[j]``."""
    barrier = np.zeros(len(i), dtype=np.int8)
    street = np.zeros(len(i), dtype=bool)
    if streets is None or not len(streets) or not len(i):
        return barrier, street
    streets = _streets_in_crs(streets, crs)
    codes = _barrier_codes(streets)
    lines = streets.geometry.to_numpy()
    # The shortest line between the two footprints: what a resident would cross.
    links = shapely.shortest_line(geoms[i], geoms[j])
    e_idx, s_idx = shapely.STRtree(lines).query(links, predicate="intersects")
    street[e_idx] = True
    c = codes[s_idx]
    hit = c > 0
    # Lower code = higher precedence (river before railway before major street).
    prio = np.where(hit, c, np.int8(127))
    best = np.full(len(i), 127, dtype=np.int16)
    np.minimum.at(best, e_idx, prio.astype(np.int16))
    barrier = np.where(best == 127, 0, best).astype(np.int8)
    return barrier, street


def _delaunay_pairs(pts: np.ndarray) -> np.ndarray:
    """Edges ``(a, b)``, ``a < b``, of the Delaunay triangulation of ``pts`` (a chain if flat).

    Points at the same place (duplicated buildings) are triangulated once and chained to
    each other.
    """
    n = len(pts)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    local = np.round(pts - pts.min(axis=0), 2)
    uniq, first, inv = np.unique(local, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    # duplicates: chain each to the first point at its place
    dup = np.flatnonzero(first[inv] != np.arange(n))
    extra = np.column_stack([first[inv[dup]], dup])
    m = len(uniq)
    if m < 2:
        e = np.zeros((0, 2), dtype=np.int64)
    elif m == 2:
        e = np.array([[0, 1]], dtype=np.int64)
    else:
        from scipy.spatial import Delaunay, QhullError

        e = None
        for opts in ("Qbb Qc Qz", "QJ"):
            try:
                s = Delaunay(uniq, qhull_options=opts).simplices
                e = np.vstack([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
                break
            except (QhullError, ValueError):  # flat input: all points on one line
                continue
        if e is None:
            order = np.lexsort((uniq[:, 1], uniq[:, 0]))
            e = np.column_stack([order[:-1], order[1:]])
    e = np.vstack([first[e], extra]) if len(e) else extra
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0).astype(np.int64)


def _gap_links(
    geoms: np.ndarray,
    xy: np.ndarray,
    ei: np.ndarray,
    ej: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    group: np.ndarray | None = None,
    max_link_m: float = 300.0,
    per_pair: int = 2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Links across empty land between clusters of buildings that are not neighbours.

    The clusters are the connected components of ``(ei, ej)`` among the buildings in
    ``mask``; within each ``group`` (community) the Delaunay triangulation of the buildings'
    points proposes links between different clusters, and the ``per_pair`` shortest of each
    pair of clusters up to ``max_link_m`` (footprint to footprint) are kept.

    Returns
    -------
    a, b, distance_m
        Positions of the linked buildings (``a < b``) and the gap between the footprints.
    """
    n = len(geoms)
    mask = np.ones(n, dtype=bool) if mask is None else mask
    group = np.zeros(n, dtype=np.int64) if group is None else pd.factorize(group)[0]
    keep = mask[ei] & mask[ej] & (group[ei] == group[ej])
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = coo_matrix((np.ones(int(keep.sum()), np.int8), (ei[keep], ej[keep])), shape=(n, n))
    comp = connected_components(m, directed=False)[1]
    outs_a, outs_b = [], []
    nodes = np.flatnonzero(mask)
    order = np.argsort(group[nodes], kind="stable")
    nodes = nodes[order]
    splits = np.flatnonzero(np.diff(group[nodes])) + 1
    for idx in np.split(nodes, splits) if len(nodes) else []:
        if len(np.unique(comp[idx])) <= 1:
            continue
        pairs = _delaunay_pairs(xy[idx])
        a, b = idx[pairs[:, 0]], idx[pairs[:, 1]]
        diff = comp[a] != comp[b]
        outs_a.append(a[diff])
        outs_b.append(b[diff])
    if not outs_a:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    a = np.concatenate(outs_a)
    b = np.concatenate(outs_b)
    d = shapely.distance(geoms[a], geoms[b])
    ok = d <= max_link_m
    a, b, d = a[ok], b[ok], d[ok]
    # the shortest few links of each pair of clusters are enough
    ca, cb = np.minimum(comp[a], comp[b]), np.maximum(comp[a], comp[b])
    df = pd.DataFrame({"ca": ca, "cb": cb, "d": d, "k": np.arange(len(a))})
    df = df.sort_values(["ca", "cb", "d", "k"], kind="stable")
    sel = np.sort(df.groupby(["ca", "cb"], sort=False).head(per_pair)["k"].to_numpy())
    lo, hi = np.minimum(a[sel], b[sel]), np.maximum(a[sel], b[sel])
    return lo.astype(np.int64), hi.astype(np.int64), d[sel]


def _geoms_of(buildings: gpd.GeoDataFrame) -> np.ndarray:
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(f"buildings must be a GeoDataFrame, got {type(buildings).__name__}")
    geoms = buildings.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        rows = list(buildings.index[bad][:10])
        raise InputError(
            f"buildings has {int(bad.sum())} rows without geometry (first: {rows}); drop or fix them"
        )
    poly = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not poly.all():
        rows = list(buildings.index[~poly][:10])
        raise InputError(
            f"buildings has {int((~poly).sum())} non-polygon geometries (first: {rows}); footprints must be polygons"
        )
    if buildings.crs is not None and buildings.crs.is_geographic:
        raise InputError(
            f"buildings has CRS {buildings.crs.to_string()} (degrees); gridopt needs metres: "
            "use gridopt.read_buildings or buildings.to_crs(buildings.estimate_utm_crs())"
        )
    return geoms


def tessellate(
    buildings: gpd.GeoDataFrame,
    *,
    max_gap_m: float = 80.0,
    spacing_m: float = 5.0,
) -> gpd.GeoSeries:
    """One cell of land per building: a tessellation without gaps between close buildings.

    Parameters
    ----------
    buildings
        Building footprints in a metric CRS.
    max_gap_m
        Each cell reaches at most ``max_gap_m / 2`` beyond its building, so buildings
        further apart than ``max_gap_m`` are not neighbours.
    spacing_m
        Distance between the points sampled on the outlines (smaller is finer and slower).

    Returns
    -------
    geopandas.GeoSeries
        Polygon cells aligned with ``buildings.index``; the cells do not overlap.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], crs=32651)
    >>> cells = tessellate(b)
    >>> bool(cells.iloc[0].intersection(cells.iloc[1]).length > 5)
    True
    """
    geoms = _geoms_of(buildings)
    cells = (
        _cells(_as_polygons(geoms), max_gap_m=max_gap_m, spacing_m=spacing_m, shrink_m=0.4)
        if len(geoms)
        else []
    )
    return gpd.GeoSeries(cells, index=buildings.index, crs=buildings.crs, name="cell")


def building_graph(
    buildings: gpd.GeoDataFrame,
    *,
    streets: gpd.GeoDataFrame | None = None,
    max_gap_m: float = 80.0,
    spacing_m: float = 5.0,
    min_shared_m: float = 0.0,
    max_link_m: float | None = None,
) -> nx.Graph:
    """The building adjacency graph, with barrier edges flagged.

    Parameters
    ----------
    buildings
        Building footprints in a metric CRS.
    streets
        Optional street/river/railway lines; a ``barrier_kind`` column (``"major_street"``,
        ``"river"``, ``"railway"`` or null) marks barriers, else the kind is derived from
        the OSM tags by :func:`gridopt.tags.boundary_class` (the hard classes). Another CRS is reprojected
        (with a :class:`gridopt.RepairWarning`).
    max_gap_m
        Buildings further apart than this are never neighbours.
    spacing_m
        Sampling distance on the outlines for the tessellation.
    min_shared_m
        Cells must share at least this much boundary to count as neighbours (by default
        any line, not a single point: the rule :func:`gridopt.partition_grids` uses).
    max_link_m
        If given, clusters of buildings that are not neighbours (further apart than
        ``max_gap_m``) are linked by *gap edges* (``gap=True``, ``shared_m=0``) to the
        nearest buildings of other clusters up to this distance: a grid worker can walk a
        few hundred metres of empty land. :func:`gridopt.partition_grids` uses such links
        only where a cluster cannot make a grid alone.

    Returns
    -------
    networkx.Graph
        Nodes are the labels of ``buildings.index`` (attributes ``x``, ``y``); edges carry
        ``shared_m`` (shared cell boundary), ``street`` (the link crosses a street),
        ``barrier`` (bool), ``barrier_kind`` (``None`` or the kind crossed) and ``gap``
        (bool: a link across empty land, ``gap_m`` long).

    Raises
    ------
    gridopt.InputError
        Geographic CRS, missing or non-polygon geometries, unknown barrier kinds.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10), shapely.box(30, 0, 40, 10)], crs=32651)
    >>> river = gpd.GeoDataFrame({"barrier_kind": ["river"]}, geometry=[shapely.LineString([(20, -50), (20, 50)])], crs=32651)
    >>> g = building_graph(b, streets=river)
    >>> g.edges[0, 1]["barrier_kind"]
    'river'
    """
    geoms = _geoms_of(buildings)
    if streets is not None:
        streets = _streets_in_crs(streets, buildings.crs)
    adj = _adjacency(
        geoms,
        streets,
        crs=buildings.crs,
        max_gap_m=max_gap_m,
        spacing_m=spacing_m,
        min_shared_m=min_shared_m,
        shared=True,
    )
    labels = buildings.index.to_numpy()
    g = nx.Graph()
    for k, lab in enumerate(labels):
        g.add_node(lab, x=float(adj.xy[k, 0]), y=float(adj.xy[k, 1]))
    kinds = (None, *BARRIER_KINDS)
    for a, b, s, bar, st in zip(adj.i, adj.j, adj.shared_m, adj.barrier, adj.street, strict=False):
        g.add_edge(
            labels[a],
            labels[b],
            shared_m=float(s),
            street=bool(st),
            barrier=bool(bar),
            barrier_kind=kinds[int(bar)],
            gap=False,
        )
    if max_link_m is not None:
        ga, gb, gd = _gap_links(
            _as_polygons(geoms), adj.xy, adj.i, adj.j, max_link_m=float(max_link_m)
        )
        gbar, gst = _edge_flags(_as_polygons(geoms), ga, gb, streets, buildings.crs)
        for a, b, d, bar, st in zip(ga, gb, gd, gbar, gst, strict=False):
            g.add_edge(
                labels[a],
                labels[b],
                shared_m=0.0,
                street=bool(st),
                barrier=bool(bar),
                barrier_kind=kinds[int(bar)],
                gap=True,
                gap_m=float(d),
            )
    return g


def dissolve_cells(
    cells: np.ndarray | gpd.GeoSeries, labels: np.ndarray, *, keep_pieces: object = ()
) -> dict[object, shapely.Geometry]:
    """Union of the cells per label, one Polygon each (the grid polygons).

    Parameters
    ----------
    cells
        Cells from :func:`tessellate` (or the internal adjacency), positionally aligned with
        ``labels``.
    labels
        Group label of each cell.
    keep_pieces
        Labels whose land may come in several pieces (grids linked across empty land):
        their union is returned as it is, to be joined by the caller.

    Returns
    -------
    dict
        label -> Polygon. A group whose cells touch only at points would give several
        pieces; they are joined by a hair-thin closing so the result stays one Polygon.
    """
    cells = np.asarray(cells, dtype=object)
    labels = np.asarray(labels)
    codes, uniques = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    out: dict[object, shapely.Geometry] = {}
    keep_pieces = set(keep_pieces)
    for grp in np.split(order, bounds) if len(order) else []:
        label = uniques[codes[grp[0]]]
        parts = cells[grp]
        parts = parts[~shapely.is_empty(parts)]
        geom = None
        if len(parts) > 1:
            # the cells form a coverage: its union is far cheaper than an overlay union
            try:
                geom = shapely.coverage_union_all(parts)
                if not (geom.geom_type == "Polygon" and geom.is_valid):
                    geom = None
            except shapely.errors.GEOSException:
                geom = None
        if geom is None and len(parts):
            try:
                geom = shapely.union_all(parts)
            except shapely.errors.GEOSException:  # robustness: snap to a centimetre grid
                geom = shapely.union_all(parts, grid_size=0.01)
        elif geom is None:
            geom = shapely.Polygon()
        if geom.geom_type != "Polygon" and not geom.is_empty and label not in keep_pieces:
            closed = shapely.buffer(shapely.buffer(geom, 0.05, quad_segs=1), -0.05, quad_segs=1)
            geom = closed if closed.geom_type == "Polygon" else _largest_polygon(geom)
        out[label] = geom
    return out
