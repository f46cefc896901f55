"""HiGHS on a sparse MIP with a deterministic node budget (scipy's ``milp``).

OR-Tools' HiGHS wrapper returns no solution when a node limit stops HiGHS, so the
budgeted MIPs of the solvers go through scipy's HiGHS, which does: the node budget
comes from the work clock (:func:`gridopt.solvers._clock.mip_nodes`), the wall-clock
limit is only the safety cap, and the nodes HiGHS used are charged to the clock.
SCIP (which takes a hint) runs the same way through :func:`scip_solve`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

import gridopt.solvers._clock as _clock
from gridopt._errors import SolverError

__all__ = ["MipOutcome", "ScipRun", "highs_milp", "scip_solve"]

#: LP iterations a branch-and-bound node of SCIP is worth (its own LPs and overhead):
#: sets its node budget and what each node is charged beyond the iterations
SCIP_ITERATIONS_PER_NODE = 20


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


@dataclass(frozen=True)
class ScipRun:
    """What a budgeted SCIP run found: status name, values (None when none), bound."""

    status: str  # "OPTIMAL", "FEASIBLE", or another pywraplp status name
    values: np.ndarray | None
    bound: float

    @property
    def optimal(self) -> bool:
        return self.status == "OPTIMAL"


_SCIP_STATUS = {0: "OPTIMAL", 1: "FEASIBLE", 2: "INFEASIBLE", 3: "UNBOUNDED", 4: "ABNORMAL"}


def scip_solve(model: object, seconds: float) -> ScipRun:
    """SCIP on an OR-Tools ``model_builder`` model within ``seconds`` of work.

    SCIP runs single-threaded with a node budget from the work clock and is charged
    the simplex iterations and nodes it reports (through ``pywraplp``, which exposes
    both), so its root (presolve, LPs, cuts: most of the time on a large assignment
    model) is charged as well: the charge follows the work, and both are the same on
    any machine. The wall-clock limit is only the safety cap.
    """
    from ortools.linear_solver import pywraplp

    proto = model.export_to_proto()  # type: ignore[attr-defined]
    nonzeros = sum(len(c.var_index) for c in proto.constraint)
    solver = pywraplp.Solver.CreateSolver("SCIP")
    error = solver.LoadModelFromProto(proto)
    if error:  # pragma: no cover - a model built by the solvers always loads
        raise SolverError(f"SCIP could not load the model: {error}")
    variables = solver.variables()
    hint = proto.solution_hint
    if len(hint.var_index):
        solver.SetHint([variables[i] for i in hint.var_index], list(hint.var_value))
    nodes = _clock.mip_nodes(seconds, nonzeros * SCIP_ITERATIONS_PER_NODE, "scip")
    solver.SetSolverSpecificParametersAsString(f"limits/nodes = {nodes}\n")
    wall_s = _clock.wall_left(seconds)
    solver.SetTimeLimit(int(min(wall_s, 1e9) * 1000))
    started = time.perf_counter()
    code = solver.Solve()
    wall = time.perf_counter() - started
    _clock.charge(
        nonzeros * (solver.iterations() + SCIP_ITERATIONS_PER_NODE * solver.nodes()), "scip"
    )
    _clock.log.debug(
        "scip: %d of %d nodes, %d LP iterations, %d non-zeros, %.3f s wall, status %d",
        solver.nodes(), nodes, solver.iterations(), nonzeros, wall, code,
    )  # fmt: skip
    status = _SCIP_STATUS.get(code, "NOT_SOLVED")
    if status != "OPTIMAL" and wall >= 0.98 * wall_s:
        _clock.note_cap()
    if status not in ("OPTIMAL", "FEASIBLE"):
        return ScipRun(status, None, -math.inf)
    values = np.fromiter((v.solution_value() for v in variables), dtype=float, count=len(variables))
    return ScipRun(status, values, float(solver.Objective().BestBound()))
