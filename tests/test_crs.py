"""gridopt.crs: GCJ-02/BD-09 offsets, the working-CRS policy and the plausibility checks."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from shapely.geometry import Point, box

import gridopt
from gridopt import InputError
from gridopt.cli import main
from gridopt.crs import (
    WorkingCRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    lonlat_points,
    shift_geometry,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridopt.mapping import load_plan_layers

GEOD = pyproj.Geod(ellps="WGS84")
SUZHOU_FILE = "suzhou_gusu_buildings.geojson"


def _suzhou_path() -> Path | None:
    """The Suzhou sample in the shared data folder (gridopt.datasets), if present."""
    try:
        return gridopt.datasets.suzhou_buildings()
    except InputError:
        return None


@pytest.fixture(scope="module")
def suzhou_raw() -> gpd.GeoDataFrame:
    path = _suzhou_path()
    if path is None:
        pytest.skip(f"{SUZHOU_FILE} not found (set GRIDOPT_DATA to the folder holding it)")
    return gpd.read_file(path)


def _metres(lon0, lat0, lon1, lat1) -> np.ndarray:
    return np.asarray(GEOD.inv(lon0, lat0, lon1, lat1)[2])


# --------------------------------------------------------------------------- offsets


def test_tiananmen_matches_the_published_pair():
    # WGS 84 -> GCJ-02 -> BD-09 for Tiananmen as published by the devkitlab map
    # coordinate converter (https://www.devkitlab.com/en/tools/coordinate-converter/).
    lon, lat = wgs84_to_gcj02(116.397428, 39.90923)
    assert _metres(lon, lat, 116.40367163, 39.91063351) < 0.05
    blon, blat = wgs84_to_bd09(116.397428, 39.90923)
    assert _metres(blon, blat, 116.4100441, 39.91697286) < 0.05


@pytest.mark.parametrize(
    ("city", "lon", "lat", "lo_m", "hi_m"),
    [
        ("Dalian", 121.6147, 38.9140, 400, 600),
        ("Shenyang", 123.4315, 41.8057, 450, 700),
        ("Suzhou", 120.62, 31.31, 400, 700),
    ],
)
def test_offsets_have_the_size_seen_in_the_field(city, lon, lat, lo_m, hi_m):
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert lo_m < _metres(lon, lat, glon, glat) < hi_m, city
    blon, blat = wgs84_to_bd09(lon, lat)
    assert 900 < _metres(lon, lat, blon, blat) < 1600, city


def test_round_trips_are_below_a_centimetre():
    rng = np.random.default_rng(3)
    lon = rng.uniform(75, 135, 5000)
    lat = rng.uniform(18, 53, 5000)
    for fwd, inv in (
        (wgs84_to_gcj02, gcj02_to_wgs84),
        (gcj02_to_bd09, bd09_to_gcj02),
        (wgs84_to_bd09, bd09_to_wgs84),
    ):
        back = inv(*fwd(lon, lat))
        assert _metres(lon, lat, *back).max() < 0.01
        again = fwd(*inv(lon, lat))  # the inverse is exact, not the usual 1-2 m approximation
        assert _metres(lon, lat, *again).max() < 0.01


def test_outside_china_nothing_moves():
    lon, lat = np.array([7.4246, -73.98, 151.2]), np.array([43.7384, 40.75, -33.87])
    for f in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        x, y = f(lon, lat)
        np.testing.assert_array_equal(x, lon)
        np.testing.assert_array_equal(y, lat)


def test_shift_geometry_moves_every_vertex():
    poly = box(121.60, 38.90, 121.61, 38.91)
    [moved] = shift_geometry([poly], "wgs84", "gcj02")
    xy, mxy = shapely.get_coordinates(poly), shapely.get_coordinates(moved)
    d = _metres(xy[:, 0], xy[:, 1], mxy[:, 0], mxy[:, 1])
    assert len(d) == 5 and (d > 400).all()
    [back] = shift_geometry([moved], "gcj02", "wgs84")
    assert shapely.hausdorff_distance(back, poly) < 1e-9


# --------------------------------------------------------------------------- policy


def _labelled(frame: gpd.GeoDataFrame, epsg: int) -> gpd.GeoDataFrame:
    """The same buildings under another CGCS2000 label (WGS 84 lon/lat taken as CGCS2000)."""
    cgcs = frame.set_crs(4490, allow_override=True)
    return cgcs if epsg == 4490 else cgcs.to_crs(epsg)


def test_cgcs2000_labels_give_one_working_crs_and_identical_grids(suzhou_raw):
    sub = suzhou_raw.iloc[:500]
    frames = {epsg: gridopt.read_buildings(_labelled(sub, epsg)) for epsg in (4490, 4549, 4528)}
    ref = frames[4490]
    assert ref.crs.to_epsg() == 32651
    for epsg, b in frames.items():
        assert b.crs == ref.crs, epsg
        pd.testing.assert_index_equal(b.index, ref.index)
        a = shapely.get_coordinates(ref.geometry.to_numpy())
        c = shapely.get_coordinates(b.geometry.to_numpy())
        assert np.array_equal(a, c), epsg  # the same numbers (1e-9 m apart before the snap)
        pd.testing.assert_series_equal(b["households"], ref["households"])
    labels = {
        epsg: gridopt.partition_grids(
            b, min_households=100, max_households=200, seed=0, time_limit_s=20
        ).labels
        for epsg, b in frames.items()
    }
    pd.testing.assert_series_equal(labels[4549], labels[4490])
    pd.testing.assert_series_equal(labels[4528], labels[4490])


@pytest.mark.parametrize("epsg", [4490, 4549, 4528, 4510, 4499])  # 3-degree, 6-degree zones
def test_output_goes_back_to_the_input_label(suzhou_raw, epsg):
    frame = _labelled(suzhou_raw.iloc[:50], epsg)
    assert WorkingCRS.choose(frame).crs.to_epsg() == 32651
    w = WorkingCRS.choose(frame)
    out = w.to_output(w.to_working(frame))
    assert out.crs == frame.crs
    a = shapely.get_coordinates(frame.geometry.to_numpy())
    b = shapely.get_coordinates(out.geometry.to_numpy())
    assert np.abs(a - b).max() < (1e-8 if frame.crs.is_geographic else 1e-3)  # 1 mm snap


def test_wgs84_utm_input_is_kept_and_others_go_to_utm():
    frame = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=32651)  # the synthetic city
    assert WorkingCRS.choose(frame).crs == frame.crs
    merc = gpd.GeoDataFrame(geometry=[Point(13_427_000, 3_672_000)], crs=3857)  # Suzhou
    assert WorkingCRS.choose(merc).crs.to_epsg() == 32651


def test_gcj02_frame_round_trip_and_working_position():
    wgs = gpd.GeoDataFrame(geometry=[Point(121.6147, 38.9140)], crs=4326)
    gcj = gpd.GeoDataFrame(geometry=list(shift_geometry(wgs.geometry, "wgs84", "gcj02")), crs=4326)
    w = WorkingCRS.choose(gcj, coords="gcj02")
    work = w.to_working(gcj, what="buildings")
    truth = wgs.to_crs(w.crs)
    assert work.geometry.distance(truth.geometry).max() < 0.01
    out = w.to_output(work)
    p, q = out.geometry.iloc[0], gcj.geometry.iloc[0]
    assert _metres(p.x, p.y, q.x, q.y) < 0.01


def test_one_log_line_per_reprojection(caplog):
    frame = gpd.GeoDataFrame(geometry=[Point(120.62, 31.31)], crs=4326)
    with caplog.at_level("INFO", logger="gridopt"), warnings.catch_warnings():
        warnings.simplefilter("error")
        WorkingCRS.choose(frame).to_working(frame, what="buildings")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "buildings: reprojected from EPSG:4326 (WGS 84) to EPSG:32651 (WGS 84 / UTM zone 51N)"
    ]


def test_lonlat_staff_beside_projected_grids_are_converted():
    grids = gpd.GeoSeries([box(273_000, 3_466_000, 275_000, 3_468_000)], crs=32651)
    staff = gpd.GeoDataFrame(geometry=[Point(120.62, 31.31)], crs=32651)
    moved = lonlat_points(staff, near=grids, what="staff")
    assert grids.iloc[0].distance(moved.geometry.iloc[0]) < 2_000
    small = gpd.GeoDataFrame(geometry=[Point(75.0, 75.0)], crs=32651)  # metres near a toy grid
    toy = gpd.GeoSeries([box(0, 0, 150, 150)], crs=32651)
    assert lonlat_points(small, near=toy).geometry.iloc[0] == Point(75.0, 75.0)


# --------------------------------------------------------------------------- checks


def _pts(xy, crs):
    return gpd.GeoDataFrame(geometry=[Point(x, y) for x, y in xy], crs=crs)


@pytest.mark.parametrize(
    ("xy", "crs", "match"),
    [
        ([(31.30, 120.61), (31.32, 120.63)], 4326, "x looks like latitude"),  # Suzhou swapped
        ([(39.47, 75.99), (39.48, 76.00)], 4326, "x looks like latitude"),  # Kashgar swapped
        ([(40_559_020, 3_465_510)], 4529, "zone prefix 40.*wrong Gauss-Kruger zone.*EPSG:4528"),
        ([(40_559_020, 3_465_510)], 4549, "zone prefix 40.*EPSG:4528"),
        ([(559_020, 3_465_510)], 4528, "without a zone prefix.*wrong Gauss-Kruger zone"),
        ([(120.61, 31.30), (120.63, 31.32)], 4549, "look like lon/lat degrees"),
        ([(559_020, 3_465_510)], 4326, "metres of a projected CRS"),
        ([(1_200_000, 3_465_510)], 32651, "far outside that CRS's area"),
        ([(1_800_000, 11_370_000)], 2263, "gridopt needs a CRS in metres"),
    ],
)
def test_implausible_coordinates_raise_one_clear_line(xy, crs, match):
    with pytest.raises(InputError, match=match) as err:
        WorkingCRS.choose(_pts(xy, crs))
    assert "\n" not in str(err.value)


def test_no_crs_says_how_to_fix_it():
    with pytest.raises(InputError, match=r"look like lon/lat.*--crs EPSG:xxxx"):
        WorkingCRS.choose(_pts([(120.6, 31.3)], None))
    with pytest.raises(InputError, match=r"zone 40 .*EPSG:4528.*--crs"):
        WorkingCRS.choose(_pts([(40_559_020, 3_465_510)], None))


def test_coords_need_lonlat_and_a_known_name():
    with pytest.raises(InputError, match="applies to lon/lat data"):
        WorkingCRS.choose(_pts([(559_020, 3_465_510)], 4549), coords="gcj02")
    with pytest.raises(InputError, match="wgs84, gcj02, bd09"):
        gridopt.PlanConfig(coords="baidu")
    assert gridopt.PlanConfig(coords="GCJ-02").coords == "gcj02"


def test_cli_bad_crs_prints_one_line_and_exits_2(tmp_path, capsys):
    swapped = gpd.GeoDataFrame(
        {"floors": [6, 6]},
        geometry=[box(31.300, 120.610, 31.301, 120.611), box(31.302, 120.612, 31.303, 120.613)],
        crs=4326,
    )
    path = tmp_path / "swapped.gpkg"
    swapped.to_file(path)
    out = tmp_path / "out"
    assert main(["plan", str(path), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x looks like latitude" in err
    assert not out.exists()


# --------------------------------------------------------------------------- end to end


def test_plan_gcj02_end_to_end_writes_gcj02(suzhou_raw, tmp_path):
    sub = suzhou_raw.iloc[:300].copy()
    sub["geometry"] = shift_geometry(sub.geometry, "wgs84", "gcj02")
    src = tmp_path / "gcj.gpkg"
    sub.to_file(src)
    out = tmp_path / "plan"
    rc = main(
        [
            "plan",
            str(src),
            "--coords",
            "gcj02",
            "--min",
            "50",
            "--max",
            "100",
            "--time-limit-s",
            "5",
            "--no-progress",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    got = pyogrio.read_dataframe(out / "plan.gpkg", layer="buildings")
    assert got.crs.to_epsg() == 4326 and len(got) == len(sub)
    got = got.set_index(got["building_id"].astype(int)).sort_index()
    inp = sub.reset_index(drop=True)
    utm = 32651  # measure both in metres the same way
    d = shapely.hausdorff_distance(
        got.to_crs(utm).geometry.to_numpy(), inp.to_crs(utm).geometry.to_numpy()
    )
    assert d.max() < 1.0  # GCJ-02 in, GCJ-02 out
    # The web map is drawn in WGS 84: its bounds are the true positions, not GCJ-02.
    html = (out / "map.html").read_text(encoding="utf-8")
    nums = re.search(r"map_\w+\.fitBounds\(\s*\[\[([-\d.]+),\s*([-\d.]+)\]", html)
    assert nums is not None
    y0, x0 = float(nums.group(1)), float(nums.group(2))
    true_x0, true_y0 = suzhou_raw.iloc[:300].total_bounds[:2]
    gcj_x0, gcj_y0 = sub.total_bounds[:2]
    assert _metres(x0, y0, true_x0, true_y0) < 200 < _metres(x0, y0, gcj_x0, gcj_y0)
    # Read back (gridopt map DIR), the GCJ-02 plan lands on the true positions again.
    back = load_plan_layers(out)["buildings"]
    back = back.set_index(back["building_id"].astype(int)).sort_index()
    truth = suzhou_raw.iloc[:300].reset_index(drop=True).to_crs(back.crs)
    assert shapely.hausdorff_distance(back.geometry.to_numpy(), truth.geometry.to_numpy()).max() < 1


def test_small_metric_frames_near_the_origin_are_not_taken_for_degrees():
    tiny = gpd.GeoDataFrame(geometry=[box(10, 10, 12, 12)], crs=32651)  # a toy test frame
    assert WorkingCRS.choose(tiny).crs == tiny.crs


def test_cli_file_without_crs_needs_crs_and_is_written_back_in_it(suzhou_raw, tmp_path, capsys):
    gk = _labelled(suzhou_raw.iloc[:120], 4549)
    path = tmp_path / "nocrs.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "crs was not provided": the point
        gk.set_crs(None, allow_override=True).to_file(path)
    out = tmp_path / "grids.gpkg"
    assert main(["partition", str(path), "--min", "50", "--max", "100", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--crs EPSG:xxxx" in err and not out.exists()
    assert (
        main(
            [
                "partition",
                str(path),
                "--crs",
                "EPSG:4549",
                "--min",
                "50",
                "--max",
                "100",
                "--time-limit-s",
                "5",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    got = pyogrio.read_dataframe(out, layer="buildings")
    assert got.crs.to_epsg() == 4549
    got = got.set_index(got["building_id"].astype(int)).sort_index()
    a = shapely.get_coordinates(got.geometry.to_numpy())
    b = shapely.get_coordinates(gk.reset_index(drop=True).geometry.to_numpy())
    assert np.abs(a - b).max() < 0.002  # the millimetre snap, nothing more
