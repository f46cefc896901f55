"""Tests of gridopt.network: the walking graph and sparse walking distances."""

from __future__ import annotations

import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from shapely.geometry import LineString, Point, box

import gridopt
from gridopt.network import snap_to_network, walk_network, walking_distances

CRS = 32651


def grid_streets(n: int = 3, step: float = 100.0) -> gpd.GeoDataFrame:
    """An n x n street grid (lines end to end, joined at shared vertices)."""
    lines = []
    for i in range(n):
        for j in range(n - 1):
            lines.append(LineString([(j * step, i * step), ((j + 1) * step, i * step)]))
            lines.append(LineString([(i * step, j * step), (i * step, (j + 1) * step)]))
    return gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=CRS)


# --- walk_network -------------------------------------------------------------------


def test_grid_network_nodes_edges_lengths():
    g = walk_network(grid_streets())
    assert g.number_of_nodes() == 9
    assert g.number_of_edges() == 12
    assert all(d["length_m"] == pytest.approx(100.0) for _, _, d in g.edges(data=True))
    assert g.graph["n_components"] == 1
    assert g.graph["crs"].to_epsg() == CRS


def test_motorway_river_and_foot_no_are_not_walkable():
    streets = gpd.GeoDataFrame(
        {
            "highway": ["residential", "motorway", "trunk_link", None, "footway", "service"],
            "waterway": [None, None, None, "river", None, None],
            "other_tags": [None, None, None, None, None, '"access"=>"private"'],
        },
        geometry=[
            LineString([(0, 0), (100, 0)]),
            LineString([(0, 50), (100, 50)]),
            LineString([(0, 60), (100, 60)]),
            LineString([(0, 70), (100, 70)]),
            LineString([(100, 0), (100, 100)]),
            LineString([(0, 200), (100, 200)]),
        ],
        crs=CRS,
    )
    g = walk_network(streets)
    assert sorted(d["highway"] for _, _, d in g.edges(data=True)) == ["footway", "residential"]
    assert g.graph["lines_excluded"] == 4


def test_lines_without_highway_column_are_all_walkable_and_crossings_join():
    # Two lines crossing in the middle without a shared vertex: split there.
    cross = gpd.GeoSeries(
        [LineString([(0, 0), (200, 0)]), LineString([(100, -100), (100, 100)])], crs=CRS
    )
    g = walk_network(cross)
    assert g.number_of_nodes() == 5
    assert nx.is_connected(g)
    # As OSM data (osm_id column) the same crossing is a bridge: no junction.
    osm = gpd.GeoDataFrame({"osm_id": ["1", "2"], "highway": ["residential"] * 2}, geometry=cross)
    assert nx.number_connected_components(walk_network(osm)) == 2


def test_geographic_streets_reprojected_with_warning():
    streets = grid_streets().to_crs(4326)
    with pytest.warns(gridopt.RepairWarning, match="reprojected"):
        g = walk_network(streets, crs=CRS)
    lengths = [d["length_m"] for _, _, d in g.edges(data=True)]
    assert np.allclose(lengths, 100.0, atol=0.01)


def test_no_walkable_line_is_an_input_error():
    streets = gpd.GeoDataFrame(
        {"highway": ["motorway"]}, geometry=[LineString([(0, 0), (1, 0)])], crs=CRS
    )
    with pytest.raises(gridopt.InputError, match="no walkable"):
        walk_network(streets)


def test_no_crs_is_an_input_error():
    with pytest.raises(gridopt.InputError, match="no CRS"):
        walk_network(gpd.GeoSeries([LineString([(0, 0), (1, 0)])]))


def test_osm_extract(small_town):
    g = walk_network(gridopt.datasets.small_town(), crs=small_town.crs)
    assert g.number_of_edges() > 1000
    total_km = sum(d["length_m"] for _, _, d in g.edges(data=True)) / 1000
    assert 30 < total_km < 66  # the extract holds 66 km of ways, motorways excluded
    assert not any(d["highway"] == "motorway" for _, _, d in g.edges(data=True))


