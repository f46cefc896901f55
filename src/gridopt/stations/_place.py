"""City-level station placement: :func:`place_stations` and :class:`StationPlan`.

The flow: validate buildings and candidate sites -> walking network ->
sparse walking distances (households' buildings x sites, within the walk
limit) -> choose sites -> assign every building's households to one open
station within its floor-area capacity (single source) -> metrics and reports.

Choosing sites, by ``objective``:

- ``"median"``: the station count is the fewest that cover everyone reachable
  within the limit (CP-SAT set covering, capacitated when small) unless given.
  Moderate sizes (at most ``_MAX_EXACT_PAIRS`` allowed pairs) go to the
  capacitated p-median (:func:`gridopt.stations.solve_p_median`), with 5% more
  stations when single-source packing fails. Larger cities use
  location-allocation: the uncapacitated p-median picks the sites (its lower
  bound also bounds the capacitated problem), a min-cost flow assigns
  households within capacities, and more sites open where households are left
  without room.
- ``"cover"``: CP-SAT set covering (with per-building assignment and
  capacities when small), then the same assignment and growth.
- ``"max_cover"``: CP-SAT maximal covering (capacitated when small; at city
  scale the better of its sites and a greedy capacitated choice).

Households that cannot be served as the rules ask are never dropped: a
building with no candidate within ``max_walk_m`` is assigned to its nearest
reachable station and listed in :attr:`StationPlan.uncovered`; households for
which no station has room are marked unserved and counted in
:attr:`StationPlan.shortfall`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from gridopt._errors import InfeasibleError, InputError, RepairWarning
from gridopt._status import Status
from gridopt.crs import WorkingCRS, reproject
from gridopt.network import WalkDistances, walk_network, walking_distances
from gridopt.solvers import solve_p_median

__all__ = [
    "DEFAULT_EXCLUDED_STATION_TAGS",
    "DEFAULT_STATION_TAGS",
    "OBJECTIVES",
    "StationPlan",
    "place_stations",
    "station_candidates",
]

log = logging.getLogger("gridopt")

#: The three placement models.
OBJECTIVES = ("median", "cover", "max_cover")

#: Building tags and categories (``building_type``, ``category``, ``amenity``, ``office``,
#: ``shop``) whose buildings may hold a station room: community and public buildings,
#: offices, commercial and mixed buildings.
DEFAULT_STATION_TAGS: frozenset[str] = frozenset(
    {
        "public", "civic", "community_centre", "social_facility", "social_centre", "library",
        "townhall", "government", "office", "commercial", "retail", "mixed", "post_office",
        "arts_centre", "public_building", "supermarket", "mall", "marketplace",
    }
)
#: Tags and categories never used for a station unless the user adds them to
#: ``station_tags``: police and fire stations, hospitals, schools, industry, religious
#: buildings, landmarks.
DEFAULT_EXCLUDED_STATION_TAGS: frozenset[str] = frozenset(
    {
        "police", "fire_station", "emergency", "prison", "courthouse", "ambulance_station",
        "hospital", "clinic", "doctors", "healthcare", "school", "kindergarten", "university",
        "college", "education", "childcare", "industrial", "factory", "warehouse",
        "manufacture", "works", "religious", "church", "chapel", "cathedral", "mosque",
        "temple", "shrine", "synagogue", "place_of_worship", "monastery", "military",
        "landmark", "castle", "fort", "palace", "parliament",
    }
)
# Columns whose values are matched against the station tag lists.
_STATION_TAG_COLUMNS = ("building_type", "category", "amenity", "office", "shop")

# Households with no site within the walk limit keep this many nearest sites
# (by unlimited walking distance) as allowed choices.
_K_BEYOND = 5
# ... and so many for households left without room at the end.
_K_WIDE = 25
# Extra station counts tried (5% more each) when the automatic p-median
# count leaves the capacities infeasible; then the rest is marked unserved.
_EXTRA_P_TRIES = 2
# Above this many (building, site) pairs within the limit, the covering model
# drops the per-pair assignment variables (capacity checked only in total).
_MAX_CAPACITATED_PAIRS = 50_000
# Above this many allowed pairs, the capacitated p-median is left out and
# location-allocation (uncapacitated p-median + min-cost-flow assignment) runs.
_MAX_EXACT_PAIRS = 50_000
# Rounds of opening more sites where households are left without room.
_GROW_ROUNDS = 10
# Street points considered for new sites (thinned on a square grid beyond this).
_MAX_NEW_SITE_POINTS = 1500
# Smallest stored cost of a (grid, station) pair (a stored zero would vanish).
_MIN_PAIR_M = 1e-3


@dataclass(frozen=True, eq=False)
class StationPlan:
    """Where the stations go and who walks to which.

    Attributes
    ----------
    stations
        GeoDataFrame of the open stations indexed by ``site``: ``site``,
        ``floor_area_m2``, ``capacity_households``, ``households_served``,
        ``buildings_served``, ``utilisation`` (served / capacity),
        ``mean_walk_m`` (household-weighted), ``max_walk_m``, ``existing``,
        ``geometry`` (the candidate's).
    allocation
        GeoDataFrame indexed like the buildings: ``households``, ``station``
        (site id; ``None`` for unserved or household-less buildings with no
        station in reach), ``walk_m``, ``within_limit``, ``distance_method``
        (``network``, ``straight_line``, ``unserved`` or ``no_households``),
        ``geometry``. Its households sum to the input's.
    metrics
        Household-weighted ``mean_walk_m``, ``p90_walk_m``, ``max_walk_m``;
        ``share_within_5min`` / ``10min`` / ``15min`` (of all households, at
        ``walk_speed_m_per_min``); ``households_beyond_max_walk``,
        ``households_unserved``, counts of stations and candidates, the
        distance method and the network's pieces.
    uncovered
        GeoDataFrame of the buildings with households that are beyond
        ``max_walk_m`` of their station or unserved: ``households``,
        ``station``, ``walk_m``, ``reason``, ``geometry``.
    shortfall
        Capacity figures: ``demand_households``, ``capacity_households``,
        ``shortfall_households``, ``shortfall_m2`` (floor area missing at
        ``m2_per_100_households``) and ``households_unserved``. All zero when
        capacity suffices.
    status
        ``"optimal"``, ``"feasible"``, ``"time_limit"`` of the placement model.
    objective
        ``"median"``: household-weighted walking metres, plus, per unserved
        household, ten times the longest allowed walk (the walking part alone
        is ``metrics["household_walk_m_total"]``); ``"cover"``: the
        number of stations; ``"max_cover"``: households within ``max_walk_m``.
    bound
        A proven bound on ``objective`` (lower for median/cover, upper for
        max_cover).
    runtime_s
        Wall seconds of :func:`place_stations`.
    objective_kind
        Which model ran (``"median"``, ``"cover"`` or ``"max_cover"``).
    """

    stations: gpd.GeoDataFrame
    allocation: gpd.GeoDataFrame
    metrics: dict[str, Any]
    uncovered: gpd.GeoDataFrame
    shortfall: dict[str, float]
    status: Status
    objective: float
    bound: float
    runtime_s: float
    objective_kind: str = "median"
    distances: WalkDistances | None = field(default=None, repr=False)

    @property
    def gap(self) -> float:
        """Relative gap between ``objective`` and ``bound`` (0 when proven optimal)."""
        if not (math.isfinite(self.objective) and math.isfinite(self.bound)):
            return math.inf
        if self.objective == self.bound:
            return 0.0
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-12)

    def summary(self) -> str:
        """A short account for people: stations, walking, coverage, shortfalls."""
        m = self.metrics
        new = int(m.get("n_new_sites", 0))
        lines = [
            f"within {m['max_walk_limit_m']:g} m walking: "
            f"{100 * m.get('share_within_limit', float('nan')):.1f}% of households"
            + (
                f" with {new} proposed new site(s); "
                f"{100 * m.get('share_within_limit_existing', float('nan')):.1f}% with the "
                "candidates alone"
                if new
                else ""
            ),
            f"stations ({self.objective_kind}): {len(self.stations)} open of "
            f"{m['n_candidates']} candidates ({m['n_existing']} existing), status {self.status}, "
            f"objective {self.objective:.6g}, bound {self.bound:.6g} (gap {100 * self.gap:.2f}%), "
            f"{self.runtime_s:.1f} s",
            f"households {m['households']}: mean walk {m['mean_walk_m']:.0f} m, "
            f"p90 {m['p90_walk_m']:.0f} m, max {m['max_walk_m']:.0f} m; within 5/10/15 min "
            f"({m['walk_speed_m_per_min']:g} m/min): {100 * m['share_within_5min']:.1f}% / "
            f"{100 * m['share_within_10min']:.1f}% / {100 * m['share_within_15min']:.1f}%",
            f"distances: {m['distance_method']}"
            + (
                f"; network in {m['network_pieces']} piece(s), {m['households_off_main_network']} "
                "households on smaller pieces or off it (straight-line fallback)"
                if m["network_pieces"]
                else ""
            ),
        ]
        if m["households_beyond_max_walk"]:
            lines.append(
                f"{m['households_beyond_max_walk']} households in {len(self.uncovered)} "
                f"buildings are beyond {m['max_walk_limit_m']:g} m or unserved (see .uncovered)"
            )
        if self.shortfall["households_unserved"] or self.shortfall["shortfall_households"]:
            lines.append(
                f"capacity shortfall: {self.shortfall['shortfall_households']:.0f} households "
                f"({self.shortfall['shortfall_m2']:.0f} m2 of station floor area); "
                f"{self.shortfall['households_unserved']:.0f} households unserved"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


#: Columns of ``StationPlan.stations`` besides the geometry (the map shows the same).
STATION_COLUMNS: tuple[str, ...] = (
    "site",
    "floor_area_m2",
    "capacity_households",
    "households_served",
    "buildings_served",
    "utilisation",
    "mean_walk_m",
    "max_walk_m",
    "existing",
    "new_site",
)


def place_stations(
    buildings: gpd.GeoDataFrame,
    *,
    candidates: gpd.GeoDataFrame | None = None,
    streets: gpd.GeoDataFrame | nx.Graph | str | None = None,
    n_stations: int | None = None,
    max_walk_m: float = 1000.0,
    m2_per_100_households: float = 30.0,
    existing: gpd.GeoDataFrame | None = None,
    objective: str = "median",
    seed: int = 0,
    time_limit_s: float = 60.0,
    households: str = "households",
    walk_speed_m_per_min: float = 75.0,
    detour_factor: float = 1.3,
    max_snap_m: float = 250.0,
    max_candidates: int | None = 1000,
    station_floor_area_m2: float = 300.0,
    station_tags: Iterable[str] = DEFAULT_STATION_TAGS,
    excluded_station_tags: Iterable[str] = DEFAULT_EXCLUDED_STATION_TAGS,
    propose_new_sites: bool = True,
    grids: pd.Series | None = None,
    parcels: gpd.GeoDataFrame | None = None,
) -> StationPlan:
    """Place party-and-mass service stations within walking distance of every household.

    Parameters
    ----------
    buildings
        Buildings in a metric CRS with a ``households`` column (as
        :func:`gridopt.read_buildings` returns). Polygons or points.
    candidates
        Possible station sites (the user's list, taken as given): points or
        polygons, with the room's ``floor_area_m2`` (or ``capacity_households``)
        where known, else ``station_floor_area_m2``. Default: the buildings
        :func:`station_candidates` selects (community and public buildings,
        offices, commercial and mixed buildings; never police, fire stations,
        hospitals, schools, industry or religious buildings). Vacant plots are
        not in building data: pass them here.
    streets
        Street lines (GeoDataFrame or file, see :func:`gridopt.walk_network`)
        or a ready walking network (:class:`networkx.Graph`). ``None``
        measures straight lines times ``detour_factor`` and says so in
        ``metrics["distance_method"]``.
    n_stations
        Number of stations (existing ones included). ``None``: for
        ``"median"``, the fewest that put every household that can be reached
        within ``max_walk_m`` and whose capacities add up to the demand.
        Required for ``"max_cover"``; ignored by ``"cover"``.
    max_walk_m
        Walking limit in metres (the 15-minute life circle: about 1,000 m).
    m2_per_100_households
        Station floor area needed per 100 households served (30 m²);
        capacity of a site in households = floor_area_m2 / this * 100.
    existing
        Stations that exist and stay open (points or polygons with
        ``floor_area_m2`` or ``capacity_households``).
    objective
        ``"median"`` (least household-weighted walking), ``"cover"`` (fewest
        stations putting every household within ``max_walk_m``) or
        ``"max_cover"`` (most households within ``max_walk_m`` with
        ``n_stations`` stations).
    seed
        Seed of the solvers' randomised parts.
    time_limit_s
        Total wall-clock budget of the optimisation (distances not counted).
    households
        Name of the household column.
    walk_speed_m_per_min
        Walking speed for the 5/10/15-minute shares (75 m/min = 4.5 km/h:
        375, 750 and 1,125 m).
    detour_factor
        Multiplier of the straight-line fallback distance.
    max_snap_m
        Buildings/sites further than this from a walkable street are
        measured by the fallback.
    max_candidates
        With more candidate sites than this (every building of a city, say),
        the candidates are thinned on a square grid: in each cell only the
        site with the largest capacity stays, the cell size chosen so that at
        most this many remain (existing stations always stay).
        ``metrics["n_candidates_used"]`` says how many were kept. ``None``
        keeps all (the models grow with candidates x households in reach).

    station_floor_area_m2
        Floor area of a station room (300 m²: 1,000 households at 30 m² per
        100). A station occupies a room, not the building: a candidate
        building's capacity is this room (or the building's floor area when
        smaller), a given candidate's its own ``floor_area_m2`` when it has one.
    station_tags, excluded_station_tags
        Tag lists of :func:`station_candidates` (defaults
        :data:`DEFAULT_STATION_TAGS`, :data:`DEFAULT_EXCLUDED_STATION_TAGS`); a
        tag added to ``station_tags`` beyond the defaults overrides its exclusion.
    propose_new_sites
        Where the candidates leave households beyond ``max_walk_m``, propose
        new sites: points on the street network (or, without one, at the
        uncovered buildings) chosen by set covering (CP-SAT, greedy start) to
        reach them, each a ``station_floor_area_m2`` room, marked ``new_site``.
        ``metrics`` reports coverage with the candidates alone and with them.
    parcels
        Vacant land parcels (polygons, e.g. OSM ``landuse=brownfield|greenfield``) where
        a station could be built: added to the candidate buildings as sites of
        ``station_floor_area_m2`` (ids ``parcel-<index>``).
    grids
        Grid label per building (indexed like ``buildings``, e.g.
        ``Partition.labels``): each grid's households then walk to one station
        where one open station within the limit can take the whole grid
        (``metrics["grids_single_station"]``); the others keep the per-building
        assignment.

    Returns
    -------
    StationPlan

    Raises
    ------
    InputError
        No CRS, a missing or bad households column, no candidate sites,
        bad parameters.

    Examples
    --------
    Three buildings north of a 1 km street, two possible sites on it:

    >>> import geopandas as gpd
    >>> from shapely.geometry import LineString, Point
    >>> homes = gpd.GeoDataFrame(
    ...     {"households": [120, 80, 150]},
    ...     geometry=[Point(0, 20), Point(400, 20), Point(900, 20)],
    ...     crs=32651,
    ... )
    >>> sites = gpd.GeoDataFrame(
    ...     {"floor_area_m2": [200.0, 200.0]}, geometry=[Point(100, 0), Point(800, 0)], crs=32651
    ... )
    >>> street = gpd.GeoSeries([LineString([(0, 0), (1000, 0)])], crs=32651)
    >>> plan = place_stations(homes, candidates=sites, streets=street, n_stations=1)
    >>> plan.stations["site"].tolist(), plan.status
    ([1], 'optimal')
    >>> plan.allocation["walk_m"].round().tolist()
    [820.0, 420.0, 120.0]
    >>> plan.metrics["households_beyond_max_walk"]
    0
    """
    t0 = time.perf_counter()
    _check_params(
        objective=objective,
        n_stations=n_stations,
        max_walk_m=max_walk_m,
        m2_per_100_households=m2_per_100_households,
        time_limit_s=time_limit_s,
        walk_speed_m_per_min=walk_speed_m_per_min,
    )
    if not (math.isfinite(station_floor_area_m2) and station_floor_area_m2 > 0):
        raise InputError(
            f"station_floor_area_m2 must be a positive number of m², got {station_floor_area_m2!r}"
        )
    bld, hh = _check_buildings(buildings, households)
    room_m2 = float(station_floor_area_m2)
    cand_mask = (
        station_candidates(bld, station_tags=station_tags,
                           excluded_station_tags=excluded_station_tags)
        if candidates is None
        else None
    )
    sites = _sites(bld, candidates, existing, m2_per_100_households, room_m2, cand_mask,
                   parcels)
    n_given = int((~sites["existing"]).sum())
    if max_candidates is not None and n_given > max_candidates:
        sites = _thin(sites, int(max_candidates))
        log.info(
            "%d candidate sites thinned to %d (largest capacity per grid cell; max_candidates=%d)",
            n_given,
            int((~sites["existing"]).sum()),
            max_candidates,
        )
    n_sites = len(sites)
    fixed = np.flatnonzero(sites["existing"].to_numpy())
    if n_stations is not None and objective != "cover":
        if n_stations > n_sites:
            raise InputError(
                f"n_stations={n_stations} but there are only {n_sites} candidate sites; "
                "pass more candidates or fewer stations"
            )
        if n_stations < len(fixed):
            raise InputError(
                f"n_stations={n_stations} is below the {len(fixed)} existing stations that "
                "stay open; raise n_stations"
            )
    graph = _network(streets, bld.crs)

    clients = np.flatnonzero(hh > 0)
    w = hh[clients].astype(float)
    cpts = bld.geometry.iloc[clients]
    dist = walking_distances(
        graph,
        cpts,
        sites.geometry,
        max_walk_m=max_walk_m,
        detour_factor=detour_factor,
        max_snap_m=max_snap_m,
    )
    within = dist.matrix
    cap = sites["capacity_households"].to_numpy(dtype=float)
    demand = float(w.sum())
    total_cap = float(cap.sum())
    deadline = t0 + time_limit_s
    ctx = _Context(
        graph=graph,
        clients=cpts,
        sites=sites,
        dist=dist,
        within=within,
        w=w,
        cap=cap,
        fixed=fixed,
        seed=seed,
        deadline=deadline,
        time_limit_s=float(time_limit_s),
        max_walk_m=max_walk_m,
        detour_factor=detour_factor,
        max_snap_m=max_snap_m,
        n_candidates_given=n_given,
    )

    if len(clients) == 0:
        open_idx = fixed
        assign = np.empty(0, dtype=np.int64)
        status, obj, bound = "optimal", 0.0, 0.0
        walk = np.empty(0)
    elif objective == "cover":
        open_idx, status, obj, bound = _cover(ctx, capacity_sum=total_cap >= demand)
        assign, walk, _ = _assign(ctx, open_idx)
        if total_cap >= demand:
            # Stations full where people live: open more there (the covering's
            # bound still holds: capacities only raise the optimum).
            grown = _grow(ctx, open_idx, assign, walk, None)
            if grown is not None:
                open_idx, assign, walk = grown
                obj = float(len(open_idx))
                status = "feasible" if status == "optimal" else status
    elif objective == "max_cover":
        assert n_stations is not None
        open_idx, status, obj, bound = _max_cover(ctx, n_stations)
        assign, walk, _ = _assign(ctx, open_idx)
    else:
        open_idx, assign, walk, status, obj, bound = _median(ctx, n_stations)

    # Coverage with the candidates alone, then new sites where they leave people out.
    hh_within_existing = _households_within(ctx, assign, walk)
    n_before = len(sites)
    if propose_new_sites and n_stations is None and len(clients):
        grown = _new_sites(ctx, open_idx, assign, walk, room_m2=room_m2,
                           m2_per_100=m2_per_100_households, time_limit_s=time_limit_s)
        if grown is not None:
            ctx, open_idx, assign, walk = grown
            status = "feasible" if status == "optimal" else status
            if objective == "median":
                # More sites can only lower the optimum: the old bound no longer holds;
                # every household at its nearest site in reach does.
                bound = min(bound, _all_open_bound(ctx.within, ctx.w))
    grid_stats: dict[str, int] = {}
    if grids is not None and len(clients):
        codes = _grid_codes(grids, bld.index)[clients]
        assign, walk, grid_stats = _assign_grids(ctx, open_idx, assign, walk, codes)
    if len(clients) and (len(ctx.sites) != n_before or grid_stats):
        obj = _objective_of(ctx, objective, open_idx, assign, walk, obj)
        if status == "optimal" and obj > bound + 1e-6 * max(1.0, abs(obj)):
            status = "feasible"

    return _build_plan(
        bld=bld,
        hh=hh,
        ctx=ctx,
        clients=clients,
        open_idx=open_idx,
        assign=assign,
        walk=walk,
        status=status,
        objective_value=obj,
        bound=bound,
        objective_kind=objective,
        m2_per_100_households=m2_per_100_households,
        walk_speed_m_per_min=walk_speed_m_per_min,
        runtime_s=time.perf_counter() - t0,
        hh_within_existing=hh_within_existing,
        grid_stats=grid_stats,
    )


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_params(**p: Any) -> None:
    if p["objective"] not in OBJECTIVES:
        raise InputError(f"objective must be one of {OBJECTIVES}, got {p['objective']!r}")
    n = p["n_stations"]
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise InputError(f"n_stations must be a positive integer or None, got {n!r}")
    if p["objective"] == "max_cover" and n is None:
        raise InputError('objective="max_cover" needs n_stations (how many stations to open)')
    for name in ("max_walk_m", "m2_per_100_households", "time_limit_s", "walk_speed_m_per_min"):
        v = p[name]
        if not (isinstance(v, (int, float, np.number)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive finite number, got {v!r}")


def _check_buildings(buildings: Any, column: str) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    if not isinstance(buildings, gpd.GeoDataFrame):
        raise InputError(
            f"buildings must be a GeoDataFrame (see gridopt.read_buildings), not "
            f"{type(buildings).__name__}"
        )
    if buildings.crs is None:
        raise InputError(
            "buildings have no CRS; set one (buildings.set_crs(...)) or read them with "
            "gridopt.read_buildings, which also reprojects to metres"
        )
    bld = buildings
    if bld.crs.is_geographic:
        bld = WorkingCRS.choose(bld).to_working(bld, what="buildings", warn=True)
    if not bld.index.is_unique:
        dup = bld.index[bld.index.duplicated()].unique()[:10].tolist()
        raise InputError(f"building index has duplicates (e.g. {dup}); give each building one id")
    if column not in bld.columns:
        raise InputError(
            f"buildings have no {column!r} column; estimate it with gridopt.estimate_households "
            "or read the buildings with gridopt.read_buildings"
        )
    hh = pd.to_numeric(bld[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(hh) | (hh < 0) | (hh != np.round(hh)))
    if len(bad):
        raise InputError(
            f"{column!r} must hold whole numbers >= 0; {len(bad)} building(s) do not "
            f"(ids {bld.index[bad[:10]].tolist()}, values {bld[column].iloc[bad[:10]].tolist()})"
        )
    missing = np.flatnonzero(_no_geometry(bld))
    if len(missing):
        raise InputError(
            f"{len(missing)} building(s) have no geometry (ids {bld.index[missing[:10]].tolist()}); "
            "fix or remove them"
        )
    return bld, hh.astype(np.int64)


def _no_geometry(frame: gpd.GeoDataFrame) -> np.ndarray:
    """True where a row has a missing or empty geometry."""
    geoms = frame.geometry.to_numpy()
    return shapely.is_missing(geoms) | shapely.is_empty(geoms)


def station_candidates(
    buildings: pd.DataFrame,
    *,
    station_tags: Iterable[str] = DEFAULT_STATION_TAGS,
    excluded_station_tags: Iterable[str] = DEFAULT_EXCLUDED_STATION_TAGS,
) -> pd.Series:
    """Which buildings may hold a station room (a boolean Series like the buildings).

    A building qualifies when it is marked ``station_candidate`` (by
    :func:`gridopt.estimate_households`: public, office, commercial and mixed
    buildings) or one of its tags (``building_type``, ``category``,
    ``amenity``, ``office``, ``shop``) is in ``station_tags``, and none is in
    ``excluded_station_tags``. A tag the user adds to ``station_tags`` beyond
    :data:`DEFAULT_STATION_TAGS` lifts its exclusion (schools, say, where
    they are the only public buildings).

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"building_type": ["yes", "office", "yes"],
    ...                   "amenity": ["police", None, "community_centre"]})
    >>> station_candidates(b).tolist()
    [False, True, True]
    >>> station_candidates(b, station_tags={"police"}).tolist()
    [True, False, False]
    """
    allowed = {str(t).lower() for t in station_tags}
    excluded = {str(t).lower() for t in excluded_station_tags} - (allowed - DEFAULT_STATION_TAGS)
    ok = np.zeros(len(buildings), dtype=bool)
    if "station_candidate" in buildings.columns and allowed >= DEFAULT_STATION_TAGS:
        ok |= buildings["station_candidate"].fillna(False).astype(bool).to_numpy()
    bad = np.zeros(len(buildings), dtype=bool)
    for col in _STATION_TAG_COLUMNS:
        if col not in buildings.columns:
            continue
        values = buildings[col].astype(object).where(buildings[col].notna(), "")
        values = values.astype(str).str.strip().str.lower()
        ok |= values.isin(allowed).to_numpy()
        bad |= values.isin(excluded).to_numpy()
    return pd.Series(ok & ~bad, index=buildings.index, name="station_candidate")


def _sites(
    bld: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame | None,
    existing: gpd.GeoDataFrame | None,
    m2_per_100: float,
    room_m2: float,
    cand_mask: pd.Series | None,
    parcels: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """One frame of all sites: candidates (buildings, then vacant parcels), then existing."""
    parts = []
    has_parcels = parcels is not None and len(parcels) > 0
    if candidates is None:
        assert cand_mask is not None
        cand = bld[cand_mask.to_numpy()]
        if len(cand) == 0 and not has_parcels and (existing is None or len(existing) == 0):
            raise InputError(
                f"no candidate sites: none of the {len(bld):,} buildings is a community, public, "
                "office, commercial or mixed building (see gridopt.stations.station_candidates). "
                "Pass candidates=GeoDataFrame of points or polygons (vacant plots, rooms you "
                "can rent), add tags to station_tags, or pass existing= stations"
            )
        # A station is a room in the building: the room's area, not the building's.
        area = pd.to_numeric(cand.get("floor_area_m2"), errors="coerce") if (
            "floor_area_m2" in cand.columns) else None
        room = np.full(len(cand), room_m2)
        if area is not None:
            room = np.where(np.isfinite(area.to_numpy(float)),
                            np.minimum(room, area.to_numpy(float)), room)
        cand = gpd.GeoDataFrame({"floor_area_m2": room}, geometry=cand.geometry.to_numpy(),
                                index=cand.index, crs=bld.crs)
        parts.append(_site_frame(cand, bld.crs, m2_per_100, what="station candidates", prefix="",
                                 room_m2=room_m2))
    else:
        if not isinstance(candidates, gpd.GeoDataFrame):
            raise InputError(
                f"candidates must be a GeoDataFrame of points or polygons, not "
                f"{type(candidates).__name__}"
            )
        if len(candidates) == 0 and (existing is None or len(existing) == 0):
            raise InputError(
                "candidates is empty: pass at least one site (points or polygons with "
                "floor_area_m2) or existing= stations"
            )
        parts.append(_site_frame(candidates, bld.crs, m2_per_100, what="candidates", prefix="",
                                 room_m2=room_m2))
    if has_parcels:
        assert parcels is not None
        plots = gpd.GeoDataFrame(geometry=parcels.geometry.to_numpy(), crs=parcels.crs,
                                 index=parcels.index)
        parts.append(_site_frame(plots, bld.crs, m2_per_100, what="vacant parcels",
                                 prefix="parcel-", room_m2=room_m2))
    if existing is not None and len(existing):
        if not isinstance(existing, gpd.GeoDataFrame):
            raise InputError(
                f"existing must be a GeoDataFrame of points or polygons, not "
                f"{type(existing).__name__}"
            )
        ex = _site_frame(existing, bld.crs, m2_per_100, what="existing", prefix="existing-",
                         room_m2=room_m2)
        ex["existing"] = True
        parts.append(ex)
    sites = pd.concat(parts)
    sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=bld.crs)
    if not sites.index.is_unique:
        dup = sites.index[sites.index.duplicated()].unique()[:10].tolist()
        raise InputError(f"candidate site ids are not unique (e.g. {dup}); give each site one id")
    return sites


def _site_frame(
    frame: gpd.GeoDataFrame, crs: Any, m2_per_100: float, *, what: str, prefix: str,
    room_m2: float,
) -> gpd.GeoDataFrame:
    if frame.crs is None:
        warnings.warn(
            f"{what} have no CRS; assumed to be the buildings' {crs.to_string()}",
            RepairWarning,
            stacklevel=4,
        )
        frame = frame.set_crs(crs)
    else:
        frame = reproject(frame, crs, what=what, warn=True)
    missing = np.flatnonzero(_no_geometry(frame))
    if len(missing):
        raise InputError(
            f"{len(missing)} of the {what} have no geometry (ids "
            f"{frame.index[missing[:10]].tolist()}); fix or remove them"
        )
    if "capacity_households" in frame.columns:
        capacity = pd.to_numeric(frame["capacity_households"], errors="coerce").to_numpy(float)
        area = (
            pd.to_numeric(frame["floor_area_m2"], errors="coerce").to_numpy(float)
            if "floor_area_m2" in frame.columns
            else capacity * m2_per_100 / 100.0
        )
        col = "capacity_households"
    elif "floor_area_m2" in frame.columns:
        area = pd.to_numeric(frame["floor_area_m2"], errors="coerce").to_numpy(float)
        # A site without a stated room size gets the standard room.
        area = np.where(frame["floor_area_m2"].isna().to_numpy(), float(room_m2), area)
        capacity = np.floor(area / m2_per_100 * 100.0 + 1e-9)
        col = "floor_area_m2"
    else:
        # No room size given: a standard station room.
        area = np.full(len(frame), float(room_m2))
        capacity = np.floor(area / m2_per_100 * 100.0 + 1e-9)
        col = "floor_area_m2"
    bad = np.flatnonzero(~np.isfinite(capacity) | (capacity < 0))
    if len(bad):
        raise InputError(
            f"{what}: {col} must be a number >= 0; {len(bad)} row(s) are not "
            f"(ids {frame.index[bad[:10]].tolist()}, values {frame[col].iloc[bad[:10]].tolist()})"
        )
    ids = [f"{prefix}{i}" for i in frame.index] if prefix else list(frame.index)
    return gpd.GeoDataFrame(
        {
            "site": ids,
            "floor_area_m2": area,
            "capacity_households": np.floor(capacity).astype(np.int64),
            "existing": False,
            "new_site": False,
        },
        geometry=frame.geometry.to_numpy(),
        index=pd.Index(ids, name="site"),
        crs=crs,
    )


def _thin(sites: gpd.GeoDataFrame, max_n: int) -> gpd.GeoDataFrame:
    """At most ``max_n`` candidates: the largest capacity per square grid cell."""
    cand = sites[~sites["existing"]]
    pts = cand.geometry.to_numpy()
    pts = np.where(shapely.get_type_id(pts) == 0, pts, shapely.point_on_surface(pts))
    xy = shapely.get_coordinates(pts)
    span = np.ptp(xy, axis=0)
    cell = max(float(np.sqrt(max(span[0] * span[1], 1.0) / max_n)), 1.0)
    cap = cand["capacity_households"].to_numpy()
    while True:
        key = np.floor((xy - xy.min(axis=0)) / cell).astype(np.int64)
        # Largest capacity first (then input order) so the first per cell wins.
        order = np.lexsort((np.arange(len(cap)), -cap, key[:, 1], key[:, 0]))
        k = key[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(k[1:] != k[:-1], axis=1)
        if first.sum() <= max_n:
            break
        cell *= 1.2
    keep = np.sort(order[first])
    return pd.concat([cand.iloc[keep], sites[sites["existing"]]])


def _network(streets: Any, crs: Any) -> nx.Graph | None:
    if streets is None:
        log.info("no streets given: walking distances are straight lines x detour factor")
        return None
    if isinstance(streets, nx.Graph):
        gcrs = streets.graph.get("crs")
        if gcrs is not None and not gpd.GeoSeries([], crs=gcrs).crs.equals(crs):
            raise InputError(
                f"the walking network is in {gcrs}, the buildings in {crs.to_string()}; "
                "build it with walk_network(streets, crs=buildings.crs)"
            )
        return streets
    return walk_network(streets, crs=crs)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


@dataclass
class _Context:
    graph: nx.Graph | None
    clients: gpd.GeoSeries
    sites: gpd.GeoDataFrame
    dist: WalkDistances
    within: sparse.csr_array
    w: np.ndarray
    cap: np.ndarray
    fixed: np.ndarray
    seed: int
    deadline: float
    max_walk_m: float
    detour_factor: float
    max_snap_m: float
    n_candidates_given: int = 0
    time_limit_s: float = 60.0

    def remaining(self, share: float = 1.0) -> float:
        return max(0.5, (self.deadline - time.perf_counter()) * share)


def _coverage_rows(within: sparse.csr_array, w: np.ndarray) -> tuple[list[tuple], np.ndarray]:
    """Distinct sets of sites within the limit, with the households having each."""
    groups: dict[tuple, float] = {}
    for i in range(within.shape[0]):
        row = tuple(within.indices[within.indptr[i] : within.indptr[i + 1]].tolist())
        if row:
            groups[row] = groups.get(row, 0.0) + float(w[i])
    keys = sorted(groups)
    return keys, np.array([groups[k] for k in keys])


def _cpsat(model: Any, ctx: _Context, share: float) -> tuple[Any, int]:
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    # CP-SAT's deterministic time decides the answer, so a busy machine gives the same
    # sites; the wall clock is only a safety cap (reported as "time_limit" when hit).
    solver.parameters.max_deterministic_time = max(0.5, ctx.time_limit_s * share)
    solver.parameters.max_time_in_seconds = 8.0 * ctx.remaining(share) + 10.0
    solver.parameters.random_seed = int(ctx.seed)
    # One worker: deterministic for a given seed (parallel portfolios are not,
    # and CP-SAT's deterministic interleaved mode was 6x slower on these models).
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    return solver, status


def _status_name(code: int, solver: Any) -> str:
    from ortools.sat.python import cp_model

    if code == cp_model.OPTIMAL:
        return "optimal"
    if code == cp_model.FEASIBLE:
        stopped = (
            solver.wall_time >= solver.parameters.max_time_in_seconds * 0.98
            or solver.deterministic_time >= solver.parameters.max_deterministic_time * 0.98
        )
        return "time_limit" if stopped else "feasible"
    if code == cp_model.INFEASIBLE:
        return "infeasible"
    return "time_limit"


def _cover(
    ctx: _Context, *, capacity_sum: bool, share: float = 0.5
) -> tuple[np.ndarray, str, float, float]:
    """Fewest sites putting every coverable household within the walk limit.

    With enough capacity in total (``capacity_sum``) and a moderate number of
    pairs, the model is the capacitated covering problem (each building's
    households go to one open site within the limit, within its capacity);
    otherwise the plain set covering plus "open capacity >= demand".
    """
    if capacity_sum and ctx.within.nnz <= _MAX_CAPACITATED_PAIRS:
        out = _cover_model(ctx, capacitated=True, share=share / 2)
        if out is not None:
            return out
        log.info("capacitated covering has no solution: falling back to plain set covering")
    out = _cover_model(ctx, capacitated=False, capacity_sum=capacity_sum, share=share)
    if out is not None:
        return out
    # No solution within the time: the greedy cover (plus the largest sites
    # until the capacity adds up), with the trivial bound of one station.
    rows, _ = _coverage_rows(ctx.within, ctx.w)
    chosen = _greedy_cover(rows, len(ctx.sites), ctx.fixed)
    if capacity_sum:
        chosen = _add_capacity(chosen, ctx.cap, float(ctx.w.sum()))
    log.info("set covering found no solution in time: greedy cover of %d sites", len(chosen))
    return chosen, "time_limit", float(len(chosen)), 1.0


def _add_capacity(chosen: np.ndarray, cap: np.ndarray, demand: float) -> np.ndarray:
    """Add the largest unchosen sites until the open capacity covers the demand."""
    mask = np.zeros(len(cap), dtype=bool)
    mask[chosen] = True
    for j in np.argsort(-cap, kind="stable"):
        if cap[mask].sum() >= demand:
            break
        mask[j] = True
    return np.flatnonzero(mask)


def _add_single_source_capacity(
    model: Any, y: list[Any], ctx: _Context, *, every_client: bool
) -> Any:
    """Single-source assignment of households to open sites within the walk limit.

    Adds x_ij (client i at site j, only for pairs within the limit) with x_ij -> y_j
    and each site's load within its capacity. ``every_client``: each client with a
    site in reach is assigned exactly once (covering); otherwise at most once
    (maximal covering). Returns the households assigned, as a linear expression.
    """
    within = ctx.within
    load: list[list[tuple[int, Any]]] = [[] for _ in range(len(y))]
    served = []
    for i in range(within.shape[0]):
        sites_i = within.indices[within.indptr[i] : within.indptr[i + 1]]
        if len(sites_i) == 0:
            continue
        xs = []
        for j in sites_i:
            x = model.new_bool_var("")
            model.add_implication(x, y[j])
            load[j].append((round(ctx.w[i]), x))
            xs.append(x)
            served.append(round(ctx.w[i]) * x)
        if every_client:
            model.add_exactly_one(xs)
        else:
            model.add_at_most_one(xs)
    for j, terms in enumerate(load):
        if terms:
            model.add(sum(d * x for d, x in terms) <= int(ctx.cap[j]) * y[j])
    return sum(served)


def _cover_model(
    ctx: _Context, *, capacitated: bool, capacity_sum: bool = True, share: float
) -> tuple[np.ndarray, str, float, float] | None:
    from ortools.sat.python import cp_model

    n_sites = len(ctx.sites)
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{j}") for j in range(n_sites)]
    for j in ctx.fixed:
        model.add(y[j] == 1)
    rows, _ = _coverage_rows(ctx.within, ctx.w)
    if capacitated:
        _add_single_source_capacity(model, y, ctx, every_client=True)
    else:
        for row in rows:
            model.add_bool_or([y[j] for j in row])
    if capacity_sum:
        demand = round(ctx.w.sum())
        model.add(sum(int(c) * y[j] for j, c in enumerate(ctx.cap) if c > 0) >= demand)
    # At least one station, even when nobody can be reached within the limit.
    model.add(sum(y) >= 1)
    model.minimize(sum(y))
    # Hint: a greedy cover keeps CP-SAT from starting blind on big cities.
    greedy = _greedy_cover(rows, n_sites, ctx.fixed)
    if capacity_sum:
        greedy = _add_capacity(greedy, ctx.cap, float(ctx.w.sum()))
    hint = np.zeros(n_sites, dtype=bool)
    hint[greedy] = True
    for j in range(n_sites):
        model.add_hint(y[j], bool(hint[j]))
    solver, code = _cpsat(model, ctx, share)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    open_idx = np.flatnonzero([solver.value(v) for v in y])
    return (
        open_idx,
        _status_name(code, solver),
        float(len(open_idx)),
        float(solver.best_objective_bound),
    )


def _greedy_cover(rows: list[tuple], n_sites: int, fixed: np.ndarray) -> np.ndarray:
    chosen = set(int(j) for j in fixed)
    left = [r for r in rows if not chosen.intersection(r)]
    while left:
        count = np.zeros(n_sites)
        for r in left:
            count[list(r)] += 1
        j = int(np.argmax(count))
        chosen.add(j)
        left = [r for r in left if j not in r]
    return np.array(sorted(chosen), dtype=np.int64)


def _max_cover(ctx: _Context, p: int, share: float = 0.5) -> tuple[np.ndarray, str, float, float]:
    """``p`` sites covering the most households within the walk limit and capacity.

    Moderate sizes: the capacitated maximal covering model, exact (each
    building's households counted at one open site within the limit, within
    its capacity). Large cities: the covering model with the capacity only
    in total gives the upper bound, and the better of its sites and a greedy
    capacitated choice (judged by the households the assignment actually
    serves within the limit) is returned.
    """
    if ctx.within.nnz <= _MAX_CAPACITATED_PAIRS:
        return _max_cover_model(ctx, p, share=share, capacitated=True)
    open_cp, status, _, bound = _max_cover_model(ctx, p, share=share, capacitated=False)
    best, best_cov = open_cp, -1.0
    for cand in (open_cp, _greedy_max_cover(ctx, p)):
        assign, walk, _ = _assign(ctx, cand)
        covered = float(ctx.w[(assign >= 0) & (walk <= ctx.max_walk_m + 1e-9)].sum())
        if covered > best_cov:
            best, best_cov = cand, covered
    status = "optimal" if best_cov >= bound - 1e-9 else "feasible"
    return best, status, best_cov, bound


def _max_cover_model(
    ctx: _Context, p: int, *, share: float, capacitated: bool
) -> tuple[np.ndarray, str, float, float]:
    from ortools.sat.python import cp_model

    n_sites = len(ctx.sites)
    model = cp_model.CpModel()
    y = [model.new_bool_var(f"y{j}") for j in range(n_sites)]
    for j in ctx.fixed:
        model.add(y[j] == 1)
    model.add(sum(y) == p)
    if capacitated:
        model.maximize(_add_single_source_capacity(model, y, ctx, every_client=False))
    else:
        rows, weight = _coverage_rows(ctx.within, ctx.w)
        z = [model.new_bool_var(f"z{i}") for i in range(len(rows))]
        for zi, row in zip(z, rows, strict=True):
            model.add_bool_or([y[j] for j in row]).only_enforce_if(zi)
        covered = sum(round(h) * zi for zi, h in zip(z, weight, strict=True))
        # Nobody counts as covered beyond what the open stations can hold.
        model.add(covered <= sum(int(c) * y[j] for j, c in enumerate(ctx.cap)))
        model.maximize(covered)
    solver, code = _cpsat(model, ctx, share)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise InfeasibleError(
            f"maximal covering found no solution in {solver.wall_time:.1f} s; raise time_limit_s",
            p=p,
        )
    open_idx = np.flatnonzero([solver.value(v) for v in y])
    return (
        open_idx,
        _status_name(code, solver),
        float(solver.objective_value),
        float(solver.best_objective_bound),
    )


def _greedy_max_cover(ctx: _Context, p: int) -> np.ndarray:
    """Greedy capacitated covering: each step opens the site that takes the most
    households not yet taken within the limit (up to its capacity, nearest first)."""
    within = ctx.within.tocsc()
    free = ctx.w.astype(float).copy()
    chosen = [int(j) for j in ctx.fixed]
    for j in chosen:
        free = _take(within, j, free, ctx.cap[j])
    while len(chosen) < p:
        gain = np.zeros(within.shape[1])
        for j in range(within.shape[1]):
            if j in chosen:
                continue
            rows = within.indices[within.indptr[j] : within.indptr[j + 1]]
            gain[j] = min(float(free[rows].sum()), float(ctx.cap[j]))
        j = int(np.argmax(gain))
        chosen.append(j)
        free = _take(within, j, free, ctx.cap[j])
    return np.array(sorted(chosen), dtype=np.int64)


def _take(within: sparse.csc_array, j: int, free: np.ndarray, cap: float) -> np.ndarray:
    """Households site ``j`` takes within the limit, nearest first, up to ``cap``."""
    lo, hi = within.indptr[j], within.indptr[j + 1]
    rows, dist = within.indices[lo:hi], within.data[lo:hi]
    free = free.copy()
    room = float(cap)
    for i in rows[np.argsort(dist, kind="stable")]:
        if room <= 0:
            break
        if 0 < free[i] <= room:
            room -= free[i]
            free[i] = 0.0
    return free


def _cost_for(
    ctx: _Context, open_idx: np.ndarray | None, *, all_rows: bool = False, k: int = _K_BEYOND
) -> tuple[sparse.csr_array, np.ndarray]:
    """Allowed (client, site) walking costs.

    Every pair within the walk limit, plus the ``_K_BEYOND`` nearest sites
    beyond it (by walking distance) for each client with no site within it,
    or for every client when ``all_rows`` (so that capacity can push someone
    past the limit instead of leaving them unserved). ``open_idx`` restricts
    the sites (columns); returns the matrix and the site index of each column.
    """
    cols = np.arange(len(ctx.sites)) if open_idx is None else np.asarray(open_idx)
    base = ctx.within[:, cols].tocsr()
    rows = np.arange(base.shape[0]) if all_rows else np.flatnonzero(np.diff(base.indptr) == 0)
    if len(rows) == 0 or len(cols) == 0:
        return base, cols
    far = walking_distances(
        ctx.graph,
        ctx.clients.iloc[rows],
        ctx.sites.geometry.iloc[cols],
        max_walk_m=np.inf,
        detour_factor=ctx.detour_factor,
        max_snap_m=ctx.max_snap_m,
    ).matrix.tocsr()
    r, c, v = [], [], []
    for pos, i in enumerate(rows):
        lo, hi = far.indptr[pos], far.indptr[pos + 1]
        idx, val = far.indices[lo:hi], far.data[lo:hi]
        keep = np.argsort(val, kind="stable")[:k]
        r.append(np.full(len(keep), i))
        c.append(idx[keep])
        v.append(val[keep])
    extra = sparse.csr_array(
        (np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=base.shape
    )
    return _merge_min(base, extra), cols


def _solve(
    cost: sparse.csr_array,
    *,
    p: int,
    w: np.ndarray,
    cap: np.ndarray | None,
    fixed: np.ndarray,
    ctx: _Context,
    share: float = 1.0,
) -> Any:
    if cap is not None:
        # A site that can hold everyone allowed to use it never binds; when no
        # site binds, the uncapacitated model is the same problem, and faster.
        reach = sparse.coo_array(cost)
        col_demand = np.bincount(reach.col, weights=w[reach.row], minlength=cost.shape[1])
        if np.all(np.asarray(cap, dtype=float) >= col_demand - 1e-9):
            cap = None
    return solve_p_median(
        cost,
        p=p,
        weights=w,
        demand=w,
        capacity=cap,
        fixed_open=fixed if len(fixed) else None,
        # the solver's work budget decides; the wall clock is only its safety cap
        time_limit_s=4.0 * ctx.remaining(share) + 10.0,
        seed=ctx.seed,
    )


def _with_unserved(cost: sparse.csr_array, cap: np.ndarray, demand: float, penalty: float):
    """Add a fixed-open 'unserved' column that takes anyone at ``penalty`` metres."""
    n = cost.shape[0]
    col = sparse.csr_array(
        (np.full(n, penalty), (np.arange(n), np.zeros(n, dtype=np.int64))), shape=(n, 1)
    )
    return sparse.hstack([cost, col], format="csr"), np.append(cap, demand)


def _median(
    ctx: _Context, n_stations: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, float, float]:
    demand = float(ctx.w.sum())
    short = float(ctx.cap.sum()) < demand
    auto = n_stations is None
    n_sites = len(ctx.sites)
    if auto and short:
        # Too little capacity in total: every site is needed.
        p, cover_size = n_sites, n_sites
        cover_idx = np.arange(n_sites)
    else:
        # The count matters more than the last walking metres: the covering that fixes it
        # gets 40% of the time (the p-median after it mostly finishes early).
        cover_idx, _, _, _ = _cover(ctx, capacity_sum=not short, share=0.4)
        cover_size = len(cover_idx)
        p = max(cover_size, len(ctx.fixed), 1) if auto else int(n_stations)
    cost, _ = _cost_for(ctx, None)
    if not auto and p < cover_size:
        # Too few stations to keep everyone within the limit: allow longer
        # walks (up to twice the limit, and each household's nearest sites).
        log.info(
            "n_stations=%d < %d needed to cover every household within %g m: allowing longer walks",
            p,
            cover_size,
            ctx.max_walk_m,
        )
        wide = walking_distances(
            ctx.graph,
            ctx.clients,
            ctx.sites.geometry,
            max_walk_m=2 * ctx.max_walk_m,
            detour_factor=ctx.detour_factor,
            max_snap_m=ctx.max_snap_m,
        ).matrix
        cost = _merge_min(cost, wide)
    if not short and cost.nnz <= _MAX_EXACT_PAIRS:
        # Single-source packing may need a little more room than the total:
        # then try a few more stations (5% more each time), while time lasts.
        step = max(1, math.ceil(0.05 * p))
        for k in [step * t for t in range(_EXTRA_P_TRIES + 1 if auto else 1)]:
            # a fixed number of tries, not "while time lasts": the same sites on a busy machine
            if p + k > n_sites:
                break
            try:
                res = _solve(
                    cost, p=p + k, w=ctx.w, cap=ctx.cap, fixed=ctx.fixed, ctx=ctx, share=0.5
                )
            except InfeasibleError as exc:
                log.info("capacitated p-median with p=%d infeasible: %s", p + k, exc)
                continue
            if res.status != "infeasible":
                walk = _lookup(cost, np.arange(len(res.assign)), res.assign)
                return np.asarray(res.open), res.assign, walk, res.status, res.objective, res.bound
    # Large city, or capacities that do not fit: location-allocation. Choose
    # the sites by the uncapacitated p-median (its bound holds for the
    # capacitated problem too), assign by min-cost flow within capacities, and
    # in automatic mode open more sites where households are left unserved.
    bound = 0.0
    try:
        res = _uncapacitated(ctx, cost, min(p, n_sites), share=0.45)
        open_idx = np.asarray([j for j in res.open if j != n_sites], dtype=np.int64)
        bound = float(res.bound)
        status = res.status
    except InfeasibleError as exc:
        # No time left to find p sites serving everyone: the covering's sites
        # (plus the largest ones until the capacity adds up) will do.
        log.info("uncapacitated p-median failed (%s): using the covering's sites", exc)
        open_idx = _add_capacity(np.union1d(cover_idx, ctx.fixed), ctx.cap, demand)
        status = "time_limit"
    assign, walk, flow_status = _assign(ctx, open_idx, cost)
    if auto and not short:
        grown = _grow(ctx, open_idx, assign, walk, cost)
        if grown is not None:
            open_idx, assign, walk = grown
            # The bound above was for fewer stations and does not hold for
            # more; every household at its nearest allowed site does.
            bound = _all_open_bound(cost, ctx.w)
    if (assign < 0).any():
        # Walking past the limit beats not being served: let those left
        # without room use the nearest open stations beyond it. The all-open
        # bound still holds (those walks are longer than any allowed one).
        wider = _assign(ctx, open_idx, k=_K_WIDE)
        if (wider[0] < 0).sum() < (assign < 0).sum():
            assign, walk, flow_status = wider
            bound = min(bound, _all_open_bound(cost, ctx.w))
    served = assign >= 0
    # Unserved households cost the same penalty as in the bound's model.
    objective = float(np.sum(ctx.w[served] * walk[served])) + _penalty(ctx, cost) * float(
        ctx.w[~served].sum()
    )
    if flow_status != "optimal" or status != "optimal":
        status = "time_limit" if ctx.deadline - time.perf_counter() < 0.5 else "feasible"
    if objective - bound <= 1e-6 * max(1.0, objective) and not (~served).any():
        status = "optimal"
    return open_idx, assign, walk, status, objective, bound


def _all_open_bound(cost: sparse.csr_array, w: np.ndarray) -> float:
    """Household-weighted walk with every site open: a lower bound for any count."""
    cost = cost.tocsr()
    has = np.diff(cost.indptr) > 0
    if not has.any():
        return 0.0
    nearest = np.minimum.reduceat(cost.data, cost.indptr[:-1][has])
    return float(np.sum(w[has] * nearest))


def _penalty(ctx: _Context, cost: sparse.csr_array) -> float:
    """Metres charged per unserved household: ten times the longest allowed walk."""
    return 10.0 * max(ctx.max_walk_m, float(cost.data.max()) if cost.nnz else 0.0)


def _uncapacitated(ctx: _Context, cost: sparse.csr_array, p: int, *, share: float) -> Any:
    """Uncapacitated p-median with an always-open 'nobody' column.

    The column (index ``n_sites``) takes anyone at a prohibitive cost, so every
    choice of sites is feasible and the search never stalls on coverage; it
    only relaxes the problem, so the bound stays a lower bound.
    """
    n_sites = len(ctx.sites)
    cost_u, _ = _with_unserved(cost, ctx.cap, float(ctx.w.sum()), _penalty(ctx, cost))
    fixed_u = np.append(ctx.fixed, n_sites).astype(np.int64)
    return _solve(cost_u, p=p + 1, w=ctx.w, cap=None, fixed=fixed_u, ctx=ctx, share=share)


def _grow(
    ctx: _Context,
    open_idx: np.ndarray,
    assign: np.ndarray,
    walk: np.ndarray,
    cost: sparse.csr_array | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Open more sites while households are unserved or pushed past the limit
    although an unopened site within the limit could take them (greedy, a few
    rounds while time lasts). Returns the new open set and assignment, or None.
    """
    grown = False
    for _ in range(_GROW_ROUNDS):
        stuck = np.flatnonzero((assign < 0) | (walk > ctx.max_walk_m + 1e-9))
        if len(stuck) == 0:  # at most _GROW_ROUNDS rounds, whatever the machine's load
            break
        is_open = np.zeros(len(ctx.sites), dtype=bool)
        is_open[open_idx] = True
        # Greedy cover of the stuck households that an unopened site within
        # the limit could take: the site taking most, then the next, ...
        closed = np.flatnonzero(~is_open)
        pairs = ctx.within[stuck][:, closed].tocoo()
        r, k = pairs.row, pairs.col
        left = np.ones(len(stuck), dtype=bool)
        hh = ctx.w[stuck]
        added: list[int] = []
        while len(r):
            live = left[r]
            gain = np.bincount(k[live], weights=hh[r[live]], minlength=len(closed))
            gain = np.minimum(gain, ctx.cap[closed])
            if gain.max(initial=0.0) <= 0:
                break
            best = int(np.argmax(gain))
            added.append(int(closed[best]))
            left[r[k == best]] = False
        if not added:
            break
        open_idx = np.union1d(open_idx, added)
        assign, walk, _ = _assign(ctx, open_idx, cost)
        grown = True
        log.info(
            "opened %d more site(s) for %d households left without room",
            len(added),
            int(ctx.w[stuck].sum()),
        )
    return (open_idx, assign, walk) if grown else None


