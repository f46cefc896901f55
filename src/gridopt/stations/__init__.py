"""Service-station placement: :func:`place_stations` and its :class:`StationPlan`.

The matrix-level solver lives in :mod:`gridopt.solvers`; ``solve_p_median`` and
``PMedianResult`` are re-exported here for older imports.
"""

from __future__ import annotations

from gridopt.solvers import PMedianResult, solve_p_median
from gridopt.stations._place import StationPlan, place_stations

__all__ = ["PMedianResult", "StationPlan", "place_stations", "solve_p_median"]
