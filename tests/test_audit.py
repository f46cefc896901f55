"""gridopt.audit: existing grid polygons measured against the standards; plan(previous=)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from _plan_data import city, small_plan
from gridopt import InputError
from gridopt.audit import VIOLATIONS, audit, grid_labels
from gridopt.cli import main


@pytest.fixture(scope="module")
def plan():
    return small_plan()


def _flagged(a) -> dict[str, set[str]]:
    v = a.violations
    return {code: set(v.loc[v["violation"] == code, "grid_id"]) for code in VIOLATIONS}


def test_a_plans_own_grids_violate_nothing(plan):
    a = audit(plan.buildings, grids=plan.grids, streets=city().streets)
    assert a.violations.empty, a.summary()
    assert a.grids["valid"].all()
    assert len(a.unassigned) == 0
    assert (a.grids["households"].to_numpy() == plan.grids["households"].to_numpy()).all()
    assert (a.grids["workers_needed"] >= 1).sum() == (plan.grids["households"] > 0).sum()


def _neighbours_in_community(grids: gpd.GeoDataFrame, community: pd.Series) -> tuple[str, str]:
    regular = grids[grids["households"] > 0]
    for i, a in regular.iterrows():
        for j, b in regular.iterrows():
            if i < j and a.geometry.buffer(1).intersects(b.geometry) and (
                community[a["grid_id"]] == community[b["grid_id"]]
            ):
                return a["grid_id"], b["grid_id"]
    raise AssertionError("no two neighbouring grids")


def test_merged_split_and_cross_community_grids_are_exactly_what_is_reported(plan):
    b = plan.buildings.copy()
    g = plan.grids[["grid_id", "households", "geometry"]].copy()
    comm = b.groupby("grid_id")["community"].agg(lambda s: s.mode().iloc[0])
    m1, m2 = _neighbours_in_community(g, comm)
    # 1. merge two neighbouring grids into one polygon
    merged = shapely.union_all(g.loc[g["grid_id"].isin([m1, m2]), "geometry"].to_numpy())
    g = g[~g["grid_id"].isin([m1, m2])]
    g = pd.concat([g, gpd.GeoDataFrame({"grid_id": ["MERGED"]}, geometry=[merged], crs=b.crs)])
    # 2. split another grid in two halves through its buildings' median x
    rest = g[(g["households"] > 0) & ~g["grid_id"].isin(["MERGED"])]
    victim = rest.iloc[0]
    members = b[b["grid_id"] == victim["grid_id"]]
    xs = members.geometry.representative_point().x
    cut = float(np.median(xs))
    x0, y0, x1, y1 = victim.geometry.bounds
    halves = [victim.geometry.intersection(box(x0 - 1, y0 - 1, cut, y1 + 1)),
              victim.geometry.intersection(box(cut, y0 - 1, x1 + 1, y1 + 1))]
    g = g[g["grid_id"] != victim["grid_id"]]
    g = pd.concat([g, gpd.GeoDataFrame({"grid_id": ["HALF1", "HALF2"]}, geometry=halves,
                                       crs=b.crs)])
    # 3. one building of a third grid belongs to another community
    third = rest.iloc[1]["grid_id"]
    one = b.index[(b["grid_id"] == third) & (b["households"] > 0)][0]
    b.loc[one, "community"] = "ANOTHER"
    a = audit(b.drop(columns="grid_id"), grids=g.reset_index(drop=True))
    got = {k: v for k, v in _flagged(a).items() if v}
    assert got == {
        "over_band": {"MERGED"},
        "under_band": {"HALF1", "HALF2"},
        "crosses_community": {third},
    }, a.summary()


def test_contiguity_overlap_staff_and_gaps():
    homes = gpd.GeoDataFrame(
        {"households": [120, 120, 250, 60], "community": ["c"] * 4},
        geometry=[box(0, 0, 10, 10), box(100, 0, 110, 10), box(200, 0, 210, 10),
                  box(500, 0, 510, 10)],
        crs=32651,
    )
    two_parts = shapely.MultiPolygon([box(-5, -5, 15, 15), box(95, -5, 115, 15)])
    grids = gpd.GeoDataFrame(
        {"grid_id": ["P", "Q", "R"], "workers": [2, 0, 1]},
        geometry=[two_parts, box(190, -5, 220, 15), box(195, -5, 230, 15)],
        crs=32651,
    )
    a = audit(homes, grids=grids)
    got = _flagged(a)
    assert got["not_contiguous"] == {"P"}
    assert got["overlaps"] == {"Q", "R"}
    assert got["understaffed"] == {"Q"}
    assert len(a.unassigned) == 1 and int(a.unassigned["households"].sum()) == 60
    assert "lie in no grid" in a.summary()


def test_stations_out_of_reach_are_reported():
    homes = gpd.GeoDataFrame({"households": [250, 250]},
                             geometry=[box(0, 0, 10, 10), box(3000, 0, 3010, 10)], crs=32651)
    grids = gpd.GeoDataFrame({"grid_id": ["near", "far"]},
                             geometry=[box(-5, -5, 15, 15), box(2995, -5, 3015, 15)], crs=32651)
    st = gpd.GeoDataFrame(geometry=[shapely.Point(50, 0)], crs=32651)
    a = audit(homes, grids=grids, stations=st)
    assert _flagged(a)["beyond_walk"] == {"far"}
    assert a.grids.set_index("grid_id").loc["near", "share_within_walk"] == 1.0


def test_grid_labels_and_bad_input():
    homes = gpd.GeoDataFrame({"households": [10]}, geometry=[box(0, 0, 1, 1)], crs=32651)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=32651)
    with pytest.raises(InputError, match="polygons"):
        audit(homes, grids=lines)
    g = gpd.GeoDataFrame({"name": ["A"]}, geometry=[box(-1, -1, 2, 2)], crs=32651)
    assert grid_labels(homes, g).tolist() == ["A"]
    with pytest.raises(InputError, match="id_column"):
        grid_labels(homes, g, id_column="nope")
    with pytest.raises(InputError, match="band"):
        audit(homes, grids=g, min_households=300, max_households=200)


def test_cli_audit_writes_files_and_reports(plan, tmp_path, capsys):
    b = tmp_path / "buildings.gpkg"
    g = tmp_path / "grids.gpkg"
    plan.buildings[["households", "community", "geometry"]].reset_index().to_file(b)
    plan.grids[["grid_id", "geometry"]].to_file(g)
    out = tmp_path / "audit"
    assert main(["audit", str(b), "--grids", str(g), "--out", str(out)]) == 0
    assert "0 violate" in capsys.readouterr().out
    for name in ("audit.gpkg", "audit.csv", "audit.html"):
        assert (out / name).is_file()
    assert len(pd.read_csv(out / "audit.csv")) == len(plan.grids)
    rc = main(["audit", str(b), "--grids", str(tmp_path / "missing.shp"), "--out", str(out)])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_previous_keeps_every_valid_grid_and_moves_only_the_broken_ones(plan):
    import gridopt
    from _plan_data import FAST

    b = plan.buildings
    g = plan.grids[["grid_id", "households", "geometry"]].copy()
    comm = b.groupby("grid_id")["community"].agg(lambda s: s.mode().iloc[0])
    m1, m2 = _neighbours_in_community(g, comm)
    merged = shapely.union_all(g.loc[g["grid_id"].isin([m1, m2]), "geometry"].to_numpy())
    prev = pd.concat([
        g[~g["grid_id"].isin([m1, m2])],
        gpd.GeoDataFrame({"grid_id": ["BROKEN"]}, geometry=[merged], crs=b.crs),
    ]).reset_index(drop=True)
    c = city()
    q = gridopt.plan(c.buildings, streets=c.streets, config=FAST, previous=prev)
    old = grid_labels(q.buildings, prev)
    new = q.buildings["grid_id"]
    for gid, members in old.groupby(old):
        if gid == "BROKEN":
            continue
        # Same buildings, and nobody else joined them.
        assert new[members.index].nunique() == 1, gid
        assert (new == new[members.index[0]]).sum() == len(members), gid
    moved = q.buildings["households"][old.astype(object) != new.astype(object)].sum()
    assert 0 < moved <= int(b.loc[old == "BROKEN", "households"].sum())
    assert any("kept unchanged" in n for n in q.notes)


def test_cli_plan_previous_missing_file_is_one_line(tmp_path, capsys):
    b = tmp_path / "b.gpkg"
    city().buildings[["households", "geometry"]].to_file(b)
    rc = main(["plan", str(b), "--previous", str(tmp_path / "none.shp"), "--no-progress",
               "--out", str(tmp_path / "out")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_plan_states_households_on_defaults_and_coverage(plan):
    text = plan.summary()
    assert "rest on default storeys" in text
    assert "within 1,000 m walking:" in text.splitlines()[2]
    assert "stations" in plan.report().columns
