"""Tests of gridopt.place_stations on hand-checked toy towns and the sample town."""

from __future__ import annotations

import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

import gridopt
from gridopt import StationPlan, place_stations

CRS = 32651


def line_town(households: int = 10) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A 2 km street along y=0; ten buildings 20 m north of it at x = 100, 300, ..., 1900;
    candidate sites on the street at x = 500, 1000, 1500 (large floor areas)."""
    xs = np.arange(100, 2000, 200)
    buildings = gpd.GeoDataFrame(
        {"households": [households] * len(xs)},
        geometry=[box(x - 5, 15, x + 5, 25) for x in xs],
        index=pd.Index([f"b{x}" for x in xs], name="building_id"),
        crs=CRS,
    )
    streets = gpd.GeoDataFrame(
        {"highway": ["residential"]}, geometry=[LineString([(0, 0), (2000, 0)])], crs=CRS
    )
    candidates = gpd.GeoDataFrame(
        {"floor_area_m2": [1000.0, 1000.0, 1000.0]},
        geometry=[Point(500, 0), Point(1000, 0), Point(1500, 0)],
        index=["s500", "s1000", "s1500"],
        crs=CRS,
    )
    return buildings, streets, candidates


def open_sites(plan: StationPlan) -> list[str]:
    return sorted(plan.stations["site"])


# --- hand-checked optima ------------------------------------------------------------


def test_two_medians_hand_checked():
    b, s, c = line_town()
    plan = place_stations(b, candidates=c, streets=s, n_stations=2, time_limit_s=10)
    assert open_sites(plan) == ["s1500", "s500"]
    # each station: |dx| = 400, 200, 0, 200, 400 plus 20 m access, 10 households each
    assert plan.objective == pytest.approx(10 * 2 * (1200 + 5 * 20))
    assert plan.status == "optimal"
    assert plan.bound == pytest.approx(plan.objective)
    assert plan.metrics["max_walk_m"] == pytest.approx(420)
    assert plan.metrics["mean_walk_m"] == pytest.approx(260)
    assert (plan.allocation["distance_method"] == "network").all()
    assert plan.allocation.loc["b100", "station"] == "s500"
    assert plan.allocation.loc["b1900", "walk_m"] == pytest.approx(420)
    st = plan.stations.set_index("site")
    assert st.loc["s500", "households_served"] == 50
    assert st.loc["s500", "max_walk_m"] == pytest.approx(420)


def test_automatic_count_is_the_fewest_covering_everyone():
    b, s, c = line_town()
    plan = place_stations(b, candidates=c, streets=s, max_walk_m=600, time_limit_s=10)
    assert open_sites(plan) == ["s1500", "s500"]
    assert plan.metrics["households_beyond_max_walk"] == 0
    assert len(plan.uncovered) == 0


def test_cover_objective():
    b, s, c = line_town()
    plan = place_stations(b, candidates=c, streets=s, objective="cover", max_walk_m=600)
    assert plan.objective == 2 and plan.bound == 2
    assert plan.status == "optimal"
    assert plan.metrics["households_beyond_max_walk"] == 0


def test_max_cover_objective():
    b, s, c = line_town()
    plan = place_stations(
        b, candidates=c, streets=s, objective="max_cover", n_stations=1, max_walk_m=600
    )
    # s1000 reaches x = 500..1500 (|dx| + 20 <= 600): six buildings
    assert open_sites(plan) == ["s1000"]
    assert plan.objective == 60
    assert plan.metrics["households_beyond_max_walk"] == 40
    assert len(plan.uncovered) == 4
    assert plan.uncovered["reason"].str.startswith("beyond").all()


def test_existing_station_stays_open():
    b, s, c = line_town()
    existing = gpd.GeoDataFrame({"floor_area_m2": [60.0]}, geometry=[Point(1900, 0)], crs=CRS)
    plan = place_stations(
        b, candidates=c, streets=s, existing=existing, n_stations=2, time_limit_s=10
    )
    st = plan.stations.set_index("site")
    assert "existing-0" in st.index
    assert bool(st.loc["existing-0", "existing"])
    assert plan.metrics["n_existing"] == 1


def test_capacity_is_respected():
    b, s, c = line_town()
    c = c.copy()
    c.loc["s500", "floor_area_m2"] = 9.0  # 30 households
    plan = place_stations(b, candidates=c, streets=s, n_stations=2, time_limit_s=10)
    st = plan.stations
    assert (st["households_served"] <= st["capacity_households"]).all()
    assert plan.allocation["households"].sum() == b["households"].sum()
    assert plan.shortfall["households_unserved"] == 0


# --- bad input and reports ----------------------------------------------------------


def test_capacity_shortfall_is_reported_not_raised():
    b, s, c = line_town()
    c = c.assign(floor_area_m2=9.0)  # 3 x 30 = 90 households of room for 100
    grown = place_stations(b, candidates=c, streets=s, time_limit_s=10)
    assert grown.metrics["n_new_sites"] >= 1 and grown.metrics["households_unserved"] == 0
    assert grown.shortfall["shortfall_households"] == 10  # the candidates' shortfall
    plan = place_stations(b, candidates=c, streets=s, time_limit_s=10, propose_new_sites=False)
    assert plan.shortfall["demand_households"] == 100
    assert plan.shortfall["shortfall_households"] == 10
    assert plan.shortfall["shortfall_m2"] == pytest.approx(3.0)
    assert plan.shortfall["households_unserved"] == 10
    alloc = plan.allocation
    assert alloc["households"].sum() == 100  # nobody dropped
    unserved = alloc[alloc["distance_method"] == "unserved"]
    assert unserved["households"].sum() == 10
    assert unserved["station"].isna().all()
    assert set(unserved.index) <= set(plan.uncovered.index)
    assert "shortfall" in plan.summary()


def test_walk_limit_nobody_meets():
    b, s, c = line_town()
    plan = place_stations(b, candidates=c, streets=s, max_walk_m=10, time_limit_s=10)
    assert plan.metrics["households_beyond_max_walk"] == 100
    assert len(plan.uncovered) == 10
    assert plan.allocation["station"].notna().all()  # still assigned to the nearest
    assert plan.uncovered.geometry.notna().all()


def test_no_candidates_is_an_input_error():
    b, s, _ = line_town()
    with pytest.raises(gridopt.InputError, match="candidates="):
        place_stations(b, streets=s)
    flagged = b.assign(station_candidate=False)
    with pytest.raises(gridopt.InputError, match="no candidate sites"):
        place_stations(flagged, streets=s)


def test_candidates_without_floor_area_get_the_standard_room():
    b, s, c = line_town()
    plan = place_stations(b, candidates=c.drop(columns="floor_area_m2"), streets=s,
                          station_floor_area_m2=60.0, time_limit_s=10)
    # 60 m2 at 30 m2 per 100 households: 200 households per room.
    assert set(plan.stations["capacity_households"]) == {200}
    some = c.assign(floor_area_m2=[1.0, np.nan, 3.0])
    plan = place_stations(b, candidates=some, streets=s, time_limit_s=10)
    sizes = dict(zip(plan.stations["site"], plan.stations["floor_area_m2"], strict=True))
    assert sizes.get("s1000", 300.0) == 300.0
    bad = c.assign(floor_area_m2=[1.0, -5.0, 3.0])
    with pytest.raises(gridopt.InputError, match="s1000"):
        place_stations(b, candidates=bad, streets=s)


def test_bad_households_and_parameters():
    b, s, c = line_town()
    with pytest.raises(gridopt.InputError, match="households"):
        place_stations(b.drop(columns="households"), candidates=c, streets=s)
    with pytest.raises(gridopt.InputError, match="b300"):
        place_stations(b.assign(households=[1, -2] + [1] * 8), candidates=c, streets=s)
    with pytest.raises(gridopt.InputError, match="objective"):
        place_stations(b, candidates=c, streets=s, objective="fastest")
    with pytest.raises(gridopt.InputError, match="n_stations"):
        place_stations(b, candidates=c, streets=s, objective="max_cover")
    with pytest.raises(gridopt.InputError, match="only 3 candidate"):
        place_stations(b, candidates=c, streets=s, n_stations=4)
    with pytest.raises(gridopt.InputError, match="max_walk_m"):
        place_stations(b, candidates=c, streets=s, max_walk_m=0)


def test_streets_in_another_crs_are_reprojected_with_warning():
    b, s, c = line_town()
    with pytest.warns(gridopt.RepairWarning, match="reprojected"):
        plan = place_stations(b, candidates=c, streets=s.to_crs(4326), n_stations=2)
    assert open_sites(plan) == ["s1500", "s500"]


def test_no_streets_uses_straight_line_and_says_so():
    b, _, c = line_town()
    plan = place_stations(b, candidates=c, n_stations=2, detour_factor=1.3)
    assert plan.metrics["distance_method"] == "straight_line"
    assert (plan.allocation["distance_method"] == "straight_line").all()
    # b100 -> s500: straight 400.5 m x 1.3 (building point at y = 20)
    assert plan.allocation.loc["b100", "walk_m"] == pytest.approx(np.hypot(400, 20) * 1.3)


def test_building_off_the_network_uses_fallback():
    b, s, c = line_town()
    far = gpd.GeoDataFrame(
        {"households": [5]}, geometry=[box(995, 395, 1005, 405)], index=["far"], crs=CRS
    )
    b2 = pd.concat([b, far])
    plan = place_stations(b2, candidates=c, streets=s, n_stations=2, max_snap_m=250)
    assert plan.allocation.loc["far", "distance_method"] == "straight_line"
    assert plan.metrics["buildings_off_network"] == 1
    assert plan.allocation["households"].sum() == 105


def test_zero_household_buildings_kept():
    b, s, c = line_town()
    b = b.copy()
    b.loc["b700", "households"] = 0
    plan = place_stations(b, candidates=c, streets=s, n_stations=2)
    assert len(plan.allocation) == len(b)
    assert plan.allocation.loc["b700", "distance_method"] == "no_households"
    assert plan.allocation["households"].sum() == 90


def test_prebuilt_graph_accepted():
    b, s, c = line_town()
    g = gridopt.walk_network(s, crs=b.crs)
    assert isinstance(g, nx.Graph)
    plan = place_stations(b, candidates=c, streets=g, n_stations=2)
    assert open_sites(plan) == ["s1500", "s500"]


# --- the sample town ----------------------------------------------------------------


@pytest.fixture(scope="module")
def town_plan(small_town):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gridopt.RepairWarning)
        return place_stations(
            small_town, streets=gridopt.datasets.small_town(), time_limit_s=6, seed=3
        )


def test_small_town_plan(small_town, town_plan):
    """The sample OSM town: 2,193 buildings, 27 candidate buildings, real streets."""
    plan = town_plan
    assert plan.allocation.index.equals(small_town.index)
    assert plan.allocation["households"].sum() == small_town["households"].sum()
    st = plan.stations
    assert len(st) >= 1
    assert (st["households_served"] <= st["capacity_households"]).all()
    assert st["households_served"].sum() + plan.shortfall["households_unserved"] == (
        small_town["households"].sum()
    )
    m = plan.metrics
    assert 0 <= m["share_within_5min"] <= m["share_within_10min"] <= m["share_within_15min"] <= 1
    assert m["mean_walk_m"] <= m["p90_walk_m"] <= m["max_walk_m"]
    assert plan.bound <= plan.objective + 1e-6
    assert (
        plan.allocation["distance_method"]
        .isin(["network", "straight_line", "unserved", "no_households"])
        .all()
    )
    text = plan.summary()
    assert "mean walk" in text and "75 m/min" in text


def test_same_seed_same_answer():
    b, s, c = line_town()
    c = c.copy()
    c.loc["s500", "floor_area_m2"] = 9.0  # capacities bind: the CP-SAT path runs
    runs = [
        place_stations(b, candidates=c, streets=s, n_stations=2, seed=5, time_limit_s=10)
        for _ in range(2)
    ]
    assert runs[0].allocation.equals(runs[1].allocation)
    assert runs[0].objective == runs[1].objective


# --- CLI ----------------------------------------------------------------------------


def test_cli_stations(tmp_path, capsys):
    from gridopt.cli import main

    b, s, c = line_town()
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    c.to_file(tmp_path / "c.gpkg")
    out = tmp_path / "out.gpkg"
    rc = main(
        [
            "stations",
            str(tmp_path / "b.gpkg"),
            "--streets",
            str(tmp_path / "s.gpkg"),
            "--candidates",
            str(tmp_path / "c.gpkg"),
            "--n-stations",
            "2",
            "--households",
            "households",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    assert "stations (median): 2 open" in capsys.readouterr().out
    alloc = gpd.read_file(out, layer="allocation")
    assert alloc["households"].sum() == 100
    assert len(gpd.read_file(out, layer="stations")) == 2


def test_cli_stations_no_candidates_is_one_line_error(tmp_path, capsys):
    from gridopt.cli import main

    b, _, _ = line_town()
    b.to_file(tmp_path / "b.gpkg")
    rc = main(["stations", str(tmp_path / "b.gpkg"), "-o", str(tmp_path / "o.gpkg")])
    assert rc == 2
    assert "candidates=" in capsys.readouterr().err


def test_docstring_examples():
    import doctest

    import gridopt.stations._place as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


# --- large-city path: location-allocation ---------------------------------------------


def test_location_allocation_path(monkeypatch):
    """Above _MAX_EXACT_PAIRS the capacitated p-median is skipped: uncapacitated
    p-median + min-cost-flow assignment + more sites where households are stuck."""
    import gridopt.stations._place as place

    monkeypatch.setattr(place, "_MAX_EXACT_PAIRS", 0)
    monkeypatch.setattr(place, "_MAX_CAPACITATED_PAIRS", 0)
    b, s, c = line_town()
    c = c.copy()
    c.loc["s500", "floor_area_m2"] = 9.0  # 30 households: s500 cannot take its five buildings
    plan = place_stations(b, candidates=c, streets=s, max_walk_m=600, time_limit_s=10)
    st = plan.stations
    assert (st["households_served"] <= st["capacity_households"]).all()
    assert plan.allocation["households"].sum() == 100
    assert plan.shortfall["households_unserved"] == 0
    assert plan.bound <= plan.objective + 1e-6
    # s500 is full, so s1000 must open for the western buildings within 600 m
    assert "s1000" in set(st["site"])


def test_flow_assignment_small_exact():
    from scipy import sparse

    from gridopt.stations._place import _flow_assign

    # 3 buildings, 2 sites; site 0 is nearest to all but holds only 2 of them.
    cost = sparse.csr_array(np.array([[1.0, 5.0], [1.0, 2.0], [1.0, 9.0]]))
    local, optimal = _flow_assign(cost, np.array([10.0, 10.0, 10.0]), np.array([20.0, 100.0]))
    assert local.tolist() == [0, 1, 0]  # building 1 loses least by moving
    assert optimal
    # no room anywhere for the third: unserved (-1), nobody dropped silently
    local, _ = _flow_assign(cost, np.array([10.0, 10.0, 10.0]), np.array([10.0, 10.0]))
    assert sorted(local.tolist()) == [-1, 0, 1]


# --- invariants on random towns ------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    seed=st.integers(0, 10_000),
    n_buildings=st.integers(1, 25),
    n_sites=st.integers(1, 5),
    area=st.floats(3.0, 400.0),
    objective=st.sampled_from(["median", "cover", "max_cover"]),
    with_streets=st.booleans(),
)
def test_nobody_dropped_and_capacity_respected(
    seed, n_buildings, n_sites, area, objective, with_streets
):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1500, (n_buildings, 2))
    b = gpd.GeoDataFrame(
        {"households": rng.integers(0, 60, n_buildings)},
        geometry=[Point(x, y) for x, y in xy],
        crs=CRS,
    )
    c = gpd.GeoDataFrame(
        {"floor_area_m2": rng.uniform(0.5, 1.5, n_sites) * area},
        geometry=[Point(x, y) for x, y in rng.uniform(0, 1500, (n_sites, 2))],
        crs=CRS,
    )
    streets = None
    if with_streets:
        lines = [LineString([(0, y), (1500, y)]) for y in (0, 500, 1000, 1500)]
        lines += [LineString([(x, 0), (x, 1500)]) for x in (0, 750, 1500)]
        streets = gpd.GeoSeries(lines, crs=CRS)
    plan = place_stations(
        b,
        candidates=c,
        streets=streets,
        objective=objective,
        n_stations=1 if objective == "max_cover" else None,
        max_walk_m=800,
        time_limit_s=5,
        seed=seed,
    )
    alloc = plan.allocation
    assert alloc.index.equals(b.index)
    assert alloc["households"].sum() == b["households"].sum()
    served = alloc["station"].notna() & (alloc["households"] > 0)
    assert (
        alloc.loc[served, "households"].sum() + plan.shortfall["households_unserved"]
        == b["households"].sum()
    )
    stn = plan.stations
    assert (stn["households_served"] <= stn["capacity_households"]).all()
    assert set(alloc.loc[served, "station"]) <= set(stn["site"])
    beyond = plan.metrics["households_beyond_max_walk"]
    assert beyond == plan.uncovered["households"].sum()
    if objective != "max_cover":
        assert plan.bound <= plan.objective + 1e-6


# --- same seed, same plan, whatever the machine's load ------------------------------


def _burn(stop_at: float) -> None:  # pragma: no cover - runs in a child process
    import time

    x = 0
    while time.time() < stop_at:
        x = (x * 31 + 7) % 1_000_003


def test_same_plan_while_another_process_burns_both_cores(small_town):
    """The solvers' budgets are work, not wall seconds: a busy machine changes nothing."""
    import multiprocessing as mp
    import time

    def run() -> StationPlan:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gridopt.RepairWarning)
            return place_stations(
                small_town, streets=gridopt.datasets.small_town(), time_limit_s=60, seed=3
            )

    quiet = run()
    ctx = mp.get_context("spawn")
    burners = [ctx.Process(target=_burn, args=(time.time() + 600,)) for _ in range(2)]
    for proc in burners:
        proc.start()
    try:
        busy = run()
    finally:
        for proc in burners:
            proc.terminate()
            proc.join()
    assert quiet.status != "time_limit" and busy.status != "time_limit"
    assert sorted(quiet.stations["site"]) == sorted(busy.stations["site"])
    assert quiet.allocation["station"].equals(busy.allocation["station"])
    assert quiet.objective == busy.objective
