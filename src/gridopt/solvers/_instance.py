"""Internal sparse form of a p-median instance shared by the solvers.

Every client keeps the list of sites it may use, sorted by cost (a CSR layout:
``indptr``, ``site``, ``cost``). A dense matrix becomes a full list per client; a
scipy.sparse matrix keeps only its stored entries, so a city-sized walking-distance
matrix never turns dense.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from gridopt._errors import InfeasibleError, InputError

__all__ = ["Evaluation", "Instance", "build_instance", "evaluate", "search_instance"]


@dataclass(frozen=True)
class Instance:
    """A validated p-median instance in per-client sorted CSR form."""

    n: int
    m: int
    p: int
    indptr: np.ndarray  # (n+1,) int64
    site: np.ndarray  # (nnz,) int64, per row sorted by cost
    cost: np.ndarray  # (nnz,) float64 raw cost
    row: np.ndarray  # (nnz,) int64 client of each entry
    weights: np.ndarray  # (n,) float64
    demand: np.ndarray  # (n,) float64
    capacity: np.ndarray | None  # (m,) float64 or None
    fixed: np.ndarray  # (m,) bool, sites that must be open
    penalty: float  # cost standing in for "no open site allowed", larger than any real total

    @property
    def wcost(self) -> np.ndarray:
        """Weighted cost of every entry."""
        return self.weights[self.row] * self.cost

    @property
    def integral(self) -> bool:
        """True when every weighted cost is an integer, so objectives are integers."""
        wc = self.wcost
        return bool(np.all(np.abs(wc - np.round(wc)) < 1e-9))

    def objective(self, assign: np.ndarray) -> float:
        """Sum of weights * cost of an assignment (site index per client)."""
        pos = self.entry_of(assign)
        return float(np.sum(self.weights * self.cost[pos]))

    def entry_of(self, assign: np.ndarray) -> np.ndarray:
        """Entry position of (client, assign[client]); raises KeyError when not allowed."""
        key_entries = self.row * self.m + self.site
        order = np.argsort(key_entries, kind="stable")
        keys = np.arange(self.n, dtype=np.int64) * self.m + np.asarray(assign, dtype=np.int64)
        loc = np.searchsorted(key_entries[order], keys)
        loc = np.minimum(loc, len(order) - 1)
        pos = order[loc]
        bad = key_entries[pos] != keys
        if np.any(bad):
            raise KeyError(
                f"clients {np.flatnonzero(bad)[:10].tolist()} use a site they may not use"
            )
        return pos


@dataclass
class Evaluation:
    """Nearest and second-nearest open site of every client."""

    d1: np.ndarray
    f1: np.ndarray
    d2: np.ndarray
    f2: np.ndarray
    objective: float  # weighted, with the penalty for unserved clients


def evaluate(inst: Instance, is_open: np.ndarray) -> Evaluation:
    """Nearest and second-nearest open site per client in O(nnz), vectorised.

    A client with no open allowed site gets ``inst.penalty`` as its distance and site -1.
    """
    n = inst.n
    ent_open = is_open[inst.site]
    cs = np.cumsum(ent_open, dtype=np.int64)
    base = np.concatenate(([0], cs))[inst.indptr[:-1]]
    rank = cs - base[inst.row]
    first = ent_open & (rank == 1)
    second = ent_open & (rank == 2)
    d1 = np.full(n, inst.penalty)
    f1 = np.full(n, -1, dtype=np.int64)
    d2 = np.full(n, inst.penalty)
    f2 = np.full(n, -1, dtype=np.int64)
    r1 = inst.row[first]
    d1[r1] = inst.cost[first]
    f1[r1] = inst.site[first]
    r2 = inst.row[second]
    d2[r2] = inst.cost[second]
    f2[r2] = inst.site[second]
    obj = float(np.dot(inst.weights, d1))
    return Evaluation(d1, f1, d2, f2, obj)


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


def build_instance(
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


def search_instance(inst: Instance) -> Instance:
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
