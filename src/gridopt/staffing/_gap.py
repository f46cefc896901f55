"""The generalized assignment problem (GAP): agents x jobs, minimisation.

Every job goes to exactly one agent; an agent's jobs must fit its capacity.
This is the staff-to-grid core of :mod:`gridopt.staffing`, and it is exposed
on its own so that it can be benchmarked on the published instances.

How :func:`solve_gap` works, and why:

0. Up to 600 pairs (OR-Library gap1-12 are at most 10 x 60): CP-SAT alone,
   which proves these optimal in about a second.
1. *Regret greedy* (Martello and Toth, compiled in
   :mod:`gridopt.staffing._gap_ts`) under four desirability measures, with
   shift/swap descent: a feasible answer within milliseconds even at
   80 x 1600, before anything slow starts. Before it existed, Yagiura
   d401600, d801600 and e801600 came back with no solution at 8-10 s on a
   loaded machine (the LP and the search's first feasible point took the
   whole limit).
2. *Bound and reduced costs*: the LP relaxation (HiGHS) up to 20,000 pairs;
   above, the Lagrangian of the capacity constraints (subgradient), which
   reaches the same rounded bound on every Yagiura instance in 0.1-0.25 s
   where HiGHS needs 1-3 s. The reduced costs rank each job's agents for
   the search and fix pairs once an incumbent is known (a job can only go to
   agent ``i`` in a solution better than the incumbent if the bound plus the
   reduced cost of ``x_ij`` stays below it). The greedy is run once more on
   the reduced costs (1% above the bound on e801600, where the plain greedy
   is 350% above).
2b. *Knapsack Lagrangian penalties* (:mod:`gridopt.staffing._gap_fix`,
   where the knapsack dynamic programmes are cheap, at most 5% of the
   limit): subgradient on the Lagrangian with the assignment constraints
   relaxed, from the LP duals, then for every pair the rise of that bound
   when ``x_ij`` is forced to 1 (one forward and one backward knapsack DP
   per agent). These penalties replace the LP reduced costs for ranking the
   searches' candidate agents and for the CP-SAT thread's fixing, and the
   final model drops the pairs they fix as well (Posta, Ferland and
   Michelon 2012). On type D they fix nothing at our incumbents: the
   largest penalty on d20100 is 23 while the incumbent is 40+ above the
   bound; they pay off as a ranking.
3. *Tabu search portfolio* (numba) for 80% of the time (97% when the final
   CP-SAT model would be too big to build): one search per core but one,
   each through infeasible space with adaptive capacity penalties, shifts,
   swaps and two-shift ejection chains over each job's cheapest agents by
   reduced cost, restarting from crossovers of an elite pool. The last core
   runs a one-worker CP-SAT: from 5% to 35% of the phase, the exact
   reduced-cost-fixed model hinted with the best solution so far, which
   proves the easy instances optimal and stops everybody (Chu-Beasley
   a10100 in 2 s instead of 24 s); then, unless step 2b computed it, the
   *knapsack Lagrangian bound* (assignment constraints relaxed, exact
   knapsacks by dynamic programming, from the LP duals), stronger than the
   LP bound (d20100: 6,177 against 6,143, optimum 6,185), which also
   becomes the searches' stopping target; then, where the knapsacks are
   cheap, a *dive over the column-generation master*
   (:mod:`gridopt.staffing._gap_dive`): the Dantzig-Wolfe LP chooses whole
   job sets per agent, the dive fixes the likeliest set, prices new ones for
   what is left and repeats, with limited-discrepancy backtracking; its
   solutions join the pool and its root LP is another bound. With time left
   (or when the master's column generation tails off, many jobs per agent)
   a heuristic CP-SAT model on the ~2.5 cheapest pairs per job, whose
   solutions join the pool.
4. *CP-SAT* on the reduced-cost-fixed model with the best solution as hint
   for the rest: proves optimality where it can and supplies a bound (the
   reported bound is the best of CP-SAT's, the LP's or Lagrangian's, and
   the knapsack bound). Skipped when the model is too large to build in
   the time left.

Measured: see ``gridopt.bench.gap`` and the ``## gap`` section of
benchmarks/RESULTS.md. On type D the search stagnates whatever the time (10
or 25-40 CPU seconds of one search give the same values). Ranking the
candidates by the knapsack penalties instead of the LP reduced costs (one
search, 10 s, seeds 0-2): d20200 12,304/12,300/12,293 against
12,324/12,314/12,316, d20100 6,223/6,232/6,227 against 6,229/6,222/6,225;
in the 30 s benchmark (load 2.2-2.9) d20200 went from 12,316 (0.61%) to
12,299-12,301 in four runs (0.47-0.49%, goal met), while d20100 stays at
6,213-6,229 (0.45-0.71%, best known 6,185): it still misses the 0.5% goal
most of the time. Same runs: types A/B all optimal, faster (b05200 2.6 s
instead of 8.9 s); Yagiura at 3 s mostly better (e20100 0.96% -> 0.45%,
e20200 0.58% -> 0.20%, e40400 0.62% -> 0.23%, d20400 0.66% -> 0.53%), a few
within +0.02% (d801600 97,203 against 97,186); gap1-12 all optimal.
Why d20100 is hard for local search: with the knapsack multipliers, an
assignment's cost is the bound plus each agent's knapsack gap; the optimum's
gaps sum to 9, a 6,237 tabu solution's to 61, spread over all 20 agents
(2-8 each), so it differs from the optimum on every agent. The dive works on
exactly that level, whole job sets, and closed the goal: d20100 6,188-6,190
and d20200 12,242-12,246 at 30 s (three benchmark runs and seeds 1-3 of
d20100) where the portfolio without it ended at 6,213-6,233 and
12,291-12,301.
Before it, set partitioning over the columns of the searches' 220 local
optima (one 30 s run) found nothing better than their best, 6,224 (HiGHS
6,251 in 30 s, CP-SAT none), and an exact-cover search over all columns
within the Lagrangian gap stalled (no solution in 20 million nodes).

Tried and dropped: an agent-subset LNS re-solving 2-8 agents exactly with
CP-SAT (d20100 from 6,262 only to 6,252 in 12 s: good type D solutions
differ from a local optimum across many agents, not within a few);
CP-SAT with the tabu solution as hint on the full or reduced-cost-fixed
model (no improvement in 12 s, with 2 or 8 workers or LNS only); CP-SAT
(1 worker, or 8 interleaved workers) and HiGHS MIP on the 2.5-4 cheapest
pairs per job (6,261-6,325 on d20100 in 12-20 s); penalty, tenure, kick,
restart, crossover and candidate-width settings of the search, random cost
perturbation after restarts, per-agent penalty decay, two searches instead
of search + CP-SAT (all within noise, 0.63-0.75% mean over d20100/d20200
and three seeds at 10 CPU seconds; wider candidate lists worse); greedy
repair of the knapsack-Lagrangian solutions as starts (30-50 jobs
violated, 3-5% above the optimum after repair).
Also dropped (knapsack-Lagrangian era): exact Lagrangian variable fixing as
a solve step (d20100 at incumbent 6,220: 0 of 2,000 pairs fixed; even with
the optimum 6,185 as incumbent 1,106 pairs stay free and CP-SAT, 2
workers, finds nothing at or below 6,185 in 20 s); enumerating every
agent's knapsack sets within a gap ``G`` of its Lagrangian optimum and
solving the set-partitioning model (exact for ``G`` = incumbent - bound;
d20100: 3,528 / 30,719 / 153,907 columns at ``G`` = 3 / 6 / 9, neither
HiGHS nor CP-SAT finds any solution in 20-30 s; d20200 has 2.4 million at
``G`` = 4); an elite-driven LNS in the CP-SAT thread (free the jobs where
the best and another elite solution differ plus random ones, 30-48 jobs,
one-worker CP-SAT on 4 candidates each: every sub-problem proved the
incumbent locally optimal, d20100 6,213-6,229 as without it); ranking by
LP reduced cost plus penalty (d20100 6,230-6,235, d20200 12,308-12,315);
candidate widths 2.0 / 3.5 / 5 with the penalties (d20100 6,230-6,235 at
10 s, worse than 2.5); three-cycle ejection moves (j1 p -> q, j2 q -> r,
j3 r -> p) in the search (one search, 10 s: d20100 6,215/6,227/6,214, but
in the 30 s benchmark d20100 6,217-6,228 and d20200 12,304-12,318 against
12,299-12,301 without: slower iterations at 10 jobs per agent); path
relinking in place of the restarts' crossover (Yagiura, Ibaraki and Glover
2006: a greedy path by penalised cost from one elite solution towards
another, the search restarting from the path's best point between 1/4 and
3/4 of the way, or 0.4-0.6, or from the segment's own optimum; 30 s
benchmark, load 2-3, 14 runs over four variants: d20100 6,213-6,230, mean
6,222, against 6,222-6,233, mean 6,226, over five runs without in the same
session; d20200 12,291-12,301 either way: within the noise, the goal
missed as before).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from gridopt._errors import InfeasibleError, InputError

__all__ = ["GapResult", "solve_gap"]

log = logging.getLogger("gridopt")

# Instances at most this size (agents x jobs; OR-Library gap12 is 10 x 60) go
# straight to CP-SAT: it proves them optimal faster than the heuristics would
# pay off.
_SMALL_PAIRS = 600

# Above this many pairs the Lagrangian replaces the LP (HiGHS takes 1-3 s on
# 40-80 x 1600, the Lagrangian 0.1-0.25 s for the same rounded bound).
_LP_PAIRS = 20_000

# Largest n * sum(capacities) for the knapsack bound (one iteration's dynamic
# programmes cost about that many steps; Chu-Beasley d05200 is 1.6e6).
_KNAPSACK_WORK = 1e7

# Share of the time limit the tabu search gets on larger instances; CP-SAT
# has the rest to improve on it and to prove a bound.
_TS_SHARE = 0.8

# Shares of the search phase between which the CP-SAT thread tries to prove
# the reduced-cost-fixed model optimal (type A/B instances: well under a
# second) before it turns to the heuristic model; it waits for the searches
# first because a better incumbent fixes more pairs.
_PROVE_FROM, _PROVE_SHARE = 0.05, 0.35
# Rank the searches' candidate agents by the knapsack Lagrangian's penalties
# (where the dynamic programmes are cheap), computed in at most this share of
# the limit before the searches start.
_PEN, _PEN_SHARE = True, 0.05
# Dive over the column-generation master in the CP-SAT thread
# (:mod:`gridopt.staffing._gap_dive`) where the knapsacks are cheap and the
# root's column generation is expected to take at most _DIVE_SHARE of the
# limit. Its time grows like n^2 * (n/m): 0.3-0.6 s at 20 x 100, 2-3 s at
# 20 x 200, 7 s at 10 x 200, 13-44 s at 40 x 400 (one core,
# benchmarks/gap_dive_root.py), about _DIVE_S_PER_UNIT * n^2 * n/m seconds.
_DIVE, _DIVE_SHARE, _DIVE_S_PER_UNIT = True, 0.25, 7.5e-6
# Rough Python cost of building the CP-SAT model, seconds per (agent, job) pair.
_BUILD_S_PER_PAIR = 6e-5


@dataclass(frozen=True)
class GapResult:
    """What :func:`solve_gap` returns.

    Attributes
    ----------
    assign
        Agent index per job (length ``n``); all ``-1`` when no feasible
        assignment was found within the time limit.
    objective
        Total cost of ``assign`` in the units of ``cost`` (``nan`` when none).
    bound
        Proven lower bound on the optimal cost.
    status
        ``"optimal"`` (objective equals the bound), ``"feasible"`` (stopped by
        the time limit with a solution) or ``"time_limit"`` (no solution found).
    runtime_s
        Wall-clock seconds.
    gap
        Relative gap ``(objective - bound) / max(1, |objective|)``.
    """

    assign: np.ndarray
    objective: float
    bound: float
    status: str
    runtime_s: float
    gap: float
    stats: dict = field(default_factory=dict, compare=False)

    def cost(self) -> float:
        """The objective value (PyVRP-style alias)."""
        return self.objective

    def summary(self) -> str:
        """One line: status, objective, bound, gap and time."""
        m = len(set(self.assign.tolist()) - {-1})
        return (
            f"GAP {self.status}: objective {self.objective:g}, bound {self.bound:g}, "
            f"gap {100 * self.gap:.3f}%, {len(self.assign)} jobs on {m} agents, "
            f"{self.runtime_s:.2f} s"
        )


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------


def _as_int_matrix(name: str, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer copy of ``values`` and the power-of-ten scale that made it integral."""
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[:5].tolist()
        raise InputError(f"`{name}` has non-finite entries at {bad}; pass finite numbers.")
    for digits in range(7):
        scaled = values * 10**digits
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-9 * max(1, 10**digits)):
            return np.round(scaled).astype(np.int64), 10**digits
    raise InputError(f"`{name}` needs more than 6 decimal digits; round it first.")