# --- issue 17: where stations can go, rooms, new sites, one station per grid -------------


def test_station_candidates_exclude_police_schools_and_industry():
    from gridopt.stations import station_candidates

    b = pd.DataFrame(
        {
            "building_type": ["yes", "public", "school", "industrial", "office", "yes"],
            "category": ["emergency", "public", "school", "industrial", "office", "commercial"],
            "amenity": ["police", None, None, None, None, None],
            "station_candidate": [True, True, False, False, True, True],
        }
    )
    assert station_candidates(b).tolist() == [False, True, False, False, True, True]
    # A tag the user adds lifts its exclusion.
    extra = set(gridopt.stations.DEFAULT_STATION_TAGS) | {"school"}
    assert station_candidates(b, station_tags=extra).tolist()[2]


def test_room_not_building_sets_capacity():
    b, s, _ = line_town()
    # Two large public buildings as candidates: 50 x 50 m, 4 storeys of floor area each.
    hall = gpd.GeoDataFrame(
        {"households": [0, 0], "station_candidate": [True, True],
         "floor_area_m2": [10_000.0, 100.0]},
        geometry=[box(480, -60, 530, -10), box(1480, -60, 1530, -10)],
        index=pd.Index(["h1", "h2"], name="building_id"), crs=CRS,
    )
    town = pd.concat([b.assign(station_candidate=False), hall])
    plan = place_stations(town, streets=s, station_floor_area_m2=300.0, time_limit_s=10)
    caps = dict(zip(plan.stations["site"], plan.stations["floor_area_m2"], strict=True))
    # The 10,000 m2 hall holds a 300 m2 room; the 100 m2 one only itself.
    assert caps.get("h1", 300.0) == 300.0 and caps.get("h2", 100.0) == 100.0
    assert plan.stations["capacity_households"].max() <= 1000


