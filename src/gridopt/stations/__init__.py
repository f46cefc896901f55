"""Service-station placement: the matrix-level p-median solver and the station planner."""

from __future__ import annotations

from gridopt.stations._place import (
    DEFAULT_EXCLUDED_STATION_TAGS,
    DEFAULT_STATION_TAGS,
    StationPlan,
    place_stations,
    station_candidates,
)
from gridopt.stations._pmedian import PMedianResult, solve_p_median

__all__ = [
    "DEFAULT_EXCLUDED_STATION_TAGS",
    "DEFAULT_STATION_TAGS",
    "PMedianResult",
    "StationPlan",
    "place_stations",
    "solve_p_median",
    "station_candidates",
]
