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
    [("school", True, False), ("hospital", True, False), ("retail", True, True),
     ("office", False, True), ("church", False, False), ("industrial", False, False),
     ("public", False, True), ("garage", False, False), ("police", False, False),
     ("fire_station", False, False)],
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


# --------------------------------------------------------------------------- evidence (issue 17)


def _big(w, h, **cols):
    """One building of w x h metres per value, 1 km apart."""
    n = len(next(iter(cols.values())))
    geoms = [box(i * 1000, 0, i * 1000 + w, h) for i in range(n)]
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=32651)


def test_amenity_on_generic_building_decides():
    out = estimate_households(_b(building_type=["yes", "yes"], amenity=["police", None]))
    assert out["households_source"].tolist() == ["non_residential", "default_storeys_by_type"]
    assert out["category"].tolist() == ["emergency", "residential"]
    assert not out["station_candidate"].iloc[0]


def test_shop_in_housing_makes_it_mixed_not_empty():
    out = estimate_households(_b(building_type=["apartments"], shop=["bakery"]))
    assert out["households"].iloc[0] > 0
    assert out["station_candidate"].iloc[0]  # a room in a mixed building


def test_name_says_what_a_generic_building_is():
    out = estimate_households(
        _b(building_type=["yes", "yes", "yes"], name=["Fort de la Revère", "Résidence Les Pins",
                                                      "Hotel Fairmont"])
    )
    assert out["households_source"].tolist() == [
        "non_residential_name", "default_storeys_by_type", "non_residential_name"
    ]
    assert out["households_high"].iloc[0] > 0  # a zero from a name is not sure
    assert out["households_confidence"].tolist() == ["medium", "medium", "medium"]


def test_land_use_around_a_generic_building():
    b = _b(building_type=["yes", "yes", "residential"])  # at x = 0, 50, 100
    land = gpd.GeoDataFrame(
        {"landuse": ["industrial", "residential", "industrial"]},
        geometry=[box(-10, -10, 40, 20), box(40, -10, 90, 20), box(90, -10, 140, 20)],
        crs=32651,
    )
    out = estimate_households(b, landuse=land)
    assert out["land_class"].tolist() == ["industrial", "residential", "industrial"]
    # A tagged house in industrial land keeps its households: tags beat land.
    assert out["households_source"].tolist() == [
        "non_residential_land", "default_storeys_by_type", "default_storeys_by_type"
    ]
    assert out["households"].iloc[0] == 0 and out["households"].iloc[1] > 0


def test_smallest_land_polygon_wins():
    b = _b(building_type=["yes"])
    land = gpd.GeoDataFrame(
        {"landuse": ["residential", "school"]},
        geometry=[box(-100, -100, 100, 100), box(-5, -5, 30, 15)],
        crs=32651,
    )
    out = estimate_households(b, landuse=land)
    assert out["land_class"].iloc[0] == "school" and out["exclusive_candidate"].iloc[0]


def test_large_generic_footprint_holds_no_households_unless_in_residential_land():
    # 150 x 100 m = 15,000 m2, like an unnamed 15,018 m2 Monaco building=yes.
    b = _big(150, 100, building_type=["yes", "yes", "apartments"])
    land = gpd.GeoDataFrame({"landuse": ["residential"]}, geometry=[box(900, -10, 1200, 200)],
                            crs=32651)
    out = estimate_households(b, landuse=land)
    assert out["households_source"].tolist()[0] == "large_footprint"
    assert out["households"].tolist()[0] == 0
    assert out["households"].tolist()[1] == 300  # residential land: counted, but low sure
    assert out["households"].tolist()[2] > 0  # tagged housing is counted
    assert "large_footprint" in out["households_note"].iloc[0]


def test_deep_plan_versus_slab():
    # 50 x 50 m (depth 50 m) is a hall; 150 x 12 m (depth ~11 m) is a slab of flats.
    b = gpd.GeoDataFrame({"building_type": ["yes", "yes"]},
                         geometry=[box(0, 0, 50, 50), box(1000, 0, 1150, 12)], crs=32651)
    out = estimate_households(b)
    assert out["households_source"].tolist() == ["deep_plan", "default_storeys_by_type"]


def test_ranges_contain_the_estimate():
    out = estimate_households(_b(building_type=["yes", "apartments", "school"], floors=[None, 4,
                                                                                        None]))
    assert (out["households_low"] <= out["households"]).all()
    assert (out["households"] <= out["households_high"]).all()
    assert out["households_low"].iloc[0] < out["households_high"].iloc[0]
    assert out["households_high"].iloc[2] == 0  # a tagged school is surely empty


def test_default_share_and_uncertain_list():
    from gridopt.households import default_share, uncertain_buildings

    out = estimate_households(_b(building_type=["yes", "yes"], floors=[3, None]))
    # 6 households counted from floors, 4 from the default of 2 storeys.
    assert default_share(out) == pytest.approx(0.4)
    top = uncertain_buildings(out, n=5)
    assert list(top.index) == [out.index[1]]
    table = household_summary(out)
    assert table.loc["default_storeys_by_type", "share_of_households"] == pytest.approx(0.4)


def test_landuse_without_column_is_an_input_error():
    land = gpd.GeoDataFrame({"kind": ["x"]}, geometry=[box(0, 0, 1, 1)], crs=32651)
    with pytest.raises(InputError, match="landuse"):
        estimate_households(_b(building_type=["yes"]), landuse=land)


def test_shape_rules_only_where_the_data_classify_buildings():
    # A survey layer with floors and no type column is housing, however large.
    b = gpd.GeoDataFrame({"floors": [6]}, geometry=[box(0, 0, 150, 100)], crs=32651)
    out = estimate_households(b)
    assert out["households_source"].iloc[0] == "floors_x_area"
    assert out["households"].iloc[0] == 900
