"""Execution layer for city- and province-scale work: independent pieces, sequential or on Dask.

Every stage of gridopt decomposes along the governance hierarchy (street office ->
community -> barrier-bounded block): the pieces are solved independently and
stitched back, so no stage needs a whole-city matrix or model. This module holds
the parts of that:

- :func:`map_components` runs a pure function over a list of pieces, in order
  without a client, or on a :class:`dask.distributed.Client` with one. Each Dask
  task has a *pure key* derived from its content, and results are gathered in task
  order, so the same seed gives the same answer with or without a cluster (as long as
  no time limit cuts a solve short: a deadline depends on the machine). A worker
  that dies mid-run has its tasks rescheduled by Dask; ``retries`` re-runs a task
  that raised.
- :func:`split_city` cuts a city into pieces: by a community / street-office column,
  or, without one, into blocks bounded by barriers (major streets, rivers, railways),
  merging a block that cannot make a grid on its own with a neighbour. No building
  is ever dropped.
- :func:`read_buildings_chunked` reads a GeoParquet or GeoPackage in pieces (row
  chunks, or whole communities at a time) so that a province-sized file never has
  to sit in one frame.
- :func:`partition_city` runs :func:`gridopt.partition_grids` per street office (or
  block), tessellation included, and stitches one Partition; :func:`plan_city` runs
  :func:`gridopt.plan` per street office and returns a :class:`CityPlan` that writes
  one ``plan.gpkg`` and a map of one office.

The local default
-----------------
Without a client, work runs sequentially in the calling process. Measured on the 2-core
development machine (``gridopt.bench.scale``, shared with other jobs, load average 8-12):
the synthetic 10,000-building city end to end took 238 s sequentially and 251 s on a
2-process LocalCluster, whose peak memory (all processes) was 1,377 MB against 535 MB.
Two workers only pay off when two cores are actually free, and then at most 2x on the
solve stages, while a cluster costs seconds to start and doubles memory. So ``None``
means sequential; ``client="local"`` starts a LocalCluster for one call
(``processes=True``, one single-threaded worker per core) for machines with more cores,
and :func:`local_client` does the same as a context manager to reuse one cluster over
several calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError
from gridopt.crs import WorkingCRS, reproject

__all__ = [
    "CityPlan",
    "OfficePlan",
    "local_client",
    "map_components",
    "partition_city",
    "plan_city",
    "read_buildings_chunked",
    "split_city",
]

log = logging.getLogger("gridopt")

#: Default number of times Dask re-runs a task that raised (worker death is separate:
#: the scheduler reschedules those tasks up to ``distributed.scheduler.allowed-failures``).
DEFAULT_RETRIES = 2


# ---------------------------------------------------------------------------
# map_components
# ---------------------------------------------------------------------------


def _run_batch(func: Callable[..., Any], batch: Sequence[Any], args: tuple[Any, ...]) -> list[Any]:
    """Run ``func(task, *args)`` for every task of a batch (one Dask task)."""
    return [func(task, *args) for task in batch]


def _content_key(*parts: Any) -> str:
    """A deterministic hash of the task's content (function, pieces, shared arguments).

    Hashing the pickle is about 30x faster than ``dask.base.tokenize`` on GeoDataFrames
    (whose geometry column tokenize walks object by object); both are deterministic.
    """
    import hashlib

    import cloudpickle

    try:
        blob = cloudpickle.dumps(parts, protocol=5)
    except Exception:  # unpicklable pieces fail later with Dask's own message
        from dask.base import tokenize

        return tokenize(*parts)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _batches(sizes: np.ndarray, n_batches: int) -> list[np.ndarray]:
    """Task positions grouped into ``n_batches`` batches, largest tasks first.

    Tasks are taken in decreasing size (longest processing time first, the classic
    load-balancing rule) and cut into consecutive batches of about equal total size,
    so big pieces start first and many tiny ones travel together.
    """
    order = np.argsort(-sizes, kind="stable")
    total = float(sizes.sum())
    if n_batches <= 1 or total <= 0:
        return [order]
    cum = np.cumsum(sizes[order]) / total
    cut = np.searchsorted(cum, np.arange(1, n_batches) / n_batches, side="right")
    return [b for b in np.split(order, cut) if len(b)]


def map_components(
    func: Callable[..., Any],
    tasks: Sequence[Any],
    *,
    args: tuple[Any, ...] = (),
    client: Any = None,
    sizes: Sequence[float] | np.ndarray | None = None,
    tasks_per_worker: int = 8,
    retries: int = DEFAULT_RETRIES,
    name: str = "gridopt-piece",
    progress: Callable[[str], None] | None = None,
) -> list[Any]:
    """Run ``func(task, *args)`` for every task; results in task order.

    Parameters
    ----------
    func
        A pure, importable function (it is pickled by reference to the workers).
        It must not depend on anything but its arguments: the same task gives the
        same result on any worker and on a retry.
    tasks
        The independent pieces (picklable).
    args
        Extra arguments shared by all tasks (sent once per Dask task batch).
    client
        ``None``: run sequentially in this process. A ``dask.distributed.Client``:
        run on its cluster. ``"local"``: start a LocalCluster for this call (see
        :func:`local_client`) and close it at the end.
    sizes
        Optional work estimate per task (e.g. buildings): big tasks are submitted
        first and small ones batched together.
    tasks_per_worker
        Number of Dask tasks per worker thread the pieces are grouped into; more
        gives better load balance, fewer less scheduling overhead.
    retries
        How many times Dask re-runs a task that raised. Tasks lost with a dead
        worker are rescheduled by Dask independently of this number.
    name
        Prefix of the Dask keys (shows in the dashboard).
    progress
        Optional callable receiving one line per finished batch.

    Returns
    -------
    list
        ``[func(t, *args) for t in tasks]``, in the order of ``tasks``.

    Examples
    --------
    >>> map_components(pow, [1, 2, 3], args=(2,))
    [1, 4, 9]
    """
    tasks = list(tasks)
    if client is None or not tasks:
        return _map_sequential(func, tasks, args, progress)
    if isinstance(client, str):
        if client != "local":
            raise InputError(
                f"client must be None, 'local' or a dask.distributed.Client, got {client!r}"
            )
        with local_client() as local:
            return map_components(
                func, tasks, args=args, client=local, sizes=sizes,
                tasks_per_worker=tasks_per_worker, retries=retries, name=name, progress=progress,
            )  # fmt: skip
    return _map_on_dask(func, tasks, args, client, sizes, tasks_per_worker, retries, name, progress)


def _map_sequential(
    func: Callable[..., Any],
    tasks: list[Any],
    args: tuple[Any, ...],
    progress: Callable[[str], None] | None,
) -> list[Any]:
    out = []
    t0 = time.perf_counter()
    for k, task in enumerate(tasks, start=1):
        out.append(func(task, *args))
        if progress is not None:
            progress(f"{k}/{len(tasks)} pieces done ({time.perf_counter() - t0:.1f} s)")
    return out


def _map_on_dask(
    func: Callable[..., Any],
    tasks: list[Any],
    args: tuple[Any, ...],
    client: Any,
    sizes: Sequence[float] | np.ndarray | None,
    tasks_per_worker: int,
    retries: int,
    name: str,
    progress: Callable[[str], None] | None,
) -> list[Any]:
    from distributed import as_completed

    n = len(tasks)
    size_arr = np.ones(n) if sizes is None else np.asarray(sizes, dtype=float)
    if len(size_arr) != n:
        raise InputError(f"sizes has {len(size_arr)} entries for {n} tasks")
    threads = sum(client.nthreads().values()) or 1
    groups = _batches(np.maximum(size_arr, 1e-9), min(n, max(1, threads * tasks_per_worker)))
    # Shared arguments travel once, as scattered futures. Not hash=True: a second call with
    # equal arguments would reuse the key while the scheduler is still releasing the first
    # call's data, and its tasks then fail with "lost dependencies" (seen in CI-like runs).
    # Purity does not need it: each batch's key already hashes the arguments' content.
    shared = client.scatter(list(args), broadcast=True, hash=False) if args else []
    futures = []
    for rank, grp in enumerate(groups):
        batch = [tasks[k] for k in grp]
        # The key is a hash of the function, the batch content and the shared arguments:
        # a pure key, so a resubmission or a retry after a worker's death is the same task.
        key = f"{name}-{_content_key(func, batch, args)}"
        fut = client.submit(
            _run_batch, func, batch, tuple(shared), key=key, pure=True,
            retries=retries, priority=len(groups) - rank,
        )  # fmt: skip
        futures.append(fut)
    t0 = time.perf_counter()
    out: list[Any] = [None] * n
    # by object, not key: two batches with the same content share one key
    position = {id(f): k for k, f in enumerate(futures)}
    done = 0
    for fut in as_completed(futures):
        grp = groups[position[id(fut)]]
        results = fut.result()
        for k, res in zip(grp, results, strict=True):
            out[k] = res
        done += len(grp)
        if progress is not None:
            progress(f"{done}/{n} pieces done ({time.perf_counter() - t0:.1f} s)")
    log.debug("map_components: %d pieces in %d Dask tasks on %d threads", n, len(groups), threads)
    return out


@contextlib.contextmanager
def local_client(
    n_workers: int | None = None,
    *,
    processes: bool = True,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
    dashboard: bool = False,
) -> Iterator[Any]:
    """A LocalCluster and its Client for the duration of a ``with`` block.

    Parameters
    ----------
    n_workers
        Worker processes; default: the number of CPU cores.
    processes
        Separate processes (the solvers hold the GIL, so threads do not run in parallel).
    threads_per_worker
        Threads per worker.
    memory_limit
        Per-worker memory limit passed to Dask.
    dashboard
        Start the diagnostics dashboard (off by default: no port opened).

    Yields
    ------
    distributed.Client
    """
    from distributed import Client, LocalCluster

    n_workers = n_workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n_workers,
        processes=processes,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        dashboard_address=":0" if dashboard else None,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# ---------------------------------------------------------------------------
# split_city
# ---------------------------------------------------------------------------


def _feasible(weight: np.ndarray | int, lo: int, hi: int) -> np.ndarray:
    """Whether ``weight`` households make whole grids of ``[lo, hi]``: k lo <= W <= k hi."""
    weight = np.asarray(weight, dtype=np.int64)
    return (-(-weight // hi) <= weight // lo) & (weight > 0)


def split_city(
    buildings: gpd.GeoDataFrame,
    *,
    by: str | None = None,
    streets: gpd.GeoDataFrame | None = None,
    households: str = "households",
    min_households: int = 200,
    max_households: int = 300,
    margin_m: float = 100.0,
) -> pd.Series:
    """Cut a city into independent pieces: communities, or barrier-bounded blocks.

    Parameters
    ----------
    buildings
        Buildings in a metric CRS with a households column.
    by
        A column that already names the pieces (``"community"`` or a street-office
        column). Its pieces are kept as they are, also when one is too small for a
        grid: grids never straddle two communities, so such a piece becomes an
        ``undersized`` grid downstream, with its reason.
    streets
        Street/river/railway lines with a ``barrier_kind`` column; used when ``by`` is
        not given. The barrier lines are polygonized into blocks (closed by a frame
        ``margin_m`` around the buildings) and each building goes to the block that
        holds its representative point. Only closed rings of barriers make blocks: a
        major street that ends inside the town (a dangle) cuts nothing, so an extract
        whose barriers do not meet is one piece (the small OSM town is; the synthetic
        city's major-street grid is not).
    households
        Households column.
    min_households, max_households
        The grid band. A block whose households cannot make whole grids of the band
        (no k with k min <= W <= k max) is merged with the neighbouring block it
        shares the longest boundary with (the nearest block when none touches), until
        every piece can or only one piece is left.
    margin_m
        Width of the frame closing the outermost blocks.

    Returns
    -------
    pandas.Series
        Piece label (str) per building, aligned with ``buildings.index``, no missing
        values. Without ``by`` and without barrier lines, the whole city is one piece.

    Raises
    ------
    InputError
        Missing column, missing households, geographic CRS.

    Examples
    --------
    >>> from gridopt.synthetic import synthetic_city
    >>> city = synthetic_city(400, seed=1)
    >>> pieces = split_city(city.buildings, streets=city.streets)
    >>> len(pieces) == len(city.buildings) and bool(pieces.notna().all())
    True
    """
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(f"buildings must be a GeoDataFrame, got {type(buildings).__name__}")
    if households not in buildings.columns:
        raise InputError(
            f"buildings has no {households!r} column; pass households= or use gridopt.read_buildings"
        )
    if not 0 < min_households <= max_households:
        raise InputError(
            f"need 0 < min_households <= max_households, got {min_households} and {max_households}"
        )
    if by is not None:
        if by not in buildings.columns:
            raise InputError(
                f"buildings has no column {by!r}; available: {', '.join(map(str, buildings.columns))}"
            )
        col = buildings[by]
        if col.isna().any():
            rows = list(buildings.index[col.isna().to_numpy()][:10])
            raise InputError(
                f"{int(col.isna().sum())} buildings have no {by!r} value (first: {rows}); "
                "fill them or split without `by`"
            )
        return col.astype(str).rename("piece")
    if buildings.crs is not None and buildings.crs.is_geographic:
        raise InputError(
            "buildings are in degrees; reproject to a metric CRS (gridopt.read_buildings does)"
        )
    n = len(buildings)
    if n == 0:
        return pd.Series([], index=buildings.index, dtype=object, name="piece")
    w = buildings[households].to_numpy()
    if pd.isna(w).any():
        raise InputError(f"{int(pd.isna(w).sum())} buildings have no {households!r} value")
    lines = _barrier_lines(streets, buildings.crs)
    pts = shapely.point_on_surface(buildings.geometry.to_numpy())
    if lines is None:
        return pd.Series("B0", index=buildings.index, name="piece")
    frame = shapely.box(*shapely.total_bounds(pts)).buffer(margin_m, join_style="mitre").exterior
    noded = shapely.union_all(np.append(lines, frame))
    faces = np.asarray(
        shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))), dtype=object
    )
    face_of = _locate(pts, faces)
    used, piece = np.unique(face_of, return_inverse=True)
    used_faces = faces[used]
    weight = np.bincount(piece, weights=w.astype(float), minlength=len(used)).astype(np.int64)
    group = _merge_infeasible(used_faces, weight, min_households, max_households)
    labels = group[piece]
    # Renumber the pieces by first building so the labels read B0, B1, ... in input order.
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return pd.Series([f"B{r}" for r in rank[inv]], index=buildings.index, name="piece")


def _barrier_lines(streets: gpd.GeoDataFrame | None, crs: Any) -> np.ndarray | None:
    if streets is None or len(streets) == 0:
        return None
    if "barrier_kind" not in streets.columns:
        raise InputError(
            "streets has no barrier_kind column; read them with gridopt.read_streets, "
            "or set barrier_kind to 'major_street', 'river', 'railway' or null"
        )
    if crs is not None and streets.crs is not None and streets.crs != crs:
        streets = reproject(streets, crs, what="streets")
    bar = streets[streets["barrier_kind"].notna()].geometry.to_numpy()
    bar = bar[~(shapely.is_missing(bar) | shapely.is_empty(bar))]
    return bar if len(bar) else None


def _locate(pts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Index of the face holding each point (the nearest face for a point on no face)."""
    out = np.full(len(pts), -1, dtype=np.int64)
    tree = shapely.STRtree(faces)
    p_idx, f_idx = tree.query(pts, predicate="intersects")
    # A point on a shared edge hits two faces: keep the lowest face index (deterministic).
    order = np.lexsort((f_idx, p_idx))
    p_idx, f_idx = p_idx[order], f_idx[order]
    first = np.r_[True, p_idx[1:] != p_idx[:-1]] if len(p_idx) else np.zeros(0, bool)
    out[p_idx[first]] = f_idx[first]
    lost = np.flatnonzero(out < 0)
    if len(lost):
        inp, near = tree.query_nearest(pts[lost], all_matches=False)
        out[lost[inp]] = near
    return out


def _merge_infeasible(faces: np.ndarray, weight: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Union-find merge of infeasible blocks into neighbours; returns a group id per face."""
    k = len(faces)
    parent = np.arange(k)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    tree = shapely.STRtree(faces)
    a_idx, b_idx = tree.query(faces, predicate="intersects")
    keep = a_idx < b_idx
    a_idx, b_idx = a_idx[keep], b_idx[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(faces[a_idx]), shapely.boundary(faces[b_idx]))
    )
    nbr: list[dict[int, float]] = [{} for _ in range(k)]
    for a, b, s in zip(a_idx.tolist(), b_idx.tolist(), shared.tolist(), strict=True):
        if s > 0:
            nbr[a][b] = nbr[a].get(b, 0.0) + s
            nbr[b][a] = nbr[b].get(a, 0.0) + s
    total = weight.astype(np.int64).copy()
    members: dict[int, list[int]] = {i: [i] for i in range(k)}
    while len(members) > 1:
        bad = [g for g in members if not _feasible(total[g], lo, hi)]
        if not bad:
            break
        g = min(bad, key=lambda r: (total[r], r))  # smallest first, ties by id
        # Boundary shared with every other group.
        border: dict[int, float] = {}
        for f in members[g]:
            for o, s in nbr[f].items():
                r = find(o)
                if r != g:
                    border[r] = border.get(r, 0.0) + s
        if border:
            # Prefer a neighbour that makes the merged piece feasible, then the longest border.
            target = max(
                border, key=lambda r: (bool(_feasible(total[g] + total[r], lo, hi)), border[r], -r)
            )
        else:
            # An island (no touching block): join the nearest group.
            mine = shapely.union_all(faces[members[g]])
            others = [r for r in members if r != g]
            dist = [shapely.distance(mine, shapely.union_all(faces[members[r]])) for r in others]
            target = others[int(np.argmin(dist))]
        keep_root, gone = (g, target) if g < target else (target, g)
        parent[gone] = keep_root
        members[keep_root].extend(members.pop(gone))
        total[keep_root] += total[gone]
    return np.array([find(i) for i in range(k)])


# ---------------------------------------------------------------------------
# partition_city: whole partitions per piece, stitched
# ---------------------------------------------------------------------------


def _merge_empty(buildings: gpd.GeoDataFrame, pieces: pd.Series, households: str) -> pd.Series:
    """Give each piece without households to the nearest piece with households.

    A piece of only non-residential buildings (an office of schools and shops, say)
    cannot be planned on its own; its buildings join the nearest piece instead of
    being dropped or failing the whole call. With no households anywhere nothing changes
    (the solver then says so).
    """
    h = buildings[households].groupby(pieces.to_numpy(), sort=False).sum()
    empty = h.index[h.to_numpy() == 0]
    full = h.index[h.to_numpy() > 0]
    if len(empty) == 0 or len(full) == 0:
        return pieces
    geoms = buildings.geometry.to_numpy()
    labels = pieces.to_numpy()
    hulls = {k: shapely.convex_hull(shapely.union_all(geoms[labels == k])) for k in h.index}
    full_hulls = np.array([hulls[k] for k in full], dtype=object)
    tree = shapely.STRtree(full_hulls)
    out = pieces.copy()
    for k in empty:
        near = int(tree.query_nearest(hulls[k], all_matches=False)[0])
        out[labels == k] = full[near]
        log.info(
            "piece %s has no households; its buildings join the nearest piece %s", k, full[near]
        )
    return out


def _partition_piece(
    task: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, float], options: dict[str, Any]
) -> Any:
    """One piece's grids (a Dask task): :func:`gridopt.partition_grids` on its buildings."""
    from gridopt.partition import partition_grids

    buildings, streets, time_limit_s = task
    return partition_grids(buildings, streets=streets, time_limit_s=time_limit_s, **options)


#: the least time limit a piece of :func:`partition_city` gets (seconds)
MIN_PIECE_S = 30.0


def partition_city(
    buildings: gpd.GeoDataFrame,
    *,
    by: str | None = "street",
    streets: gpd.GeoDataFrame | None = None,
    households: str = "households",
    min_households: int = 200,
    max_households: int = 300,
    communities: str | None = "community",
    time_limit_s: float = 600.0,
    seed: int = 0,
    client: Any = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> Any:
    """Grids of a whole city or province, piece by piece (street offices or blocks), stitched.

    :func:`gridopt.partition_grids` on every piece (tessellation included, so no stage
    ever holds the whole city's adjacency), sequentially or on a Dask cluster, then one
    :class:`~gridopt.partition.Partition` for the whole area: grid ids renumbered
    ``G00001...`` in piece order, grid polygons of neighbouring pieces made disjoint
    (a strip claimed by two pieces goes to the first).

    Parameters
    ----------
    buildings
        Buildings in a metric CRS with a households column.
    by
        Column naming the pieces (default the street office, ``"street"``); ``None``
        cuts the city into barrier-bounded blocks with :func:`split_city` (a block too
        small for a grid is merged with a neighbour). A missing default column falls
        back to blocks.
    streets
        Streets with ``barrier_kind``; each piece gets the lines near it.
    households, min_households, max_households, seed
        As for :func:`gridopt.partition_grids`.
    communities
        Community column passed on (grids never straddle two communities); ignored when
        the column does not exist.
    time_limit_s
        Limit for the whole call; each piece gets a share proportional to its buildings
        (times the number of workers), at least one second.
    client
        ``None`` (sequential), a ``dask.distributed.Client`` or ``"local"`` (see
        :func:`map_components`).
    progress
        Optional callable receiving progress lines.
    **options
        Further options of :func:`gridopt.partition_grids` (``exclusive``, ``method``,
        ``max_gap_m`` ...); ``previous`` is not supported here.

    Returns
    -------
    gridopt.partition.Partition
        ``details`` adds ``pieces`` and per-stage sums over the pieces.

    Examples
    --------
    >>> from gridopt.synthetic import synthetic_city
    >>> city = synthetic_city(400, seed=2)
    >>> part = partition_city(city.buildings, streets=city.streets)
    >>> bool(part.labels.index.equals(city.buildings.index)), part.share_in_band
    (True, 1.0)
    """
    from gridopt.partition import Partition

    t0 = time.perf_counter()
    say = progress or (lambda msg: log.info(msg))
    if "previous" in options:
        raise InputError(
            "partition_city does not take previous=; use gridopt.partition_grids for re-gridding"
        )
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(f"buildings must be a GeoDataFrame, got {type(buildings).__name__}")
    if not buildings.index.is_unique:
        raise InputError("buildings.index has duplicate ids; building ids must be unique")
    if by is not None and by not in buildings.columns and by == "street":
        by = None
    pieces = split_city(
        buildings, by=by, streets=streets, households=households,
        min_households=min_households, max_households=max_households,
    )  # fmt: skip
    pieces = _merge_empty(buildings, pieces, households)
    opts = dict(
        options,
        households=households,
        min_households=min_households,
        max_households=max_households,
        seed=seed,
    )
    if communities is not None and communities in buildings.columns:
        opts["communities"] = communities
    max_gap_m = float(options.get("max_gap_m", 80.0))
    codes, names = pd.factorize(pieces, sort=False)
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    n = len(buildings)
    threads = _threads(client)
    line_tree = None
    if streets is not None and len(streets):
        if buildings.crs is not None and streets.crs is not None and streets.crs != buildings.crs:
            streets = reproject(streets, buildings.crs, what="streets")
        line_tree = shapely.STRtree(streets.geometry.to_numpy())
    tasks = []
    for grp in groups:
        part = buildings.iloc[grp]
        near = None
        if line_tree is not None:
            box = shapely.box(*part.total_bounds).buffer(max_gap_m)
            near = streets.iloc[np.sort(line_tree.query(box))]
        # a share of the city's limit by size, but never below MIN_PIECE_S: a small piece
        # gets the exact polish (<= 150 buildings) and a piece stops once it converges,
        # so the floor costs time only where it buys quality (measured: a 131-building
        # office of the 47k city, 10,209 households, compactness 2,876 m at 5 s and
        # 1,321 m at 30 s, where it finished in 12 s)
        share = time_limit_s * threads * len(grp) / max(n, 1)
        tasks.append((part, near, float(min(time_limit_s, max(MIN_PIECE_S, share)))))
    say(f"partitioning {n:,} buildings in {len(tasks):,} pieces")
    t = time.perf_counter()
    results = map_components(
        _partition_piece, tasks, args=(opts,), client=client, sizes=[len(g) for g in groups],
        name="gridopt-partition-piece", progress=progress,
    )  # fmt: skip
    solve_s = time.perf_counter() - t
    del tasks
    return _stitch(
        buildings, names, results, Partition, min_households, max_households, t0, solve_s
    )


def _threads(client: Any) -> int:
    if client is None:
        return 1
    if isinstance(client, str):
        return os.cpu_count() or 1
    return max(1, sum(client.nthreads().values()))


def _stitch(
    buildings: gpd.GeoDataFrame,
    names: Any,
    results: list[Any],
    partition_cls: type,
    lo: int,
    hi: int,
    t0: float,
    solve_s: float,
) -> Any:
    """One Partition from the pieces' partitions: global grid ids, disjoint polygons."""
    frames = []
    label_parts = []
    total = sum(len(r.grids) for r in results)
    width = max(5, len(str(total)))
    k = 0
    for piece, res in zip(names, results, strict=True):
        g = res.grids.copy()
        new_ids = [f"G{k + r + 1:0{width}d}" for r in range(len(g))]
        k += len(g)
        rename = dict(zip(g["grid_id"], new_ids, strict=True))
        g["grid_id"] = new_ids
        g["piece"] = str(piece)
        frames.append(g)
        label_parts.append(res.labels.map(rename))
    grids = pd.concat(frames, ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=buildings.crs)
    grids["geometry"] = _disjoint(grids.geometry.to_numpy(), grids["piece"].to_numpy())
    labels = pd.concat(label_parts).reindex(buildings.index).rename("grid_id")
    missing = labels.isna()
    if missing.any():  # never expected: every piece labels all its buildings
        raise RuntimeError(f"{int(missing.sum())} buildings lost while stitching pieces")
    h = np.array(
        [
            r.grids.loc[r.grids["kind"].isin(["regular", "undersized"]), "households"].sum()
            for r in results
        ]
    )
    objective = float(np.dot([r.objective for r in results], h) / h.sum()) if h.sum() else 0.0
    statuses = {r.status for r in results}
    status = (
        "time_limit"
        if "time_limit" in statuses
        else "optimal"
        if statuses <= {"optimal"}
        else "feasible"
    )
    bounds = [r.bound for r in results]
    bound = (
        float(np.dot(bounds, h) / h.sum())
        if h.sum() and all(b is not None for b in bounds)
        else None
    )
    details: dict[str, Any] = {"pieces": len(results), "pieces_s": solve_s}
    for key in ("tessellation_s", "solve_s", "edges", "components", "barrier_merges"):
        vals = [r.details.get(key) for r in results if isinstance(r.details.get(key), (int, float))]
        if vals:
            details[key] = float(sum(vals)) if key.endswith("_s") else int(sum(vals))
    details["piece_seconds_max"] = max((r.runtime_s for r in results), default=0.0)
    # which pieces stopped at their time limit (their grids are valid, maybe less compact)
    details["pieces_time_limit"] = [
        str(piece) for piece, r in zip(names, results, strict=True) if r.status == "time_limit"
    ]
    return partition_cls(
        labels=labels,
        grids=grids,
        status=status,
        objective=objective,
        bound=bound,
        runtime_s=time.perf_counter() - t0,
        min_households=lo,
        max_households=hi,
        households_moved=None,
        details=details,
    )


def _disjoint(geoms: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """Remove from each grid polygon what grids of earlier pieces already cover.

    Each piece was tessellated alone, so cells at a piece border reach into the
    neighbouring piece's land (at most ``max_gap_m / 2``). Inside a piece the polygons
    are disjoint already; only pairs from different pieces are cut.
    """
    geoms = geoms.copy()
    rank = pd.factorize(piece)[0]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = rank[a] < rank[b]
    a, b = a[keep], b[keep]
    if not len(a):
        return geoms
    inter = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    a, b = a[inter > 1e-6], b[inter > 1e-6]
    for j in np.unique(b):
        earlier = geoms[a[b == j]]
        cut = shapely.difference(geoms[j], shapely.union_all(earlier), grid_size=0.01)
        if cut.geom_type == "MultiPolygon":
            cut = max(cut.geoms, key=lambda g: g.area)  # a sliver cut off at the seam
        if not cut.is_empty:
            geoms[j] = cut
    return geoms


# ---------------------------------------------------------------------------
# plan_city: gridopt.plan per street office, stitched
# ---------------------------------------------------------------------------

#: columns holding ids that are unique only inside one street office's plan.
_LOCAL_ID_COLUMNS = ("grid_id", "station", "site", "site_id", "station_id")


@dataclass(frozen=True)
class OfficePlan:
    """The light result of one street office's :func:`gridopt.plan` (what travels back)."""

    name: str
    layers: dict[str, pd.DataFrame]
    report: pd.DataFrame
    runtime_s: dict[str, float]
    summary: str
    n_grids: int
    share_in_band: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CityPlan:
    """A city's plan made street office by street office.

    Attributes
    ----------
    offices
        One :class:`OfficePlan` per street office, in input order.
    runtime_s
        Wall seconds of the call (``"total"``) and per stage summed over the offices
        (CPU-side work: larger than the wall time on a cluster).
    """

    offices: tuple[OfficePlan, ...]
    runtime_s: dict[str, float]
    min_households: int = 200
    max_households: int = 300

    def layer(self, name: str) -> pd.DataFrame:
        """One layer of all offices together, ids prefixed ``"<office>/"`` (``office`` column added)."""
        frames = []
        for office in self.offices:
            frame = office.layers.get(name)
            if frame is None or len(frame) == 0:
                continue
            frame = frame.copy()
            for col in _LOCAL_ID_COLUMNS:
                if col in frame.columns:
                    frame[col] = frame[col].map(
                        lambda v, o=office.name: None if v is None or v != v else f"{o}/{v}"
                    )
            if frame.index.name in _LOCAL_ID_COLUMNS:
                frame.index = pd.Index(
                    [f"{office.name}/{v}" for v in frame.index], name=frame.index.name
                )
            frame.insert(0, "office", office.name)
            frames.append(frame)
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames)
        if isinstance(frames[0], gpd.GeoDataFrame):
            out = gpd.GeoDataFrame(out, geometry=frames[0].geometry.name, crs=frames[0].crs)
        return out

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """All grids (``grid_id`` is ``"<office>/<grid>"``)."""
        return self.layer("grids")

    def report(self) -> pd.DataFrame:
        """One row per grid over all offices (see :meth:`gridopt.Plan.report`)."""
        frames = [o.report.assign(office=o.name) for o in self.offices]
        out = pd.concat(frames, ignore_index=True)
        out["grid_id"] = out["office"] + "/" + out["grid_id"].astype(str)
        return out

    def summary(self) -> str:
        """Totals over the offices: buildings, households, grids, band, time."""
        g = self.grids
        kinds = g["kind"].value_counts()
        reg = g.loc[g["kind"] == "regular", "households"]
        inside = (
            float(reg.between(self.min_households, self.max_households).mean())
            if len(reg)
            else float("nan")
        )
        b = self.layer("buildings")
        st = self.layer("stations")
        lines = [
            f"{len(self.offices):,} street offices, {len(b):,} buildings, {int(b['households'].sum()):,} households",
            f"grids: {len(g):,} ({', '.join(f'{int(kinds.get(k, 0))} {k}' for k in ('regular', 'exclusive', 'oversized', 'undersized'))}), "
            f"{inside:.1%} of regular grids inside the band",
            f"stations: {len(st):,}",
            "time " + ", ".join(f"{k} {v:.1f} s" for k, v in self.runtime_s.items()),
        ]
        return "\n".join(lines)

    def to_file(self, directory: str | os.PathLike[str], *, map_office: str | None = None) -> Path:
        """Write ``plan.gpkg`` (all offices), ``report.csv``, ``summary.txt`` and ``map.html``.

        The map shows one street office (``map_office``; default the first), because a
        map of a whole city in one browser page is neither fast nor readable.
        """
        from gridopt.io import write_layers

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted({n for o in self.offices for n in o.layers})
        order = [n for n in ("buildings", "grids", "stations") if n in names] + [
            n for n in names if n not in ("buildings", "grids", "stations")
        ]
        layers = {n: self.layer(n) for n in order}
        write_layers(directory / "plan.gpkg", {n: f for n, f in layers.items() if len(f)})
        self.report().to_csv(directory / "report.csv", index=False)
        (directory / "summary.txt").write_text(self.summary() + "\n", encoding="utf-8")
        self.office_map(map_office).save(str(directory / "map.html"))
        return directory

    def office_map(self, office: str | None = None) -> Any:
        """The interactive map (:func:`gridopt.mapping.plan_map`) of one street office."""
        import tempfile

        from gridopt.io import write_layers
        from gridopt.mapping import plan_map

        pick = (
            self.offices[0]
            if office is None
            else next((o for o in self.offices if o.name == office), None)
        )
        if pick is None:
            raise InputError(
                f"no street office {office!r}; offices: {', '.join(o.name for o in self.offices[:20])}"
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "plan.gpkg"
            write_layers(path, {n: f for n, f in pick.layers.items() if len(f)})
            return plan_map(path)


def _plan_piece(
    task: tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame | None], config: dict[str, Any]
) -> OfficePlan:
    """One street office's plan (a Dask task), reduced to its layers and report."""
    from gridopt.pipeline import _layers, plan

    name, buildings, streets = task
    p = plan(buildings, streets=streets, config=config)
    return OfficePlan(
        name=name,
        layers=_layers(p),
        report=p.report(),
        runtime_s=dict(p.runtime_s),
        summary=p.summary(),
        n_grids=len(p.partition.grids),
        share_in_band=float(p.partition.share_in_band),
        notes=tuple(p.notes),
    )


def plan_city(
    buildings: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    by: str = "street",
    streets: gpd.GeoDataFrame | None = None,
    config: Any = None,
    client: Any = None,
    chunk_rows: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CityPlan:
    """:func:`gridopt.plan` for every street office, sequentially or on Dask.

    Street offices are independent for every stage (grids nest in communities, stations
    and staff are planned per office), so each office is one task: buildings, grids,
    walking network, stations and staff, with the streets near the office.

    Parameters
    ----------
    buildings
        A GeoDataFrame (metric CRS, households) or a file. A GeoParquet/GeoPackage path
        with ``chunk_rows`` is read a few offices at a time
        (:func:`read_buildings_chunked`), so the whole file never sits in one frame.
    by
        Column naming the street office of each building.
    streets
        Street lines with ``barrier_kind`` (all offices; each task gets the lines near
        its office).
    config
        A :class:`gridopt.PlanConfig` or a dict of its fields, for every office. The time
        limit applies per office.
    client
        ``None`` (sequential), a ``dask.distributed.Client`` or ``"local"``.
    chunk_rows
        Read a file in pieces of about this many rows (whole offices per piece).
    progress
        Optional callable receiving progress lines.

    Returns
    -------
    CityPlan
    """
    from gridopt.io import read_buildings
    from gridopt.pipeline import PlanConfig

    t0 = time.perf_counter()
    cfg = PlanConfig.from_any(config)
    cfg_dict = dataclasses.asdict(cfg)
    cfg_dict["progress"] = False  # no progress bars inside workers
    if isinstance(buildings, (str, os.PathLike)) and chunk_rows:
        frames: Iterator[gpd.GeoDataFrame] = read_buildings_chunked(
            buildings, chunk_rows=chunk_rows, by=by
        )
    elif isinstance(buildings, (str, os.PathLike)):
        frames = iter([read_buildings(buildings)])
    elif isinstance(buildings, gpd.GeoDataFrame):
        frames = iter([buildings])
    else:
        raise InputError(
            f"buildings must be a path or a GeoDataFrame, got {type(buildings).__name__}"
        )
    tree = None
    offices: list[OfficePlan] = []
    for frame in frames:
        if by not in frame.columns:
            raise InputError(
                f"buildings have no street-office column {by!r}; pass by= (columns: {', '.join(map(str, frame.columns))})"
            )
        if streets is not None and tree is None:
            if streets.crs is not None and frame.crs is not None and streets.crs != frame.crs:
                streets = reproject(streets, frame.crs, what="streets")
            tree = shapely.STRtree(streets.geometry.to_numpy())
        tasks = []
        offices_of = _merge_empty(frame, frame[by].astype(str), "households")
        for name, part in frame.groupby(offices_of.to_numpy(), sort=False):
            near = None
            if tree is not None:
                box = shapely.box(*part.total_bounds).buffer(1.5 * cfg.max_walk_m)
                near = streets.iloc[np.sort(tree.query(box))]
            tasks.append((str(name), part, near))
        if progress:
            progress(f"planning {len(tasks)} street offices ({len(frame):,} buildings)")
        offices += map_components(
            _plan_piece, tasks, args=(cfg_dict,), client=client, sizes=[len(t[1]) for t in tasks],
            name="gridopt-plan-office", progress=progress,
        )  # fmt: skip
    runtime: dict[str, float] = {}
    for o in offices:
        for k, v in o.runtime_s.items():
            if k != "total":
                runtime[k] = runtime.get(k, 0.0) + float(v)
    runtime["total"] = time.perf_counter() - t0
    return CityPlan(
        offices=tuple(offices),
        runtime_s=runtime,
        min_households=cfg.min_households,
        max_households=cfg.max_households,
    )


# ---------------------------------------------------------------------------
# read_buildings_chunked
# ---------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".geoparquet")


def _parquet_geo(pf: Any) -> tuple[str, Any]:
    import json

    meta = pf.schema_arrow.metadata or {}
    if b"geo" not in meta:
        raise InputError(
            f"{pf} is a Parquet file without GeoParquet metadata ('geo'); write it with GeoDataFrame.to_parquet"
        )
    geo = json.loads(meta[b"geo"])
    col = geo["primary_column"]
    crs = geo["columns"][col].get("crs", "OGC:CRS84")
    return col, crs


def _parquet_rows(
    path: Path, chunk_rows: int, keep: np.ndarray | None
) -> Iterator[tuple[gpd.GeoDataFrame, np.ndarray]]:
    """Row batches of a GeoParquet file (optionally only rows where ``keep``), with global row numbers."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    col, crs = _parquet_geo(pf)
    start = 0
    for batch in pf.iter_batches(batch_size=chunk_rows):
        rows = np.arange(start, start + batch.num_rows)
        start += batch.num_rows
        if keep is not None:
            sel = keep[rows]
            if not sel.any():
                continue
            batch = batch.filter(sel)
            rows = rows[sel]
        frame = batch.to_pandas()
        geom = shapely.from_wkb(frame.pop(col).to_numpy())
        gdf = gpd.GeoDataFrame(frame, geometry=geom, crs=crs)
        yield gdf, rows


def read_buildings_chunked(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 50_000,
    by: str | None = None,
    layer: str | None = None,
    **read_options: Any,
) -> Iterator[gpd.GeoDataFrame]:
    """Read a large GeoParquet or GeoPackage of buildings in pieces.

    Each piece goes through :func:`gridopt.read_buildings` (metric CRS, households),
    and the building ids are the global row numbers (or ``id_column``), exactly as
    when the whole file is read at once: concatenating the pieces gives the same
    buildings, each exactly once.

    Parameters
    ----------
    path
        A ``.parquet``/``.geoparquet`` (GeoParquet) or ``.gpkg`` file.
    chunk_rows
        Rows per piece (with ``by``: the target size; a piece holds whole groups,
        so one group larger than this is a piece of its own).
    by
        A column naming groups (e.g. ``"community"``) that must not be split across
        pieces. The file is then read twice or more: once for that column, then once
        per piece (only the rows of its groups are kept in memory).
    layer
        GeoPackage layer.
    **read_options
        Passed to :func:`gridopt.read_buildings` (``households=``, ``floors=``,
        ``id_column=``, ``m2_per_household=`` ...). ``crs`` applies to files without
        one.

    Yields
    ------
    geopandas.GeoDataFrame
        As returned by :func:`gridopt.read_buildings`; the repair report's
        ``source_row`` values are global row numbers.

    Raises
    ------
    InputError
        Unsupported format, unknown ``by`` column, and everything
        :func:`gridopt.read_buildings` raises for a piece.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"buildings file not found: {path}")
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if _is_parquet(path):
        raw = _chunks_parquet(path, chunk_rows, by)
    elif path.suffix.lower() == ".gpkg":
        raw = _chunks_gpkg(path, chunk_rows, by, layer)
    else:
        raise InputError(
            f"read_buildings_chunked reads GeoParquet (.parquet) or GeoPackage (.gpkg), got {path.name}; "
            "use gridopt.read_buildings for other formats"
        )
    for frame, rows in raw:
        out = _finish_chunk(frame, rows, read_options)
        # One working CRS for the whole file: the first piece's (a city may straddle two zones).
        read_options = {**read_options, "to_crs": WorkingCRS.of(out)}
        yield out


def _group_batches(values: pd.Series, chunk_rows: int) -> list[np.ndarray]:
    """Group values (in order of first appearance) packed into batches of about chunk_rows rows."""
    counts = values.value_counts(sort=False, dropna=False)
    order = pd.unique(values)
    out: list[list[Any]] = [[]]
    size = 0
    for v in order:
        c = int(counts[v])
        if size and size + c > chunk_rows:
            out.append([])
            size = 0
        out[-1].append(v)
        size += c
    return [np.asarray(b, dtype=object) for b in out if b]


def _chunks_parquet(
    path: Path, chunk_rows: int, by: str | None
) -> Iterator[tuple[gpd.GeoDataFrame, np.ndarray]]:
    import pyarrow.parquet as pq

    if by is None:
        yield from _parquet_rows(path, chunk_rows, None)
        return
    pf = pq.ParquetFile(path)
    if by not in pf.schema_arrow.names:
        raise InputError(
            f"{path.name} has no column {by!r}; columns: {', '.join(pf.schema_arrow.names)}"
        )
    values = pq.read_table(path, columns=[by]).column(by).to_pandas()
    for batch in _group_batches(values, chunk_rows):
        keep = values.isin(batch).to_numpy()
        parts = list(_parquet_rows(path, max(chunk_rows, 1), keep))
        frames = [p[0] for p in parts]
        rows = np.concatenate([p[1] for p in parts])
        yield pd.concat(frames, ignore_index=True), rows


def _chunks_gpkg(
    path: Path, chunk_rows: int, by: str | None, layer: str | None
) -> Iterator[tuple[gpd.GeoDataFrame, np.ndarray]]:
    import pyogrio

    info = pyogrio.read_info(path, layer=layer)
    n = int(info["features"])
    if by is None:
        for start in range(0, n, chunk_rows):
            frame = pyogrio.read_dataframe(
                path, layer=layer, skip_features=start, max_features=chunk_rows, on_invalid="ignore"
            )
            yield frame, np.arange(start, start + len(frame))
        return
    if by not in list(info["fields"]):
        raise InputError(f"{path.name} has no column {by!r}; columns: {', '.join(info['fields'])}")
    # One pass for the group column and the feature ids: the ids give the global row number.
    keys = pyogrio.read_dataframe(
        path, layer=layer, columns=[by], read_geometry=False, fid_as_index=True
    )
    row_of_fid = pd.Series(np.arange(len(keys)), index=keys.index)
    for batch in _group_batches(keys[by], chunk_rows):
        fids = keys.index[keys[by].isin(batch).to_numpy()]
        frame = pyogrio.read_dataframe(
            path, layer=layer, fids=fids.to_numpy(), fid_as_index=True, on_invalid="ignore"
        )
        rows = row_of_fid.loc[frame.index].to_numpy()
        yield frame.reset_index(drop=True), rows


def _finish_chunk(
    frame: gpd.GeoDataFrame, rows: np.ndarray, read_options: dict[str, Any]
) -> gpd.GeoDataFrame:
    import warnings

    from gridopt._errors import RepairWarning
    from gridopt.io import read_buildings

    if read_options.get("id_column") is None:
        # read_buildings takes a non-range index as the building ids: the global row numbers.
        frame = frame.set_axis(pd.Index(rows, name="row"), axis=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RepairWarning)
        out = read_buildings(frame, **read_options)
    for rec in out.attrs.get("gridopt_report", []):
        rec["source_row"] = int(rows[rec["source_row"]])
    for w in caught:
        if issubclass(w.category, RepairWarning):
            warnings.warn(
                f"rows {int(rows.min())}-{int(rows.max())}: {w.message}",
                RepairWarning,
                stacklevel=3,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out
