"""The pedestrian network and walking distances between buildings and sites.

:func:`walk_network` turns street lines (an OSM extract or any line
GeoDataFrame) into an undirected :class:`networkx.Graph` whose edges carry
``length_m``. :func:`walking_distances` measures, for every origin (building)
and every site (candidate station), the walking metres over that graph: from
the origin's nearest network point to the site's, plus the two straight access
legs. It runs :func:`scipy.sparse.csgraph.dijkstra` from the (few) sites with a
cutoff, so the answer is a sparse origins x sites matrix; a dense building x
building matrix is never built.

Where there is no network, where an origin or site is further than
``max_snap_m`` from any walkable street, or where origin and site lie on
different pieces of a network in pieces, the distance is the straight line
times ``detour_factor`` and the result marks those pairs (``fallback``).

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import LineString, Point
>>> streets = gpd.GeoDataFrame(
...     {"highway": ["residential", "footway"]},
...     geometry=[LineString([(0, 0), (100, 0)]), LineString([(100, 0), (100, 100)])],
...     crs=32651,
... )
>>> g = walk_network(streets)
>>> g.number_of_nodes(), g.number_of_edges()
(3, 2)
>>> d = walking_distances(g, [Point(0, 10)], [Point(110, 100)], max_walk_m=500)
>>> round(float(d.matrix[0, 0]), 1)  # 10 m to the street, 200 m along it, 10 m to the site
220.0
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from gridopt._errors import InputError, RepairWarning
from gridopt.crs import WorkingCRS, reproject
from gridopt.io import read_walk_lines

__all__ = [
    "NOT_WALKABLE",
    "WalkDistances",
    "snap_to_network",
    "walk_network",
    "walking_distances",
]

log = logging.getLogger("gridopt")

#: OSM ``highway`` values nobody may walk along. Everything else tagged
#: ``highway`` is walkable; primary..tertiary streets are assumed to have
#: sidewalks (Chinese and European city streets almost always do).
NOT_WALKABLE: frozenset[str] = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "construction",
        "proposed",
        "planned",
        "abandoned",
        "disused",
        "raceway",
        "bus_guideway",
        "busway",
        "escape",
        "elevator",
    }
)

# Every allowed pair must be a stored entry of the sparse matrix (a missing
# entry means "not allowed"), so a true zero is stored as 1 mm.
_MIN_M = 1e-3
# Zero-length graph edges would vanish from a scipy sparse graph.
_MIN_EDGE_M = 1e-6
# Largest float64 block (sites x nodes) one Dijkstra call may return (~32 MB).
_BLOCK_ELEMENTS = 4_000_000


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


def walk_network(
    streets: gpd.GeoDataFrame | gpd.GeoSeries | str | os.PathLike[str],
    *,
    crs: Any = None,
    exclude_highway: Iterable[str] = NOT_WALKABLE,
    split_crossings: bool | None = None,
    join_gap_m: float = 30.0,
) -> nx.Graph:
    """Build the pedestrian graph from street lines.

    Parameters
    ----------
    streets
        A path to an OSM extract (``.osm.pbf``: its ``lines`` layer) or any
        line file, or a GeoDataFrame/GeoSeries of (Multi)LineStrings. With a
        ``highway`` column (OSM tags), lines whose ``highway`` is empty
        (rivers, railways) or in ``exclude_highway`` are not walkable, nor
        lines tagged ``foot=no`` / ``access=no|private`` in an OSM
        ``other_tags`` column (unless also ``foot=yes|designated``). Without a
        ``highway`` column (or with one that is empty throughout) every line
        is walkable except those tagged ``waterway`` or ``railway``.
    crs
        The metric CRS of the result, normally ``buildings.crs``. ``None``
        keeps the streets' CRS when it is projected and otherwise reprojects
        to the local UTM zone with a :class:`~gridopt.RepairWarning`.
    exclude_highway
        ``highway`` values that are not walkable (default :data:`NOT_WALKABLE`:
        motorways, trunk roads, their links, roads under construction, ...).
    split_crossings
        Join lines where they cross without a shared vertex. ``None`` (default)
        does so unless the data come from OSM (an ``osm_id`` column), where a
        junction is a shared node and a crossing without one is a bridge or
        tunnel.

    join_gap_m
        Pieces of the network that do not touch (a footway mapped a few metres
        short of the street, an extract cut at its edge) are joined where a
        node of one lies within this many metres of a street segment of
        another: the shortest such gaps first, one link per pair of pieces
        joined (Kruskal over the pieces), each link a ``highway="link"`` edge
        to the nearest point of the segment. ``0`` joins nothing.

    Returns
    -------
    networkx.Graph
        Nodes ``0..n-1`` with ``x``, ``y`` (metres); edges with ``length_m``
        and ``highway``. ``graph.graph`` holds ``crs``, ``n_components``,
        ``pieces_joined`` (links added) and ``lines_used`` / ``lines_excluded``.

    Raises
    ------
    InputError
        No CRS, no line geometry, or no walkable line at all.

    Examples
    --------
    >>> from gridopt import datasets
    >>> g = walk_network(datasets.small_town())
    >>> g.graph["n_components"] >= 1
    True
    """
    gdf = read_walk_lines(streets)
    if isinstance(streets, (gpd.GeoDataFrame, gpd.GeoSeries)):
        gdf = _to_metric(gdf, crs, what="streets")
    else:
        # A file comes in its own CRS (OSM: degrees); reprojecting it is expected.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RepairWarning)
            gdf = _to_metric(gdf, crs, what="streets")
    walkable = _walkable_mask(gdf, frozenset(exclude_highway))
    lines = gdf.loc[walkable]
    highway = (
        lines["highway"].astype(object).where(lines["highway"].notna(), None).to_numpy()
        if "highway" in lines.columns
        else np.full(len(lines), None, dtype=object)
    )
    geoms = lines.geometry.to_numpy()
    # Explode multi-part lines, keeping each part's highway tag.
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 1  # LineString
    parts, part_of = parts[keep], part_of[keep]
    if len(parts) == 0:
        raise InputError(
            f"no walkable street line among {len(gdf)} lines "
            f"({int((~walkable).sum())} excluded as not walkable: motorways, rivers, railways, "
            "foot=no); pass footways/residential streets or set exclude_highway"
        )
    part_tag = highway[part_of]
    if split_crossings is None:
        split_crossings = "osm_id" not in gdf.columns
    if split_crossings:
        parts, part_tag = _node_lines(parts, part_tag)

    coords, line_idx = shapely.get_coordinates(parts, return_index=True)
    # Vertices shared by two lines become one node; round to the millimetre so
    # that the same OSM node projected twice still matches.
    key = np.round(coords, 3)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    same_line = line_idx[1:] == line_idx[:-1]
    u = inverse[:-1][same_line]
    v = inverse[1:][same_line]
    tag = part_tag[line_idx[:-1][same_line]]
    length = np.hypot(*(uniq[v] - uniq[u]).T)
    ok = u != v
    u, v, tag, length = u[ok], v[ok], tag[ok], length[ok]
    # Parallel edges between the same two nodes: keep the shortest.
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((length, b, a))
    a, b, tag, length = a[order], b[order], tag[order], length[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, tag, length = a[first], b[first], tag[first], length[first]

    graph = nx.Graph()
    graph.add_nodes_from(
        (i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(uniq.tolist())
    )
    graph.add_edges_from(
        (int(i), int(j), {"length_m": float(w), "highway": t})
        for i, j, w, t in zip(a, b, length, tag, strict=True)
    )
    # Isolated vertices cannot exist (every vertex belongs to a segment) except
    # for degenerate one-point lines; drop them so they do not count as pieces.
    graph.remove_nodes_from([n for n, d in graph.degree() if d == 0])
    if graph.number_of_nodes() and max(graph.nodes) != graph.number_of_nodes() - 1:
        graph = nx.convert_node_labels_to_integers(graph, ordering="sorted")
    if not (join_gap_m >= 0):
        raise InputError(f"join_gap_m must be a number of metres >= 0, got {join_gap_m!r}")
    joined = _join_pieces(graph, float(join_gap_m))
    n_comp = nx.number_connected_components(graph)
    graph.graph.update(
        crs=gdf.crs,
        n_components=n_comp,
        pieces_joined=joined,
        lines_used=int(walkable.sum()),
        lines_excluded=int((~walkable).sum()),
    )
    log.info(
        "walk network: %d nodes, %d edges, %.1f km, %d piece(s); %d lines used, %d not walkable",
        graph.number_of_nodes(),
        graph.number_of_edges(),
        float(length.sum()) / 1000.0,
        n_comp,
        int(walkable.sum()),
        int((~walkable).sum()),
    )
    return graph


def _join_pieces(graph: nx.Graph, gap_m: float) -> int:
    """Link pieces of ``graph`` whose nodes come within ``gap_m`` of another piece's street.

    Candidate links go from a node (a dead end, or any node of a piece other
    than the largest) to the nearest point of a segment of another piece;
    taken shortest first while they join two pieces not yet joined, so each
    merge costs one link. Edges are split where a link lands inside them.
    Changes ``graph`` in place; returns the number of links added.
    """
    if gap_m <= 0 or graph.number_of_edges() == 0:
        return 0
    comps = list(nx.connected_components(graph))
    if len(comps) <= 1:
        return 0
    nodes = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    pos = {int(n): i for i, n in enumerate(nodes)}
    label = np.empty(len(nodes), dtype=np.int64)
    for k, comp in enumerate(comps):
        label[[pos[int(n)] for n in comp]] = k
    largest = int(np.argmax([len(c) for c in comps]))
    xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes], dtype=float)
    edges = np.array([(pos[int(u)], pos[int(v)]) for u, v in graph.edges()], dtype=np.int64)
    segs = shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1))
    degree = np.bincount(edges.ravel(), minlength=len(nodes))
    cand = np.flatnonzero((degree <= 1) | (label != largest))
    pts = shapely.points(xy[cand])
    pi, si = shapely.STRtree(segs).query(pts, predicate="dwithin", distance=gap_m)
    other = label[edges[si, 0]] != label[cand[pi]]
    pi, si = pi[other], si[other]
    if len(pi) == 0:
        return 0
    dist = shapely.distance(pts[pi], segs[si])
    order = np.lexsort((si, pi, dist))
    parent = np.arange(len(comps))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    links: list[tuple[int, int, float]] = []  # (node position, edge index, fraction)
    for k in order:
        a, b = find(int(label[cand[pi[k]]])), find(int(label[edges[si[k], 0]]))
        if a == b:
            continue
        parent[a] = b
        frac = float(shapely.line_locate_point(segs[si[k]], pts[pi[k]], normalized=True))
        links.append((int(cand[pi[k]]), int(si[k]), frac))
    # Split each hit edge once at all its landing points, then add the links.
    next_id = int(nodes.max()) + 1
    by_edge: dict[int, list[tuple[float, int]]] = {}
    for node_pos, e, frac in links:
        by_edge.setdefault(e, []).append((frac, node_pos))
    for e, hits in by_edge.items():
        u, v = int(nodes[edges[e, 0]]), int(nodes[edges[e, 1]])
        data = dict(graph.edges[u, v])
        length = float(data.get("length_m", np.hypot(*(xy[edges[e, 1]] - xy[edges[e, 0]]))))
        chain: list[tuple[float, int]] = [(0.0, u)]
        targets: list[tuple[int, int]] = []
        for frac, node_pos in sorted(hits):
            if frac <= 1e-6:
                targets.append((node_pos, u))
                continue
            if frac >= 1.0 - 1e-6:
                targets.append((node_pos, v))
                continue
            p = xy[edges[e, 0]] + frac * (xy[edges[e, 1]] - xy[edges[e, 0]])
            graph.add_node(next_id, x=float(p[0]), y=float(p[1]))
            chain.append((frac, next_id))
            targets.append((node_pos, next_id))
            next_id += 1
        chain.append((1.0, v))
        if len(chain) > 2:
            graph.remove_edge(u, v)
            for (f0, n0), (f1, n1) in itertools.pairwise(chain):
                graph.add_edge(n0, n1, **{**data, "length_m": max((f1 - f0) * length,
                                                                  _MIN_EDGE_M)})
        for node_pos, target in targets:
            src = int(nodes[node_pos])
            gap = float(np.hypot(graph.nodes[target]["x"] - xy[node_pos, 0],
                                 graph.nodes[target]["y"] - xy[node_pos, 1]))
            graph.add_edge(src, target, length_m=max(gap, _MIN_EDGE_M), highway="link")
    log.info("walk network: %d piece(s) joined by links of at most %g m", len(links), gap_m)
    return len(links)


def _to_metric(gdf: gpd.GeoDataFrame, crs: Any, *, what: str) -> gpd.GeoDataFrame:
    """Return ``gdf`` in ``crs`` (or a metric CRS), warning when it reprojects."""
    if gdf.crs is None:
        if crs is None:
            raise InputError(
                f"{what} have no CRS; set it (gdf.set_crs(...)) or pass crs= "
                "(gridopt works in metres, e.g. a UTM zone)"
            )
        return gdf.set_crs(crs)
    if crs is not None:
        return reproject(gdf, crs, what=what, warn=True)
    if gdf.crs.is_geographic:
        return WorkingCRS.choose(gdf, what=what).to_working(gdf, what=what, warn=True)
    return gdf


def _walkable_mask(gdf: gpd.GeoDataFrame, exclude: frozenset[str]) -> np.ndarray:
    n = len(gdf)
    geoms = gdf.geometry.to_numpy()
    geom_ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    # Lines tagged as rivers or railways are never walked along.
    other = np.zeros(n, dtype=bool)
    for col in ("waterway", "railway"):
        if col in gdf.columns:
            other |= gdf[col].notna().to_numpy()
    if "highway" not in gdf.columns or not gdf["highway"].notna().any():
        # Untagged street lines (a CAD or survey layer): all walkable.
        return geom_ok & ~other
    hw = gdf["highway"]
    ok = hw.notna().to_numpy() & ~hw.isin(list(exclude)).to_numpy()
    if "other_tags" in gdf.columns:
        tags = gdf["other_tags"].fillna("").astype(str)
        no = tags.str.contains(r'"foot"=>"no"|"access"=>"(?:no|private)"', regex=True)
        yes = tags.str.contains(r'"foot"=>"(?:yes|designated|permissive)"', regex=True)
        ok &= ~(no & ~yes).to_numpy()
    return np.asarray(ok & geom_ok, dtype=bool).reshape(n)


def _node_lines(parts: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split lines where they cross; each piece keeps the tag of its source line."""
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(parts)))
    if len(noded) == 0:  # pragma: no cover - node() of lines is never empty
        return parts, tags
    mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    tree = shapely.STRtree(parts)
    src = tree.query_nearest(mid, all_matches=False)[1]
    return noded, tags[src]


