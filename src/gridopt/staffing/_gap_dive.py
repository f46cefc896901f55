"""Diving over the GAP's column-generation master (a price-and-dive heuristic).

The Dantzig-Wolfe master of the GAP chooses, for every agent, one *column*:
a set of jobs that fits its capacity. Its LP relaxation,

    min sum_S c_S y_S   s.t.  sum_{S ∋ j} y_S = 1  (each job),
                              sum_{S of i} y_S <= 1  (each agent),

is as strong as the knapsack Lagrangian bound (Chu-Beasley d20100: 6,176.1,
optimum 6,185; the compact LP gives 6,142.5), and its fractional solution
says which whole job sets good assignments use. Columns are priced by one
0-1 knapsack per agent (:func:`gridopt.staffing._gap_ts.knapsack_min`), with
Wentges' dual smoothing against the tailing-off of plain column generation.

The dive (Sadykov, Vanderbeck, Pessoa, Tahiri and Uchoa, "Primal heuristics
for branch and price: the assets of diving methods", INFORMS J. Computing
2019) fixes the column with the largest LP value, re-generates columns for
the jobs and agents left, and repeats until every job is placed. A limited
discrepancy search backtracks over the next-best columns (at most
``max_disc`` departures from the first choice along a path), pruning a node
when its LP or Lagrangian bound cannot beat the best solution known.

Why it is here: on the type D instances with few jobs per agent the tabu
search's local optima differ from the optimum on every agent (see
:mod:`gridopt.staffing._gap`), while the master's LP picks good job *sets*
directly. In :func:`gridopt.staffing.solve_gap` it runs in the CP-SAT
thread beside one tabu search; the 30 s benchmark (``gridopt bench gap``)
went from 6,226 to 6,188-6,190 on d20100 (best known 6,185) and from
12,301 to 12,242-12,246 on d20200 (12,241), and proves c20200 optimal in
5-23 s (the root bound 2,390.2 rounds up to the solution's 2,391). The root LP's time grows like ``n^2 * n/m``:
0.3-0.6 s at 20 x 100, 2-3 s at 20 x 200, 7 s at 10 x 200 and 13-44 s at
40 x 400 on one core (``benchmarks/gap_dive_root.py``);
:mod:`gridopt.staffing._gap` only starts a dive where that fits a quarter
of the limit.

The LP is GLOP without presolve through OR-Tools' ``pywraplp`` (d20200
root: 3.2 s, against 7.6 s with COIN-OR CLP). GLOP with presolve stops
"abnormal" on d20200's master partway through; should GLOP fail, the master
is rebuilt once on CLP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

# Wentges smoothing: price at alpha * (best Lagrangian duals) + (1 - alpha) * (LP duals).
_ALPHA = 0.8
_LP_SOLVER = "GLOP"
_LP_PARAMS = "use_preprocessing: false"


class Master:
    """The restricted master LP: columns, their bounds, and CLP's solution."""

    def __init__(self, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        self.c, self.a, self.b = c, a, b
        self.m, self.n = c.shape
        # Cost of leaving a job to its artificial column (which keeps every
        # master feasible): above the cost of any whole assignment, so the LP
        # only uses one where the columns cannot cover the job, and a bound at
        # or above it proves that no completion exists.
        self.artificial = float(np.abs(c).max(axis=0).sum()) + 1.0
        self.cols: list[tuple[int, np.ndarray, int]] = []  # (agent, jobs, cost)
        self.by_agent: list[list[int]] = [[] for _ in range(self.m)]  # column indices
        self.by_job: list[list[int]] = [[] for _ in range(self.n)]
        self.lo: list[float] = []
        self.hi: list[float] = []
        self._keys: set[tuple[int, bytes]] = set()
        self._solver_name, self._params = _LP_SOLVER, _LP_PARAMS
        self._build()

    def _build(self) -> None:
        from ortools.linear_solver import pywraplp

        s = pywraplp.Solver.CreateSolver(self._solver_name)
        if self._params:
            s.SetSolverSpecificParametersAsString(self._params)
        inf = s.infinity()
        self._s = s
        self._job_rows = [s.Constraint(1, 1) for _ in range(self.n)]
        self._agent_rows = [s.Constraint(-inf, 1) for _ in range(self.m)]
        self._obj = s.Objective()
        self._obj.SetMinimization()
        self._arts = []
        for row in self._job_rows:
            y = s.NumVar(0, inf, "")
            row.SetCoefficient(y, 1)
            self._obj.SetCoefficient(y, self.artificial)
            self._arts.append(y)
        self._vars = []
        for k, (i, jobs, cost) in enumerate(self.cols):
            self._add_var(i, jobs, cost, self.lo[k], self.hi[k])

    def _add_var(self, i: int, jobs: np.ndarray, cost: int, lo: float, hi: float) -> None:
        y = self._s.NumVar(lo, hi, "")
        for j in jobs:
            self._job_rows[int(j)].SetCoefficient(y, 1)
        self._agent_rows[i].SetCoefficient(y, 1)
        self._obj.SetCoefficient(y, float(cost))
        self._vars.append(y)

    def add(self, i: int, jobs: np.ndarray) -> bool:
        """Add agent ``i``'s column ``jobs`` unless already there; True if added."""
        key = (i, jobs.tobytes())
        if key in self._keys:
            return False
        self._keys.add(key)
        cost = int(self.c[i, jobs].sum())
        self.by_agent[i].append(len(self.cols))
        for j in jobs:
            self.by_job[int(j)].append(len(self.cols))
        self.cols.append((i, jobs, cost))
        self.lo.append(0.0)
        self.hi.append(1.0)
        self._add_var(i, jobs, cost, 0.0, 1.0)
        return True

    def set_bounds(self, k: int, lo: float, hi: float) -> None:
        self.lo[k], self.hi[k] = lo, hi
        self._vars[k].SetBounds(lo, hi)

    def solve(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float] | None:
        """``(value, job duals, agent duals, column values, artificial total)``."""
        from ortools.linear_solver import pywraplp

        if self._s.Solve() != pywraplp.Solver.OPTIMAL:
            # start afresh from the stored columns and bounds, with CLP, which
            # is slower here (it reloads the model after each change) but has
            # not failed on these masters
            self._solver_name, self._params = "CLP", ""
            self._build()
            if self._s.Solve() != pywraplp.Solver.OPTIMAL:
                return None
        u = np.array([r.dual_value() for r in self._job_rows])
        v = np.array([r.dual_value() for r in self._agent_rows])
        x = np.array([y.solution_value() for y in self._vars])
        art = float(sum(y.solution_value() for y in self._arts))
        return self._s.Objective().Value(), u, v, x, art


def column_generation(
    master: Master,
    free: list[int],
    covered: np.ndarray,
    fixed_cost: float,
    center: np.ndarray | None,
    deadline: float,
    tol: float = 1e-4,
) -> tuple[float, float, np.ndarray, np.ndarray | None] | None:
    """Solve the master over the free agents and uncovered jobs.

    Returns ``(lp, lagrangian, column values, new center)``: ``lp`` is
    ``inf`` when the jobs left cannot be covered, ``lagrangian`` a valid
    lower bound on every completion (the fixed columns' cost included) even
    when the time runs out first; None when the LP fails or time is up.
    """
    from gridopt.staffing._gap_ts import knapsack_min

    c, a, b = master.c, master.a, master.b
    buf = np.zeros(master.n, dtype=np.int64)
    uncovered = ~covered
    best_lag, best_u = -math.inf, center
    while True:
        res = master.solve()
        if res is None:
            return None
        lp, u, v, x, art = res
        alpha = _ALPHA if best_u is not None else 0.0
        added = 0
        while True:
            u_sep = u if alpha == 0.0 else alpha * best_u + (1 - alpha) * u
            lag = fixed_cost + float(u_sep[uncovered].sum())
            found = []
            for i in free:
                r = (c[i] - u_sep).astype(np.float64)
                r[covered] = math.inf
                z = knapsack_min(r, a[i], int(b[i]), buf)
                lag += min(0.0, z)
                found.append((i, np.flatnonzero(buf).astype(np.int64)))
            if lag > best_lag:
                best_lag, best_u = lag, u_sep.copy()
            for i, jobs in found:
                # a column enters if it prices out against the LP's own duals
                if jobs.size and c[i, jobs].sum() - u[jobs].sum() - v[i] < -1e-6:
                    added += master.add(i, jobs)
            if added or alpha == 0.0:
                break
            alpha = 0.0  # mis-pricing: try the LP duals themselves
        if added == 0 or lp - best_lag < tol:
            return (lp if art <= 1e-6 else math.inf), best_lag, x, best_u
        if art > 1e-6 and best_lag >= master.artificial:
            return math.inf, best_lag, x, best_u
        if time.perf_counter() > deadline:
            return None


def dive(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    deadline: float,
    upper: Callable[[], float],
    on_solution: Callable[[int, np.ndarray], None],
    max_disc: int = 2,
    root_deadline: float | None = None,
    info: dict | None = None,
) -> float:
    """Limited-discrepancy diving; every assignment found goes to ``on_solution``.

    Parameters
    ----------
    c, a, b
        Integer costs, weights (agents x jobs) and capacities.
    deadline
        ``time.perf_counter()`` value at which to stop.
    upper
        Returns the best known cost (the portfolio's incumbent); nodes whose
        bound cannot beat it by 1 are pruned.
    on_solution
        Called with ``(cost, assignment)`` for each improving assignment.
    max_disc
        Most departures from the LP's first choice along one path.
    root_deadline
        Give up (return) if the root's column generation has not converged by
        then: with many jobs per agent it tails off and the time is better
        spent elsewhere.
    info
        Receives ``dive_root_lp`` (the master LP bound at the root, a valid
        lower bound for the GAP) and ``dive_nodes``.

    Returns
    -------
    float
        The root LP bound (``-inf`` if the root did not finish).
    """
    m, n = c.shape
    master = Master(c, a, b)
    state = {"best": math.inf, "nodes": 0, "root": -math.inf, "t0": time.perf_counter()}

    def recurse(free: list[int], covered: np.ndarray, fixed: float, disc: int, center) -> bool:
        """False once the time is up or the root gave up."""
        if covered.all():
            if fixed < min(state["best"], upper()):
                state["best"] = fixed
                assign = np.full(n, -1, dtype=np.int64)
                for k, (i, jobs, _) in enumerate(master.cols):
                    if master.lo[k] == 1.0:
                        assign[jobs] = i
                on_solution(int(fixed), assign)
            return True
        root = state["nodes"] == 0
        state["nodes"] += 1
        stop = root_deadline if root and root_deadline is not None else deadline
        res = column_generation(master, free, covered, fixed, center, min(stop, deadline))
        if res is None:
            return False
        lp, lag, x, center = res
        if root:
            state["root_s"] = time.perf_counter() - state["t0"]
            # the Lagrangian value is a valid bound even where the LP's
            # optimum is only reached within the tolerance
            state["root"] = lag if math.isfinite(lp) else lp
        if max(lp, lag) > min(state["best"], upper()) - 1 + 1e-6:
            return True
        order = [
            k
            for k in np.argsort(-x, kind="stable")
            if x[k] > 1e-6 and master.lo[k] < 1.0 and master.cols[k][1].size
        ]
        for d, k in enumerate(order[: max_disc - disc + 1]):
            i, jobs, cost = master.cols[k]
            # close the agent's other columns and every column sharing a job
            clash = set(master.by_agent[i])
            for j in jobs:
                clash.update(master.by_job[j])
            closed = [q for q in sorted(clash) if q != k and master.hi[q] > 0.0]
            for q in closed:
                master.set_bounds(q, 0.0, 0.0)
            master.set_bounds(k, 1.0, 1.0)
            now_covered = covered.copy()
            now_covered[jobs] = True
            going = recurse(
                [f for f in free if f != i], now_covered, fixed + cost, disc + d, center
            )
            master.set_bounds(k, 0.0, 1.0)
            for q in closed:
                master.set_bounds(q, 0.0, 1.0)
            if not going or time.perf_counter() > deadline:
                return False
        return True

    recurse(list(range(m)), np.zeros(n, dtype=bool), 0.0, 0, None)
    if info is not None:
        info["dive_root_lp"] = state["root"]
        info["dive_nodes"] = state["nodes"]
        info["dive_root_s"] = state.get("root_s")
    return state["root"]
