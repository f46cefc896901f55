"""estimate_households: every rule of the chain, the parameters, and bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from gridopt import InputError, estimate_households
from gridopt.households import DEFAULT_STOREYS, household_summary


def _b(**cols):
    n = len(next(iter(cols.values())))
    # 20 m x 10 m = 200 m² footprints
    geoms = [box(i * 50, 0, i * 50 + 20, 10) for i in range(n)]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=32651)


def test_floors_times_area():
    out = estimate_households(_b(floors=[6, 1]))
    # 200 m² x 6 storeys / 100 m² per household = 12
    assert out["households"].tolist() == [12, 2]
    assert out["households_source"].tolist() == ["floors_x_area"] * 2
    assert out["floor_area_m2"].tolist() == pytest.approx([1200, 200])


def test_height_when_floors_missing():
    out = estimate_households(_b(floors=[np.nan, 3], height=[18.0, 30.0]))
    assert out["storeys"].tolist() == [6, 3]  # floors win over height when both exist
    assert out["households_source"].tolist() == ["height_x_area", "floors_x_area"]


def test_default_storeys_by_type_and_override():
    out = estimate_households(_b(building_type=["apartments", "house", "weird_tag"]))
    assert out["storeys"].tolist() == [DEFAULT_STOREYS["apartments"], DEFAULT_STOREYS["house"], 2.0]
    assert set(out["households_source"]) == {"default_storeys_by_type"}
    out2 = estimate_households(_b(building_type=["apartments"]), default_storeys={"apartments": 10})
    assert out2["households"].tolist() == [20]


@pytest.mark.parametrize(
    "tag, excl, station",
    [("school", True, True), ("hospital", True, True), ("retail", True, True),
     ("office", False, True), ("church", False, False), ("industrial", False, False),
     ("public", False, True), ("garage", False, False)],
)
def test_non_residential(tag, excl, station):
    out = estimate_households(_b(building_type=[tag], floors=[5]))
    row = out.iloc[0]
    assert row["households"] == 0 and row["households_source"] == "non_residential"
    assert row["non_residential"]
    assert row["exclusive_candidate"] == excl and row["station_candidate"] == station


def test_too_small_and_minimum_one():
    geoms = [box(0, 0, 5, 5), box(100, 0, 106, 6)]  # 25 m² and 36 m²
    out = estimate_households(gpd.GeoDataFrame({"floors": [1, 1]}, geometry=geoms, crs=32651))
    assert out["households"].tolist() == [0, 1]
    assert out["households_source"].tolist() == ["too_small", "floors_x_area"]


def test_parameters_change_the_estimate():
    b = _b(floors=[6])
    assert estimate_households(b, m2_per_household=50)["households"].iloc[0] == 24
    assert estimate_households(b, residential_share=0.5)["households"].iloc[0] == 6


def test_given_households_win():
    out = estimate_households(_b(hh=[7, 0], floors=[6, 6]), households="hh")
    assert out["households"].tolist() == [7, 0]
    assert set(out["households_source"]) == {"given"}


@pytest.mark.parametrize(
    "kwargs", [{"m2_per_household": 0}, {"storey_height_m": -1}, {"residential_share": np.nan},
               {"min_footprint_m2": -5}],
)
def test_bad_parameters(kwargs):
    with pytest.raises(InputError):
        estimate_households(_b(floors=[1]), **kwargs)


def test_geographic_crs_rejected():
    with pytest.raises(InputError, match="projected metric CRS"):
        estimate_households(_b(floors=[1]).to_crs(4326))


def test_input_not_mutated():
    b = _b(floors=[3])
    cols = list(b.columns)
    estimate_households(b)
    assert list(b.columns) == cols


def test_summary_table(suzhou):
    table = household_summary(suzhou)
    assert table.loc["total", "households"] == suzhou["households"].sum()
    assert table.loc["total", "buildings"] == len(suzhou)
    with pytest.raises(InputError):
        household_summary(suzhou.drop(columns="households_source"))
