"""The one status vocabulary of every gridopt result, and its roll-up over pieces.

A result that is stitched from pieces (components, blocks, street offices) reports the
weakest status among them, so a city plan never claims more than its worst piece.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from gridopt._errors import SolverError

__all__ = ["STATUSES", "Status", "combine_status"]

#: How a solve ended: proven optimal; a valid answer without proof; stopped by its time
#: or work limit (the answer is valid, maybe improvable); no answer satisfies the rules.
Status = Literal["optimal", "feasible", "time_limit", "infeasible"]

#: The statuses in order of strength (strongest first).
STATUSES: tuple[Status, ...] = get_args(Status)


def combine_status(statuses: Iterable[str]) -> Status:
    """The status of a result stitched from pieces with these statuses.

    ``"infeasible"`` if any piece is, else ``"time_limit"`` if any piece stopped at its
    limit, else ``"optimal"`` when every piece is (also when there are none), else
    ``"feasible"``.

    Examples
    --------
    >>> combine_status(["optimal", "optimal"]), combine_status(["optimal", "feasible"])
    ('optimal', 'feasible')
    >>> combine_status(["feasible", "time_limit"]), combine_status([])
    ('time_limit', 'optimal')
    """
    seen = set(statuses)
    unknown = seen - set(STATUSES)
    if unknown:
        raise SolverError(f"unknown status {sorted(unknown)}; statuses are {list(STATUSES)}")
    if "infeasible" in seen:
        return "infeasible"
    if "time_limit" in seen:
        return "time_limit"
    return "optimal" if seen <= {"optimal"} else "feasible"
