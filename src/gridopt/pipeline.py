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
import shapely
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from tqdm import tqdm

from gridopt import i18n
from gridopt._errors import InputError, RepairWarning
from gridopt._validate import check
from gridopt.audit import audit
from gridopt.crs import WorkingCRS, check_coords
from gridopt.defaults import (
    FALLBACK_STATION_M2,
    M2_PER_100_HOUSEHOLDS,
    M2_PER_HOUSEHOLD,
    MAX_HOUSEHOLDS,
    MAX_LINK_M,
    MAX_WALK_M,
    MIN_HOUSEHOLDS,
    MIN_STAGE_S,
    SECONDS_PER_1000_BUILDINGS,
    SEED,
    STATION_FLOOR_AREA_M2,
    TIME_LIMIT_S,
    WALK_SPEED_M_PER_MIN,
)
from gridopt.households import default_share, uncertain_buildings
from gridopt.io import (
    _is_osm,
    join_communities,
    read_area,
    read_buildings,
    read_communities,
    read_landuse,
    read_sites,
    read_streets,
    repair_report,
    write_layers,
)
from gridopt.mapping import overview_png, plan_map
from gridopt.network import walk_network
from gridopt.partition import Partition, partition_grids
from gridopt.staffing import StaffingRules, StaffPlan, assign_staff, read_staff, synthetic_staff
from gridopt.stations import StationPlan, place_stations
from gridopt.vocab import NO_COMMUNITY

__all__ = ["Plan", "PlanConfig", "plan"]

log = logging.getLogger("gridopt")

#: The stages :func:`plan` runs, in order (the keys of ``Plan.runtime_s``).
STAGES = ("buildings", "grids", "walking network", "stations", "staff")

#: Files :meth:`Plan.to_file` writes.
OUTPUT_FILES = (
    "plan.gpkg",
    "report.csv",
    "report.xlsx",
    "map.html",
    "overview.png",
    "summary.txt",
)

