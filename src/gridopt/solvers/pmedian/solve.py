"""Uncapacitated p-median: greedy + swap local search, then a proof.

For up to ``TREE_MAX_P`` free medians a Lagrangian branch-and-bound (``_tree``)
closes the LP gap that small p leaves; above it the root Lagrangian bound is nearly
tight, and reduced-cost fixing (``_lagr``) plus Elloumi's formulation with a MIP
solver (``_elloumi``) proves the optimum.
"""

from __future__ import annotations

import logging
import math

import numpy as np

import gridopt.solvers._clock as _clock
from gridopt._errors import InfeasibleError
from gridopt.solvers._instance import Instance, evaluate, search_instance
from gridopt.solvers.pmedian._elloumi import solve_elloumi
from gridopt.solvers.pmedian._lagr import reduced_cost_fixing
from gridopt.solvers.pmedian._local import greedy, local_search
from gridopt.solvers.pmedian._tree import lagrangian_tree, root_lagrangian

__all__ = ["solve_uncapacitated"]

log = logging.getLogger("gridopt")

# free medians (p minus the fixed sites) up to which the Lagrangian tree proves the
# optimum; above it the root bound is nearly tight and the restricted Elloumi MIP
# finds and proves the optimum faster (pmed30, p = 200: the tree's depth-first
# search wanders among equal bounds)
TREE_MAX_P = 20
# building and starting a MIP costs about this much even when it stops at once: with
# less time left, the answer is returned instead of overrunning the limit
MIN_MIP_S = 0.5


def solve_uncapacitated(inst: Instance, *, deadline: float) -> tuple[np.ndarray, float, str, bool]:
    t0 = _clock.now()
    budget = max(deadline - t0, 0.0)
    search = search_instance(inst)
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
    while not proven and not closed_gap() and _clock.now() < deadline - MIN_MIP_S:
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
            time_limit_s=deadline - _clock.now(),
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
