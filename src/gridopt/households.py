"""Household estimates per building: evidence first, defaults last, always with a range.

OSM's ``building=yes`` says nothing about housing, so the estimate reads what
the data do say before it falls back on a default: the building's own tags
(``building``, ``amenity``, ``shop``, ``office``, ``tourism``, ``historic``,
...: :data:`TAG_EVIDENCE`), its name (:data:`NAME_EVIDENCE`), the land use
around it (``landuse=residential/commercial/retail/industrial``, school and
hospital grounds: :data:`LANDUSE_CLASS`), and its footprint's size and depth.
Every rule is a table, so other vocabularies (Chinese building types, see
``gridopt.vocab``) map onto the same tags.

The rule chain, first match wins, recorded per building in ``households_source``:

``given``
    a households column was supplied (validated, never changed).
``non_residential``
    a tag says the building is a school, hospital, shop, office, police or
    fire station, industry, religious, public, landmark or ancillary
    building: 0 households.
``non_residential_name``
    a generic building whose name says what it is (a hotel, a museum, a fort).
``non_residential_land``
    a generic building (``building=yes``, no tag) standing in non-residential
    land (industrial, commercial/retail, school or hospital grounds).
``large_footprint``
    (only where the data carry a building type) a generic building outside
    residential land whose footprint exceeds
    ``large_footprint_m2`` (5,000 m²: a hall, a shopping centre, a parliament).
``deep_plan``
    (likewise) a generic building outside residential land at least 1,000 m² whose
    footprint is deeper than ``max_residential_depth_m`` (20 m) by the measure
    2 x area / perimeter (a long slab's width, half a square's side): flats need
    daylight, so a slab of flats is at most about 20 m wide and a point block
    about 35 m square; a courtyard's inner ring shortens the measure.
``too_small``
    a residential footprint below ``min_footprint_m2``: 0 households.
``floors_x_area`` / ``height_x_area``
    storeys from a floors column / height over ``storey_height_m``.
``default_storeys_by_type``
    storeys from :data:`DEFAULT_STOREYS` by building tag: the estimate rests
    on a default (its share of households is what :func:`household_summary`
    and the plan's summary report).

Each estimate carries ``households_low``/``households_high`` (storeys from
:data:`STOREYS_RANGE` and 80-125% of the floor area per household; an
evidence-based zero keeps the default estimate as its upper end), a
``households_confidence`` (``high``, ``medium``, ``low``) and a
``households_note`` saying what the building is and why.

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
import shapely

from gridopt._errors import InputError
from gridopt.crs import reproject

__all__ = [
    "DEFAULT_STOREYS",
    "GENERIC_TYPES",
    "LANDUSE_CLASS",
    "NAME_EVIDENCE",
    "NON_RESIDENTIAL",
    "STOREYS_RANGE",
    "TAG_EVIDENCE",
    "default_share",
    "estimate_households",
    "household_summary",
    "uncertain_buildings",
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

#: Plausible storeys (low, high) by building tag for the household range.
STOREYS_RANGE: dict[str, tuple[float, float]] = {
    "apartments": (3.0, 12.0),
    "residential": (2.0, 8.0),
    "dormitory": (3.0, 8.0),
    "terrace": (1.0, 3.0),
    "house": (1.0, 3.0),
    "detached": (1.0, 3.0),
    "semidetached_house": (1.0, 3.0),
    "bungalow": (1.0, 1.0),
    "farm": (1.0, 2.0),
    "yes": (1.0, 5.0),
}

#: Building tags that say nothing about the use.
GENERIC_TYPES: frozenset[str] = frozenset({"yes", "building", "unknown", "", "nan", "none"})

#: Tags known to mean housing (besides those of :data:`DEFAULT_STOREYS`).
_RESIDENTIAL_TAGS = frozenset(DEFAULT_STOREYS) - {"yes"} | {"flats", "housing", "semi", "cabin"}

#: Non-residential building tags by category: category -> (tags, exclusive grid?, station site?).
#: Station sites are rooms in community, public, office and commercial buildings; police and
#: fire stations, hospitals, schools, industry, religious buildings and landmarks are not
#: (see ``gridopt.stations.DEFAULT_EXCLUDED_STATION_TAGS``).
NON_RESIDENTIAL: dict[str, tuple[frozenset[str], bool, bool]] = {
    "school": (
        frozenset({"school", "kindergarten", "university", "college", "education", "childcare"}),
        True,
        False,
    ),
    "hospital": (frozenset({"hospital", "clinic", "healthcare", "doctors"}), True, False),
    "commercial": (
        frozenset(
            {"retail", "commercial", "supermarket", "shop", "mall", "hotel", "kiosk", "market",
             "motel", "casino", "restaurant", "marketplace"}
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
                "social_centre",
                "post_office",
                "sports_centre",
                "sports_hall",
                "arts_centre",
                "theatre",
                "museum",
                "public_building",
            }
        ),
        False,
        True,
    ),
    "emergency": (
        frozenset({"police", "fire_station", "prison", "courthouse", "ambulance_station"}),
        False,
        False,
    ),
    "religious": (
        frozenset({"church", "chapel", "cathedral", "mosque", "temple", "shrine", "religious",
                   "place_of_worship", "monastery", "synagogue"}),
        False,
        False,
    ),
    "industrial": (
        frozenset({"industrial", "warehouse", "factory", "manufacture", "hangar", "storage_tank",
                   "works", "power", "data_center"}),
        False,
        False,
    ),
    "landmark": (
        frozenset({"castle", "fort", "fortress", "palace", "military", "stadium", "monument",
                   "grandstand", "pavilion", "parliament", "train_station", "transportation"}),
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
                "greenhouse",
                "barn",
                "stable",
                "toilets",
                "transformer_tower",
                "construction",
                "ruins",
                "bunker",
                "swimming_pool",
                "fuel",
            }
        ),
        False,
        False,
    ),
}

_TAG_CATEGORY = {tag: cat for cat, (tags, _, _) in NON_RESIDENTIAL.items() for tag in tags}

#: Building columns read as evidence, in order: the first one whose value is a known
#: non-residential tag decides (``amenity=police`` on a ``building=yes``). Any value of
#: ``shop``/``office`` means a commercial/office use; of ``historic``/``military`` a landmark.
TAG_EVIDENCE: tuple[tuple[str, str | None], ...] = (
    ("amenity", None),
    ("shop", "commercial"),
    ("office", "office"),
    ("tourism", None),
    ("leisure", None),
    ("historic", "landmark"),
    ("military", "landmark"),
    ("man_made", "industrial"),
    ("craft", "industrial"),
)

#: Land-use values (OSM ``landuse``, or the amenity/leisure of grounds such as a school's)
#: -> land class. A generic building in non-residential land holds no households.
LANDUSE_CLASS: dict[str, str] = {
    "residential": "residential",
    "farmyard": "residential",
    "village_green": "residential",
    "commercial": "commercial",
    "retail": "commercial",
    "industrial": "industrial",
    "railway": "industrial",
    "port": "industrial",
    "quarry": "industrial",
    "landfill": "industrial",
    "depot": "industrial",
    "garages": "industrial",
    "military": "landmark",
    "education": "school",
    "school": "school",
    "university": "school",
    "college": "school",
    "kindergarten": "school",
    "hospital": "hospital",
    "clinic": "hospital",
    "police": "emergency",
    "fire_station": "emergency",
    "prison": "emergency",
    "religious": "religious",
    "cemetery": "religious",
    "place_of_worship": "religious",
    "stadium": "landmark",
}

#: Name patterns (case-insensitive regular expressions) -> category. ``residential``
#: names (a "Résidence", 小区) confirm housing; the others say the building is not.
NAME_EVIDENCE: tuple[tuple[str, str], ...] = (
    (r"r[ée]sidence|apartment|appartement|\bvilla\b|immeuble|bolig|asunto|公寓|小区|住宅|宿舍|花园",
     "residential"),
    (r"h[oô]tel|hostel|\binn\b|resort|酒店|宾馆", "commercial"),
    (r"centre commercial|shopping|\bmall\b|market|march[ée]|galerie|商场|市场|超市", "commercial"),
    (r"hospital|h[oô]pital|clinic|clinique|医院", "hospital"),
    (r"school|[ée]cole|lyc[ée]e|coll[èe]ge|universit|kindergarten|学校|小学|中学|大学|幼儿园",
     "school"),
    (r"church|[ée]glise|chapel|chapelle|cath[ée]dral|mosque|temple|寺|教堂", "religious"),
    (r"\bfort\b|castle|ch[aâ]teau|palace|palais|parliament|museum|mus[ée]e|stadium|stade|"
     r"th[ée][aâ]tre|theater|op[ée]ra|casino|station|gare|parking|博物馆|体育", "landmark"),
    (r"police|gendarmerie|fire station|pompiers|派出所|消防", "emergency"),
    (r"factory|usine|warehouse|entrep[ôo]t|industrie|工厂|仓库", "industrial"),
    (r"bank|banque|ministry|minist[èe]re|mairie|town hall|government|政府|银行", "office"),
)

# Footprint depth (2 x area / perimeter) is only judged on footprints this large.
_DEEP_PLAN_MIN_M2 = 1000.0
# Floor area per household varies: the range uses 80% and 125% of m2_per_household.
_AREA_LOW, _AREA_HIGH = 0.8, 1.25
# The land class that counts as residential evidence.
_RESIDENTIAL_LAND = "residential"


def estimate_households(
    buildings: gpd.GeoDataFrame,
    *,
    households: str | None = None,
    floors: str | None = None,
    height: str | None = None,
    building_type: str | None = None,
    landuse: gpd.GeoDataFrame | None = None,
    m2_per_household: float = 100.0,
    storey_height_m: float = 3.0,
    residential_share: float = 1.0,
    min_footprint_m2: float = 30.0,
    large_footprint_m2: float = 5000.0,
    max_residential_depth_m: float = 20.0,
    default_storeys: Mapping[str, float] | None = None,
    unknown_storeys: float = 2.0,
) -> gpd.GeoDataFrame:
    """Estimate households per building from the evidence in the data, and mark sites.

    Parameters
    ----------
    buildings
        Building footprints in a projected metric CRS (see :func:`gridopt.read_buildings`).
        Columns read as evidence when present: ``amenity``, ``shop``, ``office``,
        ``tourism``, ``leisure``, ``historic``, ``military``, ``man_made``, ``craft``
        (:data:`TAG_EVIDENCE`), ``name`` (:data:`NAME_EVIDENCE`) and ``landuse``.
    households
        Column with known household counts; used as given (``households_source="given"``).
    floors, height, building_type
        Columns holding storeys, height in metres and the building tag. When
        omitted, the columns ``floors``/``height``/``building_type`` are used if present.
    landuse
        Land-use polygons with a ``landuse`` column (values as :data:`LANDUSE_CLASS`);
        :func:`gridopt.read_buildings` reads them from the same ``.osm.pbf``. A
        building takes the smallest polygon holding its point on surface.
    m2_per_household
        Gross floor area per household, m² (default 100: 2020 census figures).
    storey_height_m
        Metres per storey when storeys come from height.
    residential_share
        Share of the floor area of a residential building that is housing.
    min_footprint_m2
        Residential footprints below this are not dwellings (0 households, ``too_small``).
    large_footprint_m2
        A generic building (:data:`GENERIC_TYPES`, no tag evidence) outside residential
        land with a larger footprint holds no households (``large_footprint``).
    max_residential_depth_m
        A generic building outside residential land of at least 1,000 m² deeper
        than this (2 x area / perimeter: a slab's width, half a square's side)
        holds no households (``deep_plan``).
    default_storeys
        Storeys by building tag when neither floors nor height are known;
        merged over :data:`DEFAULT_STOREYS`.
    unknown_storeys
        Storeys for a residential tag missing from ``default_storeys``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``buildings`` with ``households`` (int), ``households_low``,
        ``households_high``, ``households_source``, ``households_confidence``,
        ``households_note``, ``building_type``, ``category``, ``land_class``,
        ``storeys``, ``footprint_m2``, ``floor_area_m2``, ``non_residential``,
        ``exclusive_candidate`` and ``station_candidate``.

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
    >>> out[["households_low", "households_high"]].values.tolist()
    [[28, 45], [0, 0]]
    """
    _check_positive(
        m2_per_household=m2_per_household,
        storey_height_m=storey_height_m,
        residential_share=residential_share,
        unknown_storeys=unknown_storeys,
        large_footprint_m2=large_footprint_m2,
        max_residential_depth_m=max_residential_depth_m,
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
    generic = types.isin(GENERIC_TYPES).to_numpy() | ~types.isin(
        set(_TAG_CATEGORY) | _RESIDENTIAL_TAGS | set(storeys_by_type)
    ).to_numpy()
    type_cat, extra_cat, tag_text = _tag_evidence(out, types)
    # Tags beside ``building`` (amenity=police) decide for a generic building; on a building
    # tagged as housing a shop or office makes it mixed, not empty.
    tag_cat = np.where(type_cat != "", type_cat, np.where(generic, extra_cat, ""))
    name = _text(out, "name")
    name_cat = _name_evidence(name)
    land = _land_class(out, landuse)
    geoms = out.geometry.to_numpy()
    footprint = shapely.area(geoms)
    depth = 2.0 * footprint / np.maximum(shapely.length(geoms), 1e-9)

    storeys, source = _storeys(out, floors, height, types, storeys_by_type, unknown_storeys,
                               storey_height_m)
    floor_area = footprint * storeys
    default_est = np.maximum(np.floor(floor_area * residential_share / m2_per_household + 0.5), 1)

    # Category: tags first, then (generic buildings only) the name, the land and the shape.
    category = np.where(tag_cat != "", tag_cat, "residential").astype(object)
    res_name = name_cat == "residential"
    res_land = land == _RESIDENTIAL_LAND
    open_ = generic & (tag_cat == "") & ~res_name
    zero_reason = np.full(n, "", dtype=object)
    zero_reason[tag_cat != ""] = "non_residential"
    by_name = open_ & (name_cat != "")
    category[by_name] = name_cat[by_name]
    zero_reason[by_name] = "non_residential_name"
    open_ &= ~by_name & ~res_land
    by_land = open_ & (land != "")
    category[by_land] = land[by_land]
    zero_reason[by_land] = "non_residential_land"
    # Size and depth judge only data that classify buildings (OSM's building=yes means
    # "not classified"); a layer without a type column is taken to be housing.
    open_ &= ~by_land & (btype is not None)
    large = open_ & (footprint > large_footprint_m2)
    category[large] = "unknown_large"
    zero_reason[large] = "large_footprint"
    deep = open_ & ~large & (footprint >= _DEEP_PLAN_MIN_M2) & (depth > max_residential_depth_m)
    category[deep] = "unknown_large"
    zero_reason[deep] = "deep_plan"
    non_res = zero_reason != ""
    too_small = ~non_res & (footprint < min_footprint_m2)

    estimate = np.where(non_res | too_small, 0, default_est)
    source[non_res] = zero_reason[non_res]
    source[too_small] = "too_small"
    low, high = _range(
        footprint, storeys, source, types, estimate, default_est,
        storeys_by_type=storeys_by_type, m2=m2_per_household, share=residential_share,
    )
    confidence = _confidence(source, res_land | res_name | ~generic, tag_cat != "")
    if households:
        given = _given_households(out, households)
        estimate = low = high = given
        source[:] = "given"
        confidence[:] = "high"

    excl = np.array([NON_RESIDENTIAL.get(c, (None, False, False))[1] for c in category], bool)
    station = np.array([NON_RESIDENTIAL.get(c, (None, False, False))[2] for c in category], bool)
    # A residential building with a shop or office in it is a mixed building: a station room
    # there is as good as in a commercial one.
    mixed = ~non_res & np.isin(extra_cat, ["commercial", "office", "public"])
    station |= mixed

    out["households"] = estimate.astype(np.int64)
    out["households_low"] = np.minimum(low, estimate).astype(np.int64)
    out["households_high"] = np.maximum(high, estimate).astype(np.int64)
    out["households_source"] = source.astype(str)
    out["households_confidence"] = confidence.astype(str)
    out["building_type"] = types.to_numpy()
    out["category"] = category.astype(str)
    out["land_class"] = land.astype(str)
    out["storeys"] = storeys
    out["footprint_m2"] = footprint
    out["floor_area_m2"] = floor_area
    out["non_residential"] = non_res
    out["exclusive_candidate"] = excl
    out["station_candidate"] = station
    out["households_note"] = _notes(out, tag_text, name, depth)
    counts = pd.Series(source).value_counts().to_dict()
    log.info("household estimate: %d households in %d buildings; rules used %s",
             int(out["households"].sum()), n, counts)
    return out


def _text(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str).to_numpy()


def _tag_evidence(
    frame: pd.DataFrame, types: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Category of the building tag, of the other tags (:data:`TAG_EVIDENCE`), and tag text."""
    type_cat = types.map(_TAG_CATEGORY).fillna("").to_numpy(dtype=object)
    cat = np.full(len(frame), "", dtype=object)
    text = ("building=" + types).to_numpy(dtype=object)
    for key, fixed in TAG_EVIDENCE:
        values = _text(frame, key)
        has = values != ""
        if not has.any():
            continue
        text = np.where(has, text + "; " + key + "=" + values, text)
        lower = np.char.lower(values.astype(str))
        found = np.array([fixed or _TAG_CATEGORY.get(v, "") for v in lower], dtype=object)
        found[~has] = ""
        cat = np.where((cat == "") & (found != ""), found, cat)
    return type_cat, cat.astype(object), text