# ---------------------------------------------------------------------------
# Graph arrays and snapping
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arrays:
    xy: np.ndarray  # (n_nodes, 2)
    u: np.ndarray  # (n_edges,)
    v: np.ndarray
    length: np.ndarray
    nodes: list  # position -> graph node label


def _graph_arrays(graph: nx.Graph) -> _Arrays:
    nodes = list(graph.nodes)
    if not nodes:
        raise InputError("the walking network has no nodes; pass streets with walkable lines")
    pos = {n: i for i, n in enumerate(nodes)}
    try:
        xy = np.array([(d["x"], d["y"]) for _, d in graph.nodes(data=True)], dtype=float)
    except KeyError as exc:
        raise InputError(
            "network nodes need 'x' and 'y' attributes in metres (as walk_network and "
            "osmnx graphs have)"
        ) from exc
    m = graph.number_of_edges()
    u = np.empty(m, dtype=np.int64)
    v = np.empty(m, dtype=np.int64)
    length = np.empty(m, dtype=float)
    for k, (i, j, d) in enumerate(graph.edges(data=True)):
        u[k], v[k] = pos[i], pos[j]
        w = d.get("length_m", d.get("length"))
        length[k] = np.hypot(*(xy[pos[j]] - xy[pos[i]])) if w is None else float(w)
    ok = u != v
    return _Arrays(xy, u[ok], v[ok], np.maximum(length[ok], _MIN_EDGE_M), nodes)


