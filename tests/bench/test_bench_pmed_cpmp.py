"""Smoke tests of the pmed and cpmp benchmark families (quick mode, no peers)."""

from __future__ import annotations

import numpy as np
import pytest

from gridopt import datasets
from gridopt._errors import InputError
from gridopt.bench import cpmp, pmed
from gridopt.bench.runner import ROW_KEYS


def _instances(family: str):
    """The family's published instances in the shared data folder; skip when absent."""
    try:
        return datasets.benchmark_dir(family)
    except InputError as exc:
        pytest.skip(str(exc))


KEYS = set(ROW_KEYS)  # the row keys every family shares


def test_load_pmed_last_duplicate_edge_wins():
    inst = pmed.load_pmed(_instances("pmed") / "pmed1.txt")
    assert inst.cost.shape == (100, 100)
    assert inst.p == 5
    assert np.allclose(inst.cost, inst.cost.T)
    assert np.all(np.diag(inst.cost) == 0)


def test_pmed_quick_reaches_the_optima():
    _instances("pmed")
    seen = []
    rows = pmed.run(peers=False, quick=True, time_limit_s=20, progress=seen.append)
    assert [r["instance"] for r in rows] == ["pmed1", "pmed2"]
    assert seen == ["pmed1", "pmed2"]
    for r in rows:
        assert set(r) == KEYS
        assert r["objective"] == r["best_known"]
        assert r["status"] == "optimal"
        assert r["peer"] is None and r["ratio"] is None


def test_load_cpmp_conventions():
    oc = cpmp.load_cpmp(_instances("cpmp") / "osman_christofides" / "pmedcap01.txt")
    assert (oc.n, oc.p, oc.best_known) == (50, 5, 713.0)
    assert np.all(oc.cost() == np.floor(oc.cost()))
    sjc = cpmp.load_cpmp(_instances("cpmp") / "lorena_senne" / "SJC1.dat")
    assert (sjc.n, sjc.p) == (100, 10)
    assert sjc.capacity[0] == 720
    assert sjc.best_known == pytest.approx(17288.99)


def test_cpmp_quick_rows():
    _instances("cpmp")
    rows = cpmp.run(peers=False, quick=True, time_limit_s=5)
    assert [r["instance"] for r in rows] == ["pmedcap01", "SJC1"]
    for r in rows:
        assert set(r) == KEYS
        # feasible solutions never beat the published optimum / best known by more than rounding
        assert r["objective"] >= r["best_known"] - 0.01
        assert r["gap_pct"] < 15
        assert r["status"] in {"optimal", "feasible", "time_limit"}
