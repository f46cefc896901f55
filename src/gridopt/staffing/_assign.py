"""Assign the staff a street office has to its grids, communities and street committee.

One model per street office (street offices are independent; see
:mod:`gridopt.staffing._model`: min-cost flows and a HiGHS MIP). Grid
workers and information officers go to grids, mediators to communities or the
street mediation committee, party members to the grid party branch of the grid
they live in. Every rule the staff on hand cannot meet becomes a shortfall
row, never an exception; every input row comes back in ``assignments``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError
from gridopt._status import Status
from gridopt.crs import WorkingCRS, lonlat_points, reproject
from gridopt.network import walk_network, walking_distances
from gridopt.staffing._model import Street, solve_street
from gridopt.staffing._read import read_staff
from gridopt.staffing._rules import ROLES, StaffingRules

__all__ = ["StaffPlan", "assign_staff"]

log = logging.getLogger("gridopt")

_SHORTFALL_COLUMNS = [
    "role",
    "level",
    "unit",
    "community",
    "street",
    "households",
    "required",
    "assigned",
    "missing",
]


@dataclass(frozen=True)
class StaffPlan:
    """What :func:`assign_staff` returns.

    Attributes
    ----------
    assignments
        One row per input staff row (GeoDataFrame of home points): ``staff_id``,
        ``role``, ``level`` (``grid``/``community``/``street`` or None),
        ``grid_id``, ``community``, ``street``, ``post`` (the id of the unit),
        ``households`` (households a grid worker carries), ``travel_m``
        (straight line home to post), ``moved_from`` (previous post when it
        changed), ``reason`` (why a person has no post; None when posted).
    shortfall
        What the staff on hand cannot meet: ``role``, ``level``, ``unit``,
        ``community``, ``street``, ``households``, ``required``, ``assigned``,
        ``missing``.
    metrics
        Households per worker (mean, max, spread = max - min over grids),
        travel (mean, max), people moved, counts.
    status
        ``"optimal"`` when every street office's model was solved to
        optimality, ``"feasible"`` otherwise, ``"time_limit"`` when some model
        found no solution (then its staff are reported unassigned).
    objective, bound
        Total weighted penalty and the proven lower bound (sums over
        street offices, in penalty points; see :class:`StaffingRules`).
    runtime_s
        Wall-clock seconds.
    """

    assignments: gpd.GeoDataFrame
    shortfall: pd.DataFrame
    metrics: dict[str, Any]
    status: Status
    objective: float
    bound: float
    runtime_s: float
    per_street: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def gap(self) -> float:
        """Relative gap ``(objective - bound) / max(1, objective)``."""
        return (self.objective - self.bound) / max(1.0, abs(self.objective))

    def summary(self) -> str:
        """A few lines: status, staffing, shortfall, loads and travel."""
        a = self.assignments
        posted = a["post"].notna().sum()
        m = self.metrics
        lines = [
            f"Staff plan ({self.status}): {posted} of {len(a)} people posted, "
            f"objective {self.objective:,.0f}, bound {self.bound:,.0f} "
            f"(gap {100 * self.gap:.2f}%), {self.runtime_s:.1f} s",
        ]
        counts = a.groupby("role")["post"].agg(["count", "size"])
        for role, row in counts.iterrows():
            lines.append(f"  {role}: {row['count']} posted of {row['size']}")
        if len(self.shortfall):
            by = self.shortfall.groupby(["role", "level"])["missing"].agg(["sum", "size"])
            for (role, level), row in by.iterrows():
                lines.append(
                    f"  shortfall {role} at {row['size']} {level}(s): {row['sum']} missing"
                )
        else:
            lines.append("  no shortfall: the standard is met")
        lines.append(
            "  households per worker: mean {:.0f}, max {:.0f}; travel mean {:.0f} m, max {:.0f} m; "
            "{} moved".format(
                m.get("households_per_worker_mean", math.nan),
                m.get("households_per_worker_max", math.nan),
                m.get("travel_m_mean", math.nan),
                m.get("travel_m_max", math.nan),
                m.get("people_moved", 0),
            )
        )
        how = m.get("travel_method", "straight_line")
        if how == "straight_line":
            lines.append("  travel: straight line from home to the grid (no streets given)")
        else:
            lines.append(
                f"  travel: walked over the street network; {m.get('travel_pairs_straight_line', 0)} "
                "pair(s) off the network measured as straight line x detour"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------


def _grids_frame(grids: Any) -> gpd.GeoDataFrame:
    if hasattr(grids, "grids") and isinstance(grids.grids, gpd.GeoDataFrame):
        grids = grids.grids
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError(
            f"`grids` must be a Partition or a GeoDataFrame of grid polygons; got {type(grids).__name__}."
        )
    g = grids.copy()
    if "grid_id" not in g.columns:
        g["grid_id"] = g.index
    if "households" not in g.columns:
        raise InputError("`grids` has no `households` column; add the households of each grid.")
    hh = pd.to_numeric(g["households"], errors="coerce")
    bad = g.loc[hh.isna() | (hh < 0), "grid_id"].tolist()
    if bad:
        raise InputError(
            f"{len(bad)} grid(s) have missing or negative households (grid_id {bad[:10]}); "
            "give each grid a count >= 0."
        )
    g["households"] = np.round(hh).astype(np.int64)
    dup = g.loc[g["grid_id"].duplicated(), "grid_id"].tolist()
    if dup:
        raise InputError(f"`grids` repeats grid_id {dup[:10]}; grid ids must be unique.")
    empty = g.geometry.isna() | g.geometry.is_empty
    if empty.any():
        raise InputError(
            f"{int(empty.sum())} grid(s) have no geometry (grid_id {g.loc[empty, 'grid_id'].tolist()[:10]})."
        )
    if g.crs is None:
        raise InputError("`grids` has no CRS; set a metric CRS (e.g. gdf.set_crs(32651)).")
    if g.crs.is_geographic:
        g = WorkingCRS.choose(g, what="grids").to_working(g, what="grids", warn=True)
    for col, default in (("community", "community"), ("street", "street")):
        if col not in g.columns:
            g[col] = default
        g[col] = g[col].fillna(default).astype(str)
    g["grid_id"] = g["grid_id"].astype(str) if g["grid_id"].dtype == object else g["grid_id"]
    return g.reset_index(drop=True)


def _read_staff(staff: Any, crs: Any, area: Any = None) -> gpd.GeoDataFrame:
    if isinstance(staff, str | Path):
        # CSV (UTF-8/GBK), .xlsx or a point layer, Chinese or English headers and roles.
        staff = read_staff(staff, crs=crs, area=area)
    if not isinstance(staff, pd.DataFrame):
        raise InputError(
            f"`staff` must be a GeoDataFrame, DataFrame with x/y or a file path; got {type(staff).__name__}."
        )
    if isinstance(staff, gpd.GeoDataFrame) and staff.geometry.name in staff.columns:
        s = staff.copy()
        if s.crs is None:
            s = s.set_crs(crs)
        else:
            s = reproject(s, crs, what="staff")
        geom = s.geometry
        if len(s) and not geom.isna().all():
            kinds = set(geom.dropna().geom_type)
            if kinds - {"Point"}:
                s = s.set_geometry(geom.representative_point())
    else:
        s = staff.copy()
        if len(s) and not {"x", "y"} <= set(s.columns):
            raise InputError(
                "`staff` has no geometry and no `x`/`y` columns; give each person's home location "
                "(coordinates in the grids' CRS)."
            )
        x = pd.to_numeric(s.get("x", pd.Series(dtype=float)), errors="coerce")
        y = pd.to_numeric(s.get("y", pd.Series(dtype=float)), errors="coerce")
        s = gpd.GeoDataFrame(s, geometry=gpd.points_from_xy(x, y), crs=crs)
    for col in ("staff_id", "role"):
        if len(s) and col not in s.columns:
            raise InputError(f"`staff` has no `{col}` column.")
    if not len(s):
        s = gpd.GeoDataFrame(
            {"staff_id": pd.Series(dtype=object), "role": pd.Series(dtype=object)},
            geometry=gpd.GeoSeries([], crs=crs),
        )
    dup = s.loc[s["staff_id"].duplicated(), "staff_id"].tolist()
    if dup:
        raise InputError(f"`staff` repeats staff_id {dup[:10]}; every person needs a unique id.")
    s["role"] = s["role"].astype(str).str.strip().str.lower()
    unknown = s.loc[~s["role"].isin(ROLES)]
    if len(unknown):
        raise InputError(
            f"{len(unknown)} staff row(s) have unknown roles {sorted(set(unknown['role']))} "
            f"(staff_id {unknown['staff_id'].tolist()[:10]}); known roles: {', '.join(ROLES)}."
        )
    nowhere = s.geometry.isna() | s.geometry.is_empty
    if len(s):
        nowhere |= ~np.isfinite(s.geometry.x.fillna(np.nan).to_numpy(dtype=float))
    if nowhere.any():
        raise InputError(
            f"{int(nowhere.sum())} staff row(s) have no home location (staff_id "
            f"{s.loc[nowhere, 'staff_id'].tolist()[:10]}); give x/y or a point geometry."
        )
    defaults = {
        "full_time": True,
        "max_households": np.nan,
        "max_grids": 1,
        "qualifications": "",
        "current_post": None,
        "unavailable": False,
    }
    for col, default in defaults.items():
        if col not in s.columns:
            s[col] = default
    s["full_time"] = s["full_time"].fillna(True).astype(bool)
    s["unavailable"] = s["unavailable"].fillna(False).astype(bool)
    s["max_households"] = pd.to_numeric(s["max_households"], errors="coerce")
    mg = pd.to_numeric(s["max_grids"], errors="coerce").fillna(1)
    if (mg < 1).any() or (s["max_households"] <= 0).any():
        bad = s.loc[(mg < 1) | (s["max_households"] <= 0), "staff_id"].tolist()
        raise InputError(
            f"staff_id {bad[:10]}: max_grids must be >= 1 and max_households > 0 (leave empty for the default)."
        )
    s["max_grids"] = mg.astype(int)
    s["qualifications"] = s["qualifications"].fillna("").astype(str)
    s["current_post"] = s["current_post"].map(lambda v: None if pd.isna(v) else str(v))
    return s.reset_index(drop=True)


def _shortfall(st: Street, res: dict[str, Any], people: pd.DataFrame, rules: StaffingRules) -> list:
    """Shortfall rows from the posts of a solution (head counts, not slack values)."""
    g = st.grids
    G = len(g)
    hh = g["households"].to_numpy(np.int64)
    hpw = int(rules.households_per_worker)
    nworkers = np.zeros(G, dtype=int)
    carried = np.zeros(G, dtype=np.int64)
    nofficers = np.zeros(G, dtype=int)
    nunit = np.zeros(len(res["units"]), dtype=int)
    for row_id, p in res["posts"].items():
        if p["level"] != "grid":
            nunit[p["unit"]] += 1
            continue
        for gi, carry in zip(p["grids"], p["carry"], strict=True):
            if people.at[row_id, "role"] == "grid_worker":
                nworkers[gi] += 1
                carried[gi] += carry
            else:
                nofficers[gi] += 1
    out = []
    min_w = int(rules.min_workers_per_grid)
    lo = res["lo"]
    for gi in range(G):
        comm = g.at[gi, "community"]
        missing = max(min_w - nworkers[gi], math.ceil(max(0, hh[gi] - carried[gi]) / hpw))
        if missing > 0:
            need = max(min_w, math.ceil(hh[gi] / hpw))
            out.append(
                (
                    "grid_worker",
                    "grid",
                    g.at[gi, "grid_id"],
                    comm,
                    st.name,
                    int(hh[gi]),
                    need,
                    int(nworkers[gi]),
                    int(missing),
                )
            )
        if nofficers[gi] < lo[gi]:
            out.append(
                (
                    "info_officer",
                    "grid",
                    g.at[gi, "grid_id"],
                    comm,
                    st.name,
                    int(hh[gi]),
                    int(lo[gi]),
                    int(nofficers[gi]),
                    int(lo[gi] - nofficers[gi]),
                )
            )
    for ui, unit in enumerate(res["units"]):
        need = res["need"][ui]
        if nunit[ui] < need:
            if unit is None:
                row = ("mediator", "street", st.name, None, st.name, int(hh.sum()))
            else:
                row = (
                    "mediator",
                    "community",
                    unit,
                    unit,
                    st.name,
                    int(g.loc[g["community"] == unit, "households"].sum()),
                )
            out.append((*row, int(need), int(nunit[ui]), int(need - nunit[ui])))
    return out


# --------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------


#: walks longer than this are not searched on the network (straight line x detour instead)
WALK_CUTOFF_M = 5_000.0


@dataclass(frozen=True)
class _WalkTravel:
    """Walking metres from every person's home to every grid, for the staffing models."""

    matrix: Any  # csr (people x grids): metres within WALK_CUTOFF_M, 1 mm for a true 0
    homes: np.ndarray  # shapely points, by person position
    grids: np.ndarray  # shapely polygons, by grid position
    detour_factor: float
    method: str
    fallback_pairs: int

    @classmethod
    def build(cls, people: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, streets: Any) -> _WalkTravel:
        import networkx as nx


        graph = streets if isinstance(streets, nx.Graph) else walk_network(streets, crs=grids.crs)
        wd = walking_distances(graph, people.geometry, grids.geometry, max_walk_m=WALK_CUTOFF_M)
        return cls(
            matrix=wd.matrix.tocsr(),
            homes=people.geometry.to_numpy(),
            grids=grids.geometry.to_numpy(),
            detour_factor=wd.detour_factor,
            method=wd.method,
            fallback_pairs=int(wd.fallback.nnz),
        )

    def metres(self, people: np.ndarray, grids: np.ndarray) -> np.ndarray:
        """Walking metres of each (person position, grid position) pair."""
        people = np.asarray(people, dtype=np.int64)
        grids = np.asarray(grids, dtype=np.int64)
        out = np.asarray(self.matrix[people, grids], dtype=float).ravel()
        beyond = out == 0  # not stored: beyond the cutoff (a true 0 is stored as 1 mm)
        if beyond.any():
            straight = shapely.distance(self.homes[people[beyond]], self.grids[grids[beyond]])
            out[beyond] = np.maximum(straight * self.detour_factor, WALK_CUTOFF_M)
        return np.where(out <= 0.001, 0.0, out)

    def for_grids(self, positions: np.ndarray) -> Any:
        """``travel(people, local grid positions)`` for one street office's grids."""
        positions = np.asarray(positions, dtype=np.int64)
        return lambda people, local: self.metres(people, positions[np.asarray(local)])

    def nearest_grid(self, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each person's nearest grid on foot and its metres (-1 where none is in reach)."""
        grid = np.full(len(people), -1, dtype=np.int64)
        metres = np.full(len(people), np.nan)
        for t, i in enumerate(np.asarray(people, dtype=np.int64)):
            a, b = self.matrix.indptr[i], self.matrix.indptr[i + 1]
            if b > a:
                k = a + int(np.argmin(self.matrix.data[a:b]))
                grid[t], metres[t] = self.matrix.indices[k], float(self.matrix.data[k])
        return grid, metres


def assign_staff(
    grids: Any,
    staff: Any,
    *,
    rules: StaffingRules | None = None,
    streets: gpd.GeoDataFrame | None = None,
    time_limit_s: float = 60.0,
    seed: int = 0,
    method: str = "flow",
) -> StaffPlan:
    """Post grid workers, information officers, mediators and party members.

    Parameters
    ----------
    grids
        A :class:`~gridopt.partition.Partition` (its ``.grids``) or a
        GeoDataFrame of grid polygons in a metric CRS with ``grid_id`` (else
        the index), ``households`` and optionally ``community`` and ``street``
        (street office; all grids form one street office when absent).
    staff
        GeoDataFrame of home points, or a DataFrame / CSV path with ``x``/``y``
        in the grids' CRS. Columns: ``staff_id``, ``role`` (grid_worker,
        info_officer, mediator, party_member), optional ``full_time``,
        ``max_households``, ``max_grids``, ``qualifications`` (separated by
        ``;`` or ``,``), ``current_post`` (grid id, community or street),
        ``unavailable``. An empty table is allowed: everything is shortfall.
    rules
        The staffing standard (default :class:`StaffingRules`, Dalian).
    streets
        Street lines (GeoDataFrame, or a graph from :func:`gridopt.walk_network`):
        travel is then the walk from home over the network to the grid (0 m for a
        home inside it; to a community: to the nearest of its grids), and a party
        member living outside every grid joins the grid nearest on foot. Pairs
        further than :data:`WALK_CUTOFF_M` on foot, or off the network, are measured
        as the straight line times the detour factor (1.3), and
        ``metrics["travel_pairs_straight_line"]`` counts them. Without streets,
        travel is the straight line from home to the grid.
    time_limit_s
        Wall-clock safety cap shared by the street offices (in proportion to
        size). The grid-worker MIP stops at a node budget set by the office's
        size, so the plan does not depend on the machine's load; a model that
        reaches the cap first is reported with status ``"time_limit"``.
    seed
        Accepted for symmetry with the other stages; the flows and HiGHS are
        deterministic, so the same input always gives the same plan.
    method
        ``"flow"`` (default): min-cost flows, then a MIP for the grid workers
        only where their capacities differ. ``"mip"``: the same model, every
        role as one plain HiGHS MIP: the reference ``gridopt bench staffing``
        measures the flows against.

    Returns
    -------
    StaffPlan

    Raises
    ------
    InputError
        Unknown roles, duplicate staff or grid ids, staff without a home
        location, grids without households or geometry, bad capacities.

    Notes
    -----
    Hard rules: one primary post per person (``max_grids`` > 1 lets a grid
    worker cover several grids, sharing their capacity); capacities (a grid's
    workers carry at most their ``max_households`` each, default 200 full-time
    and 100 part-time); qualifications (mediators need
    ``rules.mediator_qualification``); at most ``floor(h / 50)`` officers per
    grid. A grid without its dedicated worker is the costliest shortfall.
    Soft: households per worker (the 1 per 200 standard), officers per
    households, mediators per community and street, travel, moves, balance.
    Party members join the party branch of the grid containing their home
    (else the nearest grid). Unavailable people and mediators without the
    qualification come back unposted with the reason.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> from gridopt.staffing import assign_staff, synthetic_staff
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_id": ["g1", "g2"], "households": [250, 180], "community": ["c1", "c1"]},
    ...     geometry=[box(0, 0, 200, 200), box(200, 0, 400, 200)], crs=32651)
    >>> plan = assign_staff(grids, synthetic_staff(grids, seed=1), time_limit_s=10)
    >>> plan.status
    'optimal'
    """
    t0 = time.perf_counter()
    rules = rules if rules is not None else StaffingRules()
    if not isinstance(rules, StaffingRules):
        raise InputError(f"`rules` must be a StaffingRules; got {type(rules).__name__}.")
    if not (time_limit_s > 0):
        raise InputError(f"`time_limit_s` must be > 0; got {time_limit_s}.")
    if method not in ("flow", "mip"):
        raise InputError(f"`method` must be 'flow' or 'mip'; got {method!r}.")
    g = _grids_frame(grids)
    if not len(g):
        raise InputError("`grids` is empty; there is nothing to staff.")
    s = lonlat_points(_read_staff(staff, g.crs, g), near=g, what="staff")
    walk = _WalkTravel.build(s, g, streets) if streets is not None else None

    # Home grid of everyone (containing polygon, else nearest).
    home_grid = np.full(len(s), -1, dtype=np.int64)
    home_dist = np.zeros(len(s))
    if len(s):
        tree = g.sindex
        inp, ing = tree.query(s.geometry, predicate="within")
        home_grid[inp] = ing
        rest = np.flatnonzero(home_grid < 0)
        if rest.size:
            ip, ig = tree.nearest(s.geometry.iloc[rest], return_all=False)
            home_grid[rest[ip]] = ig
            home_dist[rest[ip]] = shapely.distance(
                s.geometry.iloc[rest[ip]].to_numpy(), g.geometry.iloc[ig].to_numpy()
            )
    if walk is not None:
        # outside every grid: the branch of the grid nearest on foot (where one is in reach)
        rest = np.flatnonzero(home_dist > 0)
        near_grid, near_m = walk.nearest_grid(rest)
        found = near_grid >= 0
        home_grid[rest[found]] = near_grid[found]
        home_dist[rest[found]] = near_m[found]
    s["_home_grid"] = home_grid
    # A person belongs to the street office of their current post if it is
    # one; else of their home. This keeps the street models independent.
    grid_street = dict(zip(g["grid_id"].astype(str), g["street"], strict=True))
    comm_street = g.groupby("community")["street"].first().to_dict()
    street_names = set(g["street"])

    def street_of(i: int) -> str:
        cur = s.at[i, "current_post"]
        if cur is not None:
            if cur in grid_street:
                return grid_street[cur]
            if cur in comm_street:
                return comm_street[cur]
            if cur in street_names:
                return cur
        return g.at[int(home_grid[i]), "street"]

    s["_street"] = [street_of(i) for i in range(len(s))]

    reason = pd.Series([None] * len(s), index=s.index, dtype=object)
    reason[s["unavailable"]] = "unavailable"
    if rules.mediator_qualification:
        q = rules.mediator_qualification.lower()
        quals = s["qualifications"].str.lower().str.replace(",", ";").str.split(";")
        has = quals.map(lambda items: q in [t.strip() for t in items])
        lacks = (s["role"] == "mediator") & ~has & reason.isna()
        reason[lacks] = f"lacks qualification {rules.mediator_qualification}"
    solvable = s[(s["role"] != "party_member") & reason.isna()]

    sizes = g.groupby("street").size().to_dict()
    people_by = solvable.groupby("_street").size().to_dict()
    weight = {k: sizes[k] + people_by.get(k, 0) for k in sizes}
    total_w = sum(weight.values())
    results = {}
    for name in sorted(sizes):
        sg = g[g["street"] == name].reset_index(drop=True)
        comms = sorted(set(sg["community"]))
        cgeom = {
            c: shapely.union_all(sg.loc[sg["community"] == c].geometry.to_numpy()) for c in comms
        }
        travel = None
        if walk is not None:
            travel = walk.for_grids(np.flatnonzero(g["street"].to_numpy() == name))
        st = Street(name, sg, comms, cgeom, shapely.union_all(list(cgeom.values())), travel)
        share = time_limit_s * weight[name] / total_w
        remaining = time_limit_s - (time.perf_counter() - t0)
        res = solve_street(
            st,
            solvable[solvable["_street"] == name],
            rules,
            time_limit_s=max(0.1, min(share, remaining)),
            seed=seed,
            plain_mip=method == "mip",
        )
        results[name] = (st, res)

    # ---- assemble the assignment table -------------------------------------------
    rows = []
    for i, person in s.iterrows():
        row = {
            "staff_id": person["staff_id"],
            "role": person["role"],
            "level": None,
            "grid_id": None,
            "community": None,
            "street": person["_street"],
            "post": None,
            "households": None,
            "travel_m": None,
            "moved_from": None,
            "also_covers": None,
            "reason": reason[i],
        }
        if person["role"] == "party_member" and reason[i] is None:
            hg = int(person["_home_grid"])
            row.update(
                level="grid",
                grid_id=g.at[hg, "grid_id"],
                community=g.at[hg, "community"],
                street=g.at[hg, "street"],
                post=g.at[hg, "grid_id"],
                travel_m=float(home_dist[i]),
            )
        elif reason[i] is None:
            st, res = results[person["_street"]]
            p = res["posts"].get(i)
            if p is None:
                row["reason"] = (
                    "no solution within the time limit"
                    if res["status"] == "time_limit"
                    else "surplus: every post in reach is staffed to the standard"
                )
            elif p["level"] == "grid":
                gi = p["grids"][int(np.argmax([c or 0 for c in p["carry"]]))]
                row.update(
                    level="grid",
                    grid_id=st.grids.at[gi, "grid_id"],
                    community=st.grids.at[gi, "community"],
                    post=st.grids.at[gi, "grid_id"],
                    travel_m=float(res["travel"][i, gi]),
                )
                if person["role"] == "grid_worker":
                    row["households"] = int(sum(p["carry"]))
                    if len(p["grids"]) > 1:
                        row["also_covers"] = ";".join(
                            str(st.grids.at[o, "grid_id"]) for o in p["grids"] if o != gi
                        )
            else:
                unit = res["units"][p["unit"]]
                row.update(
                    level=p["level"],
                    community=unit,
                    post=st.name if unit is None else unit,
                    travel_m=float(res["travel"][i, ("u", p["unit"])]),
                )
        cur = person["current_post"]
        if cur is not None and row["post"] is not None and str(row["post"]) != cur:
            row["moved_from"] = cur
        elif cur is not None and row["post"] is None:
            row["moved_from"] = cur
        rows.append(row)
    columns = [
        "staff_id",
        "role",
        "level",
        "grid_id",
        "community",
        "street",
        "post",
        "households",
        "travel_m",
        "moved_from",
        "also_covers",
        "reason",
    ]
    assignments = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=columns),
        geometry=gpd.GeoSeries(s.geometry.to_numpy(), crs=g.crs),
        crs=g.crs,
    )
    # Who is who, as the office's list names them (姓名, 岗位 as written).
    for pos, col in enumerate([c for c in ("name", "role_label") if c in s.columns]):
        assignments.insert(1 + pos, col, s[col].to_numpy())

    short = [r for st, res in results.values() for r in _shortfall(st, res, s, rules)]
    shortfall = pd.DataFrame(short, columns=_SHORTFALL_COLUMNS)

    statuses = [res["status"] for _, res in results.values()]
    if all(x == "optimal" for x in statuses):
        status = "optimal"
    elif "time_limit" in statuses:
        status = "time_limit"
    else:
        status = "feasible"
    objective = float(np.nansum([res["objective"] for _, res in results.values()]))
    bound = float(sum(res["bound"] for _, res in results.values()))
    per_street = pd.DataFrame(
        [
            {
                "street": k,
                "grids": len(st.grids),
                "people": int(people_by.get(k, 0)),
                "variables": res["variables"],
                "status": res["status"],
                "objective": res["objective"],
                "bound": res["bound"],
                "seconds": res["seconds"],
            }
            for k, (st, res) in results.items()
        ]
    )
    metrics = _metrics(g, assignments, shortfall)
    metrics["travel_method"] = walk.method if walk is not None else "straight_line"
    if walk is not None:
        metrics["travel_pairs_straight_line"] = walk.fallback_pairs
    return StaffPlan(
        assignments=assignments,
        shortfall=shortfall,
        metrics=metrics,
        status=status,
        objective=objective,
        bound=min(bound, objective),
        runtime_s=time.perf_counter() - t0,
        per_street=per_street,
    )


