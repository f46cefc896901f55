"""Service-station placement: :func:`place_stations` and its :class:`StationPlan`.

The matrix-level solver lives in :mod:`gridopt.solvers`; ``solve_p_median`` and
``PMedianResult`` are re-exported here for older imports.
"""

from __future__ import annotations

from gridopt.solvers import PMedianResult, solve_p_median
from gridopt.stations._place import (
    DEFAULT_EXCLUDED_STATION_TAGS,
    DEFAULT_STATION_TAGS,
    StationPlan,
    place_stations,
    station_candidates,
)

__all__ = [
    "DEFAULT_EXCLUDED_STATION_TAGS",
    "DEFAULT_STATION_TAGS",
    "PMedianResult",
    "StationPlan",
    "place_stations",
    "solve_p_median",
    "station_candidates",
]
