"""Location-allocation heuristic for the capacitated p-median.

Alternates two exact-ish steps until neither helps: allocate the clients to the
open sites by a small generalized-assignment MIP (each client restricted to its
``k`` cheapest open sites), then move each site to the member of its cluster that
serves the cluster most cheaply within capacity. Both steps only lower the cost.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

import gridopt.solvers._clock as _clock
from gridopt.solvers._instance import Instance
from gridopt.solvers._mip import scip_solve

__all__ = ["gap_assign", "location_allocation"]


def gap_assign(
    inst: Instance, is_open: np.ndarray, *, k: int, time_limit_s: float, hint: np.ndarray | None
) -> np.ndarray | None:
    """Single-source assignment to the open sites (SCIP), each client to its k cheapest."""
    from ortools.linear_solver.python import model_builder as mb

    ent = np.flatnonzero(is_open[inst.site])
    row = inst.row[ent]
    # rank of each open entry within its row (entries are sorted by cost per row)
    first = np.concatenate(([True], row[1:] != row[:-1]))
    start = np.maximum.accumulate(np.where(first, np.arange(len(row)), 0))
    rank = np.arange(len(row)) - start
    keep = rank < k
    if hint is not None:
        keep |= inst.site[ent] == hint[row]
    ent = ent[keep]
    row, site = inst.row[ent], inst.site[ent]
    e, n = len(ent), inst.n
    if np.bincount(row, minlength=n).min() == 0:
        return None
    open_idx = np.flatnonzero(is_open)
    pos = np.full(inst.m, -1, dtype=np.int64)
    pos[open_idx] = np.arange(len(open_idx))
    rows = np.concatenate((row, n + pos[site]))
    cols = np.concatenate((np.arange(e), np.arange(e)))
    vals = np.concatenate((np.ones(e), inst.demand[row]))
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n + len(open_idx), e))
    lb = np.concatenate((np.ones(n), np.full(len(open_idx), -np.inf)))
    ub = np.concatenate((np.ones(n), inst.capacity[open_idx]))
    model = mb.Model()
    model.helper.fill_model_from_sparse_data(
        np.zeros(e), np.ones(e), inst.weights[row] * inst.cost[ent], lb, ub, a
    )
    for j in range(e):
        model.helper.set_var_integrality(j, True)
    if hint is not None:
        for j in np.flatnonzero(site == hint[row]):
            model.helper.add_hint(int(j), 1.0)
    run = scip_solve(model, time_limit_s)
    if run.values is None:
        return None
    x = run.values > 0.5
    assign = np.full(n, -1, dtype=np.int64)
    assign[row[x]] = site[x]
    return assign if (assign >= 0).all() else None


def relocate(inst: Instance, assign: np.ndarray) -> np.ndarray:
    """Move each open site to the cheapest site able to serve its whole cluster."""
    sites = np.unique(assign)
    cluster_of = np.full(inst.m, -1, dtype=np.int64)
    cluster_of[sites] = np.arange(len(sites))
    cl = cluster_of[assign]  # cluster of every client
    size = np.bincount(cl, minlength=len(sites))
    load = np.bincount(cl, weights=inst.demand, minlength=len(sites))
    e_cl = cl[inst.row]
    shape = (len(sites), inst.m)
    total = sp.csr_matrix((inst.wcost, (e_cl, inst.site)), shape=shape).toarray()
    count = sp.csr_matrix((np.ones(len(e_cl)), (e_cl, inst.site)), shape=shape).toarray()
    ok = (count == size[:, None]) & (inst.capacity[None, :] >= load[:, None] - 1e-9)
    total = np.where(ok, total, np.inf)
    taken = np.zeros(inst.m, dtype=bool)
    taken[sites] = True
    new_site = sites.copy()
    # biggest possible saving first, so conflicts cost least
    current = total[np.arange(len(sites)), sites]
    best = total.min(axis=1)
    # a cluster over its capacity (from a rounded flow) has current = inf: first in line
    with np.errstate(invalid="ignore"):
        saving = np.where(np.isfinite(current), best - current, -np.inf)
    saving[~np.isfinite(best)] = 0.0
    for c in np.argsort(saving, kind="stable"):
        if inst.fixed[sites[c]]:
            continue
        row_tot = total[c].copy()
        row_tot[taken & (np.arange(inst.m) != sites[c])] = np.inf
        j = int(np.argmin(row_tot))
        if row_tot[j] < current[c] - 1e-9:
            taken[sites[c]] = False
            taken[j] = True
            new_site[c] = j
    return new_site[cl]


def location_allocation(
    inst: Instance, assign: np.ndarray, *, deadline: float, k: int = 10
) -> np.ndarray:
    """Improve a feasible assignment until allocation and relocation both stall."""
    best = assign
    best_obj = float(np.sum(inst.wcost[inst.entry_of(assign)]))
    while _clock.now() < deadline:
        _clock.charge(len(inst.row))
        moved = relocate(inst, best)
        is_open = np.zeros(inst.m, dtype=bool)
        is_open[np.unique(moved)] = True
        is_open |= inst.fixed
        remaining = deadline - _clock.now()
        if remaining <= 0:
            break
        new = gap_assign(inst, is_open, k=k, time_limit_s=min(remaining, 10.0), hint=moved)
        cand = moved if new is None else new
        obj = float(np.sum(inst.wcost[inst.entry_of(cand)]))
        if obj < best_obj - 1e-9 * max(1.0, abs(best_obj)):
            best, best_obj = cand, obj
        else:
            break
    if not math.isfinite(best_obj):  # pragma: no cover - defensive
        return assign
    return best
