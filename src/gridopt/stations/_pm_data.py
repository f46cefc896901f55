"""Internal sparse form of a p-median instance shared by the solvers.

Every client keeps the list of sites it may use, sorted by cost (a CSR layout:
``indptr``, ``site``, ``cost``). A dense matrix becomes a full list per client; a
scipy.sparse matrix keeps only its stored entries, so a city-sized walking-distance
matrix never turns dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Evaluation", "Instance", "evaluate"]


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
