"""Matrix-level p-median solver: :func:`solve_p_median` and :class:`PMedianResult`.

Uncapacitated: greedy + swap local search for a good solution, then a proof. For up
to ``TREE_MAX_P`` free medians a Lagrangian branch-and-bound (``_lagr_bb``, numba)
closes the LP gap of about 1% that small p leaves; above it the root Lagrangian bound
is nearly tight and reduced-cost fixing plus Elloumi's formulation with a MIP solver
proves the optimum (``_pm_local``, ``_lagr``, ``_lagr_bb``, ``_pm_exact``).
Capacitated single-source: ``_cpmp`` (start by packing or min-cost flow,
``_cpmp_flow``; location-allocation, ``_cpmp_la``; Lagrangian knapsack bound and
median sets, ``_cpmp_bound``; SCIP).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gridopt._errors import InfeasibleError, InputError
from gridopt.stations._lagr import reduced_cost_fixing
from gridopt.stations._lagr_bb import lagrangian_tree, root_lagrangian
from gridopt.stations._pm_data import Instance, evaluate
from gridopt.stations._pm_exact import solve_elloumi
from gridopt.stations._pm_local import greedy, local_search

__all__ = ["PMedianResult", "solve_p_median"]

log = logging.getLogger("gridopt")

# free medians (p minus the fixed sites) up to which the Lagrangian tree proves the
# optimum; above it the root bound is nearly tight and the restricted Elloumi MIP
# finds and proves the optimum faster (pmed30, p = 200: the tree's depth-first
# search wanders among equal bounds)
TREE_MAX_P = 20
# building and starting a MIP costs about this much even when it stops at once: with
# less time left, the answer is returned instead of overrunning the limit
MIN_MIP_S = 0.5


@dataclass(frozen=True, eq=False)
class PMedianResult:
    """Solution of a (capacitated) p-median problem at matrix level.

    Attributes
    ----------
    open
        Sorted indices of the open sites (length ``p``).
    assign
        Site index of every client (always an open site).
    objective
        ``sum(weights * cost[client, assign])``.
    bound
        A proven lower bound on the optimal objective.
    status
        ``"optimal"`` when ``objective - bound`` is within tolerance, else
        ``"time_limit"`` (the limit stopped the proof) or ``"feasible"``.
    runtime_s
        Wall seconds spent in :func:`solve_p_median`.
    method
        The steps that produced the answer (for logs and benchmarks).
    """

    open: np.ndarray
    assign: np.ndarray
    objective: float
    bound: float
    status: str
    runtime_s: float
    method: str = ""

    @property
    def gap(self) -> float:
        """Relative gap ``(objective - bound) / objective`` (0 when proven optimal)."""
        if self.objective == 0:
            return 0.0 if self.bound >= 0 else math.inf
        return max(0.0, (self.objective - self.bound) / abs(self.objective))

    def cost(self) -> float:
        """The objective value (as PyVRP's ``Result.cost()``)."""
        return self.objective

    def summary(self) -> str:
        """One-paragraph human-readable account of the solution."""
        return (
            f"p-median: {len(self.open)} open sites, {len(self.assign)} clients, "
            f"objective {self.objective:.6g}, bound {self.bound:.6g} "
            f"(gap {100 * self.gap:.3f}%), status {self.status}, "
            f"{self.runtime_s:.2f} s [{self.method}]"
        )


# --------------------------------------------------------------------------- validation


def _as_vector(name: str, values: Any, length: int, *, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = np.full(length, float(arr))
    if arr.shape != (length,):
        raise InputError(
            f"`{name}` has shape {arr.shape}; it needs one value per {what} ({length}). "
            f"Pass a 1-D array of length {length}."
        )
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if len(bad):
        raise InputError(
            f"`{name}` must be finite and non-negative; {len(bad)} {what}s are not "
            f"(first indices {bad[:10].tolist()}, values {arr[bad[:10]].tolist()})."
        )
    return arr


def _build_instance(
    cost: Any,
    p: Any,
    weights: Any,
    demand: Any,
    capacity: Any,
    fixed_open: Any,
) -> Instance:
    if sp.issparse(cost):
        mat = sp.csr_matrix(cost, dtype=float)
        mat.sum_duplicates()
        if mat.ndim != 2:
            raise InputError(f"`cost` must be 2-D (clients x sites); got {mat.ndim}-D.")
        n, m = mat.shape
        data = mat.data
        bad = np.flatnonzero(~np.isfinite(data) | (data < 0))
        if len(bad):
            rows = np.repeat(np.arange(n), np.diff(mat.indptr))[bad]
            raise InputError(
                f"`cost` has {len(bad)} stored entries that are negative or not finite "
                f"(clients {np.unique(rows)[:10].tolist()}). Store only allowed pairs "
                "with finite non-negative costs; leave forbidden pairs out of the matrix."
            )
        row = np.repeat(np.arange(n, dtype=np.int64), np.diff(mat.indptr))
        site = mat.indices.astype(np.int64)
        val = data.astype(float)
    else:
        try:
            arr = np.asarray(cost, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"`cost` must be a 2-D numeric array or a scipy.sparse matrix ({exc})."
            ) from exc
        if arr.ndim != 2:
            raise InputError(
                f"`cost` must be 2-D (clients x sites); got shape {arr.shape}. "
                "Reshape it to (n_clients, n_sites)."
            )
        n, m = arr.shape
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            r, c = np.nonzero(bad)
            raise InputError(
                f"`cost` has {int(bad.sum())} entries that are negative or not finite "
                f"(first at (client, site) {list(zip(r[:5].tolist(), c[:5].tolist(), strict=False))}). "
                "Use a scipy.sparse matrix and leave forbidden pairs out instead of inf."
            )
        row = np.repeat(np.arange(n, dtype=np.int64), m)
        site = np.tile(np.arange(m, dtype=np.int64), n)
        val = arr.ravel()
    if n < 1 or m < 1:
        raise InputError(f"`cost` has shape {(n, m)}; it needs at least one client and one site.")
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise InputError(f"`p` must be an integer number of sites to open; got {p!r}.")
    p = int(p)
    if not 1 <= p <= m:
        raise InputError(f"`p` = {p} must lie in 1..{m} (the number of candidate sites).")
    w = np.ones(n) if weights is None else _as_vector("weights", weights, n, what="client")
    dem = w.copy() if demand is None else _as_vector("demand", demand, n, what="client")
    cap = None if capacity is None else _as_vector("capacity", capacity, m, what="site")
    fixed = np.zeros(m, dtype=bool)
    if fixed_open is not None:
        idx = np.asarray(fixed_open).ravel()
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"`fixed_open` must hold integer site indices; got dtype {idx.dtype}.")
        idx = idx.astype(np.int64)
        out = idx[(idx < 0) | (idx >= m)]
        if len(out):
            raise InputError(
                f"`fixed_open` has site indices outside 0..{m - 1}: {out[:10].tolist()}."
            )
        if len(np.unique(idx)) != len(idx):
            raise InputError("`fixed_open` lists a site more than once; pass each site once.")
        if len(idx) > p:
            raise InputError(
                f"`fixed_open` has {len(idx)} sites but only p = {p} may be open; raise p "
                "to at least the number of sites that must stay open."
            )
        fixed[idx] = True
    # every client needs an allowed site
    counts = np.bincount(row, minlength=n)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise InfeasibleError(
            f"{len(empty)} clients have no allowed site (first {empty[:10].tolist()}): no "
            "candidate lies within reach of them. Add candidates near them or raise the "
            "distance limit.",
            unreachable_clients=float(len(empty)),
            unreachable_weight=float(w[empty].sum()),
        )
    # sort every client's list by cost (ties by site index, for determinism)
    order = np.lexsort((site, val, row))
    row, site, val = row[order], site[order], val[order]
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    rowmax = np.zeros(n)
    np.maximum.at(rowmax, row, val)
    penalty = 2.0 * float(np.sum(np.maximum(w, 1.0) * rowmax)) + 2.0 * float(val.max()) + 1.0
    return Instance(n, m, p, indptr, site, val, row, w, dem, cap, fixed, penalty)


def _search_instance(inst: Instance) -> Instance:
    """Copy for the heuristics where zero-weight clients still count a little.

    With a zero weight an unserved client would cost nothing, and the local search
    could leave it without a site.
    """
    w = inst.weights
    if np.all(w > 0):
        return inst
    pos = w[w > 0]
    eps = 1e-3 * (float(pos.mean()) if len(pos) else 1.0)
    w2 = np.where(w > 0, w, eps)
    rowmax = np.zeros(inst.n)
    np.maximum.at(rowmax, inst.row, inst.cost)
    penalty = 2.0 * float(np.sum(w2 * rowmax)) / eps + 2.0 * float(inst.cost.max()) + 1.0
    return dataclasses.replace(inst, weights=w2, penalty=penalty)


# --------------------------------------------------------------------------- solver


def solve_p_median(
    cost: Any,
    *,
    p: int,
    weights: Any = None,
    demand: Any = None,
    capacity: Any = None,
    fixed_open: Any = None,
    time_limit_s: float = 60.0,
    seed: int = 0,
) -> PMedianResult:
    """Open ``p`` sites and assign every client to one, minimising weighted cost.

    Parameters
    ----------
    cost
        ``(n_clients, n_sites)`` costs: a dense array, or a scipy.sparse matrix in
        which a missing entry means the client may not use that site (for example
        beyond the walking limit). Stored zeros are real zero costs.
    p
        Number of sites to open, ``1 <= p <= n_sites`` (fixed sites count towards it).
    weights
        Per-client multiplier of the cost in the objective (households); default 1.
    demand
        Per-client amount counted against ``capacity``; defaults to ``weights``.
    capacity
        ``None`` (uncapacitated), a scalar for every site, or one value per site.
        Each client is served by exactly one site (single source).
    fixed_open
        Indices of sites that must be open (existing stations).
    time_limit_s
        Wall-clock limit; the best solution found and its bound are returned when
        it runs out.
    seed
        Seed of the randomised parts; the same seed gives the same answer.

    Returns
    -------
    PMedianResult
        Open sites, assignment, objective, proven lower bound and status.

    Raises
    ------
    InputError
        Malformed input (shape, negative or non-finite values, ``p`` out of range).
    InfeasibleError
        A client has no allowed site, or capacity cannot hold the demand; the
        error's ``numbers`` carry the figures.

    Examples
    --------
    >>> import numpy as np
    >>> from gridopt.stations import solve_p_median
    >>> cost = np.array([[0, 4, 9], [4, 0, 5], [9, 5, 0], [8, 4, 1]])
    >>> res = solve_p_median(cost, p=2)
    >>> res.open.tolist(), res.objective, res.status
    ([1, 2], 5.0, 'optimal')
    """
    t0 = time.perf_counter()
    try:
        limit = float(time_limit_s)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`time_limit_s` must be a number of seconds; got {time_limit_s!r}."
        ) from exc
    if not limit > 0:
        raise InputError(f"`time_limit_s` must be positive; got {time_limit_s!r}.")
    inst = _build_instance(cost, p, weights, demand, capacity, fixed_open)
    deadline = t0 + limit
    if inst.capacity is not None:
        from gridopt.stations._cpmp import solve_capacitated

        out = solve_capacitated(inst, deadline=deadline, seed=int(seed))
        assign, bound, method, proven = out
    else:
        assign, bound, method, proven = _solve_uncapacitated(inst, deadline=deadline)
    objective = float(np.sum(inst.weights * inst.cost[inst.entry_of(assign)]))
    opened = np.unique(assign)
    runtime = time.perf_counter() - t0
    if inst.integral:
        bound = float(math.ceil(bound - 1e-6)) if math.isfinite(bound) else bound
    tol = 1e-6 * max(1.0, abs(objective))
    if proven or objective - bound <= tol:
        status = "optimal"
        bound = min(bound, objective)
    elif time.perf_counter() >= deadline - 1e-3:
        status = "time_limit"
    else:
        status = "feasible"
    # the open set has p sites: sites without clients may be open too
    open_sites = _complete_open(inst, opened, assign)
    return PMedianResult(open_sites, assign, objective, float(bound), status, runtime, method)


