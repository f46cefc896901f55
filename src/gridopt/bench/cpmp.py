"""Benchmark family ``cpmp``: capacitated p-median (Osman-Christofides, Lorena-Senne).

Osman & Christofides pmedcap01-20 (n = 50/100) use Euclidean distances truncated
to integers and have proven optima; Lorena & Senne SJC1-4b and p3038_600..1000 use
real distances and best-known values (see ``benchmarks/cpmp/README.txt`` in the shared data folder).

The peer is a plain PuLP model (binary single-source assignment, x <= y, capacity)
solved by HiGHS in a separate process: spopt's capacitated ``PMedian`` uses the
weights as the demand, which cannot express these instances (unit weights in the
objective, separate demands), and OR-Tools and highspy cannot share one process.

Budgets: gridopt gets work-seconds (deterministic, see
:func:`gridopt.solvers.solve_p_median`'s ``work_limit_s``), 20 for Osman-Christofides
and 30 for the Lorena-Senne sets, with a wall-clock safety cap of four times that;
the peer gets the same number of wall seconds and runs only where n <= 100. How the
figures were chosen: ``benchmarks/NOTES.md``.
``run(names=[...])`` runs a subset.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gridopt._errors import InfeasibleError
from gridopt.bench._measure import measure, run_peer_script
from gridopt.bench._rows import add_note, add_peer, result_row, wall_cap_s
from gridopt.datasets import benchmark_dir
from gridopt.solvers import solve_p_median
from gridopt.solvers.cpmp._tabu import warmup

__all__ = ["CpmpInstance", "load_cpmp", "run"]

OC_NAMES = tuple(f"pmedcap{k:02d}" for k in range(1, 21))
LS_NAMES = (
    "SJC1",
    "SJC2",
    "SJC3a",
    "SJC3b",
    "SJC4a",
    "SJC4b",
    *(f"p3038_{p}" for p in (600, 700, 800, 900, 1000)),
)
QUICK = ("pmedcap01", "SJC1")
BEST_KNOWN_LS = {
    "SJC1": 17288.99,
    "SJC2": 33270.94,
    "SJC3a": 45335.16,
    "SJC3b": 40635.90,
    "SJC4a": 61925.51,
    "SJC4b": 52458.02,
    "p3038_600": 122711.17,
    "p3038_700": 109677.30,
    "p3038_800": 100064.94,
    "p3038_900": 92310.09,
    "p3038_1000": 85854.05,
}
# default work budgets (work-seconds): see benchmarks/NOTES.md for how they were chosen
DEFAULT_TIME_LIMIT_S = 20.0
# gridopt's limits are work budgets (solve_p_median's work_limit_s); the wall clock a cap
LIMIT_UNIT = "work-s"
DEFAULT_SJC_TIME_LIMIT_S = 30.0
DEFAULT_P3038_TIME_LIMIT_S = 30.0
DEFAULT_PEER_TIME_LIMIT_S = 20.0
# SJC2 (n = 200, 40,000 binaries) costs the peer its whole limit; pass
# time_limit_s to compare it too
DEFAULT_PEER_MAX_N = 100
# p3038 dense would be 9.2 million pairs; the nearest sites per client suffice
P3038_NEAREST = 60
PEER_MAX_N = 402
PEER_NAME = "PuLP CPMP model + HiGHS"


@dataclass(frozen=True)
class CpmpInstance:
    """A capacitated p-median instance: coordinates, demand, capacity, p."""

    name: str
    xy: np.ndarray
    demand: np.ndarray
    capacity: np.ndarray
    p: int
    truncate: bool
    best_known: float | None

    @property
    def n(self) -> int:
        return len(self.demand)

    def cost(self) -> np.ndarray:
        """Dense client x site distance matrix (truncated for Osman-Christofides)."""
        diff = self.xy[:, None, :] - self.xy[None, :, :]
        d = np.sqrt((diff**2).sum(axis=2))
        return np.floor(d) if self.truncate else d

    def sparse_cost(self, k: int) -> sp.csr_matrix:
        """Distances to the ``k`` nearest sites of every client (a sparse matrix)."""
        from scipy.spatial import cKDTree

        tree = cKDTree(self.xy)
        dist, idx = tree.query(self.xy, k=min(k, self.n))
        if self.truncate:
            dist = np.floor(dist)
        rows = np.repeat(np.arange(self.n), dist.shape[1])
        return sp.csr_matrix((dist.ravel(), (rows, idx.ravel())), shape=(self.n, self.n))


def default_dir() -> pathlib.Path:
    """``benchmarks/cpmp`` of the shared data folder (:func:`gridopt.datasets.benchmark_dir`)."""
    return benchmark_dir("cpmp")


def load_cpmp(path: str | pathlib.Path) -> CpmpInstance:
    """Read an Osman-Christofides ``pmedcapNN.txt`` or a Lorena-Senne ``.dat`` file."""
    path = pathlib.Path(path)
    tokens = path.read_text().split()
    if path.suffix == ".dat":
        n, p = int(tokens[0]), int(tokens[1])
        data = np.array(tokens[2 : 2 + 4 * n], dtype=float).reshape(n, 4)
        return CpmpInstance(
            path.stem, data[:, :2], data[:, 3], data[:, 2], p, False, BEST_KNOWN_LS.get(path.stem)
        )
    best = float(tokens[1])
    n, p, q = int(tokens[2]), int(tokens[3]), float(tokens[4])
    data = np.array(tokens[5 : 5 + 4 * n], dtype=float).reshape(n, 4)
    return CpmpInstance(path.stem, data[:, 1:3], data[:, 3], np.full(n, q), p, True, best)


def _path_of(directory: pathlib.Path, name: str) -> pathlib.Path:
    if name.startswith("pmedcap"):
        return directory / "osman_christofides" / f"{name}.txt"
    return directory / "lorena_senne" / f"{name}.dat"


def _peer_script() -> str:
    return r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
# no gridopt import here: it may load OR-Tools, whose HiGHS clashes with highspy's
args = json.loads(sys.argv[1])
c = np.load(args["cost"]); demand = np.load(args["demand"]); capacity = np.load(args["capacity"])
try:
    import pulp
except ImportError as exc:
    print(json.dumps({"error": f"peer not installed: {exc}"})); sys.exit(0)
t0 = time.perf_counter()
n = c.shape[0]; R = range(n)
prob = pulp.LpProblem("cpmp", pulp.LpMinimize)
y = [pulp.LpVariable(f"y{j}", cat=pulp.LpBinary) for j in R]
x = [[pulp.LpVariable(f"x{i}_{j}", cat=pulp.LpBinary) for j in R] for i in R]
prob += pulp.lpSum(float(c[i, j]) * x[i][j] for i in R for j in R)
prob += pulp.lpSum(y) == args["p"]
for i in R:
    prob += pulp.lpSum(x[i]) == 1
for j in R:
    prob += pulp.lpSum(float(demand[i]) * x[i][j] for i in R) <= float(capacity[j]) * y[j]
    for i in R:
        prob += x[i][j] <= y[j]
prob.solve(pulp.HiGHS(msg=False, timeLimit=args["time_limit_s"]))
seconds = time.perf_counter() - t0
obj = pulp.value(prob.objective)
print(json.dumps({"objective": obj, "seconds": seconds, "status": pulp.LpStatus[prob.status]}))
"""