#: Background maps of ``map.html`` (see :func:`gridopt.plan_map`).
BASEMAPS = ("osm", "amap", "tianditu", "none")


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
        Time limit of each optimising stage (grids, stations, staff), seconds. The grids
        count CPU seconds of the calling thread, so a busy machine does not change them.
    grid_starts
        Starts of the grid heuristic per component (``max_starts`` of
        :func:`gridopt.partition_grids`); ``None`` keeps its default (8). Fewer starts are
        faster and less compact (measurements in ``benchmarks/NOTES.md``).
    max_link_m
        Buildings whose land touches within this distance form one settlement; a
        settlement below the band joins the nearest one of its community across open land
        where that makes a grid (:func:`gridopt.partition_grids`).
    boundary_classes
        Street/water/rail classes that bound blocks (:data:`gridopt.tags.BOUNDARY_CLASSES`;
        ``None``: all of them, residential streets and above).
    seconds_per_1000_buildings
        The stations and staff stages get at most this many seconds per 1,000
        buildings (at least :data:`gridopt.defaults.MIN_STAGE_S`), capped by
        ``time_limit_s``: their heuristics find the plan in the first seconds, and the
        exact solvers after them mostly tighten the bound (``benchmarks/NOTES.md``).
        ``None`` gives every stage the whole ``time_limit_s``. The grids get
        ``time_limit_s`` (their heuristic stops by itself when it converges).
    seed
        Seed of every randomised part; the same seed gives the same plan.
    progress
        Show a progress bar per stage (on stderr / in the notebook).
    coords
        The lon/lat system of geographic inputs and of the written plan: ``"wgs84"``,
        ``"gcj02"`` (AMap/Gaode, Tencent) or ``"bd09"`` (Baidu); see :mod:`gridopt.crs`.
        The plan is computed in a metric CRS and written back in the input's system.
    households_col, floors_col, community_col, type_col, id_col, name_col
        Columns of the buildings file holding households (户数), storeys (层数),
        community (社区), building type (建筑类型), building id and name (名称): the
        ``households``, ``floors``, ``community``, ``building_type``, ``building_id`` and
        ``name`` keywords of :func:`gridopt.read_buildings` (CLI: ``--households-col`` ...).
        ``None`` looks for the usual English and Chinese names; a column named here
        must exist.
    community_name_col
        Column of the ``communities=`` polygons holding the names (default: 名称,
        社区名称, 社区, name).
    encoding
        Text encoding of the buildings, communities and staff files (``"gbk"``);
        ``None`` detects UTF-8, UTF-8 with BOM and GBK/GB18030.
    language
        Language of the outputs (report, summary, map, overview): ``"zh"``, ``"en"``, or
        ``"auto"`` (default): Chinese when the buildings carry Chinese column names or
        Chinese community names, English otherwise (``Plan.language``).
    grid_name
        Template of the grid names (``grid_name`` column), with ``{community}``, ``{n}``
        (the grid's number within its community) and ``{grid_id}``. ``None``: the
        language's habit, ``"{community}第{n}网格"`` (平江社区第3网格) or
        ``"{community} grid {n}"``; grids without a community are named after the
        street office (a single ``street`` value) or just ``第{n}网格``.
    grid_order
        Order of the communities in the report: ``"input"`` (as they first appear in the
        buildings) or ``"pinyin"`` (alphabetical by pinyin).
    basemap
        Background of ``map.html``: ``"osm"`` (OpenStreetMap), ``"amap"`` (AMap/Gaode,
        drawn in GCJ-02: the plan is shifted onto it), ``"tianditu"`` (needs
        ``tianditu_key``) or ``"none"``.
    tianditu_key
        The user's Tianditu key (browser type) for ``basemap="tianditu"``; never written
        to plan.gpkg.
    """

    min_households: int = MIN_HOUSEHOLDS
    max_households: int = MAX_HOUSEHOLDS
    max_walk_m: float = MAX_WALK_M
    m2_per_100_households: float = M2_PER_100_HOUSEHOLDS
    n_stations: int | None = None
    station_objective: str = "median"
    walk_speed_m_per_min: float = WALK_SPEED_M_PER_MIN
    m2_per_household: float = M2_PER_HOUSEHOLD
    exclusive_grids: bool = True
    communities: str | None = "community"
    fallback_station_m2: float = FALLBACK_STATION_M2
    station_floor_area_m2: float = STATION_FLOOR_AREA_M2
    propose_new_sites: bool = True
    staff_when_missing: str = "synthetic"
    staffing_rules: StaffingRules | Mapping[str, Any] | None = None
    time_limit_s: float = TIME_LIMIT_S
    grid_starts: int | None = None
    max_link_m: float = MAX_LINK_M
    boundary_classes: tuple[str, ...] | None = None
    seconds_per_1000_buildings: float | None = SECONDS_PER_1000_BUILDINGS
    seed: int = SEED
    progress: bool = True
    coords: str = "wgs84"

    households_col: str | None = None
    floors_col: str | None = None
    community_col: str | None = None
    type_col: str | None = None
    id_col: str | None = None
    name_col: str | None = None
    community_name_col: str | None = None
    encoding: str | None = None

    language: str = "auto"
    grid_name: str | None = None
    grid_order: str = "input"
    basemap: str = "osm"
    tianditu_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coords", check_coords(self.coords))
        check(
            **{
                name: getattr(self, name)
                for name in (
                    "min_households",
                    "max_households",
                    "max_walk_m",
                    "m2_per_100_households",
                    "walk_speed_m_per_min",
                    "m2_per_household",
                    "fallback_station_m2",
                    "station_floor_area_m2",
                    "max_link_m",
                    "time_limit_s",
                    "grid_starts",
                    "seconds_per_1000_buildings",
                    "n_stations",
                    "staff_when_missing",
                    "seed",
                )
            }
        )
        _check_column_fields(self)
        self._check_outputs()

    def _check_outputs(self) -> None:
        """The output options: language, grid names and order, basemap."""
        if self.language not in (*i18n.LANGUAGES, "auto"):
            raise InputError(f"language must be 'zh', 'en' or 'auto', got {self.language!r}")
        if self.grid_name is not None:
            i18n.check_grid_name(self.grid_name)
        if self.grid_order not in ("input", "pinyin"):
            raise InputError(f"grid_order must be 'input' or 'pinyin', got {self.grid_order!r}")
        if self.basemap not in BASEMAPS:
            raise InputError(f"basemap must be one of {BASEMAPS}, got {self.basemap!r}")
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise InputError(
                "basemap='tianditu' needs your Tianditu key (tianditu_key=..., a browser key "
                "from console.tianditu.gov.cn); or use basemap='amap' or 'osm'"
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
    crs
        The :class:`gridopt.crs.WorkingCRS`: the frames above are in its working CRS;
        :meth:`to_file` writes them back in its input CRS and lon/lat system.
    """

    buildings: gpd.GeoDataFrame
    partition: Partition
    stations: StationPlan
    staff: StaffPlan | None
    config: PlanConfig
    runtime_s: dict[str, float]
    staff_synthetic: bool = False
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    crs: WorkingCRS | None = field(default=None, repr=False)

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

    @property
    def language(self) -> str:
        """The outputs' language, ``"zh"`` or ``"en"`` (``PlanConfig.language`` resolved)."""
        return _language(self)

    def report(self, language: str | None = None) -> pd.DataFrame:
        """One row per grid: what the street office reviews.

        Parameters
        ----------
        language
            ``None``: the column keys below and the stages' values (for code).
            ``"zh"`` / ``"en"``: headers, kinds and reasons for people (report.csv).

        Returns
        -------
        pandas.DataFrame
            ``grid_id``, ``grid_name``, ``community``, ``kind``, ``households``, ``buildings``,
            ``workers`` and ``officers`` (assigned; ``NaN`` when staffing was skipped),
            ``station`` (the station most of the grid's households walk to), ``stations``
            (every station they walk to with its share, e.g. ``"12 (80%); 40 (20%)"``),
            ``mean_walk_m`` and ``max_walk_m`` (household-weighted mean, max over the
            grid's buildings with households), ``share_within_15min`` and ``reason``.
        """
        rep = _grid_report(self)
        return rep if language is None else _report_table(rep, language)

    def layers(self) -> dict[str, pd.DataFrame]:
        """The layers of ``plan.gpkg``, by name (what :meth:`to_file` writes)."""
        return _layers(self)

    def summary(self, language: str | None = None) -> str:
        """A few lines: grids, stations, staff, time, and every note (in ``Plan.language``)."""
        return _summary(self, language or self.language)

    def to_file(self, directory: str | os.PathLike[str]) -> Path:
        """Write the plan's files into ``directory``.

        Writes ``plan.gpkg`` (in the input's coordinate system, e.g. GCJ-02 in,
        GCJ-02 out; layers ``buildings`` with ``grid_id``, ``grids``,
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
    partition: Partition | None = None,
    communities: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
    previous: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
    area: str | os.PathLike[str] | gpd.GeoDataFrame | None = None,
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
        The staff list: CSV (UTF-8 or GBK), ``.xlsx``, point layer or frame, with Chinese
        or English headers and roles (see :func:`gridopt.staffing.read_staff`). It is
        checked before any stage runs. ``None``: see ``PlanConfig.staff_when_missing``.
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
    communities
        Community (社区) polygons, a file or GeoDataFrame, named by
        ``PlanConfig.community_name_col`` (default: 名称 ...). Each building goes to the
        community that holds it (this replaces a community column); grids nest inside
        communities; buildings outside every polygon form the group "无社区", which the
        plan's notes report.
    previous
        The current grid polygons (a file or GeoDataFrame, e.g. the street office's
        Shapefile): every grid that is still valid is kept as it is, only the others are
        re-divided, and the plan notes the households moved (see :func:`gridopt.audit`).
    area
        The study area's polygon(s) (a file or GeoDataFrame): the grids tile it. Default:
        the community polygons, else a hull of the buildings.

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        Missing or unreadable files, an empty area, no households, an impossible band
        or walk limit, streets that do not overlap the buildings (CRS mismatch),
        implausible coordinates (no CRS, swapped lat/lon, the wrong Gauss-Kruger zone).

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
    ['grid_id', 'grid_name', 'community', 'kind']
    """
    cfg = PlanConfig.from_any(config)
    run = _Run(cfg)
    # The user's other tables are checked before the long work starts.
    if staff is not None:
        read_staff(staff, encoding=cfg.encoding, coords=cfg.coords)
    polygons = _community_polygons(communities, cfg)

    with run.stage("buildings"):  # read footprints, estimate households
        frame = _buildings(buildings, cfg, run, polygons)
        lines = _streets(streets, buildings, frame)
        if staff is not None:
            staff = _staff_homes(staff, frame, cfg)

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
                max_link_m=float(cfg.max_link_m),
                boundary_classes=cfg.boundary_classes,
                area=None if area is None else read_area(area, to_crs=frame.crs),
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
        self.crs: WorkingCRS | None = None
        self.t0 = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
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
        partition: Partition,
        stations: StationPlan,
        staff: StaffPlan | None,
        lines: gpd.GeoDataFrame | None,
    ) -> Plan:
        if stations.metrics.get("distance_method") not in (None, "network"):
            self.note(
                f"walking distances: {stations.metrics.get('distance_method')} "
                "(straight line x detour factor where no street network reaches)"
            )
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
            crs=self.crs,
            notes=tuple(self.notes),
        )