def _name_evidence(names: np.ndarray) -> np.ndarray:
    """Category a building's name points to ("" when it says nothing)."""
    out = np.full(len(names), "", dtype=object)
    named = np.flatnonzero(names != "")
    series = pd.Series(names[named], dtype=object)
    for pattern, cat in NAME_EVIDENCE:
        hit = named[series.str.contains(pattern, case=False, regex=True, na=False).to_numpy()]
        out[hit[out[hit] == ""]] = cat
    return out


def _land_class(frame: gpd.GeoDataFrame, landuse: gpd.GeoDataFrame | None) -> np.ndarray:
    """Land class of the smallest land-use polygon holding each building ("" for none)."""
    n = len(frame)
    out = np.full(n, "", dtype=object)
    if landuse is None or len(landuse) == 0 or n == 0:
        return out
    if "landuse" not in landuse.columns:
        raise InputError(
            f"landuse polygons need a 'landuse' column; found {list(landuse.columns)[:10]}"
        )
    land = landuse
    if land.crs is not None and frame.crs is not None and not land.crs.equals(frame.crs):
        land = reproject(land, frame.crs, what="land use")
    cls = land["landuse"].astype(str).str.strip().str.lower().map(LANDUSE_CLASS)
    keep = cls.notna().to_numpy() & np.isin(
        shapely.get_type_id(land.geometry.to_numpy()), [3, 6]
    )
    if not keep.any():
        return out
    polys = land.geometry.to_numpy()[keep]
    classes = cls.to_numpy()[keep]
    points = shapely.point_on_surface(frame.geometry.to_numpy())
    bi, pi = shapely.STRtree(polys).query(points, predicate="within")
    if len(bi) == 0:
        return out
    # The most specific (smallest) polygon wins: a school inside a residential area.
    order = np.lexsort((shapely.area(polys[pi]), bi))
    bi, pi = bi[order], pi[order]
    first = np.ones(len(bi), dtype=bool)
    first[1:] = bi[1:] != bi[:-1]
    out[bi[first]] = classes[pi[first]]
    return out