# --- snapping and distances -----------------------------------------------------------


def test_snap_inside_edge():
    g = walk_network(grid_streets())
    snap = snap_to_network(g, [Point(30, 10), Point(-20, 200)])
    assert snap["snap_m"].round(6).tolist() == [10.0, 20.0]
    assert snap["fraction"].iloc[0] in (pytest.approx(0.3), pytest.approx(0.7))


def test_hand_checked_grid_distances():
    g = walk_network(grid_streets())
    origins = [Point(30, 10), Point(200, 200), Point(150, 100)]
    sites = [Point(0, 0), Point(200, 195)]
    d = walking_distances(g, origins, sites, max_walk_m=1000)
    m = d.matrix.toarray()
    # (30,10): 10 m to the street at (30,0), 30 m to (0,0)
    assert m[0, 0] == pytest.approx(40.0)
    # (30,10) -> (200,195): 10 + 170 along y=0 + 200 up x=200 to (200,195)... site snaps
    # onto x=200 at y=195 with 0 m access: 10 + 170 + 195 = 375
    assert m[0, 1] == pytest.approx(375.0)
    assert m[1, 1] == pytest.approx(5.0)
    assert m[2, 0] == pytest.approx(250.0)
    assert m[2, 1] == pytest.approx(50.0 + 95.0)
    assert d.method == "network"
    assert d.fallback.nnz == 0


def test_same_edge_origin_and_site():
    g = walk_network(gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=CRS))
    d = walking_distances(g, [Point(300, 5), Point(700, 0)], [Point(500, 0)], max_walk_m=1000)
    assert d.matrix.toarray()[:, 0].tolist() == pytest.approx([205.0, 200.0])


def test_cutoff_is_respected_and_matrix_is_sparse():
    g = walk_network(grid_streets(5))
    pts = [Point(x, y) for x in range(0, 401, 50) for y in range(0, 401, 100)]
    d = walking_distances(g, pts, [Point(0, 0)], max_walk_m=150)
    dense = walking_distances(g, pts, [Point(0, 0)], max_walk_m=10_000).matrix.toarray()[:, 0]
    assert d.matrix.nnz == int((dense <= 150).sum())
    assert np.allclose(d.matrix.toarray()[:, 0][dense <= 150], dense[dense <= 150])


def test_matches_networkx_shortest_paths(small_town):
    g = walk_network(gridopt.datasets.small_town(), crs=small_town.crs)
    main = g.subgraph(max(nx.connected_components(g), key=len))
    rng = np.random.default_rng(1)
    nodes = rng.choice(sorted(main.nodes), size=40, replace=False)
    o_nodes, s_nodes = nodes[:30], nodes[30:]

    def pts(ns):
        return [Point(g.nodes[n]["x"], g.nodes[n]["y"]) for n in ns]

    d = walking_distances(g, pts(o_nodes), pts(s_nodes), max_walk_m=1500).matrix.toarray()
    for j, s in enumerate(s_nodes):
        ref = nx.single_source_dijkstra_path_length(g, s, cutoff=1500, weight="length_m")
        for i, o in enumerate(o_nodes):
            if o in ref:
                assert d[i, j] == pytest.approx(max(ref[o], 1e-3), abs=1e-4)
            else:
                assert d[i, j] == 0.0  # not stored: beyond the cutoff


def test_no_network_is_straight_line_times_detour():
    d = walking_distances(None, [Point(0, 0), Point(0, 1400)], [Point(300, 400)], max_walk_m=1000)
    assert d.method == "straight_line"
    assert d.matrix.toarray()[0, 0] == pytest.approx(500 * 1.3)
    assert d.matrix.nnz == 1  # the second origin is 1,044 m x 1.3 away
    d2 = walking_distances(
        None, [Point(0, 0)], [Point(300, 400)], max_walk_m=1000, detour_factor=1.5
    )
    assert d2.matrix.toarray()[0, 0] == pytest.approx(750.0)
    assert d2.fallback.nnz == 1


