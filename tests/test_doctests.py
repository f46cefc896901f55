"""Run the docstring examples of the public modules (they use the bundled sample data)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from gridopt import datasets
from gridopt._errors import InputError

MODULES = [
    "gridopt.crs",
    "gridopt.datasets",
    "gridopt.households",
    "gridopt.audit",
    "gridopt.io",
    "gridopt.synthetic",
    "gridopt.bench._measure",
    "gridopt._status",
    "gridopt._validate",
    "gridopt.vocab",
    "gridopt.staffing._read",
    "gridopt.blocks",
    "gridopt.tags",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    if "suzhou_buildings()" in (module.__doc__ or "") + _docstrings(module):
        try:
            datasets.suzhou_buildings()
        except InputError as exc:
            pytest.skip(str(exc))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def _docstrings(module) -> str:
    """Every docstring of a module's functions and classes, joined."""
    return "".join(getattr(obj, "__doc__", None) or "" for obj in vars(module).values())
