"""Tests of gridopt.adjacency: tessellation, neighbours, barrier edges."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridopt import InputError, RepairWarning
from gridopt.adjacency import building_graph, dissolve_cells, tessellate


def _row(n: int, gap: float = 10.0, size: float = 10.0) -> gpd.GeoDataFrame:
    boxes = [shapely.box(k * (size + gap), 0, k * (size + gap) + size, size) for k in range(n)]
    return gpd.GeoDataFrame({"households": [10] * n}, geometry=boxes, crs=32651)


def test_cells_tile_without_overlap_and_contain_buildings():
    b = _row(5)
    cells = tessellate(b)
    assert cells.index.equals(b.index)
    assert (cells.geom_type == "Polygon").all()
    inter = sum(
        cells.iloc[i].intersection(cells.iloc[j]).area for i in range(5) for j in range(i + 1, 5)
    )
    assert inter < 1e-3
    for cell, bld in zip(cells, b.geometry, strict=False):
        assert cell.intersection(bld).area > 0.9 * bld.area


def test_row_graph_is_a_path():
    g = building_graph(_row(6))
    assert sorted(g.edges) == [(k, k + 1) for k in range(5)]
    assert not any(d["barrier"] for *_, d in g.edges(data=True))


def test_far_buildings_are_not_neighbours():
    b = _row(2, gap=200.0)
    g = building_graph(b, max_gap_m=80.0)
    assert g.number_of_edges() == 0


def test_barrier_edges_flagged_and_ordinary_streets_marked():
    b = _row(3, gap=20.0)
    lines = gpd.GeoDataFrame(
        {"barrier_kind": ["river", None]},
        geometry=[
            shapely.LineString([(20, -50), (20, 60)]),
            shapely.LineString([(50, -50), (50, 60)]),
        ],
        crs=32651,
    )
    g = building_graph(b, streets=lines)
    assert g.edges[0, 1]["barrier_kind"] == "river" and g.edges[0, 1]["barrier"]
    assert g.edges[1, 2]["barrier_kind"] is None and g.edges[1, 2]["street"]


def test_raw_osm_tags_give_barrier_kinds():
    b = _row(2, gap=20.0)
    lines = gpd.GeoDataFrame(
        {"highway": ["primary"]}, geometry=[shapely.LineString([(20, -50), (20, 60)])], crs=32651
    )
    g = building_graph(b, streets=lines)
    assert g.edges[0, 1]["barrier_kind"] == "major_street"


def test_streets_in_other_crs_are_reprojected_with_warning():
    b = _row(2, gap=20.0)
    lines = gpd.GeoDataFrame(
        {"barrier_kind": ["railway"]},
        geometry=[shapely.LineString([(20, -50), (20, 60)])],
        crs=32651,
    ).to_crs(4326)
    with pytest.warns(RepairWarning, match="reprojected"):
        g = building_graph(b, streets=lines)
    assert g.edges[0, 1]["barrier_kind"] == "railway"


def test_unknown_barrier_kind_is_an_input_error():
    b = _row(2)
    lines = gpd.GeoDataFrame(
        {"barrier_kind": ["wall"]}, geometry=[shapely.LineString([(15, -5), (15, 20)])], crs=32651
    )
    with pytest.raises(InputError, match="wall"):
        building_graph(b, streets=lines)


def test_geographic_crs_rejected():
    with pytest.raises(InputError, match="degrees"):
        building_graph(_row(2).to_crs(4326))


def test_touching_buildings_and_single_building():
    # terraced houses sharing walls, and a lone building
    b = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], crs=32651
    )
    g = building_graph(b)
    assert g.has_edge(0, 1)
    one = building_graph(b.iloc[:1])
    assert one.number_of_nodes() == 1 and one.number_of_edges() == 0


def test_dissolve_gives_one_polygon_per_label():
    b = _row(6)
    cells = tessellate(b)
    polys = dissolve_cells(cells.to_numpy(), np.array([0, 0, 0, 1, 1, 1]))
    assert set(polys) == {0, 1}
    assert all(p.geom_type == "Polygon" for p in polys.values())
    assert polys[0].intersection(polys[1]).area < 1e-2


def test_synthetic_city_graph_connected_within_blocks(city_small):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepairWarning)
        g = building_graph(city_small.buildings, streets=city_small.streets)
    assert g.number_of_nodes() == len(city_small.buildings)
    assert g.number_of_edges() > len(city_small.buildings)
    assert any(d["barrier"] for *_, d in g.edges(data=True))


def test_doctests_of_adjacency():
    import doctest

    import gridopt.adjacency as mod

    assert doctest.testmod(mod).failed == 0
