"""Tests of gridopt.solvers.solve_p_median against brute force and hand-checked cases."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import scipy.sparse as sp

from gridopt import InfeasibleError, InputError
from gridopt.solvers import PMedianResult, solve_p_median


def brute_force(cost, p, weights=None, demand=None, capacity=None, fixed=()):
    """Optimum by enumerating every p-subset (and, capacitated, every assignment)."""
    cost = np.asarray(cost, dtype=float)
    n, m = cost.shape
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    d = w if demand is None else np.asarray(demand, float)
    best = np.inf
    for subset in itertools.combinations(range(m), p):
        if not set(fixed) <= set(subset):
            continue
        sub = cost[:, subset]
        if capacity is None:
            val = float(np.sum(w * sub.min(axis=1)))
            best = min(best, val)
            continue
        cap = np.broadcast_to(np.asarray(capacity, float), (m,))[list(subset)]
        for choice in itertools.product(range(p), repeat=n):
            load = np.bincount(choice, weights=d, minlength=p)
            if np.all(load <= cap + 1e-9):
                val = float(np.sum(w * sub[np.arange(n), choice]))
                best = min(best, val)
    return best


def check_solution(res, cost, p, weights=None, demand=None, capacity=None, fixed=()):
    cost = np.asarray(cost, dtype=float)
    n, m = cost.shape
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    assert isinstance(res, PMedianResult)
    assert len(res.open) == p
    assert np.all(np.diff(res.open) > 0)
    assert set(res.assign.tolist()) <= set(res.open.tolist())
    assert set(fixed) <= set(res.open.tolist())
    assert res.objective == pytest.approx(float(np.sum(w * cost[np.arange(n), res.assign])))
    assert res.bound <= res.objective + 1e-6
    if capacity is not None:
        d = w if demand is None else np.asarray(demand, float)
        cap = np.broadcast_to(np.asarray(capacity, float), (m,))
        load = np.bincount(res.assign, weights=d, minlength=m)
        assert np.all(load <= cap + 1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_uncapacitated_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 12)), int(rng.integers(4, 9))
    p = int(rng.integers(1, m))
    pts_c = rng.random((n, 2))
    pts_s = rng.random((m, 2))
    cost = np.round(100 * np.linalg.norm(pts_c[:, None] - pts_s[None], axis=2), 2)
    w = rng.integers(1, 30, n).astype(float)
    res = solve_p_median(cost, p=p, weights=w, time_limit_s=10)
    check_solution(res, cost, p, weights=w)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(brute_force(cost, p, weights=w))


@pytest.mark.parametrize("seed", range(6))
def test_capacitated_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m, p = 6, 4, 2
    cost = rng.integers(0, 50, (n, m)).astype(float)
    demand = rng.integers(1, 10, n).astype(float)
    capacity = np.full(m, float(np.ceil(demand.sum() * 0.6)))
    res = solve_p_median(cost, p=p, demand=demand, capacity=capacity, time_limit_s=10)
    check_solution(res, cost, p, demand=demand, capacity=capacity)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(brute_force(cost, p, demand=demand, capacity=capacity))


def test_docstring_example_and_summary():
    cost = np.array([[0, 4, 9], [4, 0, 5], [9, 5, 0], [8, 4, 1]])
    res = solve_p_median(cost, p=2)
    assert res.open.tolist() == [1, 2]
    assert res.objective == 5.0
    assert res.cost() == 5.0
    assert res.gap == 0.0
    assert "optimal" in res.summary()


def test_larger_instance_is_optimal_and_bound_is_tight():
    rng = np.random.default_rng(7)
    pts = rng.integers(0, 1000, (120, 2))
    cost = np.floor(np.linalg.norm(pts[:, None] - pts[None], axis=2))
    res = solve_p_median(cost, p=8, time_limit_s=30)
    check_solution(res, cost, 8)
    assert res.status == "optimal"
    assert res.bound == pytest.approx(res.objective)


def test_sparse_cost_respects_missing_pairs():
    # clients 0-2 reach only site 0 or 1, clients 3-5 only site 2
    rows = [0, 0, 1, 1, 2, 2, 3, 4, 5, 5]
    cols = [0, 1, 0, 1, 1, 0, 2, 2, 2, 0]
    vals = [1.0, 5.0, 2.0, 0.0, 3.0, 9.0, 1.0, 0.0, 2.0, 0.5]
    cost = sp.csr_matrix((vals, (rows, cols)), shape=(6, 3))
    res = solve_p_median(cost, p=2)
    # site 2 must be open (clients 3, 4 have nothing else); site 0 or 1 for the rest
    assert 2 in res.open
    dense = cost.toarray()
    dense[dense == 0] = np.inf
    dense[1, 1] = 0.0
    dense[4, 2] = 0.0
    best = min(
        float(np.sum(np.min(dense[:, list(s)], axis=1)))
        for s in itertools.combinations(range(3), 2)
    )
    assert res.objective == pytest.approx(best)
    for c, s in enumerate(res.assign):
        assert cost[c, s] == dense[c, s] or (c, s) in {(1, 1), (4, 2)}


def test_sparse_equals_dense_when_full():
    rng = np.random.default_rng(3)
    cost = rng.integers(1, 100, (30, 10)).astype(float)
    a = solve_p_median(cost, p=3)
    b = solve_p_median(sp.csr_matrix(cost), p=3)
    assert a.objective == b.objective
    assert a.open.tolist() == b.open.tolist()


def test_fixed_open_counts_towards_p():
    rng = np.random.default_rng(4)
    cost = rng.integers(1, 100, (25, 8)).astype(float)
    res = solve_p_median(cost, p=3, fixed_open=[7])
    check_solution(res, cost, 3, fixed=(7,))
    assert res.objective == pytest.approx(brute_force(cost, 3, fixed=(7,)))


def test_zero_weight_clients_still_assigned():
    cost = sp.csr_matrix(
        ([1.0, 1.0, 2.0, 1.0], ([0, 1, 2, 2], [0, 1, 1, 2])),
        shape=(3, 3),
    )
    res = solve_p_median(cost, p=2, weights=[1.0, 0.0, 1.0])
    # client 1 weighs nothing but can only use site 1: site 1 must be open
    assert set(res.open.tolist()) == {0, 1}
    assert res.assign.tolist() == [0, 1, 1]


def test_same_seed_same_answer():
    rng = np.random.default_rng(5)
    cost = rng.random((60, 20))
    a = solve_p_median(cost, p=4, seed=1)
    b = solve_p_median(cost, p=4, seed=1)
    assert a.open.tolist() == b.open.tolist()
    assert a.assign.tolist() == b.assign.tolist()


def test_wall_clock_cap_is_honoured_and_reported():
    rng = np.random.default_rng(6)
    pts = rng.random((700, 2))
    cost = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    solve_p_median(cost[:50, :50], p=5)  # numba's compiled kernels loaded outside the clock
    t0 = time.perf_counter()
    # 30 work-seconds of budget cannot be spent in a 1 s cap: the cap stops the search
    res = solve_p_median(cost, p=60, time_limit_s=1.0, work_limit_s=30.0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 8.0  # 1 s of search plus set-up on a loaded 2-core machine
    assert len(res.open) == 60
    assert res.status == "time_limit"
    assert res.bound <= res.objective


def test_work_budget_decides_not_the_wall_clock():
    """The same work budget gives the same answer with a roomy or a tight-ish cap."""
    rng = np.random.default_rng(11)
    pts = rng.random((300, 2))
    cost = np.round(1000 * np.linalg.norm(pts[:, None] - pts[None], axis=2))
    demand = rng.integers(1, 10, 300).astype(float)
    cap = np.full(300, float(np.ceil(demand.sum() / (0.85 * 12))))
    runs = [
        solve_p_median(cost, p=12, demand=demand, capacity=cap, work_limit_s=1.0, time_limit_s=t)
        for t in (600.0, 300.0)
    ]
    assert all(r.status != "time_limit" for r in runs)
    assert runs[0].assign.tolist() == runs[1].assign.tolist()
    assert runs[0].work_s == pytest.approx(runs[1].work_s)


def test_client_without_site_is_infeasible():
    cost = sp.csr_matrix(([1.0, 2.0], ([0, 1], [0, 1])), shape=(3, 2))
    with pytest.raises(InfeasibleError) as info:
        solve_p_median(cost, p=1)
    assert info.value.numbers["unreachable_clients"] == 1
    assert "2" in str(info.value)


def test_p_too_small_to_cover_is_infeasible():
    cost = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [0, 1, 2])), shape=(3, 3))
    with pytest.raises(InfeasibleError):
        solve_p_median(cost, p=2, time_limit_s=5)


def test_capacity_below_demand_is_infeasible():
    cost = np.ones((4, 3))
    with pytest.raises(InfeasibleError) as info:
        solve_p_median(cost, p=2, demand=[10, 10, 10, 10], capacity=[15, 15, 20])
    assert info.value.numbers["demand"] == 40
    assert info.value.numbers["capacity"] == 35
    assert "40" in str(info.value) and "35" in str(info.value)


def test_client_too_big_for_any_site_is_infeasible():
    cost = np.ones((3, 3))
    with pytest.raises(InfeasibleError, match="demand more than any site"):
        solve_p_median(cost, p=2, demand=[1, 1, 50], capacity=[40, 40, 40])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cost": np.ones(3), "p": 1}, "2-D"),
        ({"cost": np.array([[1.0, -1.0]]), "p": 1}, "negative"),
        ({"cost": np.array([[1.0, np.nan]]), "p": 1}, "not finite"),
        ({"cost": np.ones((2, 2)), "p": 3}, "p"),
        ({"cost": np.ones((2, 2)), "p": 0}, "p"),
        ({"cost": np.ones((2, 2)), "p": 1.5}, "integer"),
        ({"cost": np.ones((2, 2)), "p": 1, "weights": [1.0]}, "weights"),
        ({"cost": np.ones((2, 2)), "p": 1, "weights": [1.0, -2.0]}, "weights"),
        ({"cost": np.ones((2, 2)), "p": 1, "capacity": [1.0, 2.0, 3.0]}, "capacity"),
        ({"cost": np.ones((2, 2)), "p": 1, "fixed_open": [5]}, "fixed_open"),
        ({"cost": np.ones((2, 2)), "p": 1, "fixed_open": [0, 1]}, "fixed_open"),
        ({"cost": np.ones((2, 2)), "p": 1, "time_limit_s": 0}, "time_limit_s"),
    ],
)
def test_bad_input_raises_input_error(kwargs, match):
    cost = kwargs.pop("cost")
    with pytest.raises(InputError, match=match):
        solve_p_median(cost, **kwargs)


def test_input_not_mutated():
    cost = np.arange(12, dtype=float).reshape(4, 3)
    w = np.ones(4)
    cost0, w0 = cost.copy(), w.copy()
    solve_p_median(cost, p=2, weights=w)
    assert np.array_equal(cost, cost0)
    assert np.array_equal(w, w0)


def _tree_case(seed, n=14, m=14, p=3):
    from gridopt.solvers._instance import build_instance as _build_instance
    from gridopt.solvers.pmedian._local import greedy, local_search

    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 100, (n, 2))
    cost = np.floor(np.linalg.norm(pts[:, None] - pts[None, :m], axis=2))
    w = rng.integers(1, 5, n).astype(float)
    inst = _build_instance(cost, p, w, None, None, None)
    is_open = greedy(inst)
    is_open, ev = local_search(inst, is_open, deadline=time.perf_counter() + 5)
    return cost, w, inst, is_open, ev


def test_lagrangian_tree_branches_and_matches_brute_force():
    from gridopt.solvers.pmedian._tree import lagrangian_tree

    branched = 0
    for seed in range(12):
        cost, w, inst, is_open, ev = _tree_case(seed, n=40, m=40, p=3)
        res = lagrangian_tree(
            inst,
            incumbent=is_open,
            upper=ev.objective,
            lam0=w * ev.d1,
            deadline=time.perf_counter() + 20,
        )
        assert res.proven
        assert res.objective == pytest.approx(brute_force(cost, 3, weights=w))
        assert res.root_bound <= res.objective + 1e-9
        branched += res.nodes > 1
    assert branched > 0  # some cases have an LP gap, so the tree is exercised


def test_lagrangian_tree_past_deadline_returns_incumbent_and_valid_bound():
    from gridopt.solvers.pmedian._tree import lagrangian_tree

    cost, w, inst, is_open, ev = _tree_case(1, n=40, m=40, p=3)
    res = lagrangian_tree(inst, incumbent=is_open, upper=ev.objective, lam0=w * ev.d1, deadline=0.0)
    assert res.objective <= ev.objective
    assert res.bound <= brute_force(cost, 3, weights=w) + 1e-9


def test_flow_start_packs_tight_capacity():
    from gridopt.solvers._instance import build_instance as _build_instance
    from gridopt.solvers.cpmp._flow import flow_start
    from gridopt.solvers.pmedian._local import greedy

    rng = np.random.default_rng(11)
    n, p = 80, 8
    pts = rng.random((n, 2))
    cost = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    demand = rng.integers(1, 20, n).astype(float)
    cap = np.full(n, np.ceil(demand.sum() / (0.85 * p)))  # 85% of the capacity used
    inst = _build_instance(cost, p, None, demand, cap, None)
    assign = flow_start(inst, greedy(inst), deadline=time.perf_counter() + 10)
    assert assign is not None
    assert (assign >= 0).all() and len(np.unique(assign)) <= p
    load = np.bincount(assign, weights=demand, minlength=n)
    assert np.all(load <= cap + 1e-9)


def test_capacitated_lagrangian_stage_gives_feasible_answer_and_valid_bound():
    # n > 100 takes the Lagrangian heuristic stage (median sets of the relaxation)
    rng = np.random.default_rng(12)
    n, p = 130, 8
    pts = rng.random((n, 2)) * 100
    cost = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    demand = rng.integers(1, 20, n).astype(float)
    cap = np.full(n, np.ceil(demand.sum() / (0.8 * p)))
    res = solve_p_median(cost, p=p, demand=demand, capacity=cap, time_limit_s=6)
    check_solution(res, cost, p, demand=demand, capacity=cap)
    assert "lagrangian-heuristic" in res.method
    assert res.bound > 0.9 * res.objective  # the knapsack bound is close on such data


def test_solvers_import_no_stage_and_no_geopandas():
    """The solvers sit below the stages: they never import a stage, nor geopandas."""
    import ast
    import pathlib

    import gridopt.solvers

    root = pathlib.Path(gridopt.solvers.__file__).parent
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        mod = "gridopt." + ".".join(path.relative_to(root.parent).with_suffix("").parts)
        mod = mod.removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        assert not any(n.startswith(("gridopt.stations", "gridopt.staffing")) for n in names), mod
        assert "geopandas" not in names, mod
        edges[mod] = {n for n in names if n.startswith("gridopt.solvers")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = [m for m in edges if reaches(m, m, set())]
    assert not cyclic, f"import cycle through {cyclic}"


def test_stations_reexports_the_solver():
    import gridopt.stations

    assert gridopt.stations.solve_p_median is solve_p_median
    assert gridopt.stations.PMedianResult is PMedianResult