def _as_geoms(points: Any, crs: Any, *, what: str) -> np.ndarray | None:
    """Geometries of ``points`` in ``crs`` (``None`` for a bare coordinate array)."""
    if isinstance(points, np.ndarray) and points.ndim == 2 and points.shape[1] == 2:
        return None
    if isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)):
        geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
        if crs is not None and geoms.crs is not None:
            geoms = reproject(geoms, crs, what=what, warn=True)
        arr = geoms.to_numpy()
    else:
        arr = np.empty(len(points), dtype=object)
        arr[:] = list(points)
    bad = np.flatnonzero(shapely.is_missing(arr) | shapely.is_empty(arr))
    if len(bad):
        raise InputError(
            f"{what}: {len(bad)} row(s) have no geometry (positions {bad[:10].tolist()}); "
            "fix or remove them"
        )
    return arr


def _xy(points: Any, geoms: np.ndarray | None) -> np.ndarray:
    """(n, 2) coordinates: points as they are, other shapes by a point on their surface."""
    if geoms is None:
        return np.asarray(points, dtype=float)
    if len(geoms) == 0:
        return np.empty((0, 2))
    pts = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    return shapely.get_coordinates(pts)


def snap_to_network(graph: nx.Graph, points: Any) -> pd.DataFrame:
    """Snap points (or polygons' representative points) to the nearest network point.

    The nearest point may lie inside an edge; it is described by the edge's
    two nodes and the fraction of the way from ``u`` to ``v``.

    Parameters
    ----------
    graph
        A walking network (:func:`walk_network`, or any graph whose nodes have
        ``x``/``y`` in the points' CRS).
    points
        GeoSeries/GeoDataFrame of points or polygons, a sequence of shapely
        geometries, or an (n, 2) coordinate array.

    Returns
    -------
    pandas.DataFrame
        One row per point (same index for GeoSeries/GeoDataFrame input):
        ``u``, ``v`` (graph node labels), ``fraction`` (0 at ``u``, 1 at
        ``v``), ``snap_m`` (straight distance to the network), ``x``, ``y``
        (the snapped point).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString, Point
    >>> g = walk_network(gpd.GeoSeries([LineString([(0, 0), (100, 0)])], crs=3857))
    >>> snap_to_network(g, [Point(25, 5)])[["fraction", "snap_m"]].round(2).to_dict("records")
    [{'fraction': 0.25, 'snap_m': 5.0}]
    """
    arrays = _graph_arrays(graph)
    xy = _xy(points, _as_geoms(points, graph.graph.get("crs"), what="points"))
    edge, frac, dist = _snap(arrays.xy, arrays.u, arrays.v, xy)
    snapped = arrays.xy[arrays.u[edge]] + frac[:, None] * (
        arrays.xy[arrays.v[edge]] - arrays.xy[arrays.u[edge]]
    )
    index = points.index if isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)) else None
    nodes = np.asarray(arrays.nodes, dtype=object)
    return pd.DataFrame(
        {
            "u": nodes[arrays.u[edge]],
            "v": nodes[arrays.v[edge]],
            "fraction": frac,
            "snap_m": dist,
            "x": snapped[:, 0],
            "y": snapped[:, 1],
        },
        index=index,
    )


