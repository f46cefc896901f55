"""Tests of gridopt.partition_grids: the contract, the rules, bad input."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from gridopt import GridoptError, InputError
from gridopt.adjacency import building_graph
from gridopt.partition import Partition, partition_grids


def _grid_city(
    nx_: int, ny: int, hh: int | list[int] = 25, spacing: float = 30.0
) -> gpd.GeoDataFrame:
    """A lattice of 15 m square buildings, ``spacing`` apart."""
    boxes = [
        shapely.box(i * spacing, j * spacing, i * spacing + 15, j * spacing + 15)
        for j in range(ny)
        for i in range(nx_)
    ]
    n = len(boxes)
    h = [hh] * n if isinstance(hh, int) else hh
    return gpd.GeoDataFrame(
        {"households": h}, geometry=boxes, crs=32651, index=pd.RangeIndex(100, 100 + n)
    )


def _check_contract(
    part: Partition, buildings: gpd.GeoDataFrame, lo: int = 200, hi: int = 300
) -> None:
    labels = part.labels
    assert labels.index.equals(buildings.index)
    assert labels.notna().all()
    g = part.grids
    assert set(g["grid_id"]) == set(labels)
    assert g["grid_id"].is_unique
    for col in (
        "grid_id",
        "community",
        "households",
        "n_buildings",
        "kind",
        "reason",
        "barrier_crossings",
        "compactness",
    ):
        assert col in g.columns
    assert (g.geom_type == "Polygon").all()
    assert set(g["kind"]) <= {"regular", "exclusive", "oversized", "undersized"}
    assert (g.loc[g["kind"] != "regular", "reason"].str.len() > 0).all()
    reg = g[g["kind"] == "regular"]
    assert reg["households"].between(lo, hi).all()
    # households and buildings add up: nothing dropped
    hh = buildings["households"].groupby(labels).sum()
    assert (hh.reindex(g["grid_id"]).to_numpy() == g["households"].to_numpy()).all()
    assert g["n_buildings"].sum() == len(buildings)
    # polygons do not overlap (beyond slivers)
    polys = g.geometry.to_numpy()
    tree = shapely.STRtree(polys)
    i, j = tree.query(polys, predicate="intersects")
    m = i < j
    overlap = shapely.area(shapely.intersection(polys[i[m]], polys[j[m]]))
    assert overlap.sum() < 1.0 + 1e-6 * shapely.area(polys).sum()


def _connected(part: Partition, graph: nx.Graph) -> bool:
    for _, members in part.labels.groupby(part.labels):
        if len(members) > 1 and not nx.is_connected(graph.subgraph(members.index)):
            return False
    return True


def test_lattice_all_regular_and_connected():
    b = _grid_city(10, 10)  # 100 buildings x 25 = 2,500 households
    part = partition_grids(b, seed=1)
    _check_contract(part, b)
    assert (part.grids["kind"] == "regular").all()
    assert part.share_in_band == 1.0
    assert _connected(part, building_graph(b))
    assert part.status in ("feasible", "time_limit")
    assert part.runtime_s < 30
    assert "grids" in part.summary()


def test_same_seed_same_result_and_input_untouched():
    b = _grid_city(8, 8)
    before = b.copy()
    a1 = partition_grids(b, seed=3)
    a2 = partition_grids(b, seed=3)
    assert a1.labels.equals(a2.labels)
    pd.testing.assert_frame_equal(b, before)


def test_synthetic_city_contract(city_small):
    b = city_small.buildings
    part = partition_grids(
        b, streets=city_small.streets, communities="community", exclusive=True, seed=0
    )
    _check_contract(part, b)
    # grids nest in communities
    comm = b["community"].groupby(part.labels).nunique()
    assert (comm == 1).all()
    assert (part.grids["kind"] == "exclusive").any()
    assert part.share_in_band == 1.0


def test_oversized_building_is_its_own_grid_with_workers():
    h = [25] * 24 + [2000]
    b = _grid_city(5, 5, hh=h)
    part = partition_grids(b, households_per_worker=200)
    big = part.grids[part.grids["kind"] == "oversized"]
    assert len(big) == 1 and big["households"].iloc[0] == 2000
    assert "10 grid workers" in big["reason"].iloc[0]
    assert part.labels.loc[b.index[-1]] == big["grid_id"].iloc[0]
    _check_contract(part, b)


def test_total_below_minimum_gives_one_undersized_grid():
    b = _grid_city(3, 2, hh=10)
    part = partition_grids(b)
    assert len(part.grids) == 1
    row = part.grids.iloc[0]
    assert row["kind"] == "undersized" and "60 households" in row["reason"]


def test_zero_household_buildings_are_attached():
    h = [25] * 20
    h[3] = h[7] = 0
    b = _grid_city(5, 4, hh=h)
    part = partition_grids(b)
    _check_contract(part, b)
    assert (part.grids["kind"] == "regular").all()


def test_disconnected_islands():
    a = _grid_city(4, 4)  # 400 households
    far = _grid_city(2, 2, hh=20)
    far = far.set_geometry(far.translate(5000, 0))  # 80 households, 5 km away
    far.index = far.index + 1000
    b = pd.concat([a, far])
    part = partition_grids(b)
    _check_contract(part, b)
    island = part.labels.loc[far.index].unique()
    assert len(island) == 1
    row = part.grids.set_index("grid_id").loc[island[0]]
    assert row["kind"] == "undersized"


def test_barrier_crossed_only_when_needed():
    b = _grid_city(8, 4)  # 32 x 25 = 800 households
    river = gpd.GeoDataFrame(
        {"barrier_kind": ["river"]},
        geometry=[shapely.LineString([(112, -100), (112, 300)])],
        crs=32651,
    )
    part = partition_grids(b, streets=river)
    _check_contract(part, b)
    # 4 columns on each side: 400 households each, enough for 2 grids: no crossing
    assert part.barrier_crossings == 0
    # a river cutting off one column of 100 households: that side must cross
    river2 = river.set_geometry([shapely.LineString([(22, -100), (22, 300)])], crs=32651)
    part2 = partition_grids(b, streets=river2)
    _check_contract(part2, b)
    assert part2.barrier_crossings == 1
    assert part2.grids["reason"].str.contains("barrier").any()


def test_communities_as_polygons():
    b = _grid_city(8, 4)
    comm = gpd.GeoDataFrame(
        {"community": ["west", "east"]},
        geometry=[shapely.box(-10, -10, 112, 200), shapely.box(112, -10, 300, 200)],
        crs=32651,
    )
    part = partition_grids(b, communities=comm)
    assert set(part.grids["community"]) == {"west", "east"}
    xs = b.geometry.centroid.x
    for _gid, members in part.labels.groupby(part.labels):
        assert (xs.loc[members.index] < 112).nunique() == 1


def test_exclusive_mask():
    b = _grid_city(6, 6)
    mask = pd.Series(False, index=b.index)
    mask.iloc[[0, 1]] = True
    part = partition_grids(b, exclusive=mask)
    ex = part.grids[part.grids["kind"] == "exclusive"]
    assert len(ex) == 1 and ex["n_buildings"].iloc[0] == 2


def test_previous_keeps_old_grids_and_counts_moves():
    b = _grid_city(8, 8)
    first = partition_grids(b, seed=0)
    same = partition_grids(b, previous=first.labels, seed=5)
    assert same.households_moved is not None
    assert set(same.labels) & set(first.labels)
    # a new building next to the city: old grid ids stay, few households move
    extra = _grid_city(1, 1, hh=25)
    extra = extra.set_geometry(extra.translate(240, 0))
    extra.index = pd.Index([9999])
    b2 = pd.concat([b, extra])
    prev = first.labels.reindex(b2.index)
    again = partition_grids(b2, previous=prev, seed=0)
    _check_contract(again, b2)
    assert again.households_moved is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_households": 300, "max_households": 200}, "greater than"),
        ({"min_households": 0}, "> 0"),
        ({"households": "nope"}, "no column"),
        ({"time_limit_s": -1}, "time_limit_s"),
        ({"method": "magic"}, "method"),
        ({"communities": "nope"}, "not a column"),
        ({"exclusive": True}, "exclusive_candidate"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        partition_grids(_grid_city(3, 3), **kwargs)


def test_bad_households():
    b = _grid_city(3, 3)
    with pytest.raises(InputError, match="0 households"):
        partition_grids(b.assign(households=0))
    with pytest.raises(InputError, match="negative"):
        partition_grids(b.assign(households=-1))
    with pytest.raises(InputError, match="non-integer"):
        partition_grids(b.assign(households=1.5))
    with pytest.raises(GridoptError, match="degrees"):
        partition_grids(b.to_crs(4326))


def test_time_limit_honoured():
    b = _grid_city(20, 20)
    part = partition_grids(b, time_limit_s=0.5)
    assert part.runtime_s < 0.5 + 5.0  # tessellation and assembly come on top of the solve
    _check_contract(part, b)


def test_doctests_of_partition():
    import doctest

    import gridopt.partition._divide as mod

    assert doctest.testmod(mod).failed == 0


def test_cluster_within_link_distance_joins_a_grid():
    a = _grid_city(4, 4)  # 400 households
    near = _grid_city(2, 2, hh=20)
    near = near.set_geometry(near.translate(250, 0))  # 80 households, ~150 m of empty land
    near.index = near.index + 1000
    b = pd.concat([a, near])
    # within max_link_m (300 m) the cluster belongs to the settlement: no link needed
    part = partition_grids(b)
    _check_contract(part, b)
    assert (part.grids["kind"] == "regular").all()
    assert part.grids["gap_links"].sum() == 0
    # a separate settlement (max_link_m 100 m) too small for a grid joins across open land
    linked = partition_grids(b, max_link_m=100.0)
    _check_contract(linked, b)
    assert (linked.grids["kind"] == "regular").all()
    links = linked.details["gap_links"]
    assert len(links) >= 1 and (links["gap_m"] > 100).all() and (links["gap_m"] <= 400).all()
    rows = linked.grids.set_index("grid_id").loc[links["grid_id"].unique()]
    assert (rows["gap_links"] >= 1).all()
    assert rows["reason"].str.contains("open land").all()
    # beyond four times max_link_m the cluster stays on its own, and its reason gives the numbers
    alone = partition_grids(b, max_link_m=30.0)
    row = alone.grids.set_index("grid_id").loc[alone.labels.loc[near.index[0]]]
    assert row["kind"] == "undersized"
    assert "4 buildings, 80 households" in row["reason"]


def test_pocket_rebalanced_with_a_neighbour():
    # a row of 100 + 100 + 100 + 150 + 150 households: bisection can leave a pocket of 100,
    # a merge-and-resplit with its neighbour gives 200 + 200 + 300 or similar
    h = [100, 100, 100, 150, 150, 100, 100]
    b = _grid_city(7, 1, hh=h)
    part = partition_grids(b, seed=2)
    _check_contract(part, b)
    assert (part.grids["kind"] == "regular").all()


def test_previous_warm_start_moves_few_households():
    from gridopt.synthetic import synthetic_city

    city = synthetic_city(2000, seed=3)
    b = city.buildings
    opts = {"streets": city.streets, "communities": "community", "seed": 0}
    first = partition_grids(b, max_starts=1, **opts)
    # three new buildings (half-size copies of residential ones, inside their plots)
    rng = np.random.default_rng(1)
    pick = rng.choice(np.flatnonzero(b["households"].to_numpy() > 0), 3, replace=False)
    new = b.iloc[pick].copy()
    new = new.set_geometry(new.geometry.scale(0.5, 0.5))
    new.index = pd.Index([f"new{k}" for k in range(3)])
    b2 = pd.concat([b, new])
    again = partition_grids(b2, previous=first.labels.reindex(b2.index), **opts)
    _check_contract(again, b2)
    assert again.households_moved < 0.05 * b2["households"].sum()
    # unchanged grids keep their ids and buildings
    kept = (again.labels.loc[b.index] == first.labels).mean()
    assert kept > 0.95
    # demolitions: few households move, the plan stays valid
    b3 = b.drop(b.index[rng.choice(len(b), 5, replace=False)])
    again3 = partition_grids(b3, previous=first.labels.reindex(b3.index), **opts)
    _check_contract(again3, b3)
    assert again3.households_moved < 0.05 * b3["households"].sum()
