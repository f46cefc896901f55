"""The ``gap`` benchmark family: generalized assignment against published optima.

Instances (``benchmarks/instances/gap/``, see its README for sources):

- OR-Library gap1-gap12 (60 instances, 5-10 agents, 15-60 jobs). OR-Library
  publishes them as *maximisation*; they are solved that way here (minimise
  ``-profit``) and compared with the published maxima.
- Chu and Beasley (1997) types A-D (24 instances, 100-200 jobs), minimisation.
- Yagiura et al. (2004) types C, D, E (33 instances, up to 80 x 1600), minimisation.
- ``street-office-600``: the issue's street office, 600 grids and about 3,000
  staff (:func:`street_office`), solved by :func:`gridopt.staffing.assign_staff`
  with walking travel over the office's streets; no published value, so its gap
  is to the solver's own proven bound (goal: within 1% in under 60 s).

The peer is a plain CP-SAT model (no hint, default parameters, the same number
of workers), measured in the same run.

Default time limits (seconds per instance; ``time_limit_s`` sets one limit for
gridopt and the peer on every instance instead), chosen so that
``gridopt bench gap --peers`` fits about 13 minutes on an idle 2-core machine
and ``gridopt bench all --peers`` an hour:

- Chu-Beasley types C and D: 30 s for gridopt and for the peer, the issue's
  goal figure and the figure the peer is quoted at. Type D never finishes
  early (neither solver proves it), so these 6 x 2 x 30 s are the bulk of
  the family's time.
- OR-Library gap1-12 and Chu-Beasley types A and B: 10 s. Both solvers stop
  as soon as they prove optimality (gap1-12 in about a second, A/B mostly
  in under two); the limit is a safety net.
- Yagiura types C, D and E (up to 80 x 1600): 3 s for gridopt, enough for
  its greedy, Lagrangian bound and a short search (they are not a goal
  figure of the issue); the peer runs only on :data:`PEER_YAGIURA` (at the
  same limit), since its textbook model finds no or far worse solutions at
  these sizes and 33 runs of it would cost minutes for no information.
- The street office: 60 s, the issue's figure (it is proven optimal in about
  13 s); no peer (a textbook model of the whole staffing problem is not a
  published peer).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gridopt.bench._measure import measure

__all__ = ["DEFAULT_TIME_LIMITS_S", "PEER_YAGIURA", "read_instance", "run"]

#: Default seconds per instance by group, for gridopt and the peer alike (see
#: the module docstring); ``time_limit_s`` overrides all.
DEFAULT_TIME_LIMITS_S = {"orlib": 10.0, "chu_ab": 10.0, "chu_cd": 30.0, "yagiura": 3.0}

#: The street-office instance: name, lattice of grids (rows x cols of 150 m
#: squares), share of the standard's staff on hand, and its limit (the issue's
#: 60 s).
OFFICE_NAME = "street-office-600"
OFFICE_ROWS, OFFICE_COLS = 25, 24
OFFICE_COVERAGE = 0.95
OFFICE_TIME_LIMIT_S = 60.0

#: Yagiura instances the peer runs on by default: one mid-size of types D and
#: E and the two largest hard ones.
PEER_YAGIURA = ("d10400", "e20400", "d801600", "e801600")

_QUICK = ("cattrysse1994/gap1-0", "cattrysse1994/gap5-0")


def _repo_instances() -> Path:
    return Path(__file__).resolve().parents[3] / "benchmarks" / "instances" / "gap"


def read_instance(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an OR-Library GAP file: ``m n``, costs (m x n), weights (m x n), capacities (m).

    Returns
    -------
    tuple of numpy.ndarray
        ``(cost, weight, capacity)`` as int64 arrays.
    """
    values = np.array(Path(path).read_text().split(), dtype=np.int64)
    m, n = int(values[0]), int(values[1])
    need = 2 + 2 * m * n + m
    if values.size < need:
        from gridopt._errors import InputError

        raise InputError(
            f"{path}: expected {need} numbers for {m} agents x {n} jobs, found {values.size}."
        )
    cost = values[2 : 2 + m * n].reshape(m, n)
    weight = values[2 + m * n : 2 + 2 * m * n].reshape(m, n)
    capacity = values[2 + 2 * m * n : need]
    return cost, weight, capacity


def _group(name: str) -> str:
    if name.startswith("cattrysse1994/"):
        return "orlib"
    if name.startswith("chu1997/"):
        return "chu_cd" if name.split("/")[-1][0] in "cd" else "chu_ab"
    return "yagiura"