def _tick(bar: Any, done: threading.Event) -> None:
    while not done.wait(0.5):
        bar.refresh()


def _check_column_fields(cfg: PlanConfig) -> None:
    """Column names are text; community polygons go to ``plan(communities=)``."""
    if cfg.communities is not None and not isinstance(cfg.communities, str):
        raise InputError(
            "PlanConfig.communities names a column of the buildings; pass community polygons "
            f"as plan(..., communities=...) instead (got a {type(cfg.communities).__name__})"
        )
    for name in ("households_col", "floors_col", "community_col", "type_col", "id_col",
                 "name_col", "community_name_col", "encoding"):
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, str):
            raise InputError(f"{name} must be a column name (text) or None, got {v!r}")


def _read_options(cfg: PlanConfig) -> dict[str, Any]:
    """The read_buildings keywords of the config's column fields."""
    return {
        "households": cfg.households_col,
        "floors": cfg.floors_col,
        "community": cfg.community_col,
        "building_type": cfg.type_col,
        "building_id": cfg.id_col,
        "name": cfg.name_col,
        "encoding": cfg.encoding,
    }


def _community_polygons(communities: Any, cfg: PlanConfig) -> gpd.GeoDataFrame | None:
    """The community polygons named, or None."""
    if communities is None:
        return None
    if isinstance(communities, str) and not os.path.exists(communities) and "." not in communities:
        raise InputError(
            f"communities={communities!r} is not a file; community polygons go to "
            "communities=, a community column of the buildings to PlanConfig(community_col=...)"
        )
    return read_communities(
        communities, name=cfg.community_name_col, encoding=cfg.encoding, coords=cfg.coords
    )