def _metrics(g: gpd.GeoDataFrame, a: gpd.GeoDataFrame, shortfall: pd.DataFrame) -> dict[str, Any]:
    workers = a[(a["role"] == "grid_worker") & a["grid_id"].notna()]
    n = workers.groupby("grid_id").size()
    hh = g.set_index("grid_id")["households"]
    staffed = hh.loc[hh.index.isin(n.index)]
    per = staffed / n.reindex(staffed.index)
    posted = a[a["post"].notna() & (a["role"] != "party_member")]
    travel = pd.to_numeric(posted["travel_m"], errors="coerce")
    out: dict[str, Any] = {
        "grids": len(g),
        "households": int(g["households"].sum()),
        "staff": len(a),
        "posted": int(a["post"].notna().sum()),
        "unposted": int(a["post"].isna().sum()),
        "grids_without_worker": int(len(g) - len(staffed)),
        "households_per_worker_mean": float(per.mean()) if len(per) else math.nan,
        "households_per_worker_max": float(per.max()) if len(per) else math.nan,
        "households_per_worker_spread": float(per.max() - per.min()) if len(per) else math.nan,
        "travel_m_mean": float(travel.mean()) if len(travel) else math.nan,
        "travel_m_max": float(travel.max()) if len(travel) else math.nan,
        "people_moved": int(a["moved_from"].notna().sum()),
    }
    for role in ("grid_worker", "info_officer", "mediator"):
        out[f"missing_{role}"] = int(shortfall.loc[shortfall["role"] == role, "missing"].sum())
    return out
