"""gridopt: grid-management plans from building footprints.

Re-exports only; the work lives in one module per stage of the data flow
(see :mod:`gridopt.pipeline`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gridopt import crs, datasets
from gridopt._errors import (
    GridoptError,
    GridoptWarning,
    InfeasibleError,
    InputError,
    RepairWarning,
    SolverError,
)
from gridopt.adjacency import building_graph
from gridopt.audit import Audit, audit
from gridopt.city import partition_city, plan_city, split_city
from gridopt.households import estimate_households
from gridopt.io import read_buildings, read_buildings_chunked, read_streets
from gridopt.mapping import plan_map
from gridopt.network import walk_network
from gridopt.partition import GraphPartition, Partition, partition_graph, partition_grids
from gridopt.pipeline import Plan, PlanConfig, plan
from gridopt.staffing import StaffingRules, StaffPlan, assign_staff
from gridopt.stations import StationPlan, place_stations
from gridopt.synthetic import synthetic_city

try:
    __version__ = version("gridopt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Audit",
    "GraphPartition",
    "GridoptError",
    "GridoptWarning",
    "InfeasibleError",
    "InputError",
    "Partition",
    "Plan",
    "PlanConfig",
    "RepairWarning",
    "SolverError",
    "StaffPlan",
    "StaffingRules",
    "StationPlan",
    "__version__",
    "assign_staff",
    "audit",
    "building_graph",
    "crs",
    "datasets",
    "estimate_households",
    "partition_city",
    "partition_graph",
    "partition_grids",
    "place_stations",
    "plan",
    "plan_city",
    "plan_map",
    "read_buildings",
    "read_buildings_chunked",
    "read_streets",
    "split_city",
    "synthetic_city",
    "walk_network",
]