def _join_communities(
    frame: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame | None, run: _Run
) -> gpd.GeoDataFrame:
    """Each building's community from the polygons; the no-community group reported."""
    if polygons is not None:
        if "community" in frame.columns:
            run.note("the community polygons given replace the buildings' community column")
        frame = frame.assign(community=join_communities(frame, polygons))
    if "community" in frame.columns:
        outside = frame["community"] == NO_COMMUNITY
        if outside.any():
            run.note(
                f"{int(outside.sum()):,} buildings ({int(frame.loc[outside, 'households'].sum()):,} "
                f"households) lie in no community and form the group {NO_COMMUNITY!r}; "
                "check the community boundaries or the community column"
            )
    return frame


#: Staff homes further than this from the buildings mean a coordinate mistake.
MAX_HOME_DISTANCE_M = 20_000.0


def _staff_homes(staff: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig) -> gpd.GeoDataFrame:
    """The staff list with homes in the buildings' CRS, checked to be near them."""
    people = read_staff(
        staff, crs=frame.crs, area=frame, encoding=cfg.encoding, coords=cfg.coords
    )
    area = shapely.box(*frame.total_bounds)
    far = people.geometry.distance(area) > MAX_HOME_DISTANCE_M
    if far.any():
        who = people.loc[far, "name"] if "name" in people.columns else people.loc[far, "staff_id"]
        raise InputError(
            f"{int(far.sum())} of {len(people)} staff homes lie more than "
            f"{MAX_HOME_DISTANCE_M / 1000:.0f} km from the buildings ({', '.join(map(str, who[:5]))}"
            f"{' ...' if far.sum() > 5 else ''}): x/y must be in the buildings' CRS "
            f"({frame.crs.to_string()}) or longitude/latitude (经度/纬度) in degrees; check "
            "for swapped columns or another coordinate system"
        )
    return people


