"""A plausible staff table for a set of grids (real staff lists are private)."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridopt._errors import InputError
from gridopt.staffing._rules import StaffingRules

__all__ = ["synthetic_staff"]


def synthetic_staff(
    grids: Any,
    *,
    seed: int = 0,
    coverage: float = 1.0,
    rules: StaffingRules | None = None,
    officers_per_household: float = 1 / 75,
    party_members_per_household: float = 0.02,
    home_spread_m: float = 400.0,
    current_post_share: float = 0.7,
    unavailable_share: float = 0.02,
) -> gpd.GeoDataFrame:
    """Staff in the standard's proportions (times ``coverage``) living near the grids.

    Parameters
    ----------
    grids
        A Partition or GeoDataFrame with ``grid_id`` (else the index),
        ``households``, optional ``community``/``street``, metric CRS.
    seed
        Seed of every random draw.
    coverage
        Share of the standard's head count on hand (1.0: exactly enough grid
        workers, 0.5: half of them).
    rules
        Standard to follow (default Dalian's).
    officers_per_household
        Information officers per household (default 1 per 75, inside 50-100).
    party_members_per_household
        In-service party members per household.
    home_spread_m
        Standard deviation of the distance of a home from its grid's centre.
    current_post_share
        Share of grid workers, officers and mediators who already hold a post.
    unavailable_share
        Share marked unavailable (leave, illness).

    Returns
    -------
    geopandas.GeoDataFrame
        Points (homes) with ``staff_id``, ``role``, ``full_time``,
        ``max_households``, ``max_grids``, ``qualifications``,
        ``current_post``, ``unavailable``, ``x``, ``y``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"grid_id": [1], "households": [250]},
    ...                          geometry=[box(0, 0, 100, 100)], crs=32651)
    >>> int(synthetic_staff(grids, seed=0)["role"].value_counts()["grid_worker"])
    2
    """
    if hasattr(grids, "grids") and isinstance(grids.grids, gpd.GeoDataFrame):
        grids = grids.grids
    if not isinstance(grids, gpd.GeoDataFrame) or "households" not in grids.columns:
        raise InputError("`grids` must be a GeoDataFrame with a `households` column.")
    if not (coverage >= 0 and math.isfinite(coverage)):
        raise InputError(f"`coverage` must be >= 0; got {coverage!r}.")
    rules = rules or StaffingRules()
    rng = np.random.default_rng(seed)
    g = grids.reset_index(drop=False)
    gid = g["grid_id"] if "grid_id" in g.columns else g.iloc[:, 0]
    community = (
        g["community"].astype(str)
        if "community" in g.columns
        else pd.Series("community", index=g.index)
    )
    street = (
        g["street"].astype(str) if "street" in g.columns else pd.Series("street", index=g.index)
    )
    hh = g["households"].to_numpy(dtype=float)
    cent = g.geometry.centroid
    cx, cy = cent.x.to_numpy(), cent.y.to_numpy()

    def draw(expected: np.ndarray) -> np.ndarray:
        # Integer counts with the right expectation: floor plus a Bernoulli remainder.
        base = np.floor(expected)
        return (base + (rng.random(expected.size) < expected - base)).astype(int)

    need_workers = np.maximum(rules.min_workers_per_grid, np.ceil(hh / rules.households_per_worker))
    plan = [
        ("grid_worker", draw(coverage * need_workers)),
        ("info_officer", draw(coverage * hh * officers_per_household)),
        ("party_member", draw(hh * party_members_per_household)),
    ]
    records = []
    for role, counts in plan:
        for gi in np.repeat(np.arange(len(g)), counts):
            records.append((role, gi, str(gid.iloc[gi])))
    # Mediators: per community and per street, at the community's first grid.
    for _level, names, need in (
        ("community", community, rules.mediators_per_community),
        ("street", street, rules.mediators_per_street),
    ):
        for name in sorted(set(names)):
            first = int(np.flatnonzero(names.to_numpy() == name)[0])
            for _ in range(int(draw(np.array([coverage * need]))[0])):
                records.append(("mediator", first, name))
    n = len(records)
    roles = np.array([r[0] for r in records], dtype=object)
    at = np.array([r[1] for r in records], dtype=int)
    post = np.array([r[2] for r in records], dtype=object)
    angle = rng.random(n) * 2 * np.pi
    radius = np.abs(rng.normal(0, home_spread_m, n))
    x = cx[at] + radius * np.cos(angle) if n else np.array([])
    y = cy[at] + radius * np.sin(angle) if n else np.array([])
    full_time = np.where(roles == "info_officer", rng.random(n) < 0.2, rng.random(n) < 0.9)
    quals = np.where(
        (roles == "mediator") & (rng.random(n) < 0.9),
        rules.mediator_qualification or "",
        "",
    )
    holds = (roles != "party_member") & (rng.random(n) < current_post_share)
    out = gpd.GeoDataFrame(
        {
            "staff_id": [f"S{k:05d}" for k in range(n)],
            "role": roles,
            "full_time": full_time,
            "max_households": np.nan,
            "max_grids": 1,
            "qualifications": quals,
            "current_post": np.where(holds, post, None),
            "unavailable": rng.random(n) < unavailable_share,
            "x": x,
            "y": y,
        },
        geometry=gpd.points_from_xy(x, y),
        crs=grids.crs,
    )
    return out
