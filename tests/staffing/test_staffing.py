"""Tests of gridopt.assign_staff: invariants, shortfall, bad input, determinism."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

import gridopt
from gridopt import InputError
from gridopt.staffing import StaffingRules, assign_staff, synthetic_staff


@pytest.fixture(scope="module")
def grids():
    rng = np.random.default_rng(3)
    polys = [
        box(c * 150, r * 150, (c + 1) * 150, (r + 1) * 150) for r in range(4) for c in range(5)
    ]
    return gpd.GeoDataFrame(
        {
            "grid_id": [f"g{i}" for i in range(20)],
            "households": rng.integers(150, 320, 20),
            "community": [f"c{i // 10}" for i in range(20)],
        },
        geometry=polys,
        crs=32651,
    )


@pytest.fixture(scope="module")
def staff(grids):
    return synthetic_staff(grids, seed=1)


@pytest.fixture(scope="module")
def plan(grids, staff):
    return assign_staff(grids, staff, time_limit_s=20)


def test_every_person_once(plan, staff):
    a = plan.assignments
    assert len(a) == len(staff)
    assert a["staff_id"].is_unique
    assert set(a["staff_id"]) == set(staff["staff_id"])
    # nobody silently unposted: no post means a reason
    assert a.loc[a["post"].isna(), "reason"].notna().all()
    assert a.loc[a["post"].notna(), "reason"].isna().all()


def test_each_grid_has_worker_or_shortfall(plan, grids):
    a = plan.assignments
    staffed = set(a.loc[(a["role"] == "grid_worker") & a["grid_id"].notna(), "grid_id"])
    short = set(plan.shortfall.loc[(plan.shortfall["role"] == "grid_worker"), "unit"])
    for gid in grids["grid_id"]:
        assert gid in staffed or gid in short


def test_capacities_and_officer_ceiling(plan, grids, staff):
    a = plan.assignments.merge(staff[["staff_id", "full_time"]], on="staff_id")
    w = a[(a["role"] == "grid_worker") & a["grid_id"].notna()]
    cap = np.where(w["full_time"], 200, 100)
    assert (w["households"].to_numpy() <= cap).all()
    o = a[(a["role"] == "info_officer") & a["grid_id"].notna()].groupby("grid_id").size()
    hh = grids.set_index("grid_id")["households"]
    assert (o <= np.maximum(np.ceil(hh[o.index] / 100), np.floor(hh[o.index] / 50))).all()


def test_unavailable_and_unqualified_not_posted(plan, staff):
    a = plan.assignments.set_index("staff_id")
    for sid in staff.loc[staff["unavailable"], "staff_id"]:
        assert pd.isna(a.at[sid, "post"]) and a.at[sid, "reason"] == "unavailable"
    med = staff[(staff["role"] == "mediator") & ~staff["unavailable"]]
    for _, row in med.iterrows():
        if "mediator_certificate" not in row["qualifications"]:
            assert pd.isna(a.at[row["staff_id"], "post"])


def test_party_members_join_home_grid(plan, staff, grids):
    a = plan.assignments
    pm = a[(a["role"] == "party_member") & a["post"].notna()]
    joined = gpd.sjoin(
        pm[["staff_id", "geometry"]], grids[["grid_id", "geometry"]], predicate="within"
    )
    merged = joined.merge(pm[["staff_id", "grid_id"]], on="staff_id", suffixes=("_home", "_post"))
    assert (merged["grid_id_home"] == merged["grid_id_post"]).all()


def test_summary_and_metrics(plan):
    text = plan.summary()
    assert "Staff plan" in text
    assert plan.status in ("optimal", "feasible")
    assert plan.bound <= plan.objective + 1e-6
    for key in ("households_per_worker_mean", "travel_m_max", "people_moved"):
        assert key in plan.metrics


def test_too_few_staff_gives_shortfall(grids, staff):
    few = staff[staff["role"] != "grid_worker"].head(5)
    p = assign_staff(grids, few, time_limit_s=10)
    missing = p.shortfall[p.shortfall["role"] == "grid_worker"]
    assert len(missing) == len(grids)
    assert p.metrics["grids_without_worker"] == len(grids)


def test_no_staff_at_all(grids):
    empty = pd.DataFrame({"staff_id": [], "role": [], "x": [], "y": []})
    p = assign_staff(grids, empty, time_limit_s=5)
    assert len(p.assignments) == 0
    assert set(p.shortfall["role"]) == {"grid_worker", "info_officer", "mediator"}


def test_csv_path_and_dataframe(tmp_path, grids, staff):
    path = tmp_path / "staff.csv"
    pd.DataFrame(staff.drop(columns="geometry")).to_csv(path, index=False)
    p = assign_staff(grids, path, time_limit_s=10)
    assert len(p.assignments) == len(staff)


def test_deterministic(grids, staff, plan):
    again = assign_staff(grids, staff, time_limit_s=20)
    pd.testing.assert_frame_equal(
        pd.DataFrame(again.assignments.drop(columns="geometry")),
        pd.DataFrame(plan.assignments.drop(columns="geometry")),
    )


def test_plain_mip_reference_agrees_with_the_flows(grids, staff, plan):
    """The benchmark's peer solves the same model: the same optimum, proven."""
    ref = assign_staff(grids, staff, time_limit_s=60, method="mip")
    assert ref.status == "optimal" and plan.status == "optimal"
    assert ref.objective == pytest.approx(plan.objective)
    assert ref.bound <= ref.objective + 1e-6
    with pytest.raises(InputError, match="method"):
        assign_staff(grids, staff, method="cp-sat")