def _buildings(
    source: Any, cfg: PlanConfig, run: _Run, polygons: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """Buildings in a metric CRS with households, checked for an empty area."""
    if not isinstance(source, (gpd.GeoDataFrame, str, os.PathLike)):
        raise InputError(
            f"buildings must be a file path or a GeoDataFrame, not {type(source).__name__}"
        )
    with warnings.catch_warnings():
        # Repairs become a note of the plan and a layer of plan.gpkg instead.
        warnings.simplefilter("ignore", RepairWarning)
        columns = set(source.columns) if isinstance(source, gpd.GeoDataFrame) else set()
        if {"households", "households_source"} <= columns:
            policy = WorkingCRS.for_frame(source, coords=cfg.coords)  # already read by gridopt
            frame = policy.attach(policy.to_working(source.copy(), what="buildings"))
        else:
            # A households column (户数 ...) is used as given; estimates only without one.
            frame = read_buildings(
                source, m2_per_household=cfg.m2_per_household, coords=cfg.coords,
                **_read_options(cfg),
            )  # fmt: skip
    run.crs = WorkingCRS.of(frame)
    frame = _join_communities(frame, polygons, run)
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
    if streets is None and _is_osm(source):
        streets = source
    if streets is None:
        return None
    with warnings.catch_warnings():
        # Coordinates outside their CRS's range project to inf; reported below instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        lines = read_streets(streets, to_crs=WorkingCRS.of(frame) or frame.crs)
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


def _check_partition(partition: Partition, frame: gpd.GeoDataFrame, cfg: PlanConfig) -> None:
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
    name = cfg.communities
    if name and name != "community" and name not in frame.columns:
        # Only the default may be absent; a column someone named must exist.
        raise InputError(
            f"communities column {name!r} is not in the buildings; its columns are: "
            f"{', '.join(str(c) for c in frame.columns if c != 'geometry')}"
        )
    return name if name and name in frame.columns else None


def _exclusive(frame: gpd.GeoDataFrame, cfg: PlanConfig) -> bool | None:
    return True if cfg.exclusive_grids and "exclusive_candidate" in frame.columns else None


def _candidates(
    candidates: Any, frame: gpd.GeoDataFrame, cfg: PlanConfig, run: _Run
) -> gpd.GeoDataFrame | None:
    """Candidate station sites: given, marked in the buildings, or the documented fallback."""
    if candidates is not None:
        return read_sites(
            candidates, to_crs=WorkingCRS.of(frame) or WorkingCRS.choose(frame)
        )
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


def _check_reachable(stations: StationPlan, frame: gpd.GeoDataFrame, cfg: PlanConfig) -> None:
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


def _roster(staff: Any, partition: Partition, cfg: PlanConfig, run: _Run) -> Any:
    """The staff list to plan with: the user's, a placeholder roster, or None (skip)."""
    if isinstance(staff, gpd.GeoDataFrame) and staff.crs is not None and run.crs is not None:
        return run.crs.to_working(staff, what="staff")  # GCJ-02 homes lose their offset too
    if staff is not None:
        return staff
    if cfg.staff_when_missing == "skip":
        run.note("no staff list given: staffing skipped (staff_when_missing='skip')")
        return None

    run.staff_synthetic = True
    run.note(
        "no staff list given: staff were planned with a PLACEHOLDER roster in the standard's "
        "proportions (gridopt.staffing.synthetic_staff) to show the posts each grid needs; "
        "pass staff= with the real list before using the assignments"
    )
    return synthetic_staff(partition.grids, seed=cfg.seed, rules=_rules(cfg))


def _assign_staff(
    roster: Any, partition: Partition, cfg: PlanConfig, network: Any
) -> StaffPlan | None:
    """Staff posted to the grids (:func:`gridopt.assign_staff`), or None when skipped.

    With a walking network, travel from home to post is walked over it.
    """
    if roster is None:
        return None

    return assign_staff(
        partition,
        roster,
        rules=_rules(cfg),
        streets=network if network is not None and network.number_of_nodes() else None,
        time_limit_s=cfg.stage_limit_s(len(partition.labels)),
        seed=cfg.seed,
    )


def _rules(cfg: PlanConfig) -> StaffingRules | None:
    """The staffing standard: ``PlanConfig.staffing_rules`` as a StaffingRules (or None)."""
    rules = cfg.staffing_rules
    if isinstance(rules, Mapping):
        return StaffingRules(**dict(rules))
    return rules


def _annotate(
    frame: gpd.GeoDataFrame, partition: Partition, stations: StationPlan
) -> gpd.GeoDataFrame:
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


def _language(p: Plan) -> str:
    """``PlanConfig.language``, with ``"auto"`` decided by the buildings' columns and communities."""
    grids = p.partition.grids
    values = grids["community"].dropna().unique() if "community" in grids.columns else ()
    return i18n.resolve_language(p.config.language, columns=p.buildings.columns, values=values)


def _grid_names(p: Plan, grid_ids: pd.Series, communities: pd.Series | None) -> pd.Series:
    """``PlanConfig.grid_name`` (or the language's habit) filled in per grid."""
    template = p.config.grid_name or i18n.default_grid_name(p.language)
    area = ""
    if "street" in p.buildings.columns:
        streets = p.buildings["street"].dropna().unique()
        area = str(streets[0]) if len(streets) == 1 else ""
    return i18n.grid_names(grid_ids, communities, template, area=area)


def _community_rank(p: Plan, communities: pd.Series) -> pd.Series:
    """Each grid's community's place in the office's order (``PlanConfig.grid_order``)."""
    col = p.config.communities
    source = p.buildings[col] if col and col in p.buildings.columns else communities
    order = i18n.community_order(source, p.config.grid_order)
    rank = {c: r for r, c in enumerate(order)}
    return communities.map(lambda c: rank.get(c, len(rank)))


def _report_table(rep: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The report for people: headers, kinds and reasons in ``lang``."""
    out = rep.copy()
    kinds = {
        k: i18n.t(f"kind.{k}", lang) for k in ("regular", "exclusive", "oversized", "undersized")
    }
    out["kind"] = out["kind"].map(lambda k: kinds.get(k, k))
    out["reason"] = out["reason"].map(lambda r: i18n.translate_text(r, lang))
    return out.rename(columns={c: i18n.t(f"col.{c}", lang) for c in i18n.REPORT_COLUMNS})


def _summary(p: Plan, lang: str) -> str:
    g = p.partition.grids
    kinds = g["kind"].value_counts()
    m = p.stations.metrics
    cfg = p.config
    minutes = cfg.max_walk_m / cfg.walk_speed_m_per_min
    sep = i18n.t("summary.list_sep", lang)
    kind_counts = sep.join(
        i18n.t(
            "summary.kind_count",
            lang,
            count=int(kinds.get(k, 0)),
            kind=k if lang == "en" else i18n.t(f"kind.{k}", lang),
        )
        for k in ("regular", "exclusive", "oversized", "undersized")
    )
    lines = [
        i18n.t(
            "summary.buildings",
            lang,
            buildings=f"{len(p.buildings):,}",
            households=f"{int(p.buildings['households'].sum()):,}",
        ),
        i18n.t(
            "summary.grids",
            lang,
            n=f"{len(g):,}",
            kinds=kind_counts,
            lo=cfg.min_households,
            hi=cfg.max_households,
            share=f"{p.partition.share_in_band:.1%}",
        ),
        i18n.t(
            "summary.stations",
            lang,
            n=f"{len(p.stations.stations):,}",
            mean=f"{m.get('mean_walk_m', float('nan')):,.0f}",
            max=f"{m.get('max_walk_m', float('nan')):,.0f}",
            share=f"{m.get('share_within_15min', float('nan')):.1%}",
            beyond=f"{int(m.get('households_beyond_max_walk', 0)):,}",
            walk_m=f"{cfg.max_walk_m:,.0f}",
            minutes=f"{minutes:.0f}",
        ),
    ]
    lines.insert(2, _coverage_line(m, cfg.max_walk_m, lang))
    lines += _household_lines(p.buildings, lang)
    short = p.stations.shortfall or {}
    if short.get("shortfall_households", 0):
        lines.append(
            i18n.t(
                "summary.shortfall",
                lang,
                households=f"{short['shortfall_households']:,.0f}",
                m2=f"{short.get('shortfall_m2', 0):,.0f}",
            )
        )
    if p.staff is None:
        lines.append(i18n.t("summary.staff_none", lang))
    else:
        a = p.staff.assignments
        placed = a["grid_id"].notna() if "grid_id" in a.columns else pd.Series(False, index=a.index)
        missing = int(p.staff.shortfall["missing"].sum()) if len(p.staff.shortfall) else 0
        tag = i18n.t("summary.placeholder_tag", lang) if p.staff_synthetic else ""
        lines.append(
            i18n.t(
                "summary.staff",
                lang,
                tag=tag,
                placed=f"{int(placed.sum()):,}",
                total=f"{len(a):,}",
                missing=f"{missing:,}",
            )
        )
    total = p.runtime_s.get("total", sum(p.runtime_s.values()))
    stages = sep.join(
        i18n.t(
            "summary.stage_time",
            lang,
            stage=i18n.t(f"stage.{k}", lang) if f"stage.{k}" in i18n.LABELS else k,
            s=f"{v:.1f}",
        )
        for k, v in p.runtime_s.items()
        if k != "total"
    )
    lines.append(i18n.t("summary.time", lang, total=f"{total:.1f}", stages=stages))
    lines += [i18n.t("summary.note", lang, note=i18n.translate_text(n, lang)) for n in p.notes]
    return "\n".join(lines)


def _coverage_line(m: Mapping[str, Any], limit_m: float, lang: str) -> str:
    """The headline: the share of households within the plan's own walking limit."""
    line = i18n.t(
        "summary.coverage", lang, walk_m=f"{limit_m:,.0f}",
        share=f"{m.get('share_within_limit', float('nan')):.1%}",
    )  # fmt: skip
    new = int(m.get("n_new_sites", 0))
    if new:
        line += i18n.t(
            "summary.coverage_new", lang, n=new,
            share=f"{m.get('share_within_limit_existing', float('nan')):.1%}",
        )  # fmt: skip
    if "grids_with_households" in m:
        one = m["grids_with_households"] - m.get("grids_several_stations", 0)
        line += i18n.t(
            "summary.coverage_grids", lang, one=f"{one:,}", n=f"{m['grids_with_households']:,}"
        )
    return line


def _household_lines(b: gpd.GeoDataFrame, lang: str) -> list[str]:
    """How sure the household counts are: share on defaults, range, least sure buildings."""
    if "households_source" not in b.columns:
        return []
    lines = [i18n.t("summary.households_default", lang, share=f"{default_share(b):.1%}")]
    if {"households_low", "households_high", "households_confidence"} <= set(b.columns):
        lines[0] += i18n.t(
            "summary.households_range", lang,
            low=f"{int(b['households_low'].sum()):,}", high=f"{int(b['households_high'].sum()):,}",
        )  # fmt: skip
        top = uncertain_buildings(b, n=5)
        if len(top):
            sep = i18n.t("summary.list_sep", lang)
            items = sep.join(
                i18n.t("summary.uncertain_item", lang, building=bid,
                       households=int(r["households"]), low=int(r["households_low"]),
                       high=int(r["households_high"]), note=r["households_note"])
                for bid, r in top.iterrows()
            )
            lines.append(i18n.t("summary.uncertain", lang, items=items))
    return lines


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
    # Without a community column the partition puts every building in one, "all".
    has_communities = "community" in g.columns and _communities(p.buildings, p.config) is not None
    communities = rep["community"] if has_communities else None
    rep.insert(1, "grid_name", _grid_names(p, rep["grid_id"], communities))
    rep["buildings"] = rep["grid_id"].map(agg["buildings"]).fillna(0).astype(int)
    workers, officers = _staff_counts(p.staff, rep["grid_id"])
    rep["workers"] = workers
    rep["officers"] = officers
    rep["station"] = rep["grid_id"].map(main)
    for col in ("mean_walk_m", "max_walk_m"):
        rep[col] = rep["grid_id"].map(agg[col]).round(1)
    rep["share_within_15min"] = rep["grid_id"].map(agg["share_within_15min"]).round(4)
    rep["reason"] = g["reason"].fillna("").to_numpy() if "reason" in g.columns else ""
    if communities is not None:  # communities in the office's order, grids by number
        rank = _community_rank(p, rep["community"])
        rep = rep.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)
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


def _staff_counts(staff: StaffPlan | None, grid_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
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
    if p.streets is not None and len(p.streets):
        # The maps redrawn from the files (gridopt map) show the streets too.
        layers["streets"] = p.streets
    # The standards used, so the files alone say how the plan was made.
    # The user's Tianditu key stays out of the files; the language used goes in.
    settings = dataclasses.asdict(p.config)
    if settings.get("tianditu_key"):
        settings["tianditu_key"] = "(given, not stored)"
    settings["output_language"] = p.language
    layers["config"] = pd.DataFrame([{"name": k, "value": repr(v)} for k, v in settings.items()])
    if p.notes:
        layers["notes"] = pd.DataFrame({"note": list(p.notes)})
    return layers


def _in_input_crs(p: Plan, layers: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The layers in the input's coordinate system (GCJ-02 in, GCJ-02 out)."""
    if p.crs is None:
        return layers
    return {name: p.crs.to_output(frame) for name, frame in layers.items()}


def _write_plan(p: Plan, directory: Path) -> Path:
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        with warnings.catch_warnings():
            # GPKG stores the plan's ids as text; pyogrio's notes on that are no news here.
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="pyogrio")
            write_layers(tmp / "plan.gpkg", _in_input_crs(p, _layers(p)))
        lang = p.language
        table = p.report(lang)
        # Excel on Chinese Windows reads UTF-8 only with a BOM.
        table.to_csv(tmp / "report.csv", index=False, encoding="utf-8-sig")
        _write_xlsx(table, tmp / "report.xlsx")
        plan_map(p, language=lang).save(str(tmp / "map.html"))
        overview_png(p, tmp / "overview.png", language=lang)
        (tmp / "summary.txt").write_text(p.summary(lang) + "\n", encoding="utf-8")
        _move_into_place(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("plan written to %s", directory)
    return directory


def _write_xlsx(table: pd.DataFrame, path: Path) -> None:
    """The report as an Excel sheet: bold frozen header row, columns wide enough to read."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        table.to_excel(writer, index=False, sheet_name="report")
        sheet = writer.sheets["report"]
        sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        for cell in sheet[1]:
            cell.font = bold
        for i, col in enumerate(table.columns, start=1):
            values = table[col].head(500).map(lambda v: "" if pd.isna(v) else str(v))
            texts = [str(col), *values]
            # A CJK character is about two Latin characters wide.
            width = max(sum(2 if i18n.has_cjk(ch) else 1 for ch in s) for s in texts)
            sheet.column_dimensions[get_column_letter(i)].width = min(60, width + 2)


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
