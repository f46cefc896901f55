"""Small plans shared by the pipeline, mapping and browser tests (computed once per run)."""

from __future__ import annotations

import functools

import gridopt
from gridopt.synthetic import synthetic_city

#: Small limits keep the tests fast; the plan is still complete.
FAST = {"time_limit_s": 5.0, "progress": False}


@functools.cache
def city(n: int = 300, seed: int = 3):
    """A seeded synthetic city (300 buildings, ~4,400 households, 3 communities)."""
    return synthetic_city(n, seed=seed)


@functools.cache
def small_plan(staff_when_missing: str = "synthetic"):
    """The plan of :func:`city` with the default standards and small time limits."""
    c = city()
    return gridopt.plan(
        c.buildings, streets=c.streets, config={**FAST, "staff_when_missing": staff_when_missing}
    )
