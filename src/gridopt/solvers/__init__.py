"""Matrix-level solvers: a cost matrix in, a frozen result out, no geopandas.

:func:`solve_p_median` opens ``p`` sites and assigns every client to one
(uncapacitated, or single-source capacitated with ``capacity=``). The stage modules
(:mod:`gridopt.stations`, :mod:`gridopt.staffing`) call these solvers; the solvers
never import a stage.
"""

from __future__ import annotations

from gridopt.solvers._api import PMedianResult, solve_p_median

__all__ = ["PMedianResult", "solve_p_median"]
