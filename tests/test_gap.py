"""Tests of gridopt.staffing.solve_gap: brute force on tiny instances, a published optimum."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridopt import InfeasibleError, InputError
from gridopt.bench.gap import read_instance
from gridopt.staffing import GapResult, solve_gap

INSTANCES = Path(__file__).resolve().parents[1] / "benchmarks" / "instances" / "gap"


@pytest.fixture(autouse=True, scope="module")
def _compiled():
    # numba compiles the search on first use (seconds in a fresh checkout):
    # not part of any time limit asserted below
    from gridopt.staffing._gap_ts import warmup

    warmup()


def feasible_assignments(cost, weight, capacity):
    """Every assignment within the capacities, with its cost (brute force)."""
    m, n = cost.shape
    for assign in itertools.product(range(m), repeat=n):
        load = np.zeros(m)
        for j, i in enumerate(assign):
            load[i] += weight[i, j]
        if (load <= capacity).all():
            yield assign, sum(cost[i, j] for j, i in enumerate(assign))


def brute_force(cost, weight, capacity):
    values = [val for _, val in feasible_assignments(cost, weight, capacity)]
    return min(values) if values else None


def tiny_tight_instance(seed):
    """3 agents x 6 jobs with capacities at 80% of the average load (type D-like)."""
    rng = np.random.default_rng(seed)
    m, n = 3, 6
    cost = rng.integers(1, 30, size=(m, n))
    weight = rng.integers(1, 10, size=(m, n))
    return cost, weight, np.full(m, int(weight.sum() * 0.8 / m))


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 3),
    n=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_matches_brute_force(m, n, seed):
    rng = np.random.default_rng(seed)
    cost = rng.integers(-5, 20, size=(m, n))
    weight = rng.integers(0, 10, size=(m, n))
    capacity = rng.integers(5, 25, size=m)
    best = brute_force(cost, weight, capacity)
    if best is None:
        with pytest.raises(InfeasibleError):
            solve_gap(cost, weight, capacity, time_limit_s=5)
        return
    r = solve_gap(cost, weight, capacity, time_limit_s=5)
    assert r.status == "optimal"
    assert r.objective == best
    assert r.bound == best
    load = np.bincount(r.assign, weights=weight[r.assign, np.arange(n)], minlength=m)
    assert (load <= capacity).all()
    assert r.objective == cost[r.assign, np.arange(n)].sum()


def test_gap1_published_optimum_max_and_min():
    cost, weight, capacity = read_instance(INSTANCES / "cattrysse1994" / "gap1-0")
    r = solve_gap(-cost, weight, capacity, time_limit_s=10)
    assert -r.objective == 336  # OR-Library maximum for c515-1
    assert r.status == "optimal"
    r = solve_gap(cost, weight, capacity, time_limit_s=10)
    assert r.objective == 261  # minimisation optimum (fontanf table)
    assert isinstance(r, GapResult)
    assert "optimal" in r.summary()


def test_larger_instance_uses_lp_path_and_reports_bound():
    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "a10200")
    r = solve_gap(cost, weight, capacity, time_limit_s=10)
    assert r.bound <= 2623 <= r.objective
    assert r.objective <= 2623 * 1.01
    assert r.stats["lp_bound"] is not None
    n = cost.shape[1]
    load = np.bincount(r.assign, weights=weight[r.assign, np.arange(n)], minlength=cost.shape[0])
    assert (load <= capacity).all()


def test_float_costs_are_scaled_back():
    cost = np.array([[0.5, 1.25], [1.0, 0.25]])
    r = solve_gap(cost, np.ones((2, 2)), [1, 1], time_limit_s=5)
    assert r.objective == pytest.approx(0.75)
    assert r.assign.tolist() == [0, 1]


def test_infeasible_job_fits_nowhere():
    with pytest.raises(InfeasibleError) as exc:
        solve_gap([[1, 1]], [[1, 9]], [5], time_limit_s=5)
    assert exc.value.numbers["jobs_fitting_nowhere"] == 1


def test_infeasible_total_capacity():
    with pytest.raises(InfeasibleError, match="need at least"):
        solve_gap(np.ones((2, 4)), np.full((2, 4), 3), [5, 5], time_limit_s=5)


@pytest.mark.parametrize(
    ("cost", "weight", "capacity", "match"),
    [
        (np.ones((2, 3)), np.ones((3, 2)), [1, 1], "shape"),
        (np.ones((2, 3)), np.ones((2, 3)), [1, 1, 1], "agents"),
        (np.ones((2, 3)), -np.ones((2, 3)), [1, 1], "negative"),
        (np.full((2, 3), np.nan), np.ones((2, 3)), [1, 1], "non-finite"),
        (np.ones((0, 3)), np.ones((0, 3)), [], "non-empty"),
    ],
)
def test_bad_input(cost, weight, capacity, match):
    with pytest.raises(InputError, match=match):
        solve_gap(cost, weight, capacity, time_limit_s=5)


def test_bad_time_limit():
    with pytest.raises(InputError, match="time_limit_s"):
        solve_gap([[1]], [[1]], [1], time_limit_s=0)


def test_tabu_path_on_type_d_is_feasible_and_close():
    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "d10100")
    r = solve_gap(cost, weight, capacity, time_limit_s=3)
    n = cost.shape[1]
    load = np.bincount(r.assign, weights=weight[r.assign, np.arange(n)], minlength=cost.shape[0])
    assert (load <= capacity).all()
    assert r.objective == cost[r.assign, np.arange(n)].sum()
    assert r.bound <= 6347 <= r.objective <= 6347 * 1.03  # published optimum 6347
    assert r.stats["tabu"] is not None
    assert r.runtime_s < 3 + 2  # the time limit holds (slack for a loaded machine)


def test_search_stops_early_at_the_lp_bound():
    # Ample capacity: the LP bound (every job at its cheapest agent) is optimal,
    # so the searches stop as soon as one reaches it instead of using 20 s.
    rng = np.random.default_rng(3)
    cost = rng.integers(1, 100, size=(10, 100))
    weight = np.ones((10, 100))
    r = solve_gap(cost, weight, np.full(10, 100), time_limit_s=20)
    assert r.status == "optimal"
    assert r.objective == cost.min(axis=0).sum()
    assert r.runtime_s < 10


def test_tabu_portfolio_directly():
    from gridopt.staffing._gap import _lp
    from gridopt.staffing._gap_ts import tabu_portfolio

    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "c10100")
    allowed = weight <= capacity[:, None]
    lower, red, _ = _lp(cost, weight, capacity, allowed)
    sol, val, proven = tabu_portfolio(
        cost, weight, capacity, red, allowed, np.argmin(red, axis=0),
        deadline=time.perf_counter() + 1.0, seed=1, threads=2,
    )  # fmt: skip
    assert sol is not None
    assert not proven  # no LP bound given: the CP-SAT thread never proves
    assert val == cost[sol, np.arange(100)].sum()
    assert lower <= 1402 <= val <= 1402 * 1.02  # published optimum 1402


def test_easy_instance_is_proven_early():
    # Type A: the CP-SAT thread proves the reduced-cost-fixed model optimal
    # long before the 30 s limit (it used to run the whole search phase).
    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "a20200")
    r = solve_gap(cost, weight, capacity, time_limit_s=30)
    assert r.status == "optimal" and r.objective == 2339
    assert r.runtime_s < 15


def test_yagiura_1600_jobs_returns_feasible_answer_under_short_limit():
    # Regression: 40 x 1600 type D used to come back with no assignment at
    # 8-10 s on a loaded machine. The compiled greedy runs first, so even a
    # limit shorter than the LP's solve time returns a feasible answer with
    # an honest bound.
    cost, weight, capacity = read_instance(INSTANCES / "yagiura2004" / "d401600")
    m, n = cost.shape
    for limit in (0.5, 3.0):
        r = solve_gap(cost, weight, capacity, time_limit_s=limit)
        assert r.status in ("feasible", "optimal")
        assert (r.assign >= 0).all()
        load = np.bincount(r.assign, weights=weight[r.assign, np.arange(n)], minlength=m)
        assert (load <= capacity).all()
        assert r.objective == cost[r.assign, np.arange(n)].sum()
        assert r.bound <= 97105 <= r.objective  # best known 97105
        assert np.isfinite(r.gap)
        assert r.runtime_s < limit + 2.0


def test_knapsack_min_matches_brute_force():
    from gridopt.staffing._gap_ts import knapsack_min

    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 9))
        r = rng.normal(0, 5, size=n)
        w = rng.integers(0, 10, size=n)
        cap = int(rng.integers(0, 20))
        out = np.zeros(n, dtype=np.int64)
        val = knapsack_min(r, w, cap, out)
        best = min(
            sum(r[j] for j in range(n) if s >> j & 1)
            for s in range(2**n)
            if sum(w[j] for j in range(n) if s >> j & 1) <= cap
        )
        assert val == pytest.approx(best)
        assert out @ w <= cap and out @ r == pytest.approx(val)


def test_knapsack_bound_beats_lp_bound():
    from gridopt.staffing._gap import _lp
    from gridopt.staffing._gap_fix import knapsack_subgradient

    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "d20100")
    allowed = weight <= capacity[:, None]
    lower, _, duals = _lp(cost, weight, capacity, allowed)
    kb, _ = knapsack_subgradient(
        cost, weight, capacity, allowed, duals, 6300, time.perf_counter() + 5, 400
    )
    assert lower + 20 < kb <= 6185  # LP 6142.5, optimum 6185


def test_knapsack_forced_matches_brute_force():
    from gridopt.staffing._gap_fix import knapsack_forced

    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(1, 8))
        r = rng.integers(-20, 10, size=n).astype(float)
        w = rng.integers(0, 10, size=n)
        cap = int(rng.integers(0, 20))
        ok = rng.random(n) < 0.8
        z_in, z_out = np.empty(n), np.empty(n)
        z = knapsack_forced(r, w, cap, ok, z_in, z_out)
        best, best_in, best_out = np.inf, np.full(n, np.inf), np.full(n, np.inf)
        for x in itertools.product([0, 1], repeat=n):
            x = np.array(x)
            if (x.astype(bool) & ~ok).any() or w @ x > cap:
                continue
            v = r @ x
            best = min(best, v)
            best_in = np.where(x == 1, np.minimum(best_in, v), best_in)
            best_out = np.where(x == 0, np.minimum(best_out, v), best_out)
        assert z == pytest.approx(best)
        np.testing.assert_allclose(z_in, best_in)
        np.testing.assert_allclose(z_out, best_out)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_penalties_and_fixing_never_cut_off_the_optimum(seed):
    # tiny instances: every optimal assignment (brute force) costs at least
    # L + pen[i, j] for each of its pairs, and fix_pairs with the optimum + 1
    # as incumbent neither drops one of its pairs nor forces another
    from gridopt.staffing._gap import _lp
    from gridopt.staffing._gap_fix import fix_pairs, knapsack_penalties

    cost, weight, capacity = tiny_tight_instance(seed)
    m, n = cost.shape
    allowed = weight <= capacity[:, None]
    solutions = list(feasible_assignments(cost, weight, capacity))
    if not solutions:
        return
    best = min(val for _, val in solutions)
    optima = [assign for assign, val in solutions if val == best]
    lp = _lp(cost, weight, capacity, allowed)
    duals = lp[2] if lp is not None else np.zeros(n)
    lag, u, pen = knapsack_penalties(
        cost, weight, capacity, allowed, duals, best + 5, time.perf_counter() + 5
    )
    assert lag <= best + 1e-6
    _, drop, force = fix_pairs(cost, weight, capacity, allowed, u, best + 1)
    for assign in optima:
        for j, i in enumerate(assign):
            assert lag + pen[i, j] <= best + 1e-6
            assert not drop[i, j]
        for i in range(m):
            for j in range(n):
                assert not (force[i, j] and assign[j] != i)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_dive_solutions_are_feasible_and_its_root_bounds_the_optimum(seed):
    # tiny instances against brute force: the master LP at the root lies
    # between the compact LP bound and the optimum, every assignment the dive
    # reports is feasible at the cost it says, and none undercuts the optimum
    from gridopt.staffing._gap import _lp
    from gridopt.staffing._gap_dive import dive

    cost, weight, capacity = tiny_tight_instance(seed)
    m, n = cost.shape
    best = brute_force(cost, weight, capacity)
    if best is None or (weight > capacity[:, None]).any():
        return
    found = []
    info = {}
    root = dive(
        cost, weight, capacity, deadline=time.perf_counter() + 10, upper=lambda: np.inf,
        on_solution=lambda val, assign: found.append((val, assign.copy())), max_disc=3, info=info,
    )  # fmt: skip
    lp = _lp(cost, weight, capacity, weight <= capacity[:, None])
    assert lp[0] - 1e-6 <= root <= best + 1e-6
    assert info["dive_nodes"] >= 1
    for val, assign in found:
        assert (assign >= 0).all()
        load = np.bincount(assign, weights=weight[assign, np.arange(n)], minlength=m)
        assert (load <= capacity).all()
        assert val == cost[assign, np.arange(n)].sum() >= best
    # each report improves on the one before
    assert all(later[0] < earlier[0] for earlier, later in itertools.pairwise(found))


def test_dive_on_type_d_beats_the_search_alone():
    # d20100 (optimum 6185): one dive, 8 s, no other search; the tabu
    # portfolio alone ends at 6,213-6,233 after 30 s
    from gridopt.staffing._gap_dive import dive

    cost, weight, capacity = read_instance(INSTANCES / "chu1997" / "d20100")
    found = []
    root = dive(
        cost, weight, capacity, deadline=time.perf_counter() + 8, upper=lambda: np.inf,
        on_solution=lambda val, assign: found.append(val),
    )  # fmt: skip
    assert 6176 <= root <= 6177  # the Dantzig-Wolfe bound, 6,176.14
    assert found and min(found) <= 6205


def test_dive_handles_large_costs_and_infeasible_residuals():
    # costs in the millions (metres of travel scaled to integers): the
    # artificial columns must stay dearer than any real assignment
    from gridopt.staffing._gap_dive import dive

    cost, weight, capacity = tiny_tight_instance(5)
    cost = cost * 1_000_003
    best = brute_force(cost, weight, capacity)
    found = []
    root = dive(
        cost, weight, capacity, deadline=time.perf_counter() + 10, upper=lambda: np.inf,
        on_solution=lambda val, assign: found.append(val), max_disc=6,
    )  # fmt: skip
    assert best is not None and root <= best + 1e-6
    assert found and min(found) >= best
    # two jobs that both fill the one agent: no cover exists, the root says so
    root = dive(
        np.array([[1, 1]]), np.array([[2, 2]]), np.array([2]), deadline=time.perf_counter() + 5,
        upper=lambda: np.inf, on_solution=lambda val, assign: found.append(-1),
    )  # fmt: skip
    assert root == np.inf and -1 not in found