def test_network_in_pieces_falls_back_and_reports():
    streets = gpd.GeoSeries(
        [LineString([(0, 0), (1000, 0)]), LineString([(0, 300), (200, 300)])], crs=CRS
    )
    g = walk_network(streets)
    assert g.graph["n_components"] == 2
    origins = [Point(100, 310), Point(100, 10)]  # on the small piece, on the main one
    d = walking_distances(g, origins, [Point(100, 0)], max_walk_m=1000)
    assert d.n_pieces == 2
    assert d.origin_piece.tolist() == [1, 0]
    m = d.matrix.toarray()
    assert m[0, 0] == pytest.approx(310 * 1.3)
    assert m[1, 0] == pytest.approx(10.0)
    assert d.fallback.toarray()[:, 0].tolist() == [1, 0]
    assert d.method == "network+straight_line"
    assert "piece" in d.summary()


def test_far_from_street_falls_back():
    g = walk_network(gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=CRS))
    d = walking_distances(g, [Point(0, 600)], [Point(0, 0)], max_walk_m=1000, max_snap_m=250)
    assert d.origin_piece.tolist() == [-1]
    assert d.matrix.toarray()[0, 0] == pytest.approx(600 * 1.3)
    assert d.fallback.nnz == 1


def test_origin_inside_site_polygon_is_zero():
    g = walk_network(grid_streets())
    site = gpd.GeoSeries([box(20, 20, 80, 80)], crs=CRS)
    d = walking_distances(g, [Point(50, 50), Point(50, 10)], site, max_walk_m=1000)
    assert d.matrix.toarray()[0, 0] == pytest.approx(0.0, abs=1e-2)
    assert d.matrix.nnz == 2  # the 0 m pair is stored (as 1 mm)


def test_infinite_cutoff_and_bad_parameters():
    g = walk_network(grid_streets())
    d = walking_distances(g, [Point(0, 0)], [Point(200, 200)], max_walk_m=np.inf)
    assert d.matrix.toarray()[0, 0] == pytest.approx(400.0)
    with pytest.raises(gridopt.InputError):
        walking_distances(g, [Point(0, 0)], [Point(1, 1)], max_walk_m=-1)
    with pytest.raises(gridopt.InputError):
        walking_distances(g, [Point(0, 0)], [Point(1, 1)], max_walk_m=10, detour_factor=0.5)


def test_other_crs_points_reprojected_with_warning():
    g = walk_network(grid_streets())
    pts = gpd.GeoSeries([Point(30, 10)], crs=CRS).to_crs(4326)
    with pytest.warns(gridopt.RepairWarning):
        d = walking_distances(g, pts, [Point(0, 0)], max_walk_m=500)
    assert d.matrix.toarray()[0, 0] == pytest.approx(40.0, abs=0.01)


