"""Execution layer: run independent pieces sequentially or on a Dask cluster.

Every stage of gridopt decomposes along the governance hierarchy (street office ->
community -> barrier-bounded block), so the pieces can be solved independently and
stitched back. :func:`map_components` runs a pure function over a list of pieces, in
order without a client, or on a :class:`dask.distributed.Client` with one. Each Dask
task has a *pure key* derived from its content and results are gathered in task order,
so the same seed gives the same answer with or without a cluster. A worker that dies
mid-run has its tasks rescheduled by Dask; ``retries`` re-runs a task that raised.

Without a client work runs sequentially in the calling process: a cluster costs seconds
to start and memory per process, and pays off only where several cores are free (see
``benchmarks/NOTES.md``). ``client="local"`` starts a LocalCluster for one call, and
:func:`local_client` does the same as a context manager to reuse one cluster over
several calls.

This module imports nothing of gridopt but the error types: every stage may use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from gridopt._errors import InputError

__all__ = ["DEFAULT_RETRIES", "local_client", "map_components", "worker_threads"]

log = logging.getLogger("gridopt")

#: Default number of times Dask re-runs a task that raised (worker death is separate:
#: the scheduler reschedules those tasks up to ``distributed.scheduler.allowed-failures``).
DEFAULT_RETRIES = 2


def _run_batch(func: Callable[..., Any], batch: Sequence[Any], args: tuple[Any, ...]) -> list[Any]:
    """Run ``func(task, *args)`` for every task of a batch (one Dask task)."""
    return [func(task, *args) for task in batch]


def _content_key(*parts: Any) -> str:
    """A deterministic hash of the task's content (function, pieces, shared arguments).

    Hashing the pickle is much faster than ``dask.base.tokenize`` on GeoDataFrames
    (whose geometry column tokenize walks object by object); both are deterministic.
    """
    import cloudpickle  # a dependency of dask.distributed, loaded only when a cluster is used

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


def worker_threads(client: Any) -> int:
    """Worker threads a ``client`` argument of :func:`map_components` runs on (1 without one)."""
    if client is None:
        return 1
    if isinstance(client, str):
        return os.cpu_count() or 1
    return max(1, sum(client.nthreads().values()))
