"""read_buildings / read_streets / write_layers: formats, CRS handling and every bad input."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import LineString, Point, Polygon, box

import gridopt
from gridopt import InputError, RepairWarning, datasets
from gridopt.io import read_buildings, read_streets, repair_report, to_metric_crs, write_layers


def _frame(n=3, crs=32651, **cols):
    # Near Suzhou (UTM 51N) so that a round trip through degrees lands in the same zone.
    x0, y0 = 300_000, 3_465_000
    geoms = [box(x0 + i * 20, y0, x0 + i * 20 + 10, y0 + 10) for i in range(n)]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=32651 if crs is not None else None)


def test_suzhou_reads_with_visible_rules(suzhou):
    assert len(suzhou) == 3076
    assert suzhou.crs.to_epsg() == 32651  # UTM 51N chosen for Suzhou
    assert suzhou.index.is_unique
    assert suzhou["households"].dtype == np.int64
    sources = suzhou["households_source"].value_counts()
    assert set(sources.index) == {"floors_x_area", "too_small"}
    assert sources["floors_x_area"] > 2900
    assert suzhou["households"].sum() > 30_000
    assert repair_report(suzhou).empty


def test_small_town_osm_reports_repairs_and_keeps_everything_else():
    with pytest.warns(RepairWarning, match="repaired or skipped"):
        b = read_buildings(datasets.small_town())
    report = repair_report(b)
    raw = pyogrio.read_dataframe(datasets.small_town(), layer="multipolygons", on_invalid="ignore")
    n_tagged = int(raw["building"].notna().sum())
    skipped = int((report["action"] == "skipped").sum())
    # Nothing lost silently: every tagged building is either read or listed as skipped.
    assert len(b) + skipped == n_tagged
    assert set(report["action"]) <= {"skipped", "repaired"}
    assert b.crs.to_epsg() == 32635  # Finland: UTM 35N
    assert {"non_residential", "default_storeys_by_type"} <= set(b["households_source"])
    assert b.index.str.match(r"^[wr]\d+$").all()


def test_geodataframe_input_is_not_mutated():
    gdf = _frame(households=[10, 20, 30])
    before = gdf.copy()
    out = read_buildings(gdf, households="households")
    pd.testing.assert_frame_equal(gdf, before)
    assert out["households"].tolist() == [10, 20, 30]
    assert set(out["households_source"]) == {"given"}


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet", ".shp"])
def test_formats_round_trip(tmp_path, suffix):
    gdf = _frame(floors=[2, 3, 4]).to_crs(4326)
    path = tmp_path / f"b{suffix}"
    if suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    out = read_buildings(path)
    assert len(out) == 3
    assert out.crs.to_epsg() == 32651
    assert out["households_source"].eq("floors_x_area").all()


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        read_buildings("/nonexistent/buildings.gpkg")


@pytest.mark.parametrize("name", ["b.gpkg", "b.parquet", "b.geojson"])
def test_unreadable_format(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is not a geodata file")
    with pytest.raises(InputError, match="cannot read"):
        read_buildings(path)


def test_empty_layer(tmp_path):
    path = tmp_path / "empty.gpkg"
    _frame().iloc[:0].to_file(path)
    with pytest.raises(InputError, match="empty"):
        read_buildings(path)


def test_no_crs():
    gdf = _frame(crs=None)
    with pytest.raises(InputError, match="no CRS"):
        read_buildings(gdf)
    assert len(read_buildings(gdf, crs=32651)) == 3


def test_points_instead_of_polygons():
    gdf = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(1, 1)], crs=32651)
    with pytest.raises(InputError, match="not points or lines"):
        read_buildings(gdf)


def test_mixed_geometry_skips_and_reports_non_polygons():
    gdf = gpd.GeoDataFrame(
        geometry=[box(0, 0, 10, 10), Point(5, 5), LineString([(0, 0), (1, 1)])], crs=32651
    )
    with pytest.warns(RepairWarning):
        out = read_buildings(gdf)
    assert len(out) == 1
    reasons = repair_report(out)["reason"].tolist()
    assert any("Point" in r for r in reasons) and any("LineString" in r for r in reasons)


def test_invalid_and_zero_area_polygons():
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    flat = Polygon([(0, 0), (10, 0), (20, 0)])
    gdf = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10), bowtie, flat], crs=32651)
    with pytest.warns(RepairWarning):
        out = read_buildings(gdf)
    report = repair_report(out).set_index("source_row")
    assert report.loc[1, "action"] == "repaired"
    assert report.loc[2, "reason"] == "zero-area polygon"
    assert len(out) == 2 and out.geometry.is_valid.all()


def test_geographic_input_is_reprojected_and_logged(caplog):
    gdf = _frame().to_crs(4326)
    with caplog.at_level("INFO", logger="gridopt"):
        out = read_buildings(gdf)
    assert out.crs.to_epsg() == 32651
    assert "reprojected" in caplog.text


def test_non_metric_projected_crs_is_rejected():
    gdf = _frame().to_crs(2263)  # NY state plane, US feet
    with pytest.raises(InputError, match="metres"):
        to_metric_crs(gdf)


def test_duplicate_ids():
    gdf = _frame(code=["a", "b", "a"])
    with pytest.raises(InputError, match="more than once"):
        read_buildings(gdf, id_column="code")
    dup_index = _frame().set_axis(["x", "x", "y"])
    with pytest.raises(InputError, match="more than once"):
        read_buildings(dup_index)


def test_missing_columns():
    with pytest.raises(InputError, match=r"'hh' .*is not in the buildings file"):
        read_buildings(_frame(), households="hh")
    with pytest.raises(InputError, match=r"'uid' .*is not in the buildings file"):
        read_buildings(_frame(), id_column="uid")


@pytest.mark.parametrize("values, match", [([1, None, 3], "missing"), ([1, -2, 3], "negative"),
                                           ([1, 2.5, 3], "non-integer")])
def test_bad_household_values(values, match):
    with pytest.raises(InputError, match=match):
        read_buildings(_frame(households=values), households="households")


def test_not_a_source():
    with pytest.raises(InputError, match="file path or a GeoDataFrame"):
        read_buildings(42)


def test_streets_from_osm(small_town_streets):
    s = small_town_streets
    assert set(s.geom_type) == {"LineString"}
    assert s.crs.to_epsg() == 32635
    assert (s["barrier_kind"] == "major_street").sum() > 0
    assert s.loc[s["highway"] == "motorway", "barrier_kind"].eq("major_street").all()


def test_streets_must_be_lines():
    with pytest.raises(InputError, match="must be lines"):
        read_streets(_frame())


def test_streets_to_buildings_crs():
    s = read_streets(datasets.small_town(), to_crs=3067)
    assert s.crs.to_epsg() == 3067


def test_write_layers_atomic_and_complete(tmp_path, suzhou):
    path = write_layers(tmp_path / "out.gpkg", {"buildings": suzhou.head(50),
                                                "table": pd.DataFrame({"a": [1, 2]})})
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == {"buildings", "table"}
    back = gpd.read_file(path, layer="buildings")
    assert len(back) == 50 and "households_source" in back
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_public_names():
    for name in ("read_buildings", "read_streets", "estimate_households", "synthetic_city"):
        assert callable(getattr(gridopt, name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert datasets.small_town().exists()


def test_osm_streets_keep_their_ids_for_the_walking_network(small_town_streets):
    # Without osm_id the network would join lines that only cross (bridges) as junctions.
    assert "osm_id" in small_town_streets.columns
    assert small_town_streets["osm_id"].notna().all()
