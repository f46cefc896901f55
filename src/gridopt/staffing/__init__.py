"""Staff assignment: grid workers, information officers, mediators and party members.

:func:`assign_staff` plans who serves which grid under the staffing standard
(:class:`StaffingRules`) with a min-cost flow per role and, where personal
capacities differ, a HiGHS MIP for the grid workers; :func:`synthetic_staff`
makes a plausible staff table because real staff lists are private.
"""

from __future__ import annotations

from gridopt.staffing._assign import StaffPlan, assign_staff
from gridopt.staffing._read import read_staff
from gridopt.staffing._rules import ROLES, StaffingRules
from gridopt.staffing._synthetic import synthetic_staff

__all__ = [
    "ROLES",
    "StaffPlan",
    "StaffingRules",
    "assign_staff",
    "read_staff",
    "synthetic_staff",
]
