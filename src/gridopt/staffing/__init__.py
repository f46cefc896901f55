"""Staff assignment: grid workers, information officers, mediators and party members.

:func:`assign_staff` plans who serves which grid under the staffing standard;
:func:`solve_gap` is the generalized-assignment solver underneath.
"""

from __future__ import annotations

from gridopt.staffing._gap import GapResult, solve_gap

__all__ = ["GapResult", "solve_gap"]
