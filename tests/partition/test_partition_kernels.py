"""The compiled kernels of the grid heuristic against brute-force NumPy references."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gridopt.partition import _kernels as k


def _grid_cost_reference(xy, w, members, bw, target, lo, penalty):
    pts, ww = xy[members], w[members].astype(float)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)  # member x centre
    per_centre = ww @ d2
    c = int(np.argmin(per_centre))
    h = ww.sum()
    cost = per_centre[c] + bw * abs(h - target) + (penalty * (lo - h) if h < lo else 0.0)
    return cost, per_centre


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000))
def test_grid_cost_is_the_best_centre_sum_of_squares(n, seed):
    rng = np.random.default_rng(seed)
    xy = rng.random((n + 5, 2)) * 400
    w = rng.integers(0, 50, n + 5)
    members = rng.choice(n + 5, n, replace=False).astype(np.int64)
    cost, c = k.grid_cost(xy, w, members, 100.0, 250.0, 200, 1e12)
    ref, per_centre = _grid_cost_reference(xy, w, members, 100.0, 250.0, 200, 1e12)
    assert np.isclose(cost, ref, rtol=1e-9, atol=1e-6)
    assert np.isclose(per_centre[c], per_centre.min(), rtol=1e-9, atol=1e-6)


def _feasible(x, lo, hi):
    return x > 0 and -(-x // hi) <= x // lo


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 60), st.integers(50, 2_000), st.integers(-1, 1), st.integers(0, 10_000))
def test_choose_cut_keeps_both_sides_whole_grids_when_it_can(m, total, shift, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, total + 1, m).astype(np.int64)
    street, barrier = rng.random(30) < 0.5, rng.random(30) < 0.2
    eids = rng.integers(0, 30, m).astype(np.int64)
    price = rng.random(30) * (seed % 2)  # half the cases with priced edges
    pos, score = k.choose_cut(sizes, total, eids, street, barrier, 200, 300, 250.0, shift, price)
    both = [_feasible(int(a), 200, 300) and _feasible(total - int(a), 200, 300) for a in sizes]
    if _feasible(total, 200, 300) and any(both):
        assert both[pos] and score < 1e6
    elif not any(0 < a < total for a in sizes):
        assert pos == -1 and score == np.inf
    else:
        assert 0 <= pos < m


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 30), st.integers(0, 10_000))
def test_best_balanced_cut_matches_enumeration(n, seed):
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 300
    w = rng.integers(10, 120, n).astype(np.int64)
    # a random tree: node t hangs below a random earlier node; BFS order is 0..n-1
    pred = np.array([-9999] + [int(rng.integers(0, t)) for t in range(1, n)], dtype=np.int64)
    order = np.arange(n, dtype=np.int64)
    v = k.best_balanced_cut(order, pred, xy, w, 200, 300, 100.0, 250.0)

    def side_cost(mask):
        h = w[mask].sum()
        c = (w[mask, None] * xy[mask]).sum(axis=0) / h
        return (w[mask] * ((xy[mask] - c) ** 2).sum(axis=1)).sum() + 100.0 * abs(h - 250.0)

    values = {}
    for cut in range(1, n):
        below = np.zeros(n, dtype=bool)
        below[cut] = True
        for t in range(cut + 1, n):
            below[t] = below[pred[t]]
        h1, h2 = w[below].sum(), w[~below].sum()
        if 200 <= h1 <= 300 and 200 <= h2 <= 300:
            values[cut] = side_cost(below) + side_cost(~below)
    if not values:
        assert v == -1
    else:
        assert v in values
        assert np.isclose(values[v], min(values.values()), rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 25), st.integers(0, 10_000))
def test_boundary_cost_is_the_priced_cut_of_a_member_set(n, seed):
    rng = np.random.default_rng(seed)
    ei, ej = np.triu_indices(n, 1)
    keep = rng.random(len(ei)) < 0.3
    ei, ej = ei[keep], ej[keep]
    price = rng.random(len(ei))
    data = np.concatenate([np.arange(len(ei)), np.arange(len(ei))]) + 1.0
    a = sp.coo_matrix((data, (np.r_[ei, ej], np.r_[ej, ei])), shape=(n, n)).tocsr()
    members = np.flatnonzero(rng.random(n) < 0.5).astype(np.int64)
    inside = np.isin(np.arange(n), members)
    mark = np.zeros(n, dtype=bool)
    got = k.boundary_cost(a.indptr, a.indices, a.data.astype(np.int64) - 1, members, mark, price)
    assert np.isclose(got, price[inside[ei] != inside[ej]].sum())
    assert not mark.any()  # the scratch is left clean
