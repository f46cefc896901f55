"""Exact uncapacitated p-median: Elloumi's (2010) formulation solved by a MIP solver.

For each client the distinct costs of its allowed sites, sorted, are its levels
``D_1 < ... < D_K``; ``z_k`` = 1 when no open site lies within ``D_k``. The objective
is ``sum_i w_i (D_1 + sum_k (D_{k+1} - D_k) z_k)``, with the telescoped constraints
``z_{k-1} - z_k <= sum(y_j : c_ij = D_k)`` (``z_0 = 1``, ``z_K = 0``): each site
appears once per client, so the model has O(nnz) non-zeros, and its LP relaxation is
as tight as the classical one. Levels beyond the nearest forced-open site, or beyond
the (m - p + 1)-th site of a client's list, are never used and are cut off, which
keeps the model small when p is large.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gridopt.solvers._instance import Instance
from gridopt.solvers._mip import highs_milp

__all__ = ["ExactResult", "solve_elloumi"]

log = logging.getLogger("gridopt")


@dataclass
class ExactResult:
    open: np.ndarray | None  # mask of open sites, None when no solution
    objective: float
    bound: float
    optimal: bool
    status: str


def _build(inst: Instance, active: np.ndarray, forced: np.ndarray):
    """Sparse arrays of the Elloumi model over the active sites."""
    m, n = inst.m, inst.n
    keep = active[inst.site]
    row, site, cost = inst.row[keep], inst.site[keep], inst.cost[keep]
    counts = np.bincount(row, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)))
    n_active = int(active.sum())
    cap_rank = n_active - inst.p + 1  # among these a site is always open
    # nearest forced-open site caps the distance of every client
    dforced = np.full(n, np.inf)
    if forced.any():
        fmask = forced[site]
        np.minimum.at(dforced, row[fmask], cost[fmask])
    # cut on cost, not position, so a tie group at the cap stays whole
    cap_cost = np.full(n, np.inf)
    last = starts[:-1] + np.minimum(counts, cap_rank) - 1
    has = counts > 0
    cap_cost[has] = cost[last[has]]
    cut = cost <= np.minimum(cap_cost, dforced)[row]
    row, site, cost = row[cut], site[cut], cost[cut]
    # levels: a new level starts at each change of (row, cost)
    new_level = np.ones(len(row), dtype=bool)
    new_level[1:] = (row[1:] != row[:-1]) | (cost[1:] != cost[:-1])
    level_id = np.cumsum(new_level) - 1  # global level index of each entry
    n_levels = int(level_id[-1]) + 1 if len(level_id) else 0
    lvl_row = row[new_level]
    lvl_cost = cost[new_level]
    first_of_row = np.ones(n_levels, dtype=bool)
    first_of_row[1:] = lvl_row[1:] != lvl_row[:-1]
    last_of_row = np.ones(n_levels, dtype=bool)
    last_of_row[:-1] = lvl_row[1:] != lvl_row[:-1]
    # z variable per level except the last of each row (z_K = 0)
    has_z = ~last_of_row
    z_index = np.full(n_levels, -1, dtype=np.int64)
    z_index[has_z] = m + np.arange(int(has_z.sum()))
    n_z = int(has_z.sum())
    n_var = m + n_z
    w = inst.weights
    obj = np.zeros(n_var)
    nxt_cost = np.empty(n_levels)
    nxt_cost[:-1] = lvl_cost[1:]
    nxt_cost[-1] = 0.0
    obj[z_index[has_z]] = w[lvl_row[has_z]] * (nxt_cost[has_z] - lvl_cost[has_z])
    offset = float(np.sum(w[lvl_row[first_of_row]] * lvl_cost[first_of_row]))
    # constraint per level: sum(y at level) - z_{k-1} + z_k >= 0 (first level: >= 1)
    r_y = level_id
    c_y = site
    v_y = np.ones(len(site))
    prev = np.flatnonzero(~first_of_row)  # levels having a z_{k-1}
    r_prev = prev
    c_prev = z_index[prev - 1]
    v_prev = -np.ones(len(prev))
    cur = np.flatnonzero(has_z)
    r_cur = cur
    c_cur = z_index[cur]
    v_cur = np.ones(len(cur))
    lb = np.where(first_of_row, 1.0, 0.0)
    ub = np.full(n_levels, np.inf)
    rows = np.concatenate((r_y, r_prev, r_cur, [n_levels] * m))
    cols = np.concatenate((c_y, c_prev, c_cur, np.arange(m)))
    vals = np.concatenate((v_y, v_prev, v_cur, np.ones(m)))
    lb = np.concatenate((lb, [inst.p]))
    ub = np.concatenate((ub, [inst.p]))
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n_levels + 1, n_var))
    a.sum_duplicates()
    var_lb = np.zeros(n_var)
    var_ub = np.ones(n_var)
    var_lb[:m] = forced.astype(float)
    var_ub[:m] = active.astype(float)
    return a, lb, ub, var_lb, var_ub, obj, offset, n_levels


def solve_elloumi(
    inst: Instance,
    *,
    active: np.ndarray,
    forced: np.ndarray,
    time_limit_s: float,
) -> ExactResult:
    """Solve the Elloumi model over the active sites with the forced sites open.

    ``time_limit_s`` is work-seconds of the solvers' clock: HiGHS gets the node budget
    they buy, so where it stops does not depend on the machine's load.
    """
    a, lb, ub, var_lb, var_ub, obj, offset, _n_levels = _build(inst, active, forced)
    log.debug(
        "elloumi model: %d sites, %d level variables, %d non-zeros",
        inst.m,
        a.shape[1] - inst.m,
        a.nnz,
    )
    integrality = np.zeros(a.shape[1])
    integrality[: inst.m] = 1
    out = highs_milp(
        obj, sp.csr_matrix(a), lb, ub, var_lb, var_ub, integrality,
        seconds=time_limit_s, offset=offset, kind="elloumi",
    )  # fmt: skip
    if out.x is None:
        return ExactResult(None, np.inf, out.bound, False, out.status)
    return ExactResult(out.x[: inst.m] > 0.5, out.objective, out.bound, out.optimal, out.status)
