"""Staff assignment: grid workers, information officers, mediators and party members.

:func:`assign_staff` plans who serves which grid under the staffing standard
(:class:`StaffingRules`); :func:`solve_gap` is the generalized-assignment
solver underneath; :func:`synthetic_staff` makes a plausible staff table
because real staff lists are private.
"""

from __future__ import annotations

from gridopt.staffing._assign import StaffPlan, assign_staff
from gridopt.staffing._gap import GapResult, solve_gap
from gridopt.staffing._read import read_staff
from gridopt.staffing._rules import ROLES, StaffingRules
from gridopt.staffing._synthetic import synthetic_staff

__all__ = [
    "ROLES",
    "GapResult",
    "StaffPlan",
    "StaffingRules",
    "assign_staff",
    "read_staff",
    "solve_gap",
    "synthetic_staff",
]
