"""HiGHS on a sparse MIP with a deterministic node budget (scipy's ``milp``).

OR-Tools' HiGHS wrapper returns no solution when a node limit stops HiGHS, so the
budgeted MIPs of the solvers go through scipy's HiGHS, which does: the node budget
comes from the work clock (:func:`gridopt.solvers._clock.mip_nodes`), the wall-clock
limit is only the safety cap, and the nodes HiGHS used are charged to the clock.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

import gridopt.solvers._clock as _clock

__all__ = ["MipOutcome", "charge_scip", "highs_milp", "scip_budget"]


@dataclass(frozen=True)
class MipOutcome:
    """Solution values (None when none), objective, dual bound and status name."""

    x: np.ndarray | None
    objective: float
    bound: float
    status: str  # "optimal", "feasible", "infeasible", "no_solution"

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"


def highs_milp(
    c: np.ndarray,
    a: sp.csr_matrix,
    row_lb: np.ndarray,
    row_ub: np.ndarray,
    var_lb: np.ndarray,
    var_ub: np.ndarray,
    integrality: np.ndarray,
    *,
    seconds: float,
    offset: float = 0.0,
    abs_gap: float | None = None,
    kind: str = "highs",
) -> MipOutcome:
    """Minimise ``c @ x + offset`` over the rows and bounds, within ``seconds`` of work.

    ``abs_gap`` stops at that absolute gap (0.999 for integer objectives: a gap
    below one is closed). ``kind`` names the clock rate of its nodes.
    """
    nodes = _clock.mip_nodes(seconds, a.nnz, kind)
    options = {"disp": False, "node_limit": nodes, "time_limit": _clock.wall_left(seconds)}
    t0 = time.perf_counter()
    res = milp(
        c,
        constraints=LinearConstraint(a, row_lb, row_ub),
        integrality=integrality,
        bounds=Bounds(var_lb, var_ub),
        options=options,
    )
    used = int(getattr(res, "mip_node_count", None) or nodes)
    _clock.log.debug(
        "highs: %d of %d nodes, %d non-zeros, %.3f s wall, status %d",
        used, nodes, a.nnz, time.perf_counter() - t0, res.status,
    )  # fmt: skip
    _clock.charge_nodes(max(1, used), a.nnz, kind)
    if res.status == 1 and time.perf_counter() - t0 >= 0.98 * options["time_limit"]:
        _clock.note_cap()
    bound = getattr(res, "mip_dual_bound", None)
    bound = -math.inf if bound is None or not np.isfinite(bound) else float(bound) + offset
    if res.status == 2:
        return MipOutcome(None, math.inf, math.inf, "infeasible")
    if res.x is None:
        return MipOutcome(None, math.inf, bound, "no_solution")
    objective = float(res.fun) + offset
    closed = abs_gap is not None and objective - bound <= abs_gap
    status = "optimal" if res.status == 0 or closed else "feasible"
    return MipOutcome(np.asarray(res.x), objective, bound, status)


def scip_budget(solver: object, seconds: float, nonzeros: int) -> int:
    """Give an OR-Tools SCIP solver the node budget of ``seconds`` of work; returns it.

    The wall-clock limit is set to the safety cap. SCIP with one thread and a node
    limit stops at the same place on any machine.
    """
    nodes = _clock.mip_nodes(seconds, nonzeros, "scip")
    solver.set_solver_specific_parameters(f"limits/nodes = {nodes}")  # type: ignore[attr-defined]
    solver.set_time_limit_in_seconds(_clock.wall_left(seconds))  # type: ignore[attr-defined]
    return nodes


def charge_scip(optimal: bool, nodes: int, nonzeros: int, wall_s: float, started: float) -> None:
    """Charge a SCIP run: its whole budget unless it proved optimality early.

    OR-Tools does not report SCIP's node count, so a proven run is charged its root
    only (deterministic either way); a run stopped by the wall clock is recorded as
    capped.
    """
    _clock.charge_nodes(0 if optimal else nodes, nonzeros, "scip")
    if not optimal and time.perf_counter() - started >= 0.98 * wall_s:
        _clock.note_cap()