def _table(instances_dir: Path) -> list[dict]:
    with open(instances_dir / "combined_best_known_min.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def street_office(
    rows: int = OFFICE_ROWS, cols: int = OFFICE_COLS, *, seed: int = 0, cell_m: float = 150.0
) -> tuple[Any, Any]:
    """A synthetic street office: ``rows x cols`` square grids and the streets around them.

    Each grid is a ``cell_m`` square with 200-300 households (uniform, seeded);
    communities are blocks of 4 x 3 grids; one street office. The streets run
    along every grid edge (a lattice of residential streets), so walking travel
    follows them.

    Returns
    -------
    tuple of geopandas.GeoDataFrame
        ``(grids, streets)`` in a metric CRS (EPSG:32651).

    Examples
    --------
    >>> grids, streets = street_office(2, 3)
    >>> len(grids), len(streets), grids["community"].nunique()
    (6, 7, 1)
    """
    import geopandas as gpd
    from shapely.geometry import LineString, box

    rng = np.random.default_rng(seed)
    polys, comm = [], []
    for r in range(rows):
        for c in range(cols):
            polys.append(box(c * cell_m, r * cell_m, (c + 1) * cell_m, (r + 1) * cell_m))
            comm.append(f"c{r // 4}_{c // 3}")
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"g{i}" for i in range(len(polys))],
            "households": rng.integers(200, 301, len(polys)),
            "community": comm,
            "street": "street-1",
        },
        geometry=polys,
        crs=32651,
    )
    width, height = cols * cell_m, rows * cell_m
    lines = [LineString([(0, r * cell_m), (width, r * cell_m)]) for r in range(rows + 1)]
    lines += [LineString([(c * cell_m, 0), (c * cell_m, height)]) for c in range(cols + 1)]
    streets = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=32651)
    return grids, streets


def _office_row(time_limit_s: float) -> dict:
    """The street office through :func:`gridopt.staffing.assign_staff`, as a bench row."""
    from gridopt.staffing import assign_staff, synthetic_staff

    grids, streets = street_office()
    staff = synthetic_staff(grids, seed=0, coverage=OFFICE_COVERAGE)
    res = measure(
        lambda: assign_staff(grids, staff, streets=streets, time_limit_s=time_limit_s, seed=0)
    )
    plan = res.value
    party = int((staff["role"] == "party_member").sum())
    notes = [
        f"assign_staff; {len(staff) - party:,} grid workers, officers and mediators "
        f"({OFFICE_COVERAGE:.0%} of the standard's) and {party:,} party members; "
        f"{int(grids['households'].sum()):,} households",
        f"travel {plan.metrics.get('travel_method')} over a 150 m street lattice "
        f"({plan.metrics.get('travel_pairs_straight_line', 0)} pairs beyond the walking cutoff "
        "by straight line)",
        f"gap to its own proven bound {plan.bound:.0f} (no published value)",
        f"limit {time_limit_s:g}s",
        f"{plan.metrics.get('people_moved', 'n/a')} moved",
    ]
    if hasattr(os, "getloadavg"):
        notes.append(f"load {os.getloadavg()[0]:.1f}")
    return {
        "family": "gap",
        "instance": OFFICE_NAME,
        "size": f"{len(grids)} grids, {len(staff) - party:,} staff",
        "objective": float(plan.objective),
        "best_known": None,
        "gap_pct": round(100.0 * plan.gap, 3),
        "seconds": round(res.seconds, 3),
        "peak_mb": round(res.peak_mb, 1),
        "status": plan.status,
        "peer": None,
        "peer_objective": None,
        "peer_seconds": None,
        "ratio": None,
        "notes": "; ".join(notes),
    }