def _validate(
    cost: np.ndarray, weight: np.ndarray, capacity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    cost = np.asarray(cost, dtype=float)
    weight = np.asarray(weight, dtype=float)
    capacity = np.asarray(capacity, dtype=float).ravel()
    if cost.ndim != 2 or cost.shape[0] == 0 or cost.shape[1] == 0:
        raise InputError(
            f"`cost` must be a non-empty (agents, jobs) matrix; got shape {cost.shape}."
        )
    if weight.shape != cost.shape:
        raise InputError(
            f"`weight` has shape {weight.shape} but `cost` has {cost.shape}; "
            "both are (agents, jobs)."
        )
    if capacity.shape != (cost.shape[0],):
        raise InputError(
            f"`capacity` has {capacity.size} entries but there are {cost.shape[0]} agents."
        )
    c, cscale = _as_int_matrix("cost", cost)
    # Weights and capacities share one scale so that the knapsacks stay exact.
    wc, _ = _as_int_matrix("weight/capacity", np.concatenate([weight.ravel(), capacity]))
    a = wc[: weight.size].reshape(weight.shape)
    b = wc[weight.size :]
    if (a < 0).any():
        raise InputError(
            f"`weight` has {(a < 0).sum()} negative entries (first at "
            f"{np.argwhere(a < 0)[0].tolist()}); resource use must be >= 0."
        )
    return c, a, b, cscale


# --------------------------------------------------------------------------
# construction and descent
# --------------------------------------------------------------------------


def _initial(
    c: np.ndarray, a: np.ndarray, b: np.ndarray, red: np.ndarray | None = None
) -> np.ndarray | None:
    """Best of the regret greedy under several desirability measures, after descent.

    Without ``red``: cost, weight, weight per capacity and their product
    (Martello and Toth). With LP reduced costs ``red``: those, alone and
    tilted by weight per capacity; they give far better starts (1% above the
    LP bound on Yagiura e801600 where the others give 350%). Compiled
    (:mod:`gridopt.staffing._gap_ts`): milliseconds even at 80 x 1600, so a
    feasible answer exists before anything slow starts. None when every
    greedy run ends with a job that fits nowhere.
    """
    from gridopt.staffing._gap_ts import regret_greedy, shift_swap_descent

    best, best_cost = None, math.inf
    n = c.shape[1]
    bf = np.maximum(b, 1).astype(float)[:, None]
    if red is None:
        measures = [c.astype(float), a.astype(float), a / bf, c * a / bf]
    else:
        r = np.where(np.isfinite(red), red, 1e18)
        scale = float(np.median(np.abs(c))) or 1.0
        measures = [r, r + scale * a / bf]
    for f in measures:
        sol = regret_greedy(np.ascontiguousarray(f, dtype=np.float64), a, b)
        if sol[0] < 0:
            continue
        shift_swap_descent(c, a, b, sol, True)
        val = int(c[sol, np.arange(n)].sum())
        if val < best_cost:
            best, best_cost = sol, val
    return best


# --------------------------------------------------------------------------
# LP bound and reduced costs
# --------------------------------------------------------------------------


def _lp(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    time_limit_s: float | None = None,
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """LP bound, reduced costs (``inf`` where not allowed) and the duals of the
    assignment constraints; None if HiGHS fails."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_array

    m, n = c.shape
    ii, jj = np.nonzero(allowed)
    k = ii.size
    cols = np.arange(k)
    a_eq = csr_array((np.ones(k), (jj, cols)), shape=(n, k))
    a_ub = csr_array((a[ii, jj].astype(float), (ii, cols)), shape=(m, k))
    try:
        res = linprog(
            c[ii, jj].astype(float),
            A_ub=a_ub,
            b_ub=b.astype(float),
            A_eq=a_eq,
            b_eq=np.ones(n),
            bounds=(0, 1),
            method="highs",
            options={} if time_limit_s is None else {"time_limit": max(0.1, time_limit_s)},
        )
    except Exception as exc:  # pragma: no cover - HiGHS internal failure
        log.debug("GAP LP failed: %s", exc)
        return None
    if res.status == 2:
        raise InfeasibleError(
            "The jobs cannot all be assigned within the agents' capacities "
            "(even the LP relaxation is infeasible).",
            total_min_weight=float(np.where(allowed, a, np.inf).min(axis=0).sum()),
            total_capacity=float(b.sum()),
        )
    if res.status != 0:
        return None
    red = np.full((m, n), np.inf)
    red[ii, jj] = np.maximum(res.lower.marginals, 0.0)
    return float(res.fun), red, np.asarray(res.eqlin.marginals, dtype=float)


def _lagrangian(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    upper: float,
    deadline: float,
    iters: int = 1000,
) -> tuple[float, np.ndarray]:
    """Lagrangian bound (capacities relaxed, subgradient) and its reduced costs.

    The fallback when HiGHS does not finish the LP in its share of the limit
    (80 x 1600 needs about 3 s on an idle machine): a few hundred
    ``O(m n)`` iterations take a fraction of a second and reach nearly the
    LP bound. For multipliers ``u >= 0`` every feasible assignment costs at
    least ``L(u) + sum_j red[x_j, j]`` with ``red`` the reduced costs
    returned, so they serve for ranking and for fixing exactly like the
    LP's.
    """
    m, n = c.shape
    cf = np.where(allowed, c.astype(float), np.inf)
    af = a.astype(float)
    bf = b.astype(float)
    jobs = np.arange(n)
    u = np.zeros(m)
    best_l, best_u = -math.inf, u.copy()
    theta, stall = 2.0, 0
    for _ in range(iters):
        if time.perf_counter() > deadline:
            break
        adj = cf + u[:, None] * af
        pick = np.argmin(adj, axis=0)
        val = float(adj[pick, jobs].sum() - u @ bf)
        if val > best_l + 1e-9:
            best_l, best_u, stall = val, u.copy(), 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        g = np.bincount(pick, weights=af[pick, jobs], minlength=m) - bf
        g[(u <= 0) & (g < 0)] = 0.0
        norm = float(g @ g)
        if norm == 0 or theta < 1e-4:
            break
        # a poor upper bound (a greedy 4x the optimum) would make every step
        # overshoot: cap the Polyak target at 5% above the current value
        gap = min(max(upper - val, 1e-6), 0.05 * max(1.0, abs(val)))
        u = np.maximum(0.0, u + theta * gap / norm * g)
    adj = cf + best_u[:, None] * af
    red = adj - adj.min(axis=0)
    return best_l, red


def _knapsack_ok(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a knapsack-bound iteration (dynamic programmes) is cheap enough."""
    return bool(a.shape[1] * float(b.sum()) <= _KNAPSACK_WORK)


# --------------------------------------------------------------------------
# CP-SAT
# --------------------------------------------------------------------------


def _cpsat(
    c: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    allowed: np.ndarray,
    *,
    hint: np.ndarray | None,
    time_limit_s: float,
    seed: int,
    workers: int,
    upper: int | None = None,
) -> tuple[int, np.ndarray | None, float]:
    """Solve (a restriction of) the GAP; returns (cp status, assignment, bound)."""
    m, n = c.shape
    model = cp_model.CpModel()
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    for i, j in zip(*np.nonzero(allowed), strict=True):
        x[int(i), int(j)] = model.new_bool_var(f"x{i}_{j}")
    by_job: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(n)]
    by_agent: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(m)]
    for (i, j), v in x.items():
        by_job[j].append((i, v))
        by_agent[i].append((j, v))
    for j in range(n):
        model.add_exactly_one(v for _, v in by_job[j])
    for i in range(m):
        if by_agent[i]:
            model.add(sum(int(a[i, j]) * v for j, v in by_agent[i]) <= int(b[i]))
    obj = sum(int(c[i, j]) * v for (i, j), v in x.items())
    if upper is not None:
        model.add(obj <= int(upper))
    model.minimize(obj)
    if hint is not None and all((int(hint[j]), j) in x for j in range(n)):
        for (i, j), v in x.items():
            model.add_hint(v, int(hint[j]) == i)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit_s))
    solver.parameters.num_workers = max(1, int(workers))
    solver.parameters.random_seed = int(seed)
    status = solver.solve(model)
    sol = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        sol = np.full(n, -1, dtype=np.int64)
        for (i, j), v in x.items():
            if solver.boolean_value(v):
                sol[j] = i
    bound = solver.best_objective_bound if status != cp_model.INFEASIBLE else math.inf
    return status, sol, bound


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------


