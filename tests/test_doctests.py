"""Run the docstring examples of the public modules (they use the bundled sample data)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gridopt.datasets",
    "gridopt.households",
    "gridopt.io",
    "gridopt.synthetic",
    "gridopt.bench._measure",
    "gridopt.blocks",
    "gridopt.tags",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
