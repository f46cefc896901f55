"""Benchmark family ``scale``: whole cities end to end, and partitioning on a 2-worker cluster.

Instances (all seeded, generated on the fly; nothing to download):

- ``city-10k-cluster``, ``city-50k-cluster``, ``city-200k-cluster``:
  :func:`gridopt.synthetic_city` with that many buildings (about 26 households each)
  written to GeoParquet first, planned on a fresh 2-worker LocalCluster (``city-10k``
  without the suffix runs sequentially in this process); the clock runs from
  the file to ``plan.gpkg`` plus ``map.html`` of one street office: reading, grids,
  walking network, stations and staff per street office
  (:func:`gridopt.parallel.plan_city`), writing. Goal for 200k buildings: at most
  10 minutes and 8 GB peak on 2 cores, and near-linear growth from 10k.
- ``monaco``: the Monaco OpenStreetMap extract through :func:`gridopt.plan` to
  ``Plan.to_file`` (goal: under 2 minutes).
- ``monaco-walk``: walking distances over Monaco's streets from every building to
  every candidate site within 1,500 m (:func:`gridopt.network.walking_distances`;
  goal: under 20 s). The candidates are the extract's station candidates plus
  :data:`MONACO_EXTRA_CANDIDATES` seeded random buildings (OSM tags few public
  buildings there, and a handful of sites would make the goal trivial); the
  clock covers the walking network and the distances, not reading the file.
- ``partition-47k-cluster``: :func:`gridopt.parallel.partition_city` of 47,000 synthetic
  buildings on a 2-worker LocalCluster (goal: at most 120 s). The issue's 47,000
  buildings hold 2.3 million households (about 49 each, taller buildings than the
  synthetic city's ~26), so every building's households are scaled up to that total
  (about 9,000 grids).

``peak_mb`` is the peak resident memory of this process plus all its child processes
(Dask workers included), sampled every 50 ms. ``objective`` is the number of grids;
``best_known`` is empty (no published optimum for these cities). The per-stage seconds,
the share of regular grids inside the band and the machine load go into ``notes``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import psutil

from gridopt import datasets
from gridopt.city import partition_city, plan_city
from gridopt.execution import local_client
from gridopt.io import read_buildings
from gridopt.network import walk_network, walking_distances
from gridopt.pipeline import plan
from gridopt.synthetic import synthetic_city

__all__ = ["run"]

DEFAULT_TIME_LIMIT_S = 60.0
#: the cities run on a fresh 2-worker LocalCluster each (one single-threaded worker per
#: core of the 2-core reference machine): the issue's 10-minute goal for 200k buildings
#: is out of reach of one core, and the cluster is the configuration a user runs.
FULL = (
    "city-10k-cluster",
    "city-50k-cluster",
    "city-200k-cluster",
    "monaco",
    "monaco-walk",
    "partition-47k-cluster",
)
QUICK = ("city-600", "partition-2k")
#: random buildings added to Monaco's station candidates in ``monaco-walk``
MONACO_EXTRA_CANDIDATES = 2_000
MONACO_WALK_M = 1_500.0
#: the issue's cluster partition instance: 47,000 buildings, 2.3 million households
ISSUE_47K_BUILDINGS = 47_000
ISSUE_47K_HOUSEHOLDS = 2_300_000
QUICK_TIME_LIMIT_S = 5.0

COLUMNS = [
    ("instance", "instance", ""),
    ("size", "size", ""),
    ("objective", "grids", ""),
    ("seconds", "seconds", ".1f"),
    ("peak_mb", "peak MB", ".0f"),
    ("status", "status", ""),
    ("notes", "notes", ""),
]


class _Peak:
    """Peak RSS of this process and its children (Dask worker processes), in MB."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> float:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # a worker exiting between listing and reading
                pass
        return total / 2**20

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._rss())
            self._done.wait(self.interval_s)

    def __enter__(self) -> _Peak:
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _row(instance: str, size: str, **values: Any) -> dict[str, Any]:
    row = {
        "family": "scale",
        "instance": instance,
        "size": size,
        "objective": None,
        "best_known": None,
        "gap_pct": None,
        "seconds": None,
        "peak_mb": None,
        "status": "",
        "peer": None,
        "peer_objective": None,
        "peer_seconds": None,
        "ratio": None,
        "notes": "",
    }
    row.update(values)
    return row


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.1f}/{b:.1f}/{c:.1f}"