def _storeys(
    frame: pd.DataFrame,
    floors: str | None,
    height: str | None,
    types: pd.Series,
    storeys_by_type: Mapping[str, float],
    unknown_storeys: float,
    storey_height_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(frame)
    storeys = np.full(n, np.nan)
    source = np.full(n, "default_storeys_by_type", dtype=object)
    if height:
        h = pd.to_numeric(frame[height], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(h) & (h > 0)
        storeys[ok] = np.maximum(1.0, np.round(h[ok] / storey_height_m))
        source[ok] = "height_x_area"
    if floors:
        f = pd.to_numeric(frame[floors], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(f) & (f > 0)
        storeys[ok] = f[ok]
        source[ok] = "floors_x_area"
    missing = ~np.isfinite(storeys)
    storeys[missing] = types[missing].map(storeys_by_type).fillna(unknown_storeys).to_numpy()
    return storeys, source


def _range(
    footprint: np.ndarray,
    storeys: np.ndarray,
    source: np.ndarray,
    types: pd.Series,
    estimate: np.ndarray,
    default_est: np.ndarray,
    *,
    storeys_by_type: Mapping[str, float],
    m2: float,
    share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Low and high household counts: storeys range and 80-125% of the area per household."""
    defaulted = source == "default_storeys_by_type"
    lo_st = storeys.copy()
    hi_st = storeys.copy()
    rng = types.map(lambda t: STOREYS_RANGE.get(t)).to_numpy()
    for i in np.flatnonzero(defaulted):
        lo, hi = rng[i] if rng[i] is not None else (1.0, 2.0 * storeys[i])
        lo_st[i], hi_st[i] = min(lo, storeys[i]), max(hi, storeys[i])
    low = np.floor(footprint * lo_st * share / (m2 * _AREA_HIGH))
    high = np.ceil(footprint * hi_st * share / (m2 * _AREA_LOW))
    low = np.where(estimate > 0, np.maximum(low, 1), 0)
    # A zero from tags is sure; a zero from name, land or shape could still be housing.
    inferred_zero = np.isin(source, ["non_residential_name", "non_residential_land",
                                     "large_footprint", "deep_plan"])
    high = np.where(estimate > 0, high, np.where(inferred_zero, default_est, 0))
    return low, high


def _confidence(source: np.ndarray, residential_evidence: np.ndarray, tagged: np.ndarray):
    """``high`` (counted or measured), ``medium`` (tagged or in residential land), ``low``."""
    conf = np.full(len(source), "low", dtype=object)
    conf[np.isin(source, ["given", "floors_x_area", "height_x_area", "too_small"])] = "high"
    conf[(source == "non_residential") & tagged] = "high"
    conf[np.isin(source, ["non_residential_name", "non_residential_land"])] = "medium"
    conf[(source == "default_storeys_by_type") & residential_evidence] = "medium"
    return conf


def _notes(frame: gpd.GeoDataFrame, tag_text: np.ndarray, name: np.ndarray,
           depth: np.ndarray) -> np.ndarray:
    """What the building is and how sure its estimate is, in one line per building."""
    parts = tag_text.astype(object)
    named = name != ""
    parts = np.where(named, parts + "; name=" + name, parts)
    land = frame["land_class"].to_numpy(dtype=object)
    parts = np.where(land != "", parts + "; in " + land + " land", parts)
    fp = np.round(frame["footprint_m2"].to_numpy()).astype(np.int64).astype(str)
    st = frame["storeys"].to_numpy()
    st_txt = np.char.mod("%g", st).astype(object)
    parts = parts + "; footprint " + fp + " m2, depth " + np.round(depth).astype(
        np.int64).astype(str) + " m, " + st_txt + " storeys"
    src = frame["households_source"].to_numpy(dtype=object)
    parts = np.where(src == "default_storeys_by_type", parts + " (default)", parts)
    rng = (frame["households_low"].astype(str) + "-" + frame["households_high"].astype(str)
           ).to_numpy(dtype=object)
    conf = frame["households_confidence"].to_numpy(dtype=object)
    return (parts + "; " + src + ", " + conf + " confidence, range " + rng).astype(str)


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
    if {"households_low", "households_high"} <= set(buildings.columns):
        table["households_low"] = g["households_low"].sum()
        table["households_high"] = g["households_high"].sum()
    table.loc["total"] = table.sum(numeric_only=True)
    total = max(float(table.loc["total", "households"]), 1.0)
    table["share_of_households"] = (table["households"] / total).round(4)
    return table.astype({"buildings": int, "households": int})


def default_share(buildings: pd.DataFrame) -> float:
    """Share of the households whose estimate rests on default storeys (0 to 1).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame({"floors": [3, None]}, geometry=[box(0, 0, 20, 10)] * 2, crs=32651)
    >>> default_share(estimate_households(b))
    0.4
    """
    hh = buildings["households"].to_numpy(dtype=float)
    total = hh.sum()
    if total <= 0:
        return 0.0
    src = buildings["households_source"].astype(str).to_numpy()
    return float(hh[src == "default_storeys_by_type"].sum() / total)


def uncertain_buildings(buildings: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` buildings whose household count is least sure, widest range first.

    A reviewer checks these on site first: the spread ``households_high -
    households_low`` is what a wrong guess could cost a grid.

    Returns
    -------
    pandas.DataFrame
        ``households``, ``households_low``, ``households_high``,
        ``households_source``, ``households_note``, indexed like the buildings.
    """
    cols = ["households", "households_low", "households_high", "households_source",
            "households_note"]
    missing = [c for c in cols if c not in buildings.columns]
    if missing:
        raise InputError(
            f"uncertain_buildings needs the columns {missing}; run estimate_households first"
        )
    unsure = buildings[buildings["households_confidence"].astype(str) != "high"]
    spread = unsure["households_high"] - unsure["households_low"]
    order = spread.sort_values(ascending=False, kind="stable").index[:n]
    return pd.DataFrame(unsure.loc[order, cols])


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
