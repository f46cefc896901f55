"""Budgeted MIPs (``gridopt.solvers._mip``): SCIP charged what it reports, deterministically."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder as mb

import gridopt.solvers._clock as _clock
from gridopt.solvers._mip import scip_solve


def _assignment_model(cost: np.ndarray, demand: np.ndarray, capacity: np.ndarray) -> mb.Model:
    """Each client to one site within capacity: x[i, j] binaries, row-major."""
    n, m = cost.shape
    rows = np.concatenate((np.repeat(np.arange(n), m), n + np.tile(np.arange(m), n)))
    cols = np.concatenate((np.arange(n * m), np.arange(n * m)))
    vals = np.concatenate((np.ones(n * m), np.repeat(demand, m)))
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n + m, n * m))
    lb = np.concatenate((np.ones(n), np.full(m, -np.inf)))
    ub = np.concatenate((np.ones(n), capacity))
    model = mb.Model()
    model.helper.fill_model_from_sparse_data(
        np.zeros(n * m), np.ones(n * m), cost.ravel(), lb, ub, a
    )
    for j in range(n * m):
        model.helper.set_var_integrality(j, True)
    return model


def _brute(cost: np.ndarray, demand: np.ndarray, capacity: np.ndarray) -> float:
    n, m = cost.shape
    best = np.inf
    for choice in itertools.product(range(m), repeat=n):
        load = np.bincount(choice, weights=demand, minlength=m)
        if (load <= capacity).all():
            best = min(best, float(cost[np.arange(n), choice].sum()))
    return best


def test_scip_solve_is_optimal_and_charges_the_same_work_twice():
    rng = np.random.default_rng(3)
    cost = rng.integers(1, 50, size=(7, 3)).astype(float)
    demand = rng.integers(1, 5, size=7).astype(float)
    capacity = np.full(3, demand.sum() / 2)
    charged = []
    for _ in range(2):
        with _clock.running(60.0) as clock:
            run = scip_solve(_assignment_model(cost, demand, capacity), 1.0)
        charged.append(clock.seconds)
        assert run.optimal
        x = run.values.reshape(cost.shape) > 0.5
        assert (x.sum(axis=1) == 1).all()
        assert float(cost[x].sum()) == _brute(cost, demand, capacity)
    assert charged[0] > 0 and charged[0] == charged[1]


def test_scip_solve_reports_an_infeasible_model():
    cost = np.ones((3, 2))
    demand = np.full(3, 2.0)
    run = scip_solve(_assignment_model(cost, demand, np.ones(2)), 1.0)
    assert run.status == "INFEASIBLE" and run.values is None