def _stages(times: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in times.items())


def _city(
    name: str,
    n: int,
    workdir: pathlib.Path,
    time_limit_s: float,
    client: Any,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Synthetic city from GeoParquet to plan.gpkg + map.html of one street office."""
    import geopandas as gpd


    city = synthetic_city(n, seed=0)
    bpath, spath = workdir / f"{name}-buildings.parquet", workdir / f"{name}-streets.parquet"
    raw = city.buildings[["floors", "building_type", "community", "street", "geometry"]]
    raw.reset_index(drop=True).to_parquet(bpath)
    city.streets.to_parquet(spath)
    households = int(city.buildings["households"].sum())
    del city, raw
    times: dict[str, float] = {}
    load_before = _load()
    with _Peak() as peak:
        t0 = time.perf_counter()
        buildings = read_buildings(bpath)
        streets = gpd.read_parquet(spath)
        times["read"] = time.perf_counter() - t0
        t = time.perf_counter()
        cp = plan_city(
            buildings, by="street", streets=streets, client=client,
            config={"time_limit_s": time_limit_s, "progress": False, **(config or {})},
        )  # fmt: skip
        times["plan"] = time.perf_counter() - t
        t = time.perf_counter()
        cp.to_file(workdir / f"{name}-plan")
        times["write+map"] = time.perf_counter() - t
        grids, offices, lo, hi = cp.grids, len(cp.offices), cp.min_households, cp.max_households
        stage_sums = {k: v for k, v in cp.runtime_s.items() if k != "total"}
        what = ""
        seconds = time.perf_counter() - t0
    reg = grids.loc[grids["kind"] == "regular", "households"]
    inside = float(reg.between(lo, hi).mean()) if len(reg) else float("nan")
    notes = (
        f"{what}{households:,} households, {offices} street offices; {inside:.1%} of regular grids in band; "
        f"stages: {_stages(times)}; summed over offices: {_stages(stage_sums)}; "
        f"{'2-worker LocalCluster' if client is not None else 'sequential'}; {load_before}"
        + "".join(f"; {k}={v}" for k, v in (config or {}).items())
    )
    return _row(
        name, f"n={n:,} buildings", objective=len(grids), seconds=seconds, peak_mb=peak.peak,
        status="ok", notes=notes,
    )  # fmt: skip


def _monaco(workdir: pathlib.Path, time_limit_s: float) -> dict[str, Any]:

    path = datasets.monaco()
    load_before = _load()
    with _Peak() as peak, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        p = plan(path, config={"time_limit_s": time_limit_s, "progress": False})
        t_plan = time.perf_counter() - t0
        p.to_file(workdir / "monaco-plan")
        seconds = time.perf_counter() - t0
    notes = (
        f"{len(p.buildings):,} buildings, {int(p.buildings['households'].sum()):,} households; "
        f"{p.partition.share_in_band:.1%} of regular grids in band; stages: {_stages(dict(p.runtime_s))}, "
        f"to_file {seconds - t_plan:.1f}s; goal < 120 s; {load_before}"
    )
    return _row(
        "monaco", f"n={len(p.buildings):,} buildings", objective=len(p.partition.grids),
        seconds=seconds, peak_mb=peak.peak, status="ok" if seconds < 120 else "slow", notes=notes,
    )  # fmt: skip


def monaco_candidates(buildings: Any, *, extra: int, seed: int = 0) -> Any:
    """Monaco's station-candidate buildings plus ``extra`` seeded random others."""
    import numpy as np
    import pandas as pd

    candidates = buildings[buildings["station_candidate"]]
    if extra:
        rng = np.random.default_rng(seed)
        rest = buildings.index.difference(candidates.index)
        pick = rng.choice(len(rest), size=min(extra, len(rest)), replace=False)
        candidates = pd.concat([candidates, buildings.loc[rest[np.sort(pick)]]])
    return candidates


def _monaco_walk() -> dict[str, Any]:

    path = datasets.monaco()
    load_before = _load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buildings = read_buildings(path)
    candidates = monaco_candidates(buildings, extra=MONACO_EXTRA_CANDIDATES)
    with _Peak() as peak:
        t0 = time.perf_counter()
        graph = walk_network(path, crs=buildings.crs)
        t_net = time.perf_counter() - t0
        dist = walking_distances(graph, buildings, candidates, max_walk_m=MONACO_WALK_M)
        seconds = time.perf_counter() - t0
    notes = (
        f"{dist.matrix.nnz:,} pairs within {MONACO_WALK_M:,.0f} m, {dist.fallback.nnz:,} of them "
        f"by the straight-line fallback; walking network {graph.number_of_nodes():,} nodes in "
        f"{graph.graph['n_components']} pieces, {t_net:.1f}s; candidates: "
        f"{len(candidates) - MONACO_EXTRA_CANDIDATES} tagged + {MONACO_EXTRA_CANDIDATES:,} random "
        f"buildings; goal < 20 s; {load_before}"
    )
    return _row(
        "monaco-walk", f"n={len(buildings):,} buildings x {len(candidates):,} sites",
        seconds=seconds, peak_mb=peak.peak, status="ok" if seconds < 20 else "slow", notes=notes,
    )  # fmt: skip


def _partition(name: str, n: int, time_limit_s: float, cluster: bool) -> dict[str, Any]:
    """partition_city of a synthetic city, sequentially or on a fresh 2-worker LocalCluster."""

    city = synthetic_city(n, seed=0)
    buildings = city.buildings
    if n == ISSUE_47K_BUILDINGS:
        # the issue's instance: 47,000 buildings holding 2.3 million households (~49 per
        # building, taller than the synthetic city's ~26): scale every residential
        # building's households up so that the total matches
        scale = ISSUE_47K_HOUSEHOLDS / float(buildings["households"].sum())
        buildings = buildings.assign(
            households=(buildings["households"] * scale).round().astype(int)
        )
    households = int(buildings["households"].sum())
    load_before = _load()
    with _Peak() as peak:
        t0 = time.perf_counter()
        with local_client(2) if cluster else contextlib.nullcontext() as client:
            t1 = time.perf_counter()
            part = partition_city(
                buildings, streets=city.streets, time_limit_s=time_limit_s, client=client
            )
            t2 = time.perf_counter()
        seconds = time.perf_counter() - t0
    where = f"2-worker LocalCluster (start {t1 - t0:.1f}s)" if cluster else "sequential"
    d = part.details
    notes = (
        f"{households:,} households; {part.share_in_band:.1%} of regular grids in band; {where}; "
        f"partition {t2 - t1:.1f}s ({d.get('pieces')} pieces; summed over pieces: tessellation "
        f"{d.get('tessellation_s', 0):.1f}s, solve {d.get('solve_s', 0):.1f}s; slowest piece "
        f"{d.get('piece_seconds_max', 0):.1f}s; pieces at their time limit: "
        f"{', '.join(d.get('pieces_time_limit', [])) or 'none'}); {load_before}"
    )
    if n == ISSUE_47K_BUILDINGS:
        notes += (
            f"; households of the synthetic city scaled x{scale:.2f} to the issue's 2.3 million "
            "(~49 per building); goal <= 120 s"
        )
    return _row(
        name, f"n={n:,} buildings", objective=part.n_grids, seconds=seconds, peak_mb=peak.peak,
        status=part.status, notes=notes,
    )  # fmt: skip


def _size(text: str) -> int:
    """'10k' -> 10000, '600' -> 600."""
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


RESULTS_NOTE = (
    "Seconds are wall time from the file to plan.gpkg + map.html; `peak MB` counts this process "
    "and its Dask worker processes. The development machine has 2 cores shared with other "
    "engineers' jobs: the load average in each row's notes says how busy it was (a load of 8 on "
    "2 cores leaves each process roughly a quarter of a core), so these times are upper bounds "
    "of what an idle 2-core machine does."
)


def summarize(rows: list[dict[str, Any]], *, peers: bool = False) -> str:
    """One line: end-to-end seconds per city size, growth, the cluster partition."""
    del peers
    ok = [r for r in rows if r.get("seconds") is not None]
    parts = []
    cities = sorted(
        (r for r in ok if str(r["instance"]).startswith("city-")),
        key=lambda r: int(str(r["size"]).split("=")[1].split()[0].replace(",", "")),
    )
    cities = [r for r in cities if not str(r["instance"]).endswith("-cluster")] or cities
    for r in cities:
        parts.append(f"{r['instance']} {r['seconds']:.0f} s / {r['peak_mb']:.0f} MB")
    if len(cities) >= 2:
        a, b = cities[0], cities[-1]
        na = int(str(a["size"]).split("=")[1].split()[0].replace(",", ""))
        nb = int(str(b["size"]).split("=")[1].split()[0].replace(",", ""))
        parts.append(f"time x{b['seconds'] / a['seconds']:.1f} for buildings x{nb / na:.0f}")
    for r in ok:
        if r not in cities:
            parts.append(f"{r['instance']} {r['seconds']:.0f} s")
    bad = [r["instance"] for r in rows if r.get("status") in ("error", "unknown instance")]
    if bad:
        parts.append(f"failed: {', '.join(map(str, bad))}")
    return "; ".join(parts) if parts else "no rows"


def run(
    instances_dir: pathlib.Path | None = None,
    *,
    peers: bool = False,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    instances: tuple[str, ...] | None = None,
    client: Any = None,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the scale benchmark; one row per instance.

    Parameters
    ----------
    instances_dir
        Unused (the instances are generated); plans are written to a temporary folder.
    peers
        Unused: no open-source peer plans whole cities.
    time_limit_s
        Time limit of each optimising stage per street office (default 60 s).
    quick
        A 600-building city end to end and a 2,000-building partition, sequentially,
        with 5 s time limits.
    progress
        Optional callable receiving the instance name before it runs.
    instances
        Instance names to run: ``city-<n>`` (end to end, e.g. ``city-10k``; ``city-<n>-cluster``
        on a fresh 2-worker LocalCluster), ``monaco``, ``monaco-walk``,
        ``partition-<n>`` (grids only, sequential) and ``partition-<n>-cluster`` (grids on
        a fresh 2-worker LocalCluster).
    client
        ``None``: the cities run sequentially (the measured default on 2 cores);
        ``"local"`` or a Dask client: on that cluster.
    config
        Extra :class:`gridopt.PlanConfig` fields for the ``city-*`` instances (e.g.
        ``{"grid_starts": 3}``); said in the row's notes.
    """
    del instances_dir, peers
    default = QUICK_TIME_LIMIT_S if quick else DEFAULT_TIME_LIMIT_S
    limit = default if time_limit_s is None else float(time_limit_s)
    names = instances or (QUICK if quick else FULL)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridopt-scale-") as tmp:
        workdir = pathlib.Path(tmp)
        for name in names:
            if progress is not None:
                progress(name)
            try:
                parts = name.split("-")
                if parts[0] == "city" and len(parts) in (2, 3):
                    if len(parts) == 3:  # city-<n>-cluster: on a fresh 2-worker LocalCluster
                        t_start = time.perf_counter()
                        with local_client(2) as local:
                            started_s = time.perf_counter() - t_start
                            row = _city(name, _size(parts[1]), workdir, limit, local, config)
                            row["notes"] += f"; cluster start {started_s:.1f}s (not in seconds)"
                            rows.append(row)
                    else:
                        rows.append(_city(name, _size(parts[1]), workdir, limit, client, config))
                elif name == "monaco":
                    rows.append(_monaco(workdir, limit))
                elif name == "monaco-walk":
                    rows.append(_monaco_walk())
                elif parts[0] == "partition" and len(parts) in (2, 3):
                    rows.append(
                        _partition(name, _size(parts[1]), 20 * limit, cluster=len(parts) == 3)
                    )
                else:
                    rows.append(_row(name, "", status="unknown instance"))
            except Exception as exc:  # one failing instance must not stop the others
                rows.append(_row(name, "", status="error", notes=f"{type(exc).__name__}: {exc}"))
    return rows
