"""Time of the GAP dive's root column generation, per instance and LP solver.

Where :func:`gridopt.staffing.solve_gap` starts a dive depends on how long the
root of the master LP takes (``_DIVE_S_PER_UNIT * n^2 * n/m`` seconds must fit
a quarter of the limit); this prints that time, the root bound and the
columns generated, one core, for each instance given (a file, or a name under
``../shared/benchmarks/gap/chu1997`` or ``yagiura2004``).

Run: ``.venv/bin/python benchmarks/gap_dive_root.py d20100 d20200 c40400 [--lp GLOP]``

The last column names the LP that finished the root: ``CLP`` after ``--lp
GLOP-presolve`` means GLOP failed and the master fell back to CLP.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gridopt.bench.gap import read_instance
from gridopt.staffing import _gap_dive
from gridopt.staffing._gap import _DIVE_S_PER_UNIT

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gap"


def _path(name: str) -> Path:
    if Path(name).exists():
        return Path(name)
    for group in ("chu1997", "yagiura2004"):
        if (SHARED / group / name).exists():
            return SHARED / group / name
    raise SystemExit(f"no instance {name!r} here or under {SHARED}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instances", nargs="+")
    ap.add_argument(
        "--lp",
        choices=["GLOP", "GLOP-presolve", "CLP"],
        default="GLOP",
        help="GLOP without presolve (the default in gridopt), GLOP with presolve, or CLP",
    )
    args = ap.parse_args()
    if args.lp == "CLP":
        _gap_dive._LP_SOLVER, _gap_dive._LP_PARAMS = "CLP", ""
    elif args.lp == "GLOP-presolve":
        _gap_dive._LP_PARAMS = ""
    from gridopt.staffing._gap_ts import warmup

    warmup()
    print(
        f"{'instance':10} {'m':>3} {'n':>5} {'root bound':>12} {'columns':>8} {'root s':>7} {'model s':>8} lp"
    )
    for name in args.instances:
        c, a, b = read_instance(_path(name))
        m, n = c.shape
        t0 = time.perf_counter()
        master = _gap_dive.Master(c, a, b)
        res = _gap_dive.column_generation(
            master, list(range(m)), np.zeros(n, dtype=bool), 0.0, None, t0 + 300
        )
        took = time.perf_counter() - t0
        bound = "timeout" if res is None else f"{res[1]:.2f}"
        model = _DIVE_S_PER_UNIT * n * n * n / m
        print(
            f"{name:10} {m:3d} {n:5d} {bound:>12} {len(master.cols):8d} {took:7.2f} {model:8.2f} {master._solver_name}"
        )


if __name__ == "__main__":
    main()
