"""Household estimates per building: footprint x storeys x residential share / m² per household.

The rule chain, first match wins, recorded per building in ``households_source``:

``given``
    a households column was supplied (validated, never changed).
``non_residential``
    the building type is a school, hospital, shop, office, industry, religious,
    public or ancillary building: 0 households, marked as a candidate for an
    exclusive grid and/or a service-station site.
``too_small``
    a residential footprint below ``min_footprint_m2`` (sheds, kiosks, garages
    without a tag): 0 households.
``floors_x_area``
    storeys from a floors column.
``height_x_area``
    storeys = height / ``storey_height_m``.
``default_storeys_by_type``
    storeys from :data:`DEFAULT_STOREYS` by building tag.

Defaults and their sources
--------------------------
``m2_per_household = 100``
    China's 2020 census: about 38-42 m² of housing floor area per urban
    resident and 2.62 persons per household, so about 100 m² of gross floor
    area per household.
``storey_height_m = 3.0``
    typical storey height of Chinese residential buildings (GB 50096 allows
    2.8 m and more; 3.0 m includes the slab).
``residential_share = 1.0``
    share of a residential building's floor area that is housing; lower it for
    mixed-use stock (shops on the ground floor).
``min_footprint_m2 = 30``
    below a small flat's footprint a tagless building is not a dwelling.
:data:`DEFAULT_STOREYS`
    by OSM building tag, from the typical urban stock: walk-up slabs of 6
    storeys (the limit without a lift in the residential code), houses of 2.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from gridopt._errors import InputError

__all__ = [
    "DEFAULT_STOREYS",
    "NON_RESIDENTIAL",
    "estimate_households",
    "household_summary",
]

log = logging.getLogger("gridopt")

#: Storeys assumed when neither floors nor height are known, by building tag.
DEFAULT_STOREYS: dict[str, float] = {
    "apartments": 6.0,
    "residential": 3.0,
    "dormitory": 5.0,
    "terrace": 2.0,
    "house": 2.0,
    "detached": 2.0,
    "semidetached_house": 2.0,
    "bungalow": 1.0,
    "farm": 2.0,
    "yes": 2.0,
}

#: Non-residential building tags by category: category -> (tags, exclusive grid?, station site?).
NON_RESIDENTIAL: dict[str, tuple[frozenset[str], bool, bool]] = {
    "school": (
        frozenset({"school", "kindergarten", "university", "college", "education"}),
        True,
        True,
    ),
    "hospital": (frozenset({"hospital", "clinic", "healthcare", "doctors"}), True, True),
    "commercial": (
        frozenset(
            {"retail", "commercial", "supermarket", "shop", "mall", "hotel", "kiosk", "market"}
        ),
        True,
        True,
    ),
    "office": (frozenset({"office", "government", "townhall", "bank"}), False, True),
    "public": (
        frozenset(
            {
                "public",
                "civic",
                "community_centre",
                "library",
                "social_facility",
                "police",
                "fire_station",
                "post_office",
                "sports_centre",
                "sports_hall",
            }
        ),
        False,
        True,
    ),
    "religious": (
        frozenset({"church", "chapel", "cathedral", "mosque", "temple", "shrine", "religious", "place_of_worship"}),
        False,
        False,
    ),
    "industrial": (
        frozenset({"industrial", "warehouse", "factory", "manufacture", "hangar", "storage_tank"}),
        False,
        False,
    ),
    "ancillary": (
        frozenset(
            {
                "garage",
                "garages",
                "shed",
                "roof",
                "carport",
                "service",
                "parking",
                "hut",
                "cabin",
                "greenhouse",
                "barn",
                "stable",
                "toilets",
                "transformer_tower",
                "construction",
                "ruins",
                "bunker",
                "train_station",
                "transportation",
            }
        ),
        False,
        False,
    ),
}

_TAG_CATEGORY = {tag: cat for cat, (tags, _, _) in NON_RESIDENTIAL.items() for tag in tags}


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    households: str | None = None,
    floors: str | None = None,
    height: str | None = None,
    building_type: str | None = None,
    m2_per_household: float = 100.0,
    storey_height_m: float = 3.0,
    residential_share: float = 1.0,
    min_footprint_m2: float = 30.0,
    default_storeys: Mapping[str, float] | None = None,
    unknown_storeys: float = 2.0,
) -> gpd.GeoDataFrame:
    """Estimate households per building and mark non-residential sites.

    Parameters
    ----------
    buildings
        Building footprints in a projected metric CRS (see :func:`gridopt.read_buildings`).
    households
        Column with known household counts; used as given (``households_source="given"``).
    floors, height, building_type
        Columns holding storeys, height in metres and the building tag. When
        omitted, the columns ``floors``/``height``/``building_type`` are used if present.
    m2_per_household
        Gross floor area per household, m² (default 100: 2020 census figures).
    storey_height_m
        Metres per storey when storeys come from height.
    residential_share
        Share of the floor area of a residential building that is housing.
    min_footprint_m2
        Residential footprints below this are not dwellings (0 households, ``too_small``).
    default_storeys
        Storeys by building tag when neither floors nor height are known;
        merged over :data:`DEFAULT_STOREYS`.
    unknown_storeys
        Storeys for a residential tag missing from ``default_storeys``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``buildings`` with ``households`` (int), ``households_source``,
        ``building_type``, ``category``, ``storeys``, ``footprint_m2``,
        ``floor_area_m2``, ``non_residential``, ``exclusive_candidate`` and
        ``station_candidate``.

    Raises
    ------
    InputError
        Geographic CRS, non-positive parameters, a named column that does not
        exist, or NaN/negative values in a given households column.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"floors": [6, None], "building_type": ["apartments", "school"]},
    ...                      geometry=[box(0, 0, 50, 12), box(100, 0, 160, 40)], crs=32651)
    >>> out = estimate_households(b)
    >>> out[["households", "households_source"]].values.tolist()
    [[36, 'floors_x_area'], [0, 'non_residential']]
    """
    _check_positive(
        m2_per_household=m2_per_household,
        storey_height_m=storey_height_m,
        residential_share=residential_share,
        unknown_storeys=unknown_storeys,
    )
    if min_footprint_m2 < 0:
        raise InputError(f"min_footprint_m2 must be >= 0, got {min_footprint_m2}")
    if buildings.crs is None or buildings.crs.is_geographic:
        raise InputError(
            f"buildings have CRS {buildings.crs}; estimate_households needs a projected metric "
            "CRS to measure areas. Use gridopt.read_buildings (it reprojects) or .to_crs()."
        )
    storeys_by_type = {**DEFAULT_STOREYS, **(default_storeys or {})}
    out = buildings.copy()
    floors = _column(out, floors, "floors")
    height = _column(out, height, "height")
    btype = _column(out, building_type, "building_type")
    households = _column(out, households, None) if households is not None else None

    n = len(out)
    types = (
        out[btype].fillna("yes").astype(str).str.strip().str.lower()
        if btype
        else pd.Series("yes", index=out.index)
    )
    category = types.map(_TAG_CATEGORY).fillna("residential")
    footprint = out.geometry.area.to_numpy()

    storeys = np.full(n, np.nan)
    source = np.full(n, "default_storeys_by_type", dtype=object)
    if height:
        h = pd.to_numeric(out[height], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(h) & (h > 0)
        storeys[ok] = np.maximum(1.0, np.round(h[ok] / storey_height_m))
        source[ok] = "height_x_area"
    if floors:
        f = pd.to_numeric(out[floors], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(f) & (f > 0)
        storeys[ok] = f[ok]
        source[ok] = "floors_x_area"
    missing = ~np.isfinite(storeys)
    storeys[missing] = types[missing].map(storeys_by_type).fillna(unknown_storeys).to_numpy()

    floor_area = footprint * storeys
    estimate = np.floor(floor_area * residential_share / m2_per_household + 0.5)
    non_res = (category != "residential").to_numpy()
    too_small = ~non_res & (footprint < min_footprint_m2)
    # A dwelling above the size threshold holds at least one household.
    estimate = np.where(non_res | too_small, 0, np.maximum(estimate, 1))
    source[non_res] = "non_residential"
    source[too_small] = "too_small"

    if households:
        given = _given_households(out, households)
        estimate = given
        source[:] = "given"

    cat = category.to_numpy()
    excl = np.array([NON_RESIDENTIAL.get(c, (None, False, False))[1] for c in cat], dtype=bool)
    station = np.array([NON_RESIDENTIAL.get(c, (None, False, False))[2] for c in cat], dtype=bool)

    out["households"] = estimate.astype(np.int64)
    out["households_source"] = source.astype(str)
    out["building_type"] = types.to_numpy()
    out["category"] = cat
    out["storeys"] = storeys
    out["footprint_m2"] = footprint
    out["floor_area_m2"] = floor_area
    out["non_residential"] = non_res
    out["exclusive_candidate"] = excl
    out["station_candidate"] = station
    counts = pd.Series(source).value_counts().to_dict()
    log.info("household estimate: %d households in %d buildings; rules used %s",
             int(out["households"].sum()), n, counts)
    return out


def household_summary(buildings: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per household rule: buildings, households, floor area; plus a total row.

    Examples
    --------
    >>> import gridopt
    >>> b = gridopt.read_buildings(gridopt.datasets.suzhou_buildings())
    >>> s = household_summary(b)
    >>> int(s.loc["total", "buildings"])
    3076
    """
    for col in ("households", "households_source"):
        if col not in buildings.columns:
            raise InputError(f"household_summary needs a {col!r} column; run estimate_households first")
    g = buildings.groupby("households_source")
    table = pd.DataFrame(
        {
            "buildings": g.size(),
            "households": g["households"].sum(),
            "floor_area_m2": g["floor_area_m2"].sum().round(0)
            if "floor_area_m2" in buildings
            else np.nan,
        }
    )
    table.loc["total"] = table.sum(numeric_only=True)
    return table.astype({"buildings": int, "households": int})


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{name} must be a positive number, got {value!r}")