def _merge_min(a: sparse.csr_array, b: sparse.csr_array) -> sparse.csr_array:
    """Union of two sparse patterns, keeping the smaller value where both have one."""
    a, b = a.tocoo(), b.tocoo()
    r = np.concatenate([a.row, b.row])
    c = np.concatenate([a.col, b.col])
    v = np.concatenate([a.data, b.data])
    order = np.lexsort((v, c, r))
    r, c, v = r[order], c[order], v[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sparse.csr_array((v[first], (r[first], c[first])), shape=a.shape)


def _lookup(cost: sparse.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """cost[rows[k], cols[k]] for each k (NaN where not stored)."""
    cost = cost.tocsr()
    cost.sort_indices()
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    n_cols = max(cost.shape[1], 1)
    # Row-major keys of a CSR matrix with sorted indices are sorted.
    stored = np.repeat(np.arange(cost.shape[0], dtype=np.int64), np.diff(cost.indptr))
    keys = stored * n_cols + cost.indices
    want = rows * n_cols + cols
    pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    out = np.full(len(rows), np.nan)
    if len(keys):
        hit = keys[pos] == want
        out[hit] = cost.data[pos[hit]]
    return out


def _assign(
    ctx: _Context, open_idx: np.ndarray, cost: sparse.csr_array | None = None, *, k: int = _K_BEYOND
) -> tuple[np.ndarray, np.ndarray, str]:
    """Assign every client to one of the open sites (capacitated, least walking).

    A min-cost flow over the allowed pairs (households as flow, station
    capacities on the arcs to the sink) gives the optimal split assignment and
    its cost, a lower bound; each building then goes where most of its flow
    went, and overloaded stations hand buildings on to stations with room.
    A walk beyond the limit costs the limit on top, so that nobody is pushed
    past it while a station within it has room; a building that fits nowhere
    it may go is unserved (-1).

    Returns the site per client (-1: unserved), the walking metres and a
    status (``"optimal"`` when the rounding cost nothing). ``cost`` (all
    sites' columns) fixes the allowed pairs; by default every pair within the
    limit plus each building's nearest open sites beyond it.
    """
    if cost is None:
        cost, cols = _cost_for(ctx, open_idx, all_rows=True, k=k)
    else:
        cols = np.asarray(open_idx, dtype=np.int64)
        cost = cost[:, cols].tocsr()
    paid = cost.copy()
    paid.data = np.where(paid.data > ctx.max_walk_m, paid.data + ctx.max_walk_m, paid.data)
    local, optimal = _flow_assign(paid, ctx.w, ctx.cap[cols])
    walk = np.full(len(local), np.nan)
    ok = local >= 0
    walk[ok] = _lookup(cost, np.flatnonzero(ok), local[ok])
    assign = np.where(ok, cols[np.maximum(local, 0)], -1)
    return assign, walk, "optimal" if optimal else "feasible"


def _flow_assign(paid: sparse.csr_array, w: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, bool]:
    """Single-source assignment by min-cost flow and rounding; -1 = unserved."""
    from ortools.graph.python import min_cost_flow

    paid = paid.tocsr()
    n, p = paid.shape
    hh = np.round(w).astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(paid.indptr))
    # Centimetres, rounded down: the flow optimum is then a true lower bound.
    unit = np.floor(paid.data * 100.0).astype(np.int64)
    unserved_cost = 10 * (int(unit.max()) if len(unit) else 100_000) + 1
    sink = n + p
    tails = np.concatenate([rows, np.arange(n), n + np.arange(p)])
    heads = np.concatenate([n + paid.indices, np.full(n, sink), np.full(p, sink)])
    caps = np.concatenate([hh[rows], hh, np.floor(cap).astype(np.int64)])
    costs = np.concatenate([unit, np.full(n, unserved_cost), np.zeros(p, dtype=np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_nodes_supplies(
        np.arange(n + p + 1), np.concatenate([hh, np.zeros(p, np.int64), [-hh.sum()]])
    )
    if flow.solve() != flow.OPTIMAL:  # pragma: no cover - the unserved arcs keep it feasible
        raise InfeasibleError("station assignment flow has no solution", clients=n, sites=p)
    f = flow.flows(arcs)
    # Each building where most of its households flowed (ties: the cheaper site).
    arc_site = np.concatenate([paid.indices, np.full(n, -1)])
    arc_client = np.concatenate([rows, np.arange(n)])
    arc_cost = costs[: len(arc_site)]
    fl = f[: len(arc_site)]
    order = np.lexsort((arc_cost, -fl, arc_client))
    first = np.ones(len(order), dtype=bool)
    first[1:] = arc_client[order][1:] != arc_client[order][:-1]
    local = np.full(n, -1, dtype=np.int64)
    local[arc_client[order][first]] = arc_site[order][first]
    split = int((np.bincount(arc_client[fl > 0], minlength=n) > 1).sum())

    # Repair: move buildings off overloaded stations, cheapest moves first.
    load = np.bincount(local[local >= 0], weights=hh[local >= 0], minlength=p)
    for j in np.flatnonzero(load > cap):
        members = np.flatnonzero(local == j)
        # Smallest buildings first: the fewest households moved.
        for i in members[np.argsort(hh[members], kind="stable")]:
            if load[j] <= cap[j]:
                break
            lo, hi = paid.indptr[i], paid.indptr[i + 1]
            alt, alt_cost = paid.indices[lo:hi], paid.data[lo:hi]
            room = (alt != j) & (load[alt] + hh[i] <= cap[alt])
            load[j] -= hh[i]
            if room.any():
                k = alt[room][np.argmin(alt_cost[room])]
                local[i] = k
                load[k] += hh[i]
            else:
                local[i] = -1
    optimal = split == 0 and bool(np.all(load <= cap + 1e-9))
    return local, optimal


# ---------------------------------------------------------------------------
# New sites and one station per grid
# ---------------------------------------------------------------------------


def _households_within(ctx: _Context, assign: np.ndarray, walk: np.ndarray) -> float:
    """Households served by a station within the walk limit."""
    ok = (assign >= 0) & (walk <= ctx.max_walk_m + 1e-9)
    return float(ctx.w[ok].sum())


def _street_points(
    graph: nx.Graph | None, targets: np.ndarray, max_walk_m: float, max_points: int
) -> np.ndarray:
    """Candidate points for new sites: main-piece nodes within ``max_walk_m`` of a target.

    Thinned to one per square cell (an eighth of the limit, grown until at most
    ``max_points`` remain). Without a network the targets themselves are the points.
    """
    if graph is None or graph.number_of_nodes() == 0:
        xy = targets
    else:
        # Nodes of the main piece: a site on a stray piece would be reached by straight lines.
        main = max(nx.connected_components(graph), key=len)
        nodes = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in main], dtype=float)
        near, _ = cKDTree(targets).query(nodes, distance_upper_bound=max_walk_m)
        xy = nodes[np.isfinite(near)]
    if len(xy) == 0:
        return xy
    cell = max(max_walk_m / 8.0, 1.0)
    while True:
        key = np.floor((xy - xy.min(axis=0)) / cell).astype(np.int64)
        _, first = np.unique(key, axis=0, return_index=True)
        if len(first) <= max_points:
            return xy[np.sort(first)]
        cell *= 1.25


def _new_sites(
    ctx: _Context,
    open_idx: np.ndarray,
    assign: np.ndarray,
    walk: np.ndarray,
    *,
    room_m2: float,
    m2_per_100: float,
    time_limit_s: float,
) -> tuple[_Context, np.ndarray, np.ndarray, np.ndarray] | None:
    """Propose sites on the street network for the households no candidate serves in reach.

    The fewest street points putting every such household within the limit
    (CP-SAT set covering with a greedy start, the covering the placement
    itself uses; capacitated when small), each a standard room. Returns the
    context with the new sites appended and the reassignment, or None.
    """
    # Households no candidate reaches within the limit, or none with room left.
    beyond = np.flatnonzero(~((assign >= 0) & (walk <= ctx.max_walk_m + 1e-9)))
    if len(beyond) == 0:
        return None
    targets = shapely.get_coordinates(
        shapely.point_on_surface(ctx.clients.iloc[beyond].to_numpy())
    )
    xy = _street_points(ctx.graph, targets, ctx.max_walk_m, _MAX_NEW_SITE_POINTS)
    if len(xy) == 0:
        return None
    points = gpd.GeoSeries(shapely.points(xy), crs=ctx.sites.crs)
    reach = walking_distances(
        ctx.graph, ctx.clients.iloc[beyond], points, max_walk_m=ctx.max_walk_m,
        detour_factor=ctx.detour_factor, max_snap_m=ctx.max_snap_m,
    ).matrix
    cap_one = float(np.floor(room_m2 / m2_per_100 * 100.0 + 1e-9))
    w_b = ctx.w[beyond]
    coverable = float(w_b[np.diff(reach.indptr) > 0].sum())
    if coverable <= 0:
        return None
    sub = dataclasses.replace(
        ctx,
        sites=gpd.GeoDataFrame(geometry=points),
        within=reach,
        w=w_b,
        cap=np.full(len(xy), cap_one),
        fixed=np.empty(0, dtype=np.int64),
        deadline=time.perf_counter() + max(2.0, 0.25 * time_limit_s),
        time_limit_s=max(2.0, 0.25 * time_limit_s),
    )
    chosen, status, _, _ = _cover(sub, capacity_sum=cap_one * len(xy) >= float(w_b.sum()))
    log.info("proposed %d new site(s) (%s) for %d households beyond %g m",
             len(chosen), status, int(w_b.sum()), ctx.max_walk_m)
    ids = [f"new-{k + 1}" for k in range(len(chosen))]
    new = gpd.GeoDataFrame(
        {
            "site": ids,
            "floor_area_m2": float(room_m2),
            "capacity_households": np.int64(cap_one),
            "existing": False,
            "new_site": True,
        },
        geometry=points.iloc[chosen].to_numpy(),
        index=pd.Index(ids, name="site"),
        crs=ctx.sites.crs,
    )
    extra = walking_distances(
        ctx.graph, ctx.clients, new.geometry, max_walk_m=ctx.max_walk_m,
        detour_factor=ctx.detour_factor, max_snap_m=ctx.max_snap_m,
    )
    d = ctx.dist
    dist = dataclasses.replace(
        d,
        matrix=sparse.hstack([d.matrix, extra.matrix], format="csr"),
        fallback=sparse.hstack([d.fallback, extra.fallback], format="csr"),
        site_snap_m=np.concatenate([d.site_snap_m, extra.site_snap_m]),
        site_piece=np.concatenate([d.site_piece, extra.site_piece]),
    )
    n_old = len(ctx.sites)
    sites = gpd.GeoDataFrame(pd.concat([ctx.sites, new]), geometry="geometry", crs=ctx.sites.crs)
    grown = dataclasses.replace(
        ctx,
        sites=sites,
        dist=dist,
        within=dist.matrix,
        cap=np.concatenate([ctx.cap, np.full(len(new), cap_one)]),
    )
    open_new = np.union1d(open_idx, n_old + np.arange(len(new)))
    assign, walk, _ = _assign(grown, open_new)
    return grown, open_new, assign, walk


def _grid_codes(grids: pd.Series, index: pd.Index) -> np.ndarray:
    """Integer code of each building's grid (-1 where none), aligned to ``index``."""
    if not isinstance(grids, pd.Series):
        raise InputError(f"grids must be a pandas Series of grid labels, not {type(grids).__name__}")
    labels = grids.reindex(index)
    missing = labels.isna() & ~pd.Series(index.isin(grids.index), index=index)
    if missing.any():
        raise InputError(
            f"grids has no label for {int(missing.sum())} building(s) (e.g. "
            f"{index[missing.to_numpy()][:5].tolist()}); pass one label per building"
        )
    codes, _ = pd.factorize(labels)
    return codes.astype(np.int64)


def _assign_grids(
    ctx: _Context,
    open_idx: np.ndarray,
    assign: np.ndarray,
    walk: np.ndarray,
    codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Each grid's households to one station where one within the limit can take them all.

    A station qualifies for a grid when every building of the grid is within
    the limit of it. Grids with a qualifying station (as single units, cost =
    their mean walk per household) and the buildings of the other grids (as
    before: their sites within the limit and the nearest beyond) share one
    min-cost flow with rounding, within capacities. The building assignment
    stays when the grid one would leave more households beyond the limit.
    """
    cols = np.asarray(open_idx, dtype=np.int64)
    valid = codes >= 0
    n_g = int(codes.max()) + 1 if valid.any() else 0
    if n_g == 0 or len(cols) == 0:
        return assign, walk, {}
    rows = np.flatnonzero(valid)
    member = sparse.csr_array(
        (np.ones(len(rows)), (codes[rows], rows)), shape=(n_g, len(codes))
    )
    dmat = ctx.within[:, cols].tocsr()
    reach = dmat.copy()
    reach.data = np.ones_like(reach.data)
    size = np.asarray(member.sum(axis=1)).ravel()
    count = (member @ reach).tocsr()
    weighted = sparse.csr_array(
        (ctx.w[rows], (codes[rows], rows)), shape=(n_g, len(codes))
    )
    cost = (weighted @ dmat).tocsr()
    count.sort_indices()
    cost.sort_indices()
    # Keep (grid, station) pairs every building of the grid reaches.
    full = sparse.coo_array(count)
    ok = full.data >= size[full.row] - 1e-9
    g_r, g_c = full.row[ok], full.col[ok]
    g_v = _lookup(cost, g_r, g_c)
    grid_w = np.bincount(codes[rows], weights=ctx.w[rows], minlength=n_g)
    # One min-cost flow over units: each grid with a qualifying station is one unit
    # carrying its households (cost per household: its mean walk there); the buildings
    # of the other grids are units of their own with their usual allowed sites.
    has_pair = np.zeros(n_g, dtype=bool)
    has_pair[g_r] = True
    gq = np.flatnonzero(has_pair)
    pos = np.full(n_g, -1, dtype=np.int64)
    pos[gq] = np.arange(len(gq))
    grid_cost = sparse.csr_array(
        (np.maximum(g_v / np.maximum(grid_w[g_r], 1.0), _MIN_PAIR_M), (pos[g_r], g_c)),
        shape=(len(gq), len(cols)),
    )
    in_q = valid & has_pair[np.maximum(codes, 0)]
    rest = np.flatnonzero(~in_q)
    units = [grid_cost]
    unit_w = [grid_w[gq]]
    if len(rest):
        sub = dataclasses.replace(ctx, clients=ctx.clients.iloc[rest],
                                  within=ctx.within[rest].tocsr(), w=ctx.w[rest])
        rest_cost, _ = _cost_for(sub, cols, all_rows=True)
        units.append(rest_cost)
        unit_w.append(ctx.w[rest])
    cost_u = sparse.vstack(units, format="csr")
    paid = cost_u.copy()
    paid.data = np.where(paid.data > ctx.max_walk_m, paid.data + ctx.max_walk_m, paid.data)
    local, _ = _flow_assign(paid, np.concatenate(unit_w), ctx.cap[cols])
    new_assign = np.full(len(assign), -1, dtype=np.int64)
    new_walk = np.full(len(assign), np.nan)
    g_local = local[: len(gq)]
    single = np.zeros(n_g, dtype=bool)
    single[gq] = g_local >= 0
    idx = np.flatnonzero(valid & single[np.maximum(codes, 0)])
    new_assign[idx] = cols[g_local[pos[codes[idx]]]]
    new_walk[idx] = _lookup(ctx.within, idx, new_assign[idx])
    if len(rest):
        r_local = local[len(gq):]
        ok = r_local >= 0
        new_assign[rest[ok]] = cols[r_local[ok]]
        new_walk[rest[ok]] = _lookup(cost_u, len(gq) + np.flatnonzero(ok), r_local[ok])
    # Qualifying grids the rounding left without room: their buildings one by one.
    left = np.flatnonzero(valid & has_pair[np.maximum(codes, 0)] & ~single[np.maximum(codes, 0)])
    if len(left):
        used = np.bincount(new_assign[new_assign >= 0], weights=ctx.w[new_assign >= 0],
                           minlength=len(ctx.sites))
        sub = dataclasses.replace(ctx, clients=ctx.clients.iloc[left],
                                  within=ctx.within[left].tocsr(), w=ctx.w[left],
                                  cap=np.maximum(ctx.cap - used, 0.0))
        new_assign[left], new_walk[left], _ = _assign(sub, cols)
    # Never serve fewer households within the limit than the building assignment did;
    # then move whole grids where a qualifying station has room (never worse either).
    options = [(assign, walk)]
    if _households_within(ctx, new_assign, new_walk) >= _households_within(ctx, assign, walk):
        options.append((new_assign, new_walk))
    pairs = (g_r, g_c, g_v)
    options = [_greedy_grids(ctx, cols, a, w, codes, pairs) for a, w in options]
    new_assign, new_walk = max(options, key=lambda o: (_single_grids(o[0], codes),
                                                       -np.nansum(ctx.w * o[1])))
    per = pd.Series(new_assign[valid]).groupby(codes[valid]).nunique()
    stats = {
        "grids_with_households": len(per),
        "grids_single_station": int((per <= 1).sum()),
        "grids_several_stations": int((per > 1).sum()),
    }
    return new_assign, new_walk, stats


def _single_grids(assign: np.ndarray, codes: np.ndarray) -> int:
    """Grids whose households all walk to one station."""
    valid = codes >= 0
    per = pd.Series(assign[valid]).groupby(codes[valid]).nunique()
    return int((per <= 1).sum())


def _greedy_grids(
    ctx: _Context,
    cols: np.ndarray,
    assign: np.ndarray,
    walk: np.ndarray,
    codes: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Move each split grid whole to its cheapest qualifying station with room.

    Every building of a grid is within the limit of a qualifying station, so a move
    never puts anyone beyond it, and the room is checked, so no station overflows:
    coverage and capacities stay as good as they were. Two passes (room freed by the
    first lets more grids move in the second).
    """
    assign, walk = assign.copy(), walk.copy()
    g_r, g_c, g_v = pairs
    if len(g_r) == 0:
        return assign, walk
    served = assign >= 0
    load = np.bincount(assign[served], weights=ctx.w[served], minlength=len(ctx.sites))
    members = pd.Series(np.arange(len(codes))).groupby(codes).apply(np.asarray).to_dict()
    order = np.lexsort((g_v, g_r))
    options: dict[int, list[tuple[int, float]]] = {}
    for k in order:
        options.setdefault(int(g_r[k]), []).append((int(cols[g_c[k]]), float(g_v[k])))
    for _ in range(2):
        moved = False
        for g, choices in options.items():
            idx = members.get(g)
            if idx is None or (len(np.unique(assign[idx])) == 1 and assign[idx[0]] >= 0):
                continue
            for j, _cost in choices:
                here = float(ctx.w[idx][assign[idx] == j].sum())
                if load[j] - here + float(ctx.w[idx].sum()) <= ctx.cap[j] + 1e-9:
                    old = assign[idx]
                    ok = old >= 0
                    np.subtract.at(load, old[ok], ctx.w[idx][ok])
                    assign[idx] = j
                    load[j] += float(ctx.w[idx].sum())
                    walk[idx] = _lookup(ctx.within, idx, np.full(len(idx), j))
                    moved = True
                    break
        if not moved:
            break
    return assign, walk


def _objective_of(
    ctx: _Context, kind: str, open_idx: np.ndarray, assign: np.ndarray, walk: np.ndarray,
    old: float,
) -> float:
    """The objective of a changed plan, as the model that made it counts it."""
    served = assign >= 0
    if kind == "median":
        pen = 10.0 * max(ctx.max_walk_m, float(np.nanmax(walk)) if served.any() else 0.0)
        return float(np.sum(ctx.w[served] * walk[served]) + pen * ctx.w[~served].sum())
    if kind == "cover":
        return float(len(open_idx))
    return _households_within(ctx, assign, walk) if kind == "max_cover" else old


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    if len(x) == 0 or w.sum() <= 0:
        return 0.0
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, q * cw[-1] - 1e-9)])