def _snap(
    node_xy: np.ndarray, u: np.ndarray, v: np.ndarray, pts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest edge of each point, the fraction along it and the distance to it."""
    if len(pts) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    segs = shapely.linestrings(np.stack([node_xy[u], node_xy[v]], axis=1))
    tree = shapely.STRtree(segs)
    p = shapely.points(pts)
    (qi, edge), _ = tree.query_nearest(p, all_matches=False, return_distance=True)
    # query_nearest may return the points in any order: put them back in order.
    e = np.empty(len(pts), dtype=np.int64)
    e[qi] = edge
    a, b = node_xy[u[e]], node_xy[v[e]]
    ab = b - a
    den = np.einsum("ij,ij->i", ab, ab)
    frac = np.clip(np.einsum("ij,ij->i", pts - a, ab) / np.where(den > 0, den, 1.0), 0.0, 1.0)
    proj = a + frac[:, None] * ab
    return e, frac, np.hypot(*(pts - proj).T)


def _snap_main(
    node_xy: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    pts: np.ndarray,
    on_main: np.ndarray,
    max_snap_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_snap`, but onto the main piece wherever it is within ``max_snap_m``.

    A building whose nearest street is a stray piece (a footway mapped apart, a
    courtyard path) but which stands metres from the main network walks on the
    main network: otherwise every walk from it would fall back to a straight line.
    """
    e, frac, dist = _snap(node_xy, u, v, pts)
    main_edges = np.flatnonzero(on_main)
    off = np.flatnonzero(~on_main[e]) if len(e) else np.empty(0, dtype=np.int64)
    if len(off) == 0 or len(main_edges) == 0:
        return e, frac, dist
    e0, f0, d0 = _snap(node_xy, u[main_edges], v[main_edges], pts[off])
    near = d0 <= max_snap_m
    take = off[near]
    e[take], frac[take], dist[take] = main_edges[e0[near]], f0[near], d0[near]
    return e, frac, dist


# ---------------------------------------------------------------------------
# Walking distances
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WalkDistances:
    """Walking metres from origins (buildings) to sites (candidate stations).

    Attributes
    ----------
    matrix
        ``scipy.sparse.csr_array`` (n_origins, n_sites): walking metres of
        every pair within ``max_walk_m`` (a true 0 is stored as 1 mm); a
        missing entry means "further than ``max_walk_m``".
    fallback
        ``csr_array`` of the same shape, 1 where the pair's distance is the
        straight line times ``detour_factor`` instead of the network.
    method
        ``"network"``, ``"straight_line"`` (no network) or
        ``"network+straight_line"`` (some pairs fell back).
    origin_snap_m, site_snap_m
        Straight metres from each origin/site to the network (NaN without one).
    origin_piece, site_piece
        Index of the network piece (connected component) each origin/site
        snapped to, 0 being the largest; -1 when off the network (further than
        ``max_snap_m``) or without a network.
    n_pieces
        Connected components of the network (0 without one).
    max_walk_m, detour_factor, max_snap_m
        The parameters used.
    """

    matrix: sparse.csr_array
    fallback: sparse.csr_array
    method: str
    origin_snap_m: np.ndarray
    site_snap_m: np.ndarray
    origin_piece: np.ndarray
    site_piece: np.ndarray
    n_pieces: int
    max_walk_m: float
    detour_factor: float
    max_snap_m: float
    runtime_s: float = field(default=0.0)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_origins, n_sites)."""
        return self.matrix.shape

    def summary(self) -> str:
        """A few lines for people: size, method, pieces and fallbacks."""
        n_o, n_s = self.shape
        nnz = self.matrix.nnz
        fb = self.fallback.nnz
        lines = [
            f"walking distances: {n_o} origins x {n_s} sites, {nnz} pairs within "
            f"{self.max_walk_m:g} m ({nnz / max(n_o, 1):.1f} per origin), method {self.method}",
        ]
        if self.n_pieces:
            off = int((self.origin_piece < 0).sum())
            small = int((self.origin_piece > 0).sum())
            lines.append(
                f"network: {self.n_pieces} piece(s); origins on smaller pieces: {small}, "
                f"further than {self.max_snap_m:g} m from any street: {off}"
            )
        if fb:
            lines.append(
                f"{fb} pair(s) measured as straight line x {self.detour_factor:g} (fallback)"
            )
        no_site = int((np.diff(self.matrix.indptr) == 0).sum())
        if no_site:
            lines.append(f"{no_site} origin(s) have no site within {self.max_walk_m:g} m")
        lines.append(f"runtime {self.runtime_s:.2f} s")
        return "\n".join(lines)


def walking_distances(
    graph: nx.Graph | None,
    origins: Any,
    sites: Any,
    *,
    max_walk_m: float,
    detour_factor: float = 1.3,
    max_snap_m: float = 250.0,
) -> WalkDistances:
    """Walking metres from every origin to every site within ``max_walk_m``.

    Each origin and site (polygons use a point on their surface) is snapped
    to its nearest network point, possibly inside an edge; to the nearest
    point of the main (largest) piece instead when that lies within
    ``max_snap_m``, so that a stray piece does not cut a building off. The distance of a
    pair is origin->network (straight) + network path + network->site
    (straight), found by Dijkstra from the sites with ``limit=max_walk_m``.
    A pair is measured as the straight line times ``detour_factor`` instead,
    and flagged in ``fallback``, when there is no network, when either end is
    further than ``max_snap_m`` from the network, or when the two ends lie on
    different pieces of it. An origin lying inside a site's polygon is at 0 m.

    Parameters
    ----------
    graph
        The walking network (:func:`walk_network`); ``None`` measures every
        pair by the straight-line fallback.
    origins, sites
        GeoSeries/GeoDataFrames of points or polygons in the network's CRS
        (other CRSs are reprojected with a warning), sequences of shapely
        geometries, or (n, 2) coordinate arrays.
    max_walk_m
        Cutoff in metres; ``numpy.inf`` keeps every reachable pair (use it on
        few origins only: the result is then dense).
    detour_factor
        Straight-line distance multiplier of the fallback (1.3: a typical
        ratio of street to crow-fly distance in a city grid).
    max_snap_m
        Origins/sites further than this from any walkable line are treated as
        off the network and measured by the fallback.

    Returns
    -------
    WalkDistances

    Raises
    ------
    InputError
        Negative or NaN ``max_walk_m``, ``detour_factor`` below 1, empty geometry.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString, Point
    >>> g = walk_network(gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=3857))
    >>> d = walking_distances(g, [Point(0, 0), Point(900, 0)], [Point(100, 0)], max_walk_m=500)
    >>> d.matrix.toarray().round(1).tolist()
    [[100.0], [0.0]]
    >>> d.matrix.nnz  # the second origin is 800 m away: no entry
    1
    """
    import time

    t0 = time.perf_counter()
    if not (max_walk_m >= 0):
        raise InputError(f"max_walk_m must be a non-negative number of metres, got {max_walk_m}")
    if not (detour_factor >= 1.0 and np.isfinite(detour_factor)):
        raise InputError(f"detour_factor must be a finite number >= 1, got {detour_factor}")
    crs = graph.graph.get("crs") if graph is not None else None
    o_geoms = _as_geoms(origins, crs, what="origins")
    s_geoms = _as_geoms(sites, crs, what="sites")
    oxy, sxy = _xy(origins, o_geoms), _xy(sites, s_geoms)
    n_o, n_s = len(oxy), len(sxy)

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    if graph is None or graph.number_of_nodes() == 0 or n_o == 0 or n_s == 0:
        o_piece = np.full(n_o, -1)
        s_piece = np.full(n_s, -1)
        o_snap = np.full(n_o, np.nan)
        s_snap = np.full(n_s, np.nan)
        n_pieces = 0
    else:
        arrays = _graph_arrays(graph)
        net = _network_pairs(arrays, oxy, sxy, max_walk_m=max_walk_m, max_snap_m=max_snap_m)
        rows.append(net["rows"])
        cols.append(net["cols"])
        vals.append(net["vals"])
        o_piece, s_piece = net["o_piece"], net["s_piece"]
        o_snap, s_snap = net["o_snap"], net["s_snap"]
        n_pieces = net["n_pieces"]
    n_net = sum(len(r) for r in rows)

    fb_r, fb_c, fb_v = _fallback_pairs(oxy, sxy, o_piece, s_piece, max_walk_m, detour_factor)
    rows.append(fb_r)
    cols.append(fb_c)
    vals.append(fb_v)
    r = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    w = np.concatenate(vals) if vals else np.empty(0)
    is_fb = np.zeros(len(r), dtype=bool)
    is_fb[n_net:] = True

    # Network and fallback pairs never overlap (a fallback pair is one the
    # network cannot measure). Inside a site's polygon: 0 m, whatever else.
    inside = _inside_pairs(oxy, s_geoms)
    if len(inside[0]):
        key = r.astype(np.int64) * max(n_s, 1) + c
        drop = np.isin(key, inside[0].astype(np.int64) * max(n_s, 1) + inside[1])
        r = np.concatenate([r[~drop], inside[0]])
        c = np.concatenate([c[~drop], inside[1]])
        w = np.concatenate([w[~drop], np.zeros(len(inside[0]))])
        is_fb = np.concatenate([is_fb[~drop], np.zeros(len(inside[0]), dtype=bool)])
    w = np.maximum(w, _MIN_M)
    matrix = sparse.csr_array((w, (r, c)), shape=(n_o, n_s))
    matrix.sort_indices()
    fallback = sparse.csr_array(
        (np.ones(int(is_fb.sum()), dtype=np.int8), (r[is_fb], c[is_fb])), shape=(n_o, n_s)
    )
    if graph is None:
        method = "straight_line"
    elif fallback.nnz:
        method = "network+straight_line"
    else:
        method = "network"
    result = WalkDistances(
        matrix=matrix,
        fallback=fallback,
        method=method,
        origin_snap_m=o_snap,
        site_snap_m=s_snap,
        origin_piece=o_piece,
        site_piece=s_piece,
        n_pieces=n_pieces,
        max_walk_m=float(max_walk_m),
        detour_factor=float(detour_factor),
        max_snap_m=float(max_snap_m),
        runtime_s=time.perf_counter() - t0,
    )
    log.info("%s", result.summary())
    return result


def _network_pairs(
    arrays: _Arrays,
    oxy: np.ndarray,
    sxy: np.ndarray,
    *,
    max_walk_m: float,
    max_snap_m: float,
) -> dict[str, Any]:
    n_nodes = len(arrays.xy)
    u, v, length = arrays.u, arrays.v, arrays.length
    # Sites: snap, then split their edges so each site is a node of its own.
    base = sparse.csr_array(
        (np.ones(len(u)), (u, v)), shape=(n_nodes, n_nodes)
    )
    _, base_label = csgraph.connected_components(base, directed=False)
    main_label = int(np.argmax(np.bincount(base_label)))
    s_edge, s_frac, s_snap = _snap_main(
        arrays.xy, u, v, sxy, base_label[u] == main_label, max_snap_m
    )
    s_on = s_snap <= max_snap_m
    site_node = np.full(len(sxy), -1, dtype=np.int64)
    drop = np.zeros(len(u), dtype=bool)
    new_u: list[int] = []
    new_v: list[int] = []
    new_w: list[float] = []
    next_id = n_nodes
    on_idx = np.flatnonzero(s_on)
    for e in np.unique(s_edge[on_idx]):
        here = on_idx[s_edge[on_idx] == e]
        here = here[np.argsort(s_frac[here], kind="stable")]
        drop[e] = True
        chain = [int(u[e])]
        pos = [0.0]
        for s in here:
            site_node[s] = next_id
            chain.append(next_id)
            pos.append(float(s_frac[s]))
            next_id += 1
        chain.append(int(v[e]))
        pos.append(1.0)
        for k in range(len(chain) - 1):
            new_u.append(chain[k])
            new_v.append(chain[k + 1])
            new_w.append(max((pos[k + 1] - pos[k]) * float(length[e]), _MIN_EDGE_M))
    uu = np.concatenate([u[~drop], np.asarray(new_u, dtype=np.int64)])
    vv = np.concatenate([v[~drop], np.asarray(new_v, dtype=np.int64)])
    ww = np.concatenate([length[~drop], np.asarray(new_w, dtype=float)])
    n_all = next_id
    xy_all = np.vstack([arrays.xy, np.zeros((n_all - n_nodes, 2))])
    if n_all > n_nodes:
        placed = site_node >= 0
        a, b = arrays.xy[u[s_edge[placed]]], arrays.xy[v[s_edge[placed]]]
        xy_all[site_node[placed]] = a + s_frac[placed, None] * (b - a)
    graph = sparse.csr_array(
        (np.concatenate([ww, ww]), (np.concatenate([uu, vv]), np.concatenate([vv, uu]))),
        shape=(n_all, n_all),
    )
    # Pieces, numbered by size so that 0 is the main network.
    n_comp, label = csgraph.connected_components(graph, directed=False)
    sizes = np.bincount(label, minlength=n_comp)
    rank = np.empty(n_comp, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(n_comp)
    label = rank[label]

    # Origins: snap to the split graph's edges; distance via either end.
    o_edge, o_frac, o_snap = _snap_main(xy_all, uu, vv, oxy, label[uu] == 0, max_snap_m)
    o_on = o_snap <= max_snap_m
    oa, ob = uu[o_edge], vv[o_edge]
    o_to_a = o_frac * ww[o_edge]
    o_to_b = (1.0 - o_frac) * ww[o_edge]
    o_piece = np.where(o_on, label[oa], -1)
    s_piece = np.where(s_on, label[np.maximum(site_node, 0)], -1)

    rows, cols, vals = [], [], []
    on_sites = np.flatnonzero(s_on)
    on_orig = np.flatnonzero(o_on)
    # Walking metres are never shorter than the straight line, so a block of
    # sites only needs the origins in its bounding box grown by the limit.
    # Blocks of nearby sites (sorted along a coarse grid) keep the boxes small.
    cell = max(max_walk_m, 100.0) if np.isfinite(max_walk_m) else np.inf
    if np.isfinite(cell) and len(on_sites):
        gx = np.floor((sxy[on_sites, 0] - sxy[on_sites, 0].min()) / cell).astype(np.int64)
        gy = np.floor((sxy[on_sites, 1] - sxy[on_sites, 1].min()) / cell).astype(np.int64)
        snake = np.where(gy % 2 == 0, gx, gx.max() - gx)  # boustrophedon order of cells
        on_sites = on_sites[np.lexsort((sxy[on_sites, 0], snake, gy))]
    block = max(1, _BLOCK_ELEMENTS // max(n_all, 1))
    oxy_on = oxy[on_orig]
    for start in range(0, len(on_sites), block):
        chunk = on_sites[start : start + block]
        orig = on_orig
        if np.isfinite(max_walk_m):
            lo = sxy[chunk].min(axis=0) - max_walk_m
            hi = sxy[chunk].max(axis=0) + max_walk_m
            near = np.all((oxy_on >= lo) & (oxy_on <= hi), axis=1)
            orig = on_orig[near]
            if len(orig) == 0:
                continue
        dist = csgraph.dijkstra(graph, directed=True, indices=site_node[chunk], limit=max_walk_m)
        d = np.minimum(dist[:, oa[orig]] + o_to_a[orig], dist[:, ob[orig]] + o_to_b[orig])
        d += o_snap[orig][None, :] + s_snap[chunk][:, None]
        si, oi = np.nonzero((d <= max_walk_m) & np.isfinite(d))
        rows.append(orig[oi])
        cols.append(chunk[si])
        vals.append(d[si, oi])
    return {
        "rows": np.concatenate(rows) if rows else np.empty(0, dtype=np.int64),
        "cols": np.concatenate(cols) if cols else np.empty(0, dtype=np.int64),
        "vals": np.concatenate(vals) if vals else np.empty(0),
        "o_piece": o_piece,
        "s_piece": s_piece,
        "o_snap": o_snap,
        "s_snap": s_snap,
        "n_pieces": int(n_comp),
    }


def _fallback_pairs(
    oxy: np.ndarray,
    sxy: np.ndarray,
    o_piece: np.ndarray,
    s_piece: np.ndarray,
    max_walk_m: float,
    detour: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Straight-line x detour pairs for every pair the network cannot measure."""
    empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0))
    if len(oxy) == 0 or len(sxy) == 0:
        return empty
    # A pair falls back when an end is off the network or the ends are on
    # different pieces; such a pair has an origin or a site outside piece 0.
    o_cand = np.flatnonzero(o_piece != 0)
    s_cand = np.flatnonzero(s_piece != 0)
    pairs_r: list[np.ndarray] = []
    pairs_c: list[np.ndarray] = []
    radius = max_walk_m / detour
    if len(o_cand):
        r, c = _within(oxy[o_cand], sxy, radius)
        pairs_r.append(o_cand[r])
        pairs_c.append(c)
    if len(s_cand):
        c, r = _within(sxy[s_cand], oxy, radius)
        pairs_r.append(r)
        pairs_c.append(s_cand[c])
    if not pairs_r:
        return empty
    r = np.concatenate(pairs_r)
    c = np.concatenate(pairs_c)
    need = (o_piece[r] < 0) | (s_piece[c] < 0) | (o_piece[r] != s_piece[c])
    r, c = r[need], c[need]
    key = np.unique(r.astype(np.int64) * len(sxy) + c)
    r, c = key // len(sxy), key % len(sxy)
    d = np.hypot(*(oxy[r] - sxy[c]).T) * detour
    keep = d <= max_walk_m
    return r[keep], c[keep], d[keep]


def _within(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i in a, j in b) within ``radius`` (all pairs if infinite)."""
    if not np.isfinite(radius):
        i, j = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
        return i.ravel(), j.ravel()
    hits = cKDTree(b).query_ball_point(a, r=radius)
    counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
    i = np.repeat(np.arange(len(a)), counts)
    j = np.fromiter((x for h in hits for x in h), dtype=np.int64, count=int(counts.sum()))
    return i, j


def _inside_pairs(oxy: np.ndarray, geoms: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(origin, site) pairs where the origin's point lies inside the site's polygon."""
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    if geoms is None or len(geoms) == 0 or len(oxy) == 0:
        return none
    poly = np.flatnonzero(np.isin(shapely.get_type_id(geoms), [3, 6]))
    if len(poly) == 0:
        return none
    tree = shapely.STRtree(geoms[poly])
    oi, pi = tree.query(shapely.points(oxy), predicate="within")
    return oi.astype(np.int64), poly[pi].astype(np.int64)