def _column(frame: pd.DataFrame, name: str | None, default: str | None) -> str | None:
    """The column to use: the one named (must exist) or ``default`` if present."""
    if name is not None:
        if name not in frame.columns:
            raise InputError(
                f"column {name!r} not found in buildings; available columns: "
                f"{', '.join(map(str, frame.columns))}"
            )
        return name
    return default if default is not None and default in frame.columns else None


def _given_households(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad_nan = values.isna()
    if bad_nan.any():
        rows = list(frame.index[bad_nan][:10])
        raise InputError(
            f"households column {column!r} has {int(bad_nan.sum())} missing or non-numeric "
            f"values (rows {rows}{'...' if bad_nan.sum() > 10 else ''}); fill them (0 for "
            "non-residential buildings) or omit `households` to estimate counts from floor area"
        )
    neg = values < 0
    if neg.any():
        rows = list(frame.index[neg][:10])
        raise InputError(
            f"households column {column!r} has {int(neg.sum())} negative values (rows {rows}); "
            "household counts must be >= 0"
        )
    frac = values != np.floor(values)
    if frac.any():
        rows = list(frame.index[frac][:10])
        raise InputError(
            f"households column {column!r} has {int(frac.sum())} non-integer values (rows {rows}); "
            "round them before passing them in"
        )
    return values.to_numpy(dtype=np.int64)