def test_new_sites_cover_households_no_candidate_reaches():
    b, s, c = line_town()
    # One candidate at the west end: buildings east of x = 1000 are beyond 1 km.
    one = c.loc[["s500"]]
    plan = place_stations(b, candidates=one, streets=s, time_limit_s=10)
    m = plan.metrics
    assert m["share_within_limit_existing"] == pytest.approx(0.7)  # x = 100 .. 1300
    assert m["n_new_sites"] >= 1
    assert m["share_within_limit"] == 1.0
    new = plan.stations[plan.stations["new_site"]]
    assert len(new) == m["n_new_sites"]
    # A new site is a point on the street (y = 0) within reach of the east end.
    assert np.allclose(new.geometry.y, 0.0)
    assert "proposed new site" in plan.summary()
    off = place_stations(b, candidates=one, streets=s, time_limit_s=10, propose_new_sites=False)
    assert off.metrics["n_new_sites"] == 0
    assert off.metrics["share_within_limit"] == pytest.approx(0.7)


def test_one_station_per_grid_where_one_can_take_it():
    b, s, c = line_town()
    # Grid A = x 100..900, grid B = x 1100..1900; sites at 500 and 1500 each reach one grid.
    grids = pd.Series(["A"] * 5 + ["B"] * 5, index=b.index)
    free = place_stations(b, candidates=c, streets=s, n_stations=3, time_limit_s=10)
    plan = place_stations(b, candidates=c, streets=s, n_stations=3, time_limit_s=10,
                          grids=grids)
    per = plan.allocation.groupby(grids)["station"].nunique()
    assert per.max() == 1
    assert plan.metrics["grids_single_station"] == 2
    assert plan.metrics["grids_several_stations"] == 0
    # Without grids the three stations split the middle buildings.
    assert free.allocation.groupby(grids)["station"].nunique().max() >= 1
    assert plan.metrics["share_within_limit"] == 1.0


def test_grids_too_big_for_one_room_keep_the_building_assignment():
    b, s, c = line_town(households=100)  # 500 households per grid
    grids = pd.Series(["A"] * 5 + ["B"] * 5, index=b.index)
    small = c.assign(floor_area_m2=90.0)  # 300 households per room: no room takes a grid
    plan = place_stations(b, candidates=small, streets=s, time_limit_s=10, grids=grids,
                          propose_new_sites=False)
    assert plan.metrics["grids_several_stations"] == 2
    assert plan.allocation["households"].sum() == 1000


def test_vacant_parcels_are_sites_of_a_standard_room():
    b, s, _ = line_town()
    plot = gpd.GeoDataFrame(geometry=[box(1400, -80, 1600, -20)], crs=CRS)
    town = b.assign(station_candidate=False)
    plan = place_stations(town, streets=s, parcels=plot, propose_new_sites=False,
                          station_floor_area_m2=300.0, time_limit_s=10)
    assert plan.stations["site"].tolist() == ["parcel-0"]
    assert plan.stations["capacity_households"].tolist() == [1000]
