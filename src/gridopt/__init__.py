"""gridopt: grid-management plans from building footprints.

Re-exports only; the work lives in one module per stage of the data flow
(see :mod:`gridopt.pipeline`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gridopt._errors import (
    GridoptError,
    GridoptWarning,
    InfeasibleError,
    InputError,
    RepairWarning,
    SolverError,
)
from gridopt import datasets
from gridopt.households import estimate_households
from gridopt.adjacency import building_graph
from gridopt.io import read_buildings, read_streets
from gridopt.mapping import plan_map
from gridopt.network import walk_network
from gridopt.partition import Partition, partition_grids
from gridopt.parallel import partition_city, plan_city, read_buildings_chunked, split_city
from gridopt.pipeline import Plan, PlanConfig, plan
from gridopt.stations import StationPlan, place_stations
from gridopt.staffing import StaffingRules, StaffPlan, assign_staff
from gridopt.synthetic import synthetic_city

try:
    __version__ = version("gridopt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Plan",
    "PlanConfig",
    "plan",
    "plan_map",
    "Partition",
    "building_graph",
    "partition_grids",
    "partition_city",
    "plan_city",
    "read_buildings_chunked",
    "split_city",
    "datasets",
    "estimate_households",
    "read_buildings",
    "read_streets",
    "synthetic_city",
    "walk_network",
    "place_stations",
    "StationPlan",
    "StaffPlan",
    "StaffingRules",
    "assign_staff",
    "GridoptError",
    "GridoptWarning",
    "InfeasibleError",
    "InputError",
    "RepairWarning",
    "SolverError",
    "__version__",
]