def _plain_cpsat(
    cost: np.ndarray, weight: np.ndarray, capacity: np.ndarray, time_limit_s: float, workers: int
) -> tuple[float, str]:
    """The peer: textbook CP-SAT model, default parameters, no hint."""
    from ortools.sat.python import cp_model

    m, n = cost.shape
    model = cp_model.CpModel()
    x = [[model.new_bool_var(f"x{i}_{j}") for j in range(n)] for i in range(m)]
    for j in range(n):
        model.add_exactly_one(x[i][j] for i in range(m))
    for i in range(m):
        model.add(sum(int(weight[i, j]) * x[i][j] for j in range(n)) <= int(capacity[i]))
    model.minimize(sum(int(cost[i, j]) * x[i][j] for i in range(m) for j in range(n)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return float(solver.objective_value), solver.status_name(status).lower()
    return math.nan, solver.status_name(status).lower()


def run(
    instances_dir: Path | None = None,
    *,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    instances: Sequence[str] | None = None,
) -> list[dict]:
    """Solve every GAP instance with :func:`gridopt.staffing.solve_gap` (and the peer).

    The street office (:data:`OFFICE_NAME`) comes last, in a full run on the
    repository's instances or when ``instances`` names it.

    Parameters
    ----------
    instances_dir
        Folder laid out like ``benchmarks/instances/gap`` (default: the repository's).
    peers
        Also run the plain CP-SAT peer on each instance.
    time_limit_s
        Seconds per instance for gridopt and for the peer; default per group,
        see :data:`DEFAULT_TIME_LIMITS_S`.
    quick
        Only gap1-0 and gap5-0 with a 5 s limit (for the test suite).
    progress
        Called with the instance name before each instance.
    instances
        Only these instances, by file name (``"d20100"``) or path below the
        folder (``"chu1997/d20100"``), or :data:`OFFICE_NAME`; default all.

    Returns
    -------
    list of dict
        One row per instance with the keys every benchmark family shares.
    """
    from gridopt.staffing import solve_gap
    from gridopt.staffing._gap import _cores

    root = Path(instances_dir) if instances_dir is not None else _repo_instances()
    rows = _table(root)
    if quick:
        rows = [r for r in rows if r["file"] in _QUICK]
    if instances is not None:
        wanted = set(instances)
        rows = [r for r in rows if r["file"] in wanted or r["file"].split("/")[-1] in wanted]
    workers = min(2, _cores()) if quick else _cores()
    if not quick:
        from gridopt.staffing._gap_ts import warmup

        warmup()  # numba compilation is a one-off, not part of any instance's time
    out = []
    for rec in rows:
        name = rec["file"]
        path = root / name
        if not path.exists():
            continue
        group = _group(name)
        limit = time_limit_s or (5.0 if quick else DEFAULT_TIME_LIMITS_S[group])
        if progress is not None:
            progress(name)
        cost, weight, capacity = read_instance(path)
        m, n = cost.shape
        maximise = group == "orlib"
        # OR-Library states gap1-12 as maximisation: minimise -profit.
        sign = -1 if maximise else 1
        if maximise:
            best = float(rec["orlib_max_optimum"])
        else:
            best = float(rec["best_known_upper"])
        signed = sign * cost
        res = measure(
            lambda c=signed, a=weight, b=capacity, t=limit: solve_gap(
                c, a, b, time_limit_s=t, num_workers=workers
            )
        )
        r = res.value
        obj = sign * r.objective
        bound = sign * r.bound
        gap_pct = 100.0 * sign * (obj - best) / abs(best) + 0.0  # no "-0.0"
        notes = [f"{'max' if maximise else 'min'}", f"bound {bound:g}", f"limit {limit:g}s"]
        if hasattr(os, "getloadavg"):
            # timings on a shared machine mean little without the load
            notes.append(f"load {os.getloadavg()[0]:.1f}")
        if rec["proven_optimal"] != "yes" and not maximise:
            notes.append(f"open: LB {rec['lower_bound']}")
        row = {
            "family": "gap",
            "instance": name.split("/")[-1] + (" (max)" if maximise else ""),
            "size": f"m={m} n={n}",
            "objective": obj,
            "best_known": best,
            "gap_pct": round(gap_pct, 3),
            "seconds": round(res.seconds, 3),
            "peak_mb": round(res.peak_mb, 1),
            "status": r.status,
            "peer": None,
            "peer_objective": None,
            "peer_seconds": None,
            "ratio": None,
            "notes": "; ".join(notes),
        }
        short = name.split("/")[-1]
        if peers and time_limit_s is None and group == "yagiura" and short not in PEER_YAGIURA:
            row["peer"] = "cp-sat plain"
            row["notes"] += (
                "; peer not run by default (Yagiura: only " + ", ".join(PEER_YAGIURA) + ")"
            )
        elif peers:
            t0 = time.perf_counter()
            pobj, pstatus = _plain_cpsat(sign * cost, weight, capacity, limit, workers)
            psec = time.perf_counter() - t0
            row.update(
                peer="cp-sat plain",
                peer_objective=sign * pobj,
                peer_seconds=round(psec, 3),
                ratio=round(psec / res.seconds, 3) if res.seconds > 0 else None,
            )
            row["notes"] += f"; peer {pstatus}"
        out.append(row)
    office = (
        OFFICE_NAME in set(instances)
        if instances is not None
        else not quick and instances_dir is None
    )
    if office:
        if progress is not None:
            progress(OFFICE_NAME)
        out.append(_office_row(time_limit_s or OFFICE_TIME_LIMIT_S))
    return out