def _val(c: np.ndarray, assign: np.ndarray) -> int:
    return int(c[assign, np.arange(c.shape[1])].sum())


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def solve_gap(
    cost: np.ndarray,
    weight: np.ndarray,
    capacity: np.ndarray,
    *,
    time_limit_s: float = 60.0,
    seed: int = 0,
    num_workers: int | None = None,
) -> GapResult:
    """Solve the generalized assignment problem (minimise total cost).

    Parameters
    ----------
    cost
        ``(m, n)`` cost of giving job ``j`` to agent ``i``. For a maximisation
        problem pass ``-profit`` and negate the objective and bound.
    weight
        ``(m, n)`` resource that job ``j`` uses at agent ``i`` (>= 0).
    capacity
        ``(m,)`` resource available at each agent.
    time_limit_s
        Wall-clock limit for the whole solve.
    seed
        Seed of the tabu searches and of CP-SAT.
    num_workers
        Threads (tabu searches plus the restricted CP-SAT) and CP-SAT workers
        for the final model; default: the cores this process may use.

    Returns
    -------
    GapResult
        ``assign`` (agent per job), ``objective``, ``bound``, ``status``,
        ``runtime_s`` and ``gap``. When the time limit passes before any
        feasible assignment is found, ``status`` is ``"time_limit"``, ``assign``
        is all ``-1`` and ``objective`` is ``nan``.

    Raises
    ------
    InputError
        Shapes that do not match, non-finite or negative weights.
    InfeasibleError
        Proven infeasible: a job fits no agent, the total of the smallest
        weights exceeds the total capacity, or the solver proves it. The
        figures are on ``exc.numbers``.

    Notes
    -----
    Non-integral costs are scaled by a power of ten (at most 10**6) for
    CP-SAT; the reported objective and bound are in the original units.
    The searches run until a share of the time limit, so what they reach
    depends on the machine's speed and load: with the same seed, a run
    stopped by the time limit is not bit-for-bit reproducible; an instance
    solved to ``"optimal"`` always returns the same objective. The tabu
    search is compiled by numba on first use (a few seconds, then cached on
    disk).

    Examples
    --------
    >>> import numpy as np
    >>> from gridopt.staffing import solve_gap
    >>> cost = np.array([[1, 4, 3], [2, 1, 5]])
    >>> weight = np.array([[2, 2, 2], [2, 2, 2]])
    >>> r = solve_gap(cost, weight, [4, 4], time_limit_s=5)
    >>> r.assign.tolist(), r.objective, r.status
    ([0, 1, 0], 5.0, 'optimal')
    """
    t0 = time.perf_counter()
    if not (time_limit_s > 0):
        raise InputError(f"`time_limit_s` must be > 0; got {time_limit_s}.")
    c, a, b, cscale = _validate(cost, weight, capacity)
    m, n = c.shape
    deadline = t0 + float(time_limit_s)
    workers = num_workers or _cores()
    jobs = np.arange(n)

    allowed = a <= b[:, None]
    nowhere = np.flatnonzero(~allowed.any(axis=0))
    if nowhere.size:
        raise InfeasibleError(
            f"{nowhere.size} job(s) fit no agent's capacity (first jobs: {nowhere[:10].tolist()}); "
            "raise capacities or drop those jobs.",
            jobs_fitting_nowhere=float(nowhere.size),
        )
    min_total = float(np.where(allowed, a, np.iinfo(np.int64).max).min(axis=0).sum())
    if min_total > b.sum():
        raise InfeasibleError(
            f"The jobs need at least {min_total:g} units of resource but the agents have "
            f"{float(b.sum()):g} in total.",
            total_min_weight=min_total,
            total_capacity=float(b.sum()),
        )

    stats: dict = {"lp_bound": None, "fixed_pairs": 0}
    duals = None  # LP duals of the assignment constraints: start of the knapsack bound
    kbound = -math.inf  # the knapsack Lagrangian bound, where computed
    incumbent: np.ndarray | None = None
    # every job at its cheapest agent: the bound reported if the LP fails
    lower = float(np.where(allowed, c, np.iinfo(np.int64).max).min(axis=0).sum())
    red = None
    knap_fix = None  # (bound, penalties) of the knapsack Lagrangian, where computed

    if m * n > _SMALL_PAIRS:
        # The compiled greedy first (milliseconds): whatever happens to the
        # LP and the search on a loaded machine, there is an answer to return.
        incumbent = _initial(c, a, b)
        stats["initial"] = None if incumbent is None else int(c[incumbent, jobs].sum())
        stats["initial_end_s"] = round(time.perf_counter() - t0, 3)
        # At most 40% of the time for the LP: without duals the search
        # ranks by cost. Large instances use the Lagrangian instead (the same
        # bound, rounded up, on all Yagiura instances, in a tenth of the time).
        lp = None
        if m * n <= _LP_PAIRS:
            lp = _lp(c, a, b, allowed, time_limit_s=0.4 * float(time_limit_s))
        if lp is not None:
            lower, red, duals = lp
            stats["lp_bound"] = lower
        elif incumbent is not None:
            lag, red = _lagrangian(c, a, b, allowed, _val(c, incumbent), t0 + 0.4 * time_limit_s)
            lower = max(lower, lag)
            stats["lagrangian_bound"] = lag
        stats["lp_end_s"] = round(time.perf_counter() - t0, 3)
        if red is not None:
            sol = _initial(c, a, b, red)
            if sol is not None and (incumbent is None or _val(c, sol) < _val(c, incumbent)):
                incumbent = sol
            stats["initial_lp"] = None if sol is None else _val(c, sol)
        # Tabu search on the LP's cheap pairs for most of the time; CP-SAT
        # then polishes the best solution and proves what it can.
        from gridopt.staffing._gap_ts import tabu_portfolio

        score = red if red is not None else np.where(allowed, c - c.min(axis=0), np.inf)
        rank_lower = lower
        knap_duals = duals if duals is not None and _knapsack_ok(a, b) else None
        if _PEN and knap_duals is not None and incumbent is not None:
            # The knapsack Lagrangian's forced-pair penalties rank each job's
            # agents better than the LP reduced costs (d20200: 12,299 against
            # 12,318 mean over three seeds, 10 s of one search) and fix pairs
            # from a stronger bound.
            from gridopt.staffing._gap_fix import knapsack_penalties

            kb, _, pen = knapsack_penalties(
                c, a, b, allowed, knap_duals, _val(c, incumbent),
                time.perf_counter() + _PEN_SHARE * time_limit_s,
            )  # fmt: skip
            stats["knapsack_bound"] = kb
            stats["knapsack_end_s"] = round(time.perf_counter() - t0, 3)
            score, rank_lower, knap_duals = pen, max(lower, kb), None
            knap_fix = (kb, pen)
        start = np.argmin(np.where(allowed, score, np.inf), axis=0)
        now = time.perf_counter()
        ts_deadline = t0 + _TS_SHARE * (deadline - t0)
        if m * n * _BUILD_S_PER_PAIR > 0.5 * (1 - _TS_SHARE) * time_limit_s:
            # the final CP-SAT model could not be built in its share: the
            # searches get that time instead
            ts_deadline = deadline - min(0.05 * time_limit_s, 0.5)
        sol_ts, val_ts, proven = tabu_portfolio(
            c, a, b, np.where(allowed, score, np.inf), allowed, start,
            deadline=ts_deadline, seed=seed, threads=workers,
            target=math.ceil(rank_lower - 1e-6) if math.isfinite(rank_lower) else None,
            incumbent=incumbent, lower=rank_lower if red is not None else None,
            prove_from=now + _PROVE_FROM * (ts_deadline - now),
            prove_until=now + _PROVE_SHARE * (ts_deadline - now),
            build_s_per_pair=_BUILD_S_PER_PAIR,
            duals=knap_duals,
            dive=_DIVE
            and _knapsack_ok(a, b)
            and _DIVE_S_PER_UNIT * n * n * n / m <= _DIVE_SHARE * time_limit_s,
            info=stats,
        )  # fmt: skip
        kbound = stats.get("knapsack_bound") or -math.inf
        # the dive's root master LP bounds like the knapsack Lagrangian (at its optimum)
        dive_bound = stats.get("dive_root_lp")
        if dive_bound is not None and math.isfinite(dive_bound):
            kbound = max(kbound, dive_bound)
        stats["tabu"] = None if sol_ts is None else val_ts
        stats["tabu_end_s"] = round(time.perf_counter() - t0, 3)
        stats["proven_early"] = proven
        if sol_ts is not None and (incumbent is None or val_ts <= _val(c, incumbent)):
            incumbent = sol_ts
        if proven:
            value = float(val_ts)
            return GapResult(
                assign=incumbent.astype(np.int64),
                objective=value / cscale,
                bound=value / cscale,
                status="optimal",
                runtime_s=time.perf_counter() - t0,
                gap=0.0,
                stats=stats,
            )

    restrict = allowed
    upper = None
    if incumbent is not None:
        upper = int(c[incumbent, jobs].sum())
        if red is not None:
            # Any solution cheaper than the incumbent uses only pairs whose
            # reduced cost keeps the LP bound at or below it (1e-6: LP tolerance).
            restrict = allowed & (lower + red <= upper + 1e-6)
            if knap_fix is not None:
                # the same argument with the knapsack bound's penalties
                restrict &= knap_fix[0] + knap_fix[1] <= upper + 1e-6
            stats["fixed_pairs"] = int(allowed.sum() - restrict.sum())

    status_cp, sol, cp_bound = cp_model.UNKNOWN, None, -math.inf
    remaining = deadline - time.perf_counter()
    # Building a CP-SAT model for 100,000+ pairs takes seconds of Python:
    # with too little time left, skip it (the time limit is a promise).
    too_big = m * n > _SMALL_PAIRS and restrict.sum() * _BUILD_S_PER_PAIR > 0.5 * remaining
    stats["final_cpsat"] = not too_big
    if (upper is None or upper > math.ceil(lower - 1e-6)) and not too_big:
        status_cp, sol, cp_bound = _cpsat(
            c,
            a,
            b,
            restrict,
            hint=incumbent,
            time_limit_s=max(remaining, 0.05),
            seed=seed,
            workers=workers,
        )
    if status_cp == cp_model.INFEASIBLE and incumbent is None:
        raise InfeasibleError(
            f"No assignment of the {n} jobs fits the {m} agents' capacities (proven by CP-SAT).",
            total_capacity=float(b.sum()),
            total_min_weight=min_total,
        )
    if sol is not None and (incumbent is None or c[sol, jobs].sum() <= c[incumbent, jobs].sum()):
        incumbent = sol

    if status_cp == cp_model.INFEASIBLE or status_cp == cp_model.OPTIMAL:
        # Nothing better than the incumbent exists within the restriction,
        # which by the reduced-cost argument holds every better solution.
        bound = float(c[incumbent, jobs].sum()) if incumbent is not None else -math.inf
    else:
        bound = float(cp_bound)
        if math.isfinite(lower):
            bound = max(bound, math.ceil(lower - 1e-6))
        if math.isfinite(kbound):
            bound = max(bound, math.ceil(kbound - 1e-6))
    runtime = time.perf_counter() - t0
    if incumbent is None:
        return GapResult(
            assign=np.full(n, -1, dtype=np.int64),
            objective=math.nan,
            bound=bound / cscale,
            status="time_limit",
            runtime_s=runtime,
            gap=math.inf,
            stats=stats,
        )
    value = float(c[incumbent, jobs].sum())
    bound = min(bound, value)
    status = "optimal" if value <= bound else "feasible"
    return GapResult(
        assign=incumbent.astype(np.int64),
        objective=value / cscale,
        bound=bound / cscale,
        status=status,
        runtime_s=runtime,
        gap=(value - bound) / max(1.0, abs(value)),
        stats=stats,
    )
