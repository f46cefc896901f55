"""The synthetic city generator: exact size, determinism, realistic content."""

from __future__ import annotations

import pytest

from gridopt import InputError
from gridopt.synthetic import synthetic_city


def test_exact_size_and_columns(city_small):
    b = city_small.buildings
    assert len(b) == 600 and b.index.is_unique
    assert {"households", "community", "street", "station_candidate"} <= set(b.columns)
    assert b.crs.is_projected
    assert (b.geometry.area > 0).all()


def test_same_seed_same_city():
    a, b = synthetic_city(300, seed=3), synthetic_city(300, seed=3)
    assert a.buildings.geometry.equals(b.buildings.geometry)
    c = synthetic_city(300, seed=4)
    assert not a.buildings.geometry.equals(c.buildings.geometry)


def test_realistic_mix():
    city = synthetic_city(5000, seed=0)
    b = city.buildings
    per_building = b["households"].sum() / len(b)
    assert 18 < per_building < 35  # ~5 million households for 200k buildings
    assert (b["households"] > 300).any()  # some towers above the grid maximum
    assert b["exclusive_candidate"].any() and b["station_candidate"].any()
    kinds = set(city.streets["barrier_kind"].dropna())
    assert kinds == {"major_street", "river"}
    # buildings never overlap each other or the river
    assert not b.geometry.overlaps(b.geometry.shift()).any()
    river = city.streets[city.streets["barrier_kind"] == "river"].union_all()
    assert b.distance(river).min() > 20
    assert set(b["community"]) <= set(city.communities["community"])


def test_too_small():
    with pytest.raises(InputError):
        synthetic_city(3)
