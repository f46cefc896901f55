"""Exact mode of partition_grids: proven optima, checked against brute force, and the
heuristic's gap to them, on compactness alone (``boundary_weight=0``): the priced
boundaries are checked against brute force in test_partition_graph."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from _brute import best_partition
from gridopt.adjacency import _adjacency
from gridopt.partition import partition_grids
from gridopt.partition._model import _grid_cost, _Params


def _lattice(nx_: int, ny: int, seed: int, lo_h: int, hi_h: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-4, 4, size=(nx_ * ny, 2))
    boxes = [
        shapely.box(i * 30 + dx, j * 30 + dy, i * 30 + dx + 15, j * 30 + dy + 15)
        for (j, i), (dx, dy) in zip(
            ((j, i) for j in range(ny) for i in range(nx_)), jitter, strict=False
        )
    ]
    h = rng.integers(lo_h, hi_h + 1, len(boxes))
    return gpd.GeoDataFrame(
        {"households": h}, geometry=boxes, crs=32651, index=pd.RangeIndex(len(boxes))
    )


def _brute_force(b: gpd.GeoDataFrame, lo: int, hi: int, bw: float = 1000.0) -> float:
    """Optimal objective by dynamic programming over subsets (n <= 12)."""
    adj = _adjacency(b.geometry.to_numpy())
    n = len(b)
    w = b["households"].to_numpy().astype(np.int64)
    nbr = [0] * n
    for i, j in zip(adj.i.tolist(), adj.j.tolist(), strict=False):
        nbr[i] |= 1 << j
        nbr[j] |= 1 << i
    p = _Params(lo, hi, (lo + hi) / 2, bw, 0, 1.0)

    def part_cost(s: int) -> float | None:
        idx = [v for v in range(n) if s >> v & 1]
        if not lo <= int(w[idx].sum()) <= hi:
            return None
        return _grid_cost(adj.xy, w, np.array(idx), p)[0]

    return best_partition(nbr, part_cost) / float(w.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_matches_brute_force(seed):
    b = _lattice(4, 3, seed, 20, 70)  # 12 buildings, 3-5 grids of 100-150
    opt = _brute_force(b, 100, 150)
    if not math.isfinite(opt):
        pytest.skip("no partition into the band exists for this draw")
    part = partition_grids(
        b,
        min_households=100,
        max_households=150,
        method="exact",
        time_limit_s=30,
        boundary_weight=0,
    )
    assert part.status == "optimal"
    assert part.objective == pytest.approx(opt, rel=1e-9)
    assert part.bound == pytest.approx(opt, rel=1e-6)
    assert part.gap_pct == pytest.approx(0.0, abs=1e-6)
    assert (part.grids["kind"] == "regular").all()
    # the heuristic is never better than the proven optimum
    heur = partition_grids(b, min_households=100, max_households=150, seed=seed, boundary_weight=0)
    assert heur.objective >= opt * (1 - 1e-9)


def test_heuristic_gap_to_proven_optimum_is_small():
    """Mean gap of the heuristic to the CP-SAT optimum on seeded small lattices <= 3 %."""
    gaps = []
    for seed in range(4):
        b = _lattice(5, 4, 10 + seed, 15, 60)  # 20 buildings, ~750 households
        exact = partition_grids(
            b,
            min_households=100,
            max_households=150,
            method="exact",
            time_limit_s=30,
            boundary_weight=0,
        )
        assert exact.status == "optimal", exact.summary()
        heur = partition_grids(
            b, min_households=100, max_households=150, seed=seed, boundary_weight=0
        )
        assert heur.objective >= exact.bound * (1 - 1e-9)
        gaps.append(100 * (heur.objective - exact.objective) / exact.objective)
    assert np.mean(gaps) <= 3.0, gaps
    assert max(gaps) <= 6.0, gaps


# proven optima of instances 0, 1 and 7 of benchmarks/partition_exact_gap.py (40, 45 and
# 80 buildings, band 100-150), from method="exact" with a 60-120 s limit (status optimal),
# rounded down: the exact mode takes 20-50 s on them, too long for the suite
_PROVEN = [((8, 5), 100, 615.6), ((9, 5), 101, 649.9), ((10, 8), 107, 571.8)]


@pytest.mark.parametrize(("shape", "seed", "optimum"), _PROVEN)
def test_heuristic_within_3pct_of_proven_optimum_40_plus(shape, seed, optimum):
    """With the exact polish of neighbouring grids, the heuristic is within 3 % (issue 3)."""
    b = _lattice(*shape, seed, 15, 60)
    heur = partition_grids(b, min_households=100, max_households=150, seed=0, boundary_weight=0)
    assert heur.objective >= optimum * (1 - 1e-6)
    gap = 100 * (heur.objective - optimum) / optimum
    assert gap <= 3.0, (gap, heur.summary())


# small tower-heavy synthetic cities (streets, a river, towers above the band) on which
# the heuristic leaves an undersized grid
_POCKET_CITIES = [(80, 1), (120, 7), (160, 3)]


def test_undersized_grids_within_10pct_of_exact_mode():
    """Pockets no larger than they must be: the heuristic's undersized grids, summed over
    small tower-heavy cities, stay within 10% of the exact model's count."""
    from gridopt.synthetic import synthetic_city

    heur_n = exact_n = 0
    for n, seed in _POCKET_CITIES:
        city = synthetic_city(n, seed=seed)
        kw = dict(streets=city.streets, communities=city.communities, seed=0)
        heur = partition_grids(city.buildings, time_limit_s=10, **kw)
        exact = partition_grids(city.buildings, method="exact", time_limit_s=8, **kw)
        for plan in (heur, exact):  # every household in exactly one grid
            assert plan.grids["households"].sum() == city.buildings["households"].sum()
        heur_n += int((heur.grids["kind"] == "undersized").sum())
        exact_n += int((exact.grids["kind"] == "undersized").sum())
    assert exact_n > 0  # the cities do make pockets
    assert heur_n <= math.floor(1.1 * exact_n), (heur_n, exact_n)


def test_exact_mode_keeps_its_time_limit():
    """CP-SAT's workers run outside the calling thread: the exact mode's limit is wall-clock
    (a thread-CPU budget gave the second component 166 s of a 20 s limit)."""
    import time

    from gridopt.synthetic import synthetic_city

    city = synthetic_city(200, seed=1)
    t0 = time.perf_counter()
    plan = partition_grids(
        city.buildings, streets=city.streets, communities=city.communities,
        method="exact", time_limit_s=5,
    )  # fmt: skip
    assert time.perf_counter() - t0 < 12
    assert plan.grids["households"].sum() == city.buildings["households"].sum()