def run_peer(inst: CpmpInstance, *, time_limit_s: float) -> dict:
    """PuLP + HiGHS single-source CPMP model on one instance, in a fresh process."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for key, arr in (
            ("cost", inst.cost()),
            ("demand", inst.demand),
            ("capacity", inst.capacity),
        ):
            files[key] = str(pathlib.Path(tmp) / f"{key}.npy")
            np.save(files[key], arr)
        arg = json.dumps({**files, "p": inst.p, "time_limit_s": time_limit_s})
        # The temporary folder must outlive the peer process, hence inside the with.
        return run_peer_script(_peer_script(), arg, timeout_s=time_limit_s + 180)


def run(
    instances_dir: pathlib.Path | None = None,
    *,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    names: Sequence[str] | None = None,
) -> list[dict]:
    """Solve the CPMP instances (``quick``: pmedcap01, SJC1); one row per instance.

    ``names`` picks instances by name (for example ``["pmedcap08", "p3038_600"]``);
    default: all of them, or the quick pair.
    """
    directory = pathlib.Path(instances_dir) if instances_dir is not None else default_dir()
    if names is not None:
        unknown = sorted(set(names) - set(OC_NAMES + LS_NAMES))
        if unknown:
            raise ValueError(f"unknown cpmp instances {unknown}; known: {OC_NAMES + LS_NAMES}")
        names = [nm for nm in OC_NAMES + LS_NAMES if nm in set(names)]
    else:
        names = list(QUICK) if quick else list(OC_NAMES + LS_NAMES)
    if not quick:
        warmup()  # numba compilation is a one-off, not part of any instance's time
    limit0 = DEFAULT_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    peer_limit = DEFAULT_PEER_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    peer_max_n = DEFAULT_PEER_MAX_N if time_limit_s is None else PEER_MAX_N
    rows = []
    for name in names:
        path = _path_of(directory, name)
        if not path.exists():
            continue
        if progress is not None:
            progress(name)
        inst = load_cpmp(path)
        limit = limit0
        if time_limit_s is None and inst.n > 1000:
            limit = DEFAULT_P3038_TIME_LIMIT_S
        elif time_limit_s is None and inst.n > 100:
            limit = DEFAULT_SJC_TIME_LIMIT_S
        notes = []
        if inst.n > 1000:
            cost = inst.sparse_cost(P3038_NEAREST)
            notes.append(
                f"each client limited to its {P3038_NEAREST} nearest sites; bound is for that restriction"
            )
        else:
            cost = inst.cost()

        def solve(inst=inst, cost=cost, limit=limit):
            try:
                return solve_p_median(
                    cost,
                    p=inst.p,
                    demand=inst.demand,
                    capacity=inst.capacity,
                    work_limit_s=limit,
                    time_limit_s=wall_cap_s(limit),
                )
            except InfeasibleError as exc:
                # a heuristic failure on a feasible instance is a result to report, not a crash
                return exc

        res = measure(solve)
        r = res.value
        size = f"n={inst.n} p={inst.p}"
        if isinstance(r, InfeasibleError):
            notes.append(f"no solution: {r}")
            rows.append(
                result_row(
                    "cpmp",
                    name,
                    size=size,
                    measured=res,
                    objective=None,
                    status="no_solution",
                    best_known=inst.best_known,
                    notes=notes,
                )
            )
            continue
        notes.append(f"bound {r.bound:.6g} (gap {100 * r.gap:.2f}%)")
        row = result_row(
            "cpmp",
            name,
            size=size,
            measured=res,
            objective=r.objective,
            status=r.status,
            best_known=inst.best_known,
            notes=notes,
        )
        if peers and inst.n > peer_max_n:
            row["peer"] = PEER_NAME
            add_note(
                row,
                f"peer not run: n={inst.n} gives {inst.n**2:,} binaries"
                + ("" if inst.n > PEER_MAX_N else " (pass time_limit_s to run it)"),
            )
        elif peers:
            add_peer(row, PEER_NAME, run_peer(inst, time_limit_s=peer_limit), limit_s=peer_limit)
        rows.append(row)
    return rows
