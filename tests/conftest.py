"""Session fixtures shared by the test modules: the sample cities, read once."""

from __future__ import annotations

import warnings

import pytest

import gridopt
from gridopt import datasets
from gridopt.synthetic import synthetic_city


@pytest.fixture(scope="session")
def suzhou():
    """Suzhou old-town buildings with estimated households (3,076 buildings).

    Read from the shared data folder; the tests that use it skip when it is absent.
    """
    try:
        path = datasets.suzhou_buildings()
    except gridopt.InputError as exc:
        pytest.skip(str(exc))
    return gridopt.read_buildings(path)


@pytest.fixture(scope="session")
def small_town():
    """The small OSM town's buildings (repairs reported, warning silenced here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gridopt.RepairWarning)
        return gridopt.read_buildings(datasets.small_town())


@pytest.fixture(scope="session")
def small_town_streets():
    return gridopt.read_streets(datasets.small_town())


@pytest.fixture(scope="session")
def city_small():
    """A seeded synthetic city of 600 buildings."""
    return synthetic_city(600, seed=7)
