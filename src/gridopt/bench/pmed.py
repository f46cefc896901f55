"""Benchmark family ``pmed``: OR-Library uncapacitated p-median pmed1-40 (Beasley 1985).

Every instance is solved by :func:`gridopt.solvers.solve_p_median` and, with
``peers=True``, by spopt's ``PMedian`` with HiGHS (the usual open-source route) in a
separate process: OR-Tools and highspy ship incompatible builds of HiGHS and cannot
be loaded into one process.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gridopt.bench._measure import measure, run_peer_script
from gridopt.bench._rows import add_note, add_peer, result_row, wall_cap_s
from gridopt.datasets import benchmark_dir
from gridopt.solvers import solve_p_median

__all__ = ["PmedInstance", "load_pmed", "load_pmed_optima", "run"]

QUICK = ("pmed1", "pmed2")
DEFAULT_TIME_LIMIT_S = 60.0
# gridopt's limit is a work budget (solve_p_median's work_limit_s); the wall clock a cap
LIMIT_UNIT = "work-s"
# the peer's limit (it builds n^2 variables), and the instances it runs on by default
# (n <= 200 plus the published references, with a longer limit); why: benchmarks/NOTES.md
DEFAULT_PEER_TIME_LIMIT_S = 30.0
PEER_REFERENCE = {"pmed15": 120.0, "pmed20": 120.0, "pmed30": 150.0}
PEER_NAME = "spopt PMedian + HiGHS"
PEER_DEFAULT = frozenset({*(f"pmed{k}" for k in range(1, 11)), *PEER_REFERENCE})


@dataclass(frozen=True)
class PmedInstance:
    """An OR-Library p-median instance: shortest-path cost matrix and p."""

    name: str
    cost: np.ndarray
    p: int

    @property
    def n(self) -> int:
        return self.cost.shape[0]


def default_dir() -> pathlib.Path:
    """``benchmarks/pmed`` of the shared data folder (:func:`gridopt.datasets.benchmark_dir`)."""
    return benchmark_dir("pmed")


def load_pmed(path: str | pathlib.Path) -> PmedInstance:
    """Read an OR-Library ``pmedN.txt`` file into its all-pairs shortest-path matrix.

    Duplicate edges: the LAST cost in the file wins (the OR-Library convention that
    reproduces the published optima), then all-pairs shortest paths.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    path = pathlib.Path(path)
    tokens = path.read_text().split()
    n, m, p = (int(t) for t in tokens[:3])
    edges = np.array(tokens[3 : 3 + 3 * m], dtype=np.int64).reshape(m, 3)
    i, j, c = edges[:, 0] - 1, edges[:, 1] - 1, edges[:, 2].astype(float)
    # last occurrence wins: keep, for each unordered pair, the final row
    a, b = np.minimum(i, j), np.maximum(i, j)
    key = a * n + b
    _, last_rev = np.unique(key[::-1], return_index=True)
    keep = m - 1 - last_rev
    a, b, c = a[keep], b[keep], c[keep]
    loops = a != b
    a, b, c = a[loops], b[loops], c[loops]
    g = csr_matrix((c, (a, b)), shape=(n, n))
    dist = shortest_path(g, method="D", directed=False)
    return PmedInstance(path.stem, dist, p)


def load_pmed_optima(directory: str | pathlib.Path) -> dict[str, float]:
    """Optimal values from ``pmedopt.txt``."""
    out: dict[str, float] = {}
    for line in (pathlib.Path(directory) / "pmedopt.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("pmed"):
            out[parts[0]] = float(parts[1])
    return out


def _peer_script() -> str:
    return r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
# no gridopt import here: it may load OR-Tools, whose HiGHS clashes with highspy's
args = json.loads(sys.argv[1])
cost = np.load(args["cost"])
n, p = cost.shape[0], args["p"]
try:
    import pulp
    from spopt.locate import PMedian
except ImportError as exc:
    print(json.dumps({"error": f"peer not installed: {exc}"})); sys.exit(0)
t0 = time.perf_counter()
model = PMedian.from_cost_matrix(cost, np.ones(n), p_facilities=p)
solver = pulp.HiGHS(msg=False, timeLimit=args["time_limit_s"])
try:
    model.solve(solver, results=False)
except RuntimeError:
    # spopt raises when HiGHS stops at the limit without an integer solution
    print(json.dumps({"objective": None, "seconds": time.perf_counter() - t0,
                      "status": "NoSolution"})); sys.exit(0)
seconds = time.perf_counter() - t0
status = pulp.LpStatus[model.problem.status]
obj = pulp.value(model.problem.objective)
print(json.dumps({"objective": obj, "seconds": seconds, "status": status}))
"""


def run_peer(inst: PmedInstance, *, time_limit_s: float) -> dict:
    """spopt PMedian + HiGHS on one instance, in a fresh process; seconds include the model build."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cost_path = pathlib.Path(tmp) / "cost.npy"
        np.save(cost_path, inst.cost)
        arg = json.dumps({"cost": str(cost_path), "p": inst.p, "time_limit_s": time_limit_s})
        # The temporary folder must outlive the peer process, hence inside the with.
        return run_peer_script(_peer_script(), arg, timeout_s=time_limit_s + 120)


def run(
    instances_dir: pathlib.Path | None = None,
    *,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Solve pmed1-40 (``quick``: pmed1, pmed2); one result row per instance."""
    directory = pathlib.Path(instances_dir) if instances_dir is not None else default_dir()
    optima = load_pmed_optima(directory)
    names = list(QUICK) if quick else [f"pmed{k}" for k in range(1, 41)]
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    peer_limit = DEFAULT_PEER_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    rows = []
    for name in names:
        path = directory / f"{name}.txt"
        if not path.exists():
            continue
        if progress is not None:
            progress(name)
        inst = load_pmed(path)
        res = measure(
            lambda inst=inst: solve_p_median(
                inst.cost, p=inst.p, work_limit_s=limit, time_limit_s=wall_cap_s(limit)
            )
        )
        r = res.value
        row = result_row(
            "pmed",
            name,
            size=f"n={inst.n} p={inst.p}",
            measured=res,
            objective=r.objective,
            status=r.status,
            best_known=optima.get(name),
        )
        if peers and time_limit_s is None and name not in PEER_DEFAULT:
            row["peer"] = PEER_NAME
            add_note(
                row,
                f"peer not run by default (n={inst.n}: its n^2-variable model does not fit "
                "the hour budget); pass time_limit_s to run it",
            )
        elif peers:
            if time_limit_s is None:
                peer_limit = PEER_REFERENCE.get(name, DEFAULT_PEER_TIME_LIMIT_S)
            add_peer(row, PEER_NAME, run_peer(inst, time_limit_s=peer_limit), limit_s=peer_limit)
        rows.append(row)
    return rows
