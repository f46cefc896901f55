"""The whole plan in one call: buildings -> households -> grids -> walking network -> stations -> staff.

:func:`plan` chains the stages and returns a :class:`Plan`; ``Plan.to_file`` writes
``plan.gpkg``, ``report.csv``, ``map.html`` and ``overview.png`` for the street
office to review. Every standard the stages use is a field of :class:`PlanConfig`.

Examples
--------
The example of :func:`plan` runs the whole chain on a small synthetic city; the
command line does the same for a file: ``gridopt plan BUILDINGS --out DIR``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridopt._errors import InputError
from gridopt.audit import audit
from gridopt.households import default_share, uncertain_buildings
from gridopt.io import _is_osm, read_landuse

__all__ = ["Plan", "PlanConfig", "plan"]

log = logging.getLogger("gridopt")

#: The stages :func:`plan` runs, in order (the keys of ``Plan.runtime_s``).
STAGES = ("buildings", "grids", "walking network", "stations", "staff")

#: Files :meth:`Plan.to_file` writes.
OUTPUT_FILES = ("plan.gpkg", "report.csv", "map.html", "overview.png", "summary.txt")

_STAFF_MODES = ("synthetic", "skip")

#: Least time limit of the stations and staff stages (see ``PlanConfig.stage_limit_s``).
MIN_STAGE_S = 5.0


@dataclass(frozen=True)
class PlanConfig:
    """Every standard and limit of a plan (defaults: Dalian 2022 / national practice).

    Attributes
    ----------
    min_households, max_households
        The grid band (Dalian: 200-300 households; Shenyang works to about 300).
    max_walk_m
        Walking limit to a service station (15-minute life circle: about 1,000 m).
    m2_per_100_households
        Station floor area per 100 households served (Shenyang: 30 m²).
    n_stations
        Number of stations; ``None`` lets the solver choose the fewest that serve everyone.
    station_objective
        ``"median"``, ``"cover"`` or ``"max_cover"`` (see :func:`gridopt.place_stations`).
    walk_speed_m_per_min
        Walking speed for the 5/10/15-minute shares (75 m/min = 4.5 km/h).
    m2_per_household
        Gross floor area per household used to estimate households (census: 100 m²).
    exclusive_grids
        Schools, hospitals and commercial sites get grids of their own (Jilin programme).
    communities
        Column of the buildings naming their community; grids never straddle two. Used
        only when the column exists.
    fallback_station_m2
        When no candidate site is given or marked (no public/office/community building in
        the data), every building with households is treated as a possible site for a
        station room of this floor area, and the plan says so.
    station_floor_area_m2
        Floor area of a station room in a candidate building (300 m²: 1,000
        households); a given candidate's own ``floor_area_m2`` wins.
    propose_new_sites
        Propose new sites on the street network for households no candidate
        reaches within ``max_walk_m`` (see :func:`gridopt.place_stations`).
    staff_when_missing
        Without a staff list: ``"synthetic"`` (default) plans with a placeholder roster in
        the standard's proportions (:func:`gridopt.staffing.synthetic_staff`), so the
        report shows how many workers and officers each grid needs and where the
        shortfall would be; the plan flags it everywhere (``Plan.staff_synthetic``).
        ``"skip"`` leaves staffing out.
    staffing_rules
        A :class:`gridopt.StaffingRules`, a dict of its fields, or ``None`` (Dalian).
    time_limit_s
        Time limit of each optimising stage (grids, stations, staff), seconds.
    grid_starts
        Starts of the grid heuristic per component (``max_starts`` of
        :func:`gridopt.partition_grids`); ``None`` keeps its default (8). Fewer starts are
        faster and less compact: on six street offices of a 10,000-building synthetic
        city (3,813 buildings) 8 starts took 15.4 s CPU, 3 starts 7.9 s (objective +5%),
        1 start 3.8 s (+14%), all grids inside the band.
    seconds_per_1000_buildings
        The stations and staff stages get at most this many seconds per 1,000
        buildings (at least :data:`MIN_STAGE_S`), capped by ``time_limit_s``: their
        heuristics find the plan in the first seconds, and the exact solvers after them
        rarely improve it, only its bound (on a 700-building street office the station
        MIP spent 30 s to move the proven gap from 0.67% to 0.39% without changing the
        plan). Default 5: on six offices of the synthetic 10,000-building city the
        stations stage took 9.5 s instead of 12.5 s at 10, with the same proven gaps
        (0.58%, 0.19% and four proven optimal). ``None`` gives every stage the whole
        ``time_limit_s``. The grids get ``time_limit_s`` (their heuristic stops by
        itself when it converges).
    seed
        Seed of every randomised part; the same seed gives the same plan.
    progress
        Show a progress bar per stage (on stderr / in the notebook).
    """

    min_households: int = 200
    max_households: int = 300
    max_walk_m: float = 1000.0
    m2_per_100_households: float = 30.0
    n_stations: int | None = None
    station_objective: str = "median"
    walk_speed_m_per_min: float = 75.0
    m2_per_household: float = 100.0
    exclusive_grids: bool = True
    communities: str | None = "community"
    fallback_station_m2: float = 300.0
    station_floor_area_m2: float = 300.0
    propose_new_sites: bool = True
    staff_when_missing: str = "synthetic"
    staffing_rules: Any = None
    time_limit_s: float = 60.0
    grid_starts: int | None = None
    seconds_per_1000_buildings: float | None = 5.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        lo, hi = self.min_households, self.max_households
        for name in ("min_households", "max_households"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise InputError(f"{name} must be a positive whole number, got {v!r}")
        if lo > hi:
            raise InputError(
                f"impossible grid band: min_households={lo} is above max_households={hi}; "
                "swap them or widen the band (e.g. 200-300)"
            )
        for name in (
            "max_walk_m",
            "m2_per_100_households",
            "walk_speed_m_per_min",
            "m2_per_household",
            "fallback_station_m2",
            "station_floor_area_m2",
            "time_limit_s",
        ):
            v = getattr(self, name)
            if not (
                isinstance(v, (int, float, np.number))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v > 0
            ):
                raise InputError(f"{name} must be a positive finite number, got {v!r}")
        if self.grid_starts is not None and (
            not isinstance(self.grid_starts, (int, np.integer))
            or isinstance(self.grid_starts, bool)
            or self.grid_starts < 1
        ):
            raise InputError(
                f"grid_starts must be a positive whole number or None, got {self.grid_starts!r}"
            )
        v = self.seconds_per_1000_buildings
        if v is not None and not (
            isinstance(v, (int, float, np.number))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v > 0
        ):
            raise InputError(
                f"seconds_per_1000_buildings must be a positive finite number or None, got {v!r}"
            )
        if self.n_stations is not None and (
            not isinstance(self.n_stations, (int, np.integer)) or self.n_stations < 1
        ):
            raise InputError(
                f"n_stations must be a positive whole number or None, got {self.n_stations!r}"
            )
        if self.staff_when_missing not in _STAFF_MODES:
            raise InputError(
                f"staff_when_missing must be one of {_STAFF_MODES}, got {self.staff_when_missing!r}"
            )

    @classmethod
    def from_any(cls, config: PlanConfig | Mapping[str, Any] | None) -> PlanConfig:
        """A ``PlanConfig`` from itself, a dict of its fields, or ``None`` (the defaults).

        Raises
        ------
        InputError
            A key that is not a field, or a value a field does not accept.
        """
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(config) - names)
            if unknown:
                raise InputError(
                    f"unknown plan option(s) {unknown}; PlanConfig accepts {sorted(names)}"
                )
            return cls(**dict(config))
        raise InputError(
            f"config must be a PlanConfig, a dict or None, not {type(config).__name__}"
        )

    def replace(self, **changes: Any) -> PlanConfig:
        """A copy with some fields changed (for scenario comparisons)."""
        return dataclasses.replace(self, **changes)

    def stage_limit_s(self, n_buildings: int) -> float:
        """Time limit of the stations and staff stages for an area of ``n_buildings``.

        Examples
        --------
        >>> PlanConfig().stage_limit_s(700), PlanConfig().stage_limit_s(100_000)
        (5.0, 60.0)
        """
        if self.seconds_per_1000_buildings is None:
            return float(self.time_limit_s)
        scaled = max(MIN_STAGE_S, self.seconds_per_1000_buildings * n_buildings / 1000.0)
        return float(min(self.time_limit_s, scaled))


@dataclass(frozen=True)
class Plan:
    """A complete grid-management plan.

    Attributes
    ----------
    buildings
        The buildings (metric CRS) with ``households`` and, per building, ``grid_id``,
        ``station`` (site id of the station it walks to, ``None`` when unserved),
        ``walk_m`` and ``within_walk_limit``.
    partition
        The :class:`gridopt.Partition` (``.grids`` has one polygon per grid).
    stations
        The :class:`gridopt.StationPlan` (``.stations``, ``.allocation``, ``.metrics``,
        ``.uncovered``, ``.shortfall``).
    staff
        The :class:`gridopt.StaffPlan`, or ``None`` when staffing was skipped.
    config
        The :class:`PlanConfig` used.
    runtime_s
        Seconds per stage (keys of :data:`STAGES`) and ``"total"``.
    staff_synthetic
        True when no staff list was given and a placeholder roster was planned.
    streets
        The street lines used (``None`` when none were given).
    notes
        What a reviewer must know: fallbacks taken, placeholders used.
    """

    buildings: gpd.GeoDataFrame
    partition: Any
    stations: Any
    staff: Any
    config: PlanConfig
    runtime_s: dict[str, float]
    staff_synthetic: bool = False
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # The frames inside would print thousands of rows; summary() says what matters.
        return (
            f"<Plan: {len(self.buildings):,} buildings, {len(self.partition.grids):,} grids, "
            f"{len(self.stations.stations):,} stations, "
            f"staff {'placeholder' if self.staff_synthetic else 'skipped' if self.staff is None else 'given'}; "
            "see .summary()>"
        )

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """The grid polygons (``partition.grids``)."""
        return self.partition.grids

    def report(self) -> pd.DataFrame:
        """One row per grid: what the street office reviews.

        Returns
        -------
        pandas.DataFrame
            ``grid_id``, ``community``, ``kind``, ``households``, ``buildings``,
            ``workers`` and ``officers`` (assigned; ``NaN`` when staffing was skipped),
            ``station`` (the station most of the grid's households walk to), ``stations``
            (every station they walk to with its share, e.g. ``"12 (80%); 40 (20%)"``),
            ``mean_walk_m`` and ``max_walk_m`` (household-weighted mean, max over the
            grid's buildings with households), ``share_within_15min`` and ``reason``.
        """
        return _grid_report(self)

    def summary(self) -> str:
        """A few lines: grids, stations, staff, time, and every note."""
        g = self.partition.grids
        kinds = g["kind"].value_counts()
        m = self.stations.metrics
        cfg = self.config
        minutes = cfg.max_walk_m / cfg.walk_speed_m_per_min
        lines = [
            f"{len(self.buildings):,} buildings, {int(self.buildings['households'].sum()):,} households",
            f"grids: {len(g):,} ({', '.join(f'{int(kinds.get(k, 0))} {k}' for k in ('regular', 'exclusive', 'oversized', 'undersized'))}), "
            f"band {cfg.min_households}-{cfg.max_households}, "
            f"{self.partition.share_in_band:.1%} of regular grids inside",
            _coverage_line(m, cfg.max_walk_m),
            f"stations: {len(self.stations.stations):,}, mean walk {m.get('mean_walk_m', float('nan')):,.0f} m, "
            f"max {m.get('max_walk_m', float('nan')):,.0f} m, "
            f"{m.get('share_within_15min', float('nan')):.1%} of households within 15 min; "
            f"{int(m.get('households_beyond_max_walk', 0)):,} beyond {cfg.max_walk_m:,.0f} m (~{minutes:.0f} min)",
        ]
        short = self.stations.shortfall or {}
        if short.get("shortfall_households", 0):
            lines.append(
                f"station capacity short by {short['shortfall_households']:,.0f} households "
                f"({short.get('shortfall_m2', 0):,.0f} m² of floor area)"
            )
        if self.staff is None:
            lines.append("staff: not planned")
        else:
            a = self.staff.assignments
            placed = (
                a["grid_id"].notna() if "grid_id" in a.columns else pd.Series(False, index=a.index)
            )
            missing = int(self.staff.shortfall["missing"].sum()) if len(self.staff.shortfall) else 0
            tag = " (PLACEHOLDER roster: no staff list was given)" if self.staff_synthetic else ""
            lines.append(
                f"staff{tag}: {int(placed.sum()):,} of {len(a):,} people posted to grids; "
                f"shortfall {missing:,} posts"
            )
        total = self.runtime_s.get("total", sum(self.runtime_s.values()))
        lines.append(
            f"time {total:.1f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.runtime_s.items() if k != "total")
            + ")"
        )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_file(self, directory: str | os.PathLike[str]) -> Path:
        """Write the plan's files into ``directory``.

        Writes ``plan.gpkg`` (layers ``buildings`` with ``grid_id``, ``grids``,
        ``stations``, ``allocation``, ``uncovered``, and ``staff`` / ``shortfall`` when
        staffing ran), ``report.csv``, ``map.html``, ``overview.png`` and
        ``summary.txt``. Everything is written into a temporary folder beside
        ``directory`` first and moved into place at the end, so an interrupted run
        never leaves a partial set of files that looks complete.

        Returns
        -------
        pathlib.Path
            The directory.
        """
        return _write_plan(self, Path(directory))


def plan(
    buildings: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    streets: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
    staff: str | os.PathLike[str] | pd.DataFrame | None = None,
    candidates: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
    config: PlanConfig | Mapping[str, Any] | None = None,
    client: Any = None,
    partition: Any = None,
    previous: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
) -> Plan:
    """Plan grids, service stations and staff for a set of buildings.

    Parameters
    ----------
    buildings
        A buildings file (``.gpkg``, ``.geojson``, ``.parquet``, ``.shp``, ``.osm.pbf``)
        or GeoDataFrame; households are estimated unless a ``households`` column exists.
    streets
        Street lines (file or GeoDataFrame) for barriers and walking distances. For an
        ``.osm.pbf`` buildings path the default is the same file. Without streets,
        walking distances are straight lines times a detour factor (and the plan says so).
    staff
        The staff list (CSV with x/y, point file or frame; see :func:`gridopt.assign_staff`).
        ``None``: see ``PlanConfig.staff_when_missing``.
    candidates
        Possible station sites (points/polygons with ``floor_area_m2``). Default: the
        buildings marked ``station_candidate``.
    config
        A :class:`PlanConfig` or a dict of its fields.
    client
        A ``dask.distributed.Client`` for the grid stage of large areas.
    partition
        The grids of an earlier plan of the same buildings and band (``plan.partition``)
        to keep, for scenarios that change only stations or staff (walking limits).
        ``None`` divides the grids anew.
    previous
        The current grid polygons (a file or GeoDataFrame, e.g. the street office's
        Shapefile): every grid that is still valid is kept as it is, only the others are
        re-divided, and the plan notes the households moved (see :func:`gridopt.audit`).

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        Missing or unreadable files, an empty area, no households, an impossible band
        or walk limit, streets that do not overlap the buildings (CRS mismatch).

    Examples
    --------
    >>> import gridopt
    >>> city = gridopt.synthetic_city(150, seed=1)
    >>> p = gridopt.plan(city.buildings, streets=city.streets,
    ...                  config={"time_limit_s": 3, "progress": False})
    >>> bool(p.buildings["grid_id"].notna().all())
    True
    >>> int(p.buildings["households"].sum()) == int(city.buildings["households"].sum())
    True
    >>> list(p.report().columns[:4])
    ['grid_id', 'community', 'kind', 'households']
    """
    from gridopt.network import walk_network
    from gridopt.partition import partition_grids
    from gridopt.stations import place_stations

    cfg = PlanConfig.from_any(config)
    run = _Run(cfg)

    with run.stage("buildings"):  # read footprints, estimate households
        frame = _buildings(buildings, cfg, run)
        lines = _streets(streets, buildings, frame)

    with run.stage("grids"):
        if partition is not None:
            _check_partition(partition, frame, cfg)
        else:
            old, keep = _previous_labels(previous, frame, cfg, lines, run)
            communities, exclusive = _communities(frame, cfg), _exclusive(frame, cfg)
            if keep is not None:
                frame, communities, exclusive = _lock_valid_grids(
                    frame, old, keep, communities, exclusive
                )
            partition = partition_grids(
                frame,
                min_households=cfg.min_households,
                max_households=cfg.max_households,
                streets=lines,
                communities=communities,
                exclusive=exclusive,
                seed=cfg.seed,
                time_limit_s=cfg.time_limit_s,
                client=client,
                previous=old,
                **({} if cfg.grid_starts is None else {"max_starts": int(cfg.grid_starts)}),
            )
            if old is not None:
                frame, partition = _unlock(frame, partition, cfg)
                run.note(_previous_note(old, partition, frame))

    with run.stage("walking network"):
        network = walk_network(lines, crs=frame.crs) if lines is not None else None

    with run.stage("stations"):
        stations = place_stations(
            frame,
            candidates=_candidates(candidates, frame, cfg, run),
            streets=network,
            n_stations=cfg.n_stations,
            max_walk_m=cfg.max_walk_m,
            m2_per_100_households=cfg.m2_per_100_households,
            objective=cfg.station_objective,
            walk_speed_m_per_min=cfg.walk_speed_m_per_min,
            seed=cfg.seed,
            time_limit_s=cfg.stage_limit_s(len(frame)),
            station_floor_area_m2=cfg.station_floor_area_m2,
            propose_new_sites=cfg.propose_new_sites,
            grids=partition.labels,
            parcels=_vacant_parcels(buildings, candidates, frame),
        )
        _check_reachable(stations, frame, cfg)

    with run.stage("staff"):
        roster = _roster(staff, partition, cfg, run)
        staff_plan = _assign_staff(roster, partition, cfg, network)

    return run.finish(frame, partition, stations, staff_plan, lines)


# ---------------------------------------------------------------------------
# Stage helpers
# ---------------------------------------------------------------------------


class _Run:
    """Per-stage timing, progress bars, logging and notes of one :func:`plan` call."""

    def __init__(self, cfg: PlanConfig) -> None:
        self.cfg = cfg
        self.times: dict[str, float] = {}
        self.notes: list[str] = []
        self.staff_synthetic = False
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        from tqdm import tqdm

        i = STAGES.index(name) + 1
        label = f"[{i}/{len(STAGES)}] {name}"
        # A live bar in a terminal; elsewhere (notebook, log file) redrawn bars pile up,
        # so there each stage is one line: its name when it starts, its time when done.
        live = self.cfg.progress and sys.stderr.isatty()
        bar = tqdm(
            total=1,
            desc=label,
            bar_format="{desc:<26} {bar:10} {elapsed}",
            disable=not live,
            leave=True,
            file=sys.stderr,
        )
        if self.cfg.progress and not live:
            sys.stderr.write(f"{label:<22} ... ")
            sys.stderr.flush()
        log.info("plan: stage %d/%d %s", i, len(STAGES), name)
        t = time.perf_counter()
        ok = False
        done = threading.Event()
        if live:  # keep the elapsed time ticking while a solver works
            threading.Thread(target=_tick, args=(bar, done), daemon=True).start()
        try:
            yield
            ok = True
        finally:
            done.set()
            self.times[name] = time.perf_counter() - t
            if ok:
                bar.update(1)  # a failed stage does not show as complete
            bar.close()
            if self.cfg.progress and not live:
                sys.stderr.write(f"{self.times[name]:.1f} s\n" if ok else "failed\n")
                sys.stderr.flush()
            log.info("plan: %s %s after %.2f s", name, "done" if ok else "failed", self.times[name])

    def note(self, text: str) -> None:
        log.info("plan: %s", text)
        self.notes.append(text)

    def finish(
        self,
        frame: gpd.GeoDataFrame,
        partition: Any,
        stations: Any,
        staff: Any,
        lines: gpd.GeoDataFrame | None,
    ) -> Plan:
        if stations.metrics.get("distance_method") not in (None, "network"):
            self.note(
                f"walking distances: {stations.metrics.get('distance_method')} "
                "(straight line x detour factor where no street network reaches)"
            )
        for line in _household_lines(frame):
            self.note(line)
        self.times["total"] = time.perf_counter() - self.t0
        return Plan(
            buildings=_annotate(frame, partition, stations),
            partition=partition,
            stations=stations,
            staff=staff,
            config=self.cfg,
            runtime_s=dict(self.times),
            staff_synthetic=self.staff_synthetic,
            streets=lines,
            notes=tuple(self.notes),
        )


def _tick(bar: Any, done: threading.Event) -> None:
    while not done.wait(0.5):
        bar.refresh()


def _buildings(source: Any, cfg: PlanConfig, run: _Run) -> gpd.GeoDataFrame:
    """Buildings in a metric CRS with households, checked for an empty area."""
    from gridopt._errors import RepairWarning
    from gridopt.io import read_buildings, repair_report, to_metric_crs

    if not isinstance(source, (gpd.GeoDataFrame, str, os.PathLike)):
        raise InputError(
            f"buildings must be a file path or a GeoDataFrame, not {type(source).__name__}"
        )
    with warnings.catch_warnings():
        # Repairs become a note of the plan and a layer of plan.gpkg instead.
        warnings.simplefilter("ignore", RepairWarning)
        columns = set(source.columns) if isinstance(source, gpd.GeoDataFrame) else set()
        if {"households", "households_source"} <= columns:
            frame = to_metric_crs(source.copy(), what="buildings")  # already read by gridopt
        elif "households" in columns:
            frame = read_buildings(source, households="households")
        else:
            frame = read_buildings(source, m2_per_household=cfg.m2_per_household)
    repairs = repair_report(frame)
    if len(repairs):
        actions = ", ".join(f"{n} {a}" for a, n in repairs["action"].value_counts().items())
        run.note(
            f"{len(repairs)} building features were repaired or skipped when reading "
            f"({actions}); see the 'repairs' layer of plan.gpkg"
        )
    total = int(frame["households"].sum())
    if total == 0:
        raise InputError(
            f"the area has {len(frame)} buildings but no households (all are non-residential or "
            "too small); check the building types/storeys or pass a households column"
        )
    return frame


def _streets(streets: Any, source: Any, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    """Street lines in the buildings' CRS; the buildings' own .osm.pbf by default."""
    from gridopt.io import _is_osm, read_streets

    if streets is None and _is_osm(source):
        streets = source
    if streets is None:
        return None
    with warnings.catch_warnings():
        # Coordinates outside their CRS's range project to inf; reported below instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        lines = read_streets(streets, to_crs=frame.crs)
    if len(lines) == 0:
        return None
    coords = lines.geometry.get_coordinates().to_numpy()
    if not np.isfinite(coords).all():
        raise InputError(
            "the streets' coordinates do not fit their CRS (they cannot be projected to the "
            f"buildings' {frame.crs.to_string()}): metres labelled as degrees, or the wrong "
            "EPSG code on the streets file. Set the right CRS on the file and try again"
        )
    bx0, by0, bx1, by1 = frame.total_bounds
    sx0, sy0, sx1, sy1 = lines.total_bounds
    if sx1 < bx0 or sx0 > bx1 or sy1 < by0 or sy0 > by1:
        raise InputError(
            "the streets do not overlap the buildings (buildings span "
            f"x {bx0:,.0f}..{bx1:,.0f}, y {by0:,.0f}..{by1:,.0f}; streets x {sx0:,.0f}..{sx1:,.0f}, "
            f"y {sy0:,.0f}..{sy1:,.0f} in {frame.crs.to_string()}): a wrong or missing CRS on one "
            "of the files, or streets of another area"
        )
    return lines


def _check_partition(partition: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig) -> None:
    """An earlier plan's grids may be kept only for the same buildings and band."""
    labels = getattr(partition, "labels", None)
    if labels is None or not hasattr(partition, "grids"):
        raise InputError(f"partition must be a gridopt.Partition, not {type(partition).__name__}")
    if not labels.index.equals(frame.index):
        raise InputError(
            f"the partition covers {len(labels):,} buildings but the plan has {len(frame):,} "
            "(or other ids); pass the partition of a plan of the same buildings, or none"
        )
    band = (partition.min_households, partition.max_households)
    if band != (cfg.min_households, cfg.max_households):
        raise InputError(
            f"the partition was cut to {band[0]}-{band[1]} households but the config asks for "
            f"{cfg.min_households}-{cfg.max_households}; pass partition=None to divide anew"
        )


# Column holding the grouping that locks valid previous grids while the others are re-divided.
_LOCK = "_gridopt_lock"


def _previous_labels(
    previous: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig, lines: Any, run: _Run
) -> tuple[pd.Series | None, set[str] | None]:
    """The current grid of each building (from polygons) and the ids of the valid ones."""
    if previous is None:
        return None, None
    checked = audit(
        frame, grids=previous, communities=_communities(frame, cfg), streets=lines,
        min_households=cfg.min_households, max_households=cfg.max_households,
    )
    labels = checked.buildings["grid_id"].reindex(frame.index)
    gaps = int(labels.isna().sum())
    if gaps:
        run.note(f"{gaps:,} buildings lie in none of the previous grids: they join a neighbour")
    bad = checked.grids.loc[~checked.grids["valid"], ["grid_id", "violations"]]
    if len(bad):
        run.note(
            "previous grids violating a standard, re-divided: "
            + "; ".join(f"{g} ({v})" for g, v in bad.itertuples(index=False))
        )
    return labels, set(checked.grids.loc[checked.grids["valid"], "grid_id"].astype(str))


def _lock_valid_grids(
    frame: gpd.GeoDataFrame,
    old: pd.Series,
    keep: set[str],
    communities: str | None,
    exclusive: bool | None,
) -> tuple[gpd.GeoDataFrame, str, pd.Series | bool | None]:
    """Make each valid previous grid a community of its own, so it stays as it is.

    Grids never straddle communities, so a locked grid is neither cut nor joined; the
    buildings of the other grids keep their real community and are divided anew.
    """
    locked = old.astype(object).isin(keep).to_numpy()
    real = (
        frame[communities].astype(str).to_numpy(dtype=object)
        if communities
        else np.full(len(frame), "", dtype=object)
    )
    out = frame.copy()
    out[_LOCK] = np.where(locked, "kept:" + old.astype(str).to_numpy(dtype=object), real)
    if exclusive:
        # A school inside a kept grid stays in it.
        exclusive = pd.Series(
            out["exclusive_candidate"].fillna(False).astype(bool).to_numpy() & ~locked,
            index=out.index,
        )
    return out, _LOCK, exclusive


def _unlock(frame: gpd.GeoDataFrame, partition: Any, cfg: PlanConfig) -> tuple[Any, Any]:
    """Drop the locking column; grids name their real community again."""
    if _LOCK not in frame.columns:
        return frame, partition
    frame = frame.drop(columns=_LOCK)
    grids = partition.grids
    real = _communities(frame, cfg)
    if "community" in grids.columns:
        names = (
            frame[real].groupby(partition.labels.reindex(frame.index)).agg(
                lambda s: s.mode().iloc[0] if s.notna().any() else None
            )
            if real
            else pd.Series(dtype=object)
        )
        grids = grids.assign(community=grids["grid_id"].map(names))
        partition = dataclasses.replace(partition, grids=grids)
    return frame, partition


def _previous_note(old: pd.Series, partition: Any, frame: gpd.GeoDataFrame) -> str:
    """How many previous grids were kept unchanged, and the households moved."""
    new = partition.labels.reindex(old.index)
    same = pd.DataFrame({"old": old, "new": new}).dropna()
    kept = int(sum(
        1 for _, grp in same.groupby("old")
        if grp["new"].nunique() == 1
        and (new == grp["new"].iloc[0]).sum() == len(grp)
    ))
    hh = frame["households"].reindex(old.index).fillna(0)
    moved = int(hh[old.notna() & (old.astype(object) != new.astype(object))].sum())
    return (f"previous grids: {kept:,} of {old.nunique():,} kept unchanged; "
            f"{moved:,} households moved to another grid")


def _communities(frame: gpd.GeoDataFrame, cfg: PlanConfig) -> str | None:
    return cfg.communities if cfg.communities and cfg.communities in frame.columns else None


def _exclusive(frame: gpd.GeoDataFrame, cfg: PlanConfig) -> bool | None:
    return True if cfg.exclusive_grids and "exclusive_candidate" in frame.columns else None


def _candidates(
    candidates: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig, run: _Run
) -> gpd.GeoDataFrame | None:
    """Candidate station sites: given, marked in the buildings, or the documented fallback."""
    from gridopt.io import _load

    if candidates is not None:
        sites, _ = _load(candidates, layer=None, crs=None, what="candidate sites")
        return sites.to_crs(frame.crs)
    marked = (
        frame["station_candidate"].fillna(False).astype(bool)
        if "station_candidate" in frame
        else None
    )
    if marked is not None and marked.any():
        return None  # place_stations uses the marked buildings
    sites = frame.loc[frame["households"] > 0, ["geometry"]].copy()
    sites["floor_area_m2"] = cfg.fallback_station_m2
    run.note(
        f"no candidate station sites were given or found (no public, office or community "
        f"building in the data): every one of the {len(sites):,} residential buildings was "
        f"treated as a possible site for a {cfg.fallback_station_m2:,.0f} m² station room; "
        "pass candidates= with real sites"
    )
    return sites


#: OSM land-use values of vacant land where a station could be built.
VACANT_LANDUSE = frozenset({"brownfield", "greenfield", "vacant"})


def _vacant_parcels(source: Any, candidates: Any, frame: gpd.GeoDataFrame) -> Any:
    """Vacant parcels of the buildings' own OSM extract (none when candidates are given)."""
    if candidates is not None or not _is_osm(source):
        return None
    land = read_landuse(source, to_crs=frame.crs)
    return land[land["landuse"].isin(VACANT_LANDUSE)]


def _check_reachable(stations: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig) -> None:
    """A walking limit no household at all can meet is a mistake, not a plan.

    Where only some households are beyond it, the plan reports them (``uncovered``).
    """
    total = int(frame["households"].sum())
    beyond = int(stations.metrics.get("households_beyond_max_walk", 0))
    # Judged on the candidate sites: proposed new sites can sit at anyone's door.
    existing = stations.metrics.get("share_within_limit_existing")
    if existing is not None:
        beyond = total if existing <= 0 else beyond
    if total and beyond >= total:
        walk = stations.allocation["walk_m"][stations.allocation["households"] > 0]
        closest = float(walk.min()) if walk.notna().any() else float("nan")
        raise InputError(
            f"max_walk_m={cfg.max_walk_m:g} is impossible here: none of the {total:,} households "
            f"can reach a station site within it (the closest walks {closest:,.0f} m); raise the "
            "limit (the 15-minute life circle is about 1,000 m) or pass closer candidate sites"
        )


def _roster(staff: Any, partition: Any, cfg: PlanConfig, run: _Run) -> Any:
    """The staff list to plan with: the user's, a placeholder roster, or None (skip)."""
    if staff is not None:
        return staff
    if cfg.staff_when_missing == "skip":
        run.note("no staff list given: staffing skipped (staff_when_missing='skip')")
        return None
    from gridopt.staffing import synthetic_staff

    run.staff_synthetic = True
    run.note(
        "no staff list given: staff were planned with a PLACEHOLDER roster in the standard's "
        "proportions (gridopt.staffing.synthetic_staff) to show the posts each grid needs; "
        "pass staff= with the real list before using the assignments"
    )
    return synthetic_staff(partition.grids, seed=cfg.seed, rules=_rules(cfg))


def _assign_staff(roster: Any, partition: Any, cfg: PlanConfig, network: Any) -> Any:
    """Staff posted to the grids (:func:`gridopt.assign_staff`), or None when skipped.

    With a walking network, travel from home to post is walked over it.
    """
    if roster is None:
        return None
    from gridopt.staffing import assign_staff

    return assign_staff(
        partition,
        roster,
        rules=_rules(cfg),
        streets=network if network is not None and network.number_of_nodes() else None,
        time_limit_s=cfg.stage_limit_s(len(partition.labels)),
        seed=cfg.seed,
    )


def _rules(cfg: PlanConfig) -> Any:
    """The staffing standard: ``PlanConfig.staffing_rules`` as a StaffingRules (or None)."""
    rules = cfg.staffing_rules
    if isinstance(rules, Mapping):
        from gridopt.staffing import StaffingRules

        return StaffingRules(**dict(rules))
    return rules


def _annotate(frame: gpd.GeoDataFrame, partition: Any, stations: Any) -> gpd.GeoDataFrame:
    """The buildings with their grid, station and walk."""
    out = frame.copy()
    out["grid_id"] = partition.labels.reindex(out.index)
    alloc = stations.allocation.reindex(out.index)
    out["station"] = alloc["station"]
    out["walk_m"] = alloc["walk_m"].astype(float)
    out["within_walk_limit"] = alloc["within_limit"]
    if "distance_method" in alloc.columns:
        out["distance_method"] = alloc["distance_method"]
    return out


# ---------------------------------------------------------------------------
# Report and files
# ---------------------------------------------------------------------------


def _grid_report(p: Plan) -> pd.DataFrame:
    g = p.partition.grids
    b = p.buildings
    hh = b["households"].astype(float)
    limit_15 = 15.0 * p.config.walk_speed_m_per_min
    walk = b["walk_m"].where(b["station"].notna())
    tmp = pd.DataFrame(
        {
            "grid_id": b["grid_id"],
            "hh": hh,
            "hw": hh * walk.fillna(0.0),
            "hh_walk": hh.where(walk.notna(), 0.0),
            "hh15": hh.where(walk <= limit_15, 0.0),
            "walk": walk.where(hh > 0),
        }
    )
    by = tmp.groupby("grid_id", sort=False)
    agg = pd.DataFrame(
        {
            "buildings": by.size(),
            "mean_walk_m": by["hw"].sum() / by["hh_walk"].sum().replace(0, np.nan),
            "max_walk_m": by["walk"].max(),
            "share_within_15min": by["hh15"].sum() / by["hh"].sum().replace(0, np.nan),
        }
    )
    # The station most of a grid's households walk to.
    st = pd.DataFrame({"grid_id": b["grid_id"], "station": b["station"], "hh": hh})
    st = st[st["station"].notna()]
    main = (
        st.groupby(["grid_id", "station"], sort=False)["hh"]
        .sum()
        .reset_index()
        .sort_values(["grid_id", "hh"], ascending=[True, False], kind="stable")
        .drop_duplicates("grid_id")
        .set_index("grid_id")["station"]
    )
    rep = pd.DataFrame(
        {
            "grid_id": g["grid_id"].to_numpy(),
            "community": g["community"].to_numpy() if "community" in g.columns else None,
            "kind": g["kind"].to_numpy(),
            "households": g["households"].astype(int).to_numpy(),
        }
    )
    rep["buildings"] = rep["grid_id"].map(agg["buildings"]).fillna(0).astype(int)
    workers, officers = _staff_counts(p.staff, rep["grid_id"])
    rep["workers"] = workers
    rep["officers"] = officers
    rep["station"] = rep["grid_id"].map(main)
    for col in ("mean_walk_m", "max_walk_m"):
        rep[col] = rep["grid_id"].map(agg[col]).round(1)
    rep["share_within_15min"] = rep["grid_id"].map(agg["share_within_15min"]).round(4)
    rep["reason"] = g["reason"].fillna("").to_numpy() if "reason" in g.columns else ""
    rep["stations"] = rep["grid_id"].map(_station_shares(st)).fillna("")
    return rep


def _station_shares(st: pd.DataFrame) -> pd.Series:
    """Per grid, every station its households walk to with its share: "A (80%); B (20%)"."""
    st = st[st["hh"] > 0]
    if st.empty:
        return pd.Series(dtype=object)
    per = st.groupby(["grid_id", "station"], sort=False)["hh"].sum().reset_index()
    per["share"] = per["hh"] / per.groupby("grid_id")["hh"].transform("sum")
    per = per.sort_values(["grid_id", "share"], ascending=[True, False], kind="stable")
    per["text"] = per["station"].astype(str) + " (" + (100 * per["share"]).round(0).astype(
        int).astype(str) + "%)"
    return per.groupby("grid_id", sort=False)["text"].agg("; ".join)


def _coverage_line(m: Mapping[str, Any], limit_m: float) -> str:
    """The headline: the share of households within the plan's own walking limit."""
    line = (f"within {limit_m:,.0f} m walking: {m.get('share_within_limit', float('nan')):.1%} "
            "of households")
    new = int(m.get("n_new_sites", 0))
    if new:
        line += (f" with {new} proposed new station site(s); "
                 f"{m.get('share_within_limit_existing', float('nan')):.1%} with the candidate "
                 "sites alone")
    if "grids_with_households" in m:
        line += (f"; {m['grids_with_households'] - m.get('grids_several_stations', 0):,} of "
                 f"{m['grids_with_households']:,} grids walk to one station")
    return line


def _household_lines(b: gpd.GeoDataFrame) -> list[str]:
    """How sure the household counts are: share on defaults, range, least sure buildings."""
    if "households_source" not in b.columns:
        return []
    lines = [f"households: {default_share(b):.1%} rest on default storeys (no levels or "
             "height in the data)"]
    if {"households_low", "households_high", "households_confidence"} <= set(b.columns):
        lines[0] += (f"; plausible range {int(b['households_low'].sum()):,}-"
                     f"{int(b['households_high'].sum()):,} households")
        top = uncertain_buildings(b, n=5)
        if len(top):
            lines.append(
                "least sure household counts (check on site): "
                + "; ".join(
                    f"{bid}: {int(r['households'])} ({int(r['households_low'])}-"
                    f"{int(r['households_high'])}), {r['households_note']}"
                    for bid, r in top.iterrows()
                )
            )
    return lines


def _staff_counts(staff: Any, grid_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Grid workers and information officers posted to each grid."""
    if staff is None:
        nan = pd.Series(np.nan, index=grid_ids.index)
        return nan, nan.copy()
    a = staff.assignments
    a = a[a["grid_id"].notna()] if "grid_id" in a.columns else a.iloc[:0]

    def count(role: str) -> pd.Series:
        n = a[a["role"] == role].groupby("grid_id").size()
        return grid_ids.map(n).fillna(0).astype(int)

    return count("grid_worker"), count("info_officer")


def _layers(p: Plan) -> dict[str, pd.DataFrame]:
    from gridopt.io import repair_report

    # The grids layer carries the report's columns, so a GIS user sees them too.
    extra = p.report().drop(columns=["community", "kind", "households", "reason"])
    grids = p.partition.grids.merge(extra, on="grid_id", how="left")
    layers: dict[str, pd.DataFrame] = {
        "buildings": p.buildings,
        "grids": grids,
        "stations": p.stations.stations,
        "allocation": p.stations.allocation,
    }
    if len(p.stations.uncovered):
        layers["uncovered"] = p.stations.uncovered
    if p.staff is not None:
        layers["staff"] = p.staff.assignments
        if len(p.staff.shortfall):
            layers["shortfall"] = p.staff.shortfall
    repairs = repair_report(p.buildings)
    if len(repairs):
        layers["repairs"] = repairs
    # The standards used, so the files alone say how the plan was made.
    layers["config"] = pd.DataFrame(
        [{"name": k, "value": repr(v)} for k, v in dataclasses.asdict(p.config).items()]
    )
    if p.notes:
        layers["notes"] = pd.DataFrame({"note": list(p.notes)})
    return layers


def _write_plan(p: Plan, directory: Path) -> Path:
    from gridopt.io import write_layers
    from gridopt.mapping import overview_png, plan_map

    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        with warnings.catch_warnings():
            # GPKG stores the plan's ids as text; pyogrio's notes on that are no news here.
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="pyogrio")
            write_layers(tmp / "plan.gpkg", _layers(p))
        p.report().to_csv(tmp / "report.csv", index=False)
        plan_map(p).save(str(tmp / "map.html"))
        overview_png(p, tmp / "overview.png")
        (tmp / "summary.txt").write_text(p.summary() + "\n", encoding="utf-8")
        _move_into_place(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("plan written to %s", directory)
    return directory


def _move_into_place(tmp: Path, directory: Path) -> None:
    """Make the finished files appear in ``directory`` all at once where possible."""
    if not directory.exists():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it private
        os.replace(tmp, directory)  # one atomic rename
        return
    if not directory.is_dir():
        raise InputError(f"output {directory} exists and is not a directory")
    # Stale outputs of an earlier plan go first, so old and new files never mix.
    for name in OUTPUT_FILES:
        (directory / name).unlink(missing_ok=True)
    # summary.txt last: its presence marks a complete set.
    for name in sorted(os.listdir(tmp), key=lambda n: n == "summary.txt"):
        os.replace(tmp / name, directory / name)