def _build_plan(
    *,
    bld: gpd.GeoDataFrame,
    hh: np.ndarray,
    ctx: _Context,
    clients: np.ndarray,
    open_idx: np.ndarray,
    assign: np.ndarray,
    walk: np.ndarray,
    status: str,
    objective_value: float,
    bound: float,
    objective_kind: str,
    m2_per_100_households: float,
    walk_speed_m_per_min: float,
    runtime_s: float,
    hh_within_existing: float | None = None,
    grid_stats: dict[str, int] | None = None,
) -> StationPlan:
    sites = ctx.sites
    site_ids = sites.index.to_numpy()
    n = len(bld)
    station = np.full(n, None, dtype=object)
    walk_all = np.full(n, np.nan)
    method = np.full(n, "no_households", dtype=object)
    served = assign >= 0
    ci = clients[served]
    station[ci] = site_ids[assign[served]]
    walk_all[ci] = walk[served]
    if ctx.graph is None or ctx.dist.n_pieces == 0:
        method[ci] = "straight_line"
    else:
        # The same rule as walking_distances: off the network or on different
        # pieces of it -> straight line x detour.
        o_piece = ctx.dist.origin_piece[served]
        s_piece = ctx.dist.site_piece[assign[served]]
        off = (o_piece < 0) | (s_piece < 0) | (o_piece != s_piece)
        method[ci] = np.where(off, "straight_line", "network")
    method[clients[~served]] = "unserved"
    # Buildings without households: nearest open station within the limit, if any.
    open_set = np.zeros(len(sites), dtype=bool)
    open_set[open_idx] = True
    empty = np.flatnonzero(hh == 0)
    if len(empty) and len(open_idx):
        d0 = walking_distances(
            ctx.graph,
            bld.geometry.iloc[empty],
            sites.geometry.iloc[open_idx],
            max_walk_m=ctx.max_walk_m,
            detour_factor=ctx.detour_factor,
            max_snap_m=ctx.max_snap_m,
        ).matrix.tocsr()
        for k, i in enumerate(empty):
            lo, hi = d0.indptr[k], d0.indptr[k + 1]
            if hi > lo:
                j = int(np.argmin(d0.data[lo:hi]))
                station[i] = site_ids[open_idx[d0.indices[lo + j]]]
                walk_all[i] = d0.data[lo + j]
    within_limit = np.where(np.isnan(walk_all), False, walk_all <= ctx.max_walk_m + 1e-9)
    allocation = gpd.GeoDataFrame(
        {
            "households": hh,
            "station": station,
            "walk_m": walk_all,
            "within_limit": within_limit,
            "distance_method": method,
        },
        geometry=bld.geometry.to_numpy(),
        index=bld.index.copy(),
        crs=bld.crs,
    )

    # Stations.
    st = sites.iloc[open_idx].copy()
    cw = ctx.w[served]
    cj = assign[served]
    cwalk = walk[served]
    hh_served = np.bincount(cj, weights=cw, minlength=len(sites))[open_idx]
    b_served = np.bincount(cj, minlength=len(sites))[open_idx]
    wsum = np.bincount(cj, weights=cw * cwalk, minlength=len(sites))[open_idx]
    maxw = np.zeros(len(sites))
    np.maximum.at(maxw, cj, cwalk)
    st["households_served"] = hh_served.astype(np.int64)
    st["buildings_served"] = b_served.astype(np.int64)
    cap = st["capacity_households"].to_numpy(float)
    st["utilisation"] = np.where(cap > 0, hh_served / np.where(cap > 0, cap, 1), np.nan)
    st["mean_walk_m"] = np.where(
        hh_served > 0, wsum / np.where(hh_served > 0, hh_served, 1), np.nan
    )
    st["max_walk_m"] = np.where(b_served > 0, maxw[open_idx], np.nan)
    st = st[[*STATION_COLUMNS, "geometry"]]

    # Metrics.
    total = float(hh.sum())
    speed = walk_speed_m_per_min
    served_w = ctx.w[served]
    served_walk = walk[served]

    def share(limit_m: float) -> float:
        return float(served_w[served_walk <= limit_m + 1e-9].sum() / total) if total else 1.0

    beyond_mask = ~served | (walk > ctx.max_walk_m + 1e-9)
    unserved_hh = float(ctx.w[~served].sum())
    off_main = ctx.dist.origin_piece != 0 if ctx.dist.n_pieces else np.zeros(len(ctx.w), bool)
    metrics: dict[str, Any] = {
        "households": int(total),
        "buildings": n,
        "n_stations": len(open_idx),
        "n_candidates": int(ctx.n_candidates_given),
        "n_candidates_used": int((~sites["existing"]).sum()),
        "n_existing": int(sites["existing"].sum()),
        "mean_walk_m": float(np.average(served_walk, weights=served_w)) if served_w.sum() else 0.0,
        "p90_walk_m": _weighted_quantile(served_walk, served_w, 0.9),
        "max_walk_m": float(served_walk.max()) if len(served_walk) else 0.0,
        "walk_speed_m_per_min": float(speed),
        "share_within_5min": share(5 * speed),
        "share_within_10min": share(10 * speed),
        "share_within_15min": share(15 * speed),
        "max_walk_limit_m": float(ctx.max_walk_m),
        "households_beyond_max_walk": int(ctx.w[beyond_mask].sum()),
        "households_unserved": int(unserved_hh),
        "distance_method": ctx.dist.method,
        "detour_factor": ctx.dist.detour_factor,
        "network_pieces": int(ctx.dist.n_pieces),
        "households_off_main_network": int(ctx.w[off_main].sum()),
        # Per household: walks measured as straight line x detour (no street in reach,
        # or home and station on pieces of the network that do not meet).
        "households_straight_line": int(hh[method == "straight_line"].sum()),
        "buildings_off_network": int((ctx.dist.origin_piece < 0).sum()) if ctx.dist.n_pieces else 0,
        "sites_off_network": int((ctx.dist.site_piece < 0).sum()) if ctx.dist.n_pieces else 0,
    }
    if objective_kind == "median":
        metrics["household_walk_m_total"] = float(np.sum(served_w * served_walk))
    # The headline: the share within the plan's own limit, with the candidates alone and
    # with the proposed new sites.
    within_now = _households_within(ctx, assign, walk)
    metrics["share_within_limit"] = within_now / total if total else 1.0
    metrics["share_within_limit_existing"] = (
        (within_now if hh_within_existing is None else hh_within_existing) / total
        if total
        else 1.0
    )
    metrics["n_new_sites"] = int(sites["new_site"].iloc[open_idx].sum()) if len(open_idx) else 0
    metrics.update(grid_stats or {})

    # Uncovered buildings.
    unc_rows = clients[beyond_mask]
    reason = np.where(
        ~served[beyond_mask],
        "unserved: no station capacity left in reach",
        f"beyond max_walk_m ({ctx.max_walk_m:g} m)",
    )
    uncovered = gpd.GeoDataFrame(
        {
            "households": hh[unc_rows],
            "station": station[unc_rows],
            "walk_m": walk_all[unc_rows],
            "reason": reason,
        },
        geometry=bld.geometry.iloc[unc_rows].to_numpy(),
        index=bld.index[unc_rows],
        crs=bld.crs,
    )

    demand = float(ctx.w.sum())
    # The candidates' shortfall: proposed new sites are how to close it, not part of it.
    capacity = float(ctx.cap[~sites["new_site"].to_numpy(bool)].sum())
    short_hh = max(0.0, demand - capacity)
    shortfall = {
        "demand_households": demand,
        "capacity_households": capacity,
        "shortfall_households": short_hh,
        "shortfall_m2": short_hh * m2_per_100_households / 100.0,
        "households_unserved": unserved_hh,
    }
    plan = StationPlan(
        stations=st,
        allocation=allocation,
        metrics=metrics,
        uncovered=uncovered,
        shortfall=shortfall,
        status=status,
        objective=float(objective_value),
        bound=float(bound),
        runtime_s=runtime_s,
        objective_kind=objective_kind,
        distances=ctx.dist,
    )
    log.info("%s", plan.summary())
    return plan