def test_monaco_scale_smoke():
    """A quick check at city scale: Monaco's streets, 2,000 origins, 100 sites."""
    try:
        path = gridopt.datasets.monaco()
    except gridopt.InputError:
        pytest.skip("the Monaco extract is not available here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = walk_network(path, crs=32632)
    rng = np.random.default_rng(0)
    xy = np.array([(d["x"], d["y"]) for _, d in g.nodes(data=True)])
    o = xy[rng.choice(len(xy), 2000)] + rng.normal(0, 20, (2000, 2))
    s = xy[rng.choice(len(xy), 100)]
    d = walking_distances(g, o, s, max_walk_m=1500)
    assert d.shape == (2000, 100)
    assert 0 < d.matrix.nnz < 2000 * 100
    assert d.matrix.data.max() <= 1500


def test_infinite_cutoff_skips_unreachable_pairs():
    streets = gpd.GeoSeries(
        [LineString([(0, 0), (1000, 0)]), LineString([(0, 5000), (1000, 5000)])], crs=CRS
    )
    g = walk_network(streets)
    d = walking_distances(g, [Point(0, 10), Point(0, 5010)], [Point(500, 0)], max_walk_m=np.inf)
    assert np.isfinite(d.matrix.data).all()
    m = d.matrix.toarray()
    assert m[0, 0] == pytest.approx(510.0)
    # different pieces: straight line x detour, flagged
    assert m[1, 0] == pytest.approx(np.hypot(500, 5010) * 1.3)
    assert d.fallback.toarray()[:, 0].tolist() == [0, 1]


def test_docstring_examples():
    import doctest

    import gridopt.network as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_untagged_lines_from_a_file_are_walkable(tmp_path):
    # A survey layer of street centre lines without OSM tags, plus a river line.
    lines = gpd.GeoDataFrame(
        {"waterway": [None, None, "river"]},
        geometry=[
            LineString([(0, 0), (100, 0)]),
            LineString([(100, 0), (100, 100)]),
            LineString([(0, 50), (200, 50)]),
        ],
        crs=CRS,
    )
    lines.to_file(tmp_path / "streets.gpkg")
    g = walk_network(tmp_path / "streets.gpkg")
    assert g.number_of_edges() == 2
    assert sum(d["length_m"] for _, _, d in g.edges(data=True)) == pytest.approx(200.0)


# --------------------------------------------------------------------------- joining pieces (issue 17)


def test_pieces_a_few_metres_apart_are_joined_at_the_nearest_point():


    # A street along y=0 and a footway that stops 5 m short of it, at x=500.
    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "footway"]},
        geometry=[LineString([(0, 0), (1000, 0)]), LineString([(500, 5), (500, 300)])],
        crs=32651,
    )
    apart = walk_network(lines, join_gap_m=0)
    joined = walk_network(lines)
    assert apart.graph["n_components"] == 2 and apart.graph["pieces_joined"] == 0
    assert joined.graph["n_components"] == 1 and joined.graph["pieces_joined"] == 1
    # The link lands inside the street's edge, not at one of its ends.
    d = walking_distances(joined, [Point(500, 300)], [Point(0, 0)], max_walk_m=2000)
    assert float(d.matrix[0, 0]) == pytest.approx(295 + 5 + 500)
    assert d.fallback.nnz == 0
    far = walking_distances(apart, [Point(500, 300)], [Point(0, 0)], max_walk_m=2000)
    assert far.fallback.nnz == 1


def test_pieces_further_apart_stay_apart():


    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "footway"]},
        geometry=[LineString([(0, 0), (1000, 0)]), LineString([(500, 80), (500, 300)])],
        crs=32651,
    )
    g = walk_network(lines, join_gap_m=30)
    assert g.graph["n_components"] == 2
    with pytest.raises(gridopt.InputError, match="join_gap_m"):
        walk_network(lines, join_gap_m=-1)


def test_three_pieces_joined_with_one_link_each():


    lines = gpd.GeoDataFrame(
        {"highway": ["residential"] * 3},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(110, 0), (200, 0)]),
                  LineString([(210, 0), (300, 0)])],
        crs=32651,
    )
    g = walk_network(lines, join_gap_m=20)
    assert g.graph["n_components"] == 1 and g.graph["pieces_joined"] == 2


def test_building_beside_a_stray_piece_walks_on_the_main_network():
    # A courtyard path 200 m from the street (a piece of its own, too far to join); the
    # building stands 2 m from the path and 20 m from the street.
    lines = gpd.GeoDataFrame(
        {"highway": ["residential", "footway"]},
        geometry=[LineString([(0, 0), (1000, 0)]), LineString([(300, 22), (300, 200)])],
        crs=32651,
    )
    g = walk_network(lines, join_gap_m=10)
    assert g.graph["n_components"] == 2
    d = walking_distances(g, [Point(302, 20)], [Point(0, 0)], max_walk_m=2000)
    assert d.fallback.nnz == 0
    assert float(d.matrix[0, 0]) == pytest.approx(20 + 302)
    assert d.origin_piece[0] == 0
