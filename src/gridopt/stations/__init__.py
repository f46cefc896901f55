"""Service-station placement: the matrix-level p-median solver and the station planner."""

from __future__ import annotations

from gridopt.stations._place import StationPlan, place_stations
from gridopt.stations._pmedian import PMedianResult, solve_p_median

__all__ = ["PMedianResult", "StationPlan", "place_stations", "solve_p_median"]
