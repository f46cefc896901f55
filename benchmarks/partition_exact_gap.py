"""Gap of the grid-division heuristic to the CP-SAT proven optimum on small instances.

Goal (issue 3): the heuristic's objective within 3% of the exact optimum on small instances.

Run: ``.venv/bin/python benchmarks/partition_exact_gap.py [--instances 10] [--time-limit-s 120]``

Instances: seeded jittered lattices of 40-120 buildings (15 m squares 30 m apart, 15-60
households each), cut into grids of 100-150 households (so a few to a dozen grids each),
and the same lattices with the default band 200-300 where they hold enough households.
Prints one row per instance: buildings, households, heuristic objective, exact objective
and status, proven bound, gap of the heuristic to the optimum (to the bound where not
proven), and seconds of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gridopt.partition import partition_grids
from test_partition_exact import _lattice

SHAPES = [(8, 5), (9, 5), (10, 5), (8, 7), (10, 6), (9, 7), (12, 6), (10, 8), (12, 9), (12, 10)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--time-limit-s", type=float, default=120.0)
    ap.add_argument("--lo", type=int, default=100)
    ap.add_argument("--hi", type=int, default=150)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average at start: {os.getloadavg()}")
    head = (
        f"{'instance':<14}{'bldgs':>6}{'hh':>6}{'heur obj':>10}{'heur s':>8}"
        f"{'exact obj':>11}{'status':>12}{'bound':>10}{'exact s':>9}{'gap %':>8}"
    )
    print(head)
    gaps = []
    for k in range(args.instances):
        nx_, ny = SHAPES[k % len(SHAPES)]
        b = _lattice(nx_, ny, 100 + k, 15, 60)
        opts = {"min_households": args.lo, "max_households": args.hi}
        t = time.perf_counter()
        heur = partition_grids(b, seed=0, **opts)
        th = time.perf_counter() - t
        t = time.perf_counter()
        exact = partition_grids(b, method="exact", time_limit_s=args.time_limit_s, **opts)
        te = time.perf_counter() - t
        ref = exact.objective if exact.status == "optimal" else (exact.bound or float("nan"))
        best = min(exact.objective, heur.objective)
        # proven: gap to the optimum; else an upper bound on it (to the best bound)
        gap = 100 * (heur.objective - ref) / ref if ref else float("nan")
        if exact.status == "optimal":
            gaps.append(gap)
        print(
            f"{f'lattice-{k}':<14}{len(b):>6}{int(b['households'].sum()):>6}"
            f"{heur.objective:>10.1f}{th:>8.2f}{exact.objective:>11.1f}{exact.status:>12}"
            f"{(exact.bound or float('nan')):>10.1f}{te:>9.1f}{gap:>8.2f}"
            + ("" if best >= ref * (1 - 1e-9) else "  (bound check failed)")
        )
    if gaps:
        print(
            f"proven instances: {len(gaps)}; heuristic gap to optimum: mean {np.mean(gaps):.2f}%, "
            f"max {np.max(gaps):.2f}%"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