def _complete_open(inst: Instance, opened: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Open set of size p: the used sites, the fixed ones, then cheapest unused ones."""
    mask = np.zeros(inst.m, dtype=bool)
    mask[opened] = True
    mask |= inst.fixed
    if mask.sum() < inst.p:
        extra = np.flatnonzero(~mask)[: inst.p - int(mask.sum())]
        mask[extra] = True
    return np.flatnonzero(mask)


def _solve_uncapacitated(inst: Instance, *, deadline: float) -> tuple[np.ndarray, float, str, bool]:
    t0 = time.perf_counter()
    budget = max(deadline - t0, 0.0)
    search = _search_instance(inst)
    integral = inst.integral
    steps = ["greedy", "swap"]
    is_open = greedy(search)
    is_open, ev = local_search(search, is_open, deadline=t0 + 0.4 * budget)
    upper = evaluate(inst, is_open).objective
    served = ev.f1 >= 0
    lam0 = np.where(served, inst.weights * np.where(served, ev.d1, 0.0), 0.0)
    if served.all() and inst.p - int(inst.fixed.sum()) <= TREE_MAX_P:
        # small p: the LP gap is about 1% and a Lagrangian tree closes it far faster
        # than the MIP (pmed16: 125 nodes, under a second; HiGHS: ~30 s)
        tree = lagrangian_tree(
            inst,
            incumbent=is_open,
            upper=upper,
            lam0=lam0,
            deadline=deadline,
        )
        steps.append(f"lagrangian-tree({tree.nodes} nodes)")
        ev = evaluate(inst, tree.open)
        if (ev.f1 >= 0).all():
            return ev.f1.copy(), float(tree.bound), "+".join(steps), tree.proven
    lag = root_lagrangian(
        inst,
        upper=upper if served.all() else inst.penalty,
        lam0=lam0,
        deadline=t0 + 0.6 * budget,
    )
    steps.append("lagrangian")
    bound = lag.bound
    if lag.best_open is not None and lag.best_obj < upper:
        cand, ev2 = local_search(search, lag.best_open, deadline=t0 + 0.7 * budget)
        obj2 = evaluate(inst, cand).objective
        if obj2 < upper and (ev2.f1 >= 0).all():
            is_open, upper, ev = cand, obj2, ev2
    ev = evaluate(inst, is_open)
    feasible = bool((ev.f1 >= 0).all())

    def closed_gap() -> bool:
        b = math.ceil(bound - 1e-6) if integral else bound
        return feasible and upper - b <= 1e-6 * max(1.0, abs(upper))

    proven = False
    if not feasible:
        upper = math.inf
    # Targets above the bound: a model restricted to the sites that may appear in a
    # solution of cost <= target is small when the bound is tight. If its optimum is
    # within the target it is the global optimum; if not, the bound rises to the target.
    delta = max(5e-4 * abs(bound), 1.0 if integral else 1e-6 * max(1.0, abs(bound)))
    while not proven and not closed_gap() and time.perf_counter() < deadline - MIN_MIP_S:
        target = bound + delta
        final = target >= upper or not feasible
        if final:
            # only strictly better solutions matter; the incumbent is held
            limit = upper - 1.0 + 1e-6 if integral else upper - 1e-9 * max(1.0, abs(upper))
        else:
            limit = math.floor(target + 1e-9) if integral else target
        closed, opened = reduced_cost_fixing(inst, lag, limit)
        log.debug(
            "p-median: UB %.6g LB %.6g target %.6g; fixed %d closed, %d open",
            upper,
            bound,
            limit,
            int(closed.sum()),
            int(opened.sum()),
        )
        ex = solve_elloumi(
            inst,
            active=~closed,
            forced=inst.fixed | opened,
            incumbent=is_open if feasible else None,
            time_limit_s=deadline - time.perf_counter(),
        )
        steps.append(f"elloumi({'final' if final else f'<={limit:.6g}'}):{ex.status}")
        if ex.open is not None:
            ev_ex = evaluate(inst, ex.open)
            if (ev_ex.f1 >= 0).all() and ev_ex.objective < upper:
                is_open, upper, ev, feasible = ex.open, ev_ex.objective, ev_ex, True
        if ex.optimal or ex.status == "infeasible":
            v = ex.objective if ex.optimal else math.inf
            if v <= limit + 1e-9 * max(1.0, abs(limit)) or final:
                # every solution of cost <= limit was in the model: its optimum is global
                proven = feasible
                bound = max(bound, min(v, upper))
            else:
                bound = max(bound, limit + 1.0 if integral else limit)
                delta *= 4.0
        else:
            # solutions outside the restricted model cost more than the limit
            if math.isfinite(ex.bound):
                outside = upper if final else (limit + 1.0 if integral else limit)
                bound = max(bound, min(ex.bound, outside))
            break
        if not feasible and ex.status == "infeasible" and final:
            raise InfeasibleError(
                f"no choice of {inst.p} sites serves every client within the allowed pairs; "
                f"the best found leaves {int((ev.f1 < 0).sum())} clients without a site "
                f"(first {np.flatnonzero(ev.f1 < 0)[:10].tolist()}). Raise p or add candidates.",
                unserved_clients=float((ev.f1 < 0).sum()),
                p=float(inst.p),
            )
    if not feasible:
        raise InfeasibleError(
            f"no assignment serving every client was found within the time limit; the best "
            f"choice of {inst.p} sites leaves {int((ev.f1 < 0).sum())} clients without an "
            f"allowed site (first {np.flatnonzero(ev.f1 < 0)[:10].tolist()}). Raise p, add "
            "candidates near them, or allow more time.",
            unserved_clients=float((ev.f1 < 0).sum()),
            p=float(inst.p),
        )
    return ev.f1.copy(), float(bound), "+".join(steps), proven or closed_gap()