def test_worker_mip_has_a_node_budget_from_the_size():
    from gridopt.staffing._model import MIP_MIN_NODES, mip_node_limit

    assert mip_node_limit(10) == MIP_MIN_NODES
    assert mip_node_limit(600) > mip_node_limit(300) >= MIP_MIN_NODES


def test_current_post_kept_when_reasonable(grids):
    s = pd.DataFrame(
        {
            "staff_id": ["a", "b"],
            "role": ["grid_worker", "grid_worker"],
            "x": [75.0, 80.0],
            "y": [75.0, 80.0],
            "current_post": ["g1", None],
        }
    )
    p = assign_staff(grids.head(2), s, time_limit_s=5)
    a = p.assignments.set_index("staff_id")
    assert a.at["a", "post"] == "g1"
    assert pd.isna(a.at["a", "moved_from"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s.assign(role="wizard"), "unknown roles"),
        (lambda s: pd.concat([s, s.head(1)]), "repeats staff_id"),
        (
            lambda s: s.assign(x=np.nan, y=np.nan, geometry=None).drop(columns="geometry"),
            "no home location",
        ),
    ],
)
def test_bad_staff(grids, staff, change, match):
    bad = change(pd.DataFrame(staff))
    with pytest.raises(InputError, match=match):
        assign_staff(grids, bad, time_limit_s=5)


def test_bad_grids_and_rules(grids, staff):
    with pytest.raises(InputError, match="households"):
        assign_staff(grids.assign(households=-1), staff, time_limit_s=5)
    with pytest.raises(InputError, match="households"):
        assign_staff(grids.drop(columns="households"), staff, time_limit_s=5)
    with pytest.raises(InputError, match="above"):
        StaffingRules(min_households_per_officer=150, max_households_per_officer=100)
    with pytest.raises(InputError, match="positive"):
        StaffingRules(households_per_worker=0)


def test_public_names():
    assert gridopt.assign_staff is assign_staff
    assert gridopt.StaffingRules is StaffingRules


def test_cli_staff(tmp_path, grids, staff, capsys):
    import pyogrio

    from gridopt.cli import main

    gpath = tmp_path / "grids.gpkg"
    grids.to_file(gpath, layer="grids")
    spath = tmp_path / "staff.csv"
    pd.DataFrame(staff.drop(columns="geometry")).to_csv(spath, index=False)
    out = tmp_path / "out.gpkg"
    assert main(["staff", str(gpath), str(spath), "-o", str(out), "--time-limit-s", "10"]) == 0
    assert "Staff plan" in capsys.readouterr().out
    names = [n for n, _ in pyogrio.list_layers(out)]
    assert {"staff", "shortfall"} <= set(names)
    assert len(gpd.read_file(out, layer="staff")) == len(staff)


def _river_town():
    """Two grids; a home 40 m from the first, 60 m from the second, but the only walk
    to the first is a 1.5 km detour (no bridge), while a street leads straight to the second."""
    from shapely.geometry import LineString, Point

    grids = gpd.GeoDataFrame(
        {"grid_id": ["west", "east"], "households": [200, 200], "community": ["c", "c"]},
        geometry=[box(0, 0, 200, 200), box(300, 0, 500, 200)],
        crs=32651,
    )
    staff = gpd.GeoDataFrame(
        {"staff_id": ["w1"], "role": ["grid_worker"], "full_time": [True]},
        geometry=[Point(240, 100)],
        crs=32651,
    )
    streets = gpd.GeoDataFrame(
        geometry=[
            LineString([(240, 100), (400, 100)]),
            LineString([(240, 100), (240, 800), (100, 800), (100, 100)]),
        ],
        crs=32651,
    )
    return grids, staff, streets


def test_streets_make_travel_a_walk():
    grids, staff, streets = _river_town()
    straight = assign_staff(grids, staff, time_limit_s=10)
    walked = assign_staff(grids, staff, streets=streets, time_limit_s=10)
    post = lambda p: p.assignments.set_index("staff_id").at["w1", "grid_id"]  # noqa: E731
    assert post(straight) == "west"  # 40 m as the crow flies
    assert post(walked) == "east"  # the walk west is 1.5 km
    travel = walked.assignments.set_index("staff_id").at["w1", "travel_m"]
    assert 150 <= travel <= 200  # 160 m along the street to the grid's centre (400, 100)
    assert walked.metrics["travel_method"] == "network"
    assert straight.metrics["travel_method"] == "straight_line"
    # both plans still report the grid left without a worker
    assert (walked.shortfall["role"] == "grid_worker").any()
