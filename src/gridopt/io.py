"""Reading buildings and streets, writing GeoPackages.

Everything gridopt computes happens in one metric working CRS chosen by
:class:`gridopt.crs.WorkingCRS` (the UTM zone of the data; GCJ-02/BD-09 offsets
removed); the frames :func:`read_buildings` returns carry that policy, so results
can be written back in the input's coordinate system.
Repaired or skipped features are never dropped silently: they are listed in
``gdf.attrs["gridopt_report"]`` (read it with :func:`repair_report`) and a
:class:`~gridopt.RepairWarning` says how many.
"""

from __future__ import annotations

import codecs
import csv
import io as _stdio
import json
import logging
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridopt._errors import GridoptWarning, InputError, RepairWarning
from gridopt._validate import check
from gridopt.crs import WorkingCRS, no_crs_message, remove_offset, reproject
from gridopt.households import estimate_households
from gridopt.tags import barrier_kind as _barrier_kind_of
from gridopt.tags import boundary_class as _boundary_class
from gridopt.vocab import (
    NO_COMMUNITY,
    building_type_tags,
    detect_column,
    normalise_text,
    parse_counts,
)

__all__ = [
    "BARRIER_HIGHWAYS",
    "detect_encoding",
    "join_communities",
    "read_area",
    "read_buildings",
    "read_buildings_chunked",
    "read_communities",
    "read_landuse",
    "read_sites",
    "read_streets",
    "read_table",
    "read_walk_lines",
    "repair_report",
    "to_metric_crs",
    "write_layers",
]

log = logging.getLogger("gridopt")

#: Highway tags treated as barriers (major streets) that grids should not cross
#: (class ``major`` of :mod:`gridopt.tags`).
BARRIER_HIGHWAYS = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"}
)

_OSM_SUFFIXES = (".pbf", ".osm")
_COLUMN_ALIASES = {
    "floors": ("floors", "floor", "building:levels", "building_levels", "levels", "storeys",
               "stories", "num_floors"),
    "height": ("height", "building_height", "height_m"),
    "building_type": ("building_type", "building", "btype"),
}


def read_buildings(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    households: str | None = None,
    floors: str | None = None,
    height: str | None = None,
    building_type: str | None = None,
    community: str | None = None,
    building_id: str | None = None,
    name: str | None = None,
    id_column: str | None = None,
    crs: Any = None,
    layer: str | None = None,
    encoding: str | None = None,
    coords: str = "wgs84",
    to_crs: Any = None,
    **estimate_options: Any,
) -> gpd.GeoDataFrame:
    """Read building footprints, with the user's own columns, and estimate households.

    Column keywords name the columns of the file; the CLI flags of ``gridopt plan``
    and the fields of :class:`gridopt.PlanConfig` map onto them:
    ``households`` (``--households-col``, ``households_col``), ``floors``
    (``--floors-col``), ``community`` (``--community-col``), ``building_type``
    (``--type-col``), ``building_id`` (``--id-col``) and ``name`` (``--name-col``).
    A column left out is looked up among the usual English and Chinese names
    (:data:`gridopt.vocab.BUILDING_COLUMNS`: 户数, 层数, 社区, 建筑类型, 名称 ...).

    Parameters
    ----------
    source
        A GeoPackage, GeoJSON, GeoParquet, Shapefile or OpenStreetMap ``.osm.pbf``
        path, or a GeoDataFrame.
    households
        Column with household counts. When the file has one (named or found), it is
        used as given and never replaced by estimates; "120户" and full-width digits
        are read as numbers, anything else is an error naming the rows. Without one,
        households are estimated (see :func:`gridopt.estimate_households`).
    floors, height
        Columns with storeys ("12层" is read as 12; zero, negative or unreadable
        storeys are an error) and height in metres.
    building_type
        Column with the building type: OSM tags or Chinese types (住宅, 学校, 医院,
        商业, 办公, 社区服务中心 ...; see :data:`gridopt.vocab.BUILDING_TYPES_ZH`), which
        decide housing, exclusive-grid and station candidates.
    community
        Column naming each building's community (社区); copied to ``community``,
        where grids never straddle two. Empty cells go to the explicit
        :data:`~gridopt.vocab.NO_COMMUNITY` group, with a warning.
    building_id
        Column with unique building ids, kept as the index; duplicates are an
        error. Default: a ``building_id``/建筑编号 column, OSM ids, else the row number.
    name
        Column with building names (名称), copied to ``name``.
    id_column
        Older name of ``building_id``.
    crs
        CRS to assume when the source has none.
    layer
        Layer to read from a multi-layer file.
    encoding
        Text encoding of a Shapefile's DBF (GeoPackage, GeoJSON and GeoParquet are
        UTF-8 by definition). Default: the ``.cpg`` file, else detected from the
        bytes (UTF-8, else GB18030/GBK).
    coords
        The lon/lat system of geographic data: ``"wgs84"``, ``"gcj02"`` (AMap/Gaode,
        Tencent) or ``"bd09"`` (Baidu). The offset is removed here and put back when
        a plan is written (see :mod:`gridopt.crs`).
    to_crs
        The working CRS: a :class:`gridopt.crs.WorkingCRS` from an earlier read (the
        pieces of one file), or a metric CRS; default: chosen from these buildings.
    **estimate_options
        Passed to :func:`gridopt.estimate_households` (``m2_per_household`` ...).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building (Polygon or MultiPolygon) in the metric working CRS
        (:class:`gridopt.crs.WorkingCRS`, kept in ``attrs["gridopt_crs"]``), indexed
        by ``building_id``, with ``households`` and ``households_source`` among
        the columns listed in :func:`gridopt.estimate_households`; the user's
        columns are kept unchanged. ``attrs["gridopt_columns"]`` says which column
        was used for what.

    Raises
    ------
    InputError
        Missing or unreadable file, empty layer, no CRS, implausible coordinates
        (swapped lat/lon, the wrong Gauss-Kruger zone), no polygons, duplicate
        ids, a named column that does not exist, bad household or storey values,
        text that is not in the given encoding.

    Examples
    --------
    >>> import gridopt
    >>> b = gridopt.read_buildings(gridopt.datasets.suzhou_buildings())
    >>> len(b), b.crs.to_epsg()
    (3076, 32651)
    >>> b["households_source"].value_counts().to_dict()
    {'floors_x_area': 2947, 'too_small': 129}
    >>> b.attrs["gridopt_columns"]
    {'floors': 'Floor', 'height': 'height'}
    """
    if id_column is not None and building_id is not None and id_column != building_id:
        raise InputError(
            f"building_id={building_id!r} and id_column={id_column!r} disagree; pass building_id only"
        )
    frame, is_osm = _load(source, layer=layer, crs=crs, what="buildings", encoding=encoding)
    report: list[dict[str, Any]] = []
    frame = _clean_polygons(frame, report)
    used = _building_columns(
        frame,
        households=households, floors=floors, height=height, building_type=building_type,
        community=community, building_id=building_id or id_column, name=name,
    )  # fmt: skip
    frame = _set_ids(frame, id_column=used.get("building_id"), is_osm=is_osm)
    if isinstance(to_crs, WorkingCRS):
        policy = to_crs
    elif to_crs is not None:
        policy = WorkingCRS.choose(frame, coords=coords, crs=to_crs, what="buildings")
    else:
        policy = WorkingCRS.for_frame(frame, coords=coords, what="buildings")
    frame = policy.to_working(frame, what="buildings")
    frame, work = _parse_building_values(frame, used, strict=not is_osm)
    if is_osm and "landuse" not in estimate_options:
        # Land use around each building is evidence for its households.
        estimate_options["landuse"] = read_landuse(source, to_crs=frame.crs)
    out = estimate_households(frame, **work, **estimate_options)
    out = out.drop(columns=[c for c in out.columns if str(c).startswith(_WORK)])
    out.attrs["gridopt_report"] = report
    out.attrs["gridopt_columns"] = dict(used)
    policy.attach(out)
    if report:
        warnings.warn(
            f"{len(report)} building features were repaired or skipped; "
            "see gridopt.io.repair_report(buildings) for the list",
            RepairWarning,
            stacklevel=2,
        )
    return out


#: Prefix of the working columns read_buildings hands to estimate_households.
_WORK = "_gridopt_"

#: Keyword of read_buildings -> CLI flag, for messages.
_FLAGS = {
    "households": "--households-col",
    "floors": "--floors-col",
    "height": "height=",
    "building_type": "--type-col",
    "community": "--community-col",
    "building_id": "--id-col",
    "name": "--name-col",
}


def _building_columns(frame: pd.DataFrame, **named: str | None) -> dict[str, Any]:
    """The column used for each meaning: the one named (must exist) or the one detected."""
    used: dict[str, Any] = {}
    for kind, column in named.items():
        if column is not None:
            if column not in frame.columns:
                raise InputError(
                    f"{kind} column {column!r} ({_FLAGS[kind]}) is not in the buildings file; "
                    f"its columns are: {', '.join(map(str, _user_columns(frame)))}"
                )
            used[kind] = column
            continue
        found = detect_column(frame.columns, kind)
        if found is not None and not (kind == "building_type" and found == "geometry"):
            used[kind] = found
    return used


def _user_columns(frame: pd.DataFrame) -> list[Any]:
    geom = getattr(frame, "_geometry_column_name", None)
    return [c for c in frame.columns if c != geom] or ["none besides the geometry"]


def _parse_building_values(
    frame: gpd.GeoDataFrame, used: dict[str, Any], *, strict: bool
) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Parsed working copies of the user's columns, and the estimate_households keywords.

    The user's own columns stay as they are; ``community`` and ``name`` get the
    standard names where they had other ones.
    """
    out = frame.copy()
    work: dict[str, str] = {}
    if "households" in used:
        col = used["households"]
        values = parse_counts(out[col], what=f"households column {col!r}", allow_missing=False)
        _check_whole(values, col)
        out[_WORK + "households"] = values.astype(np.int64)
        work["households"] = _WORK + "households"
    if "floors" in used:
        col = used["floors"]
        values = parse_counts(out[col], what=f"storeys column {col!r}")
        bad = values.notna() & (values <= 0) if strict else values < 0
        if bad.any():
            rows = ", ".join(f"{i}: {out.at[i, col]!r}" for i in out.index[bad.to_numpy()][:5])
            raise InputError(
                f"storeys column {col!r} has {int(bad.sum())} zero or negative value(s) "
                f"(building {rows}); a building has at least one storey: fix the values or "
                "leave the cell empty to estimate it"
            )
        out[_WORK + "floors"] = values
        work["floors"] = _WORK + "floors"
    if "height" in used:
        col = used["height"]
        text = out[col].astype(object).map(lambda v: v if v is None else normalise_text(v))
        out[_WORK + "height"] = pd.to_numeric(
            text.astype(str).str.extract(r"^\s*([\d.]+)")[0], errors="coerce"
        ).where(out[col].notna())
        work["height"] = _WORK + "height"
    if "building_type" in used:
        col = used["building_type"]
        tags, unknown = building_type_tags(out[col])
        if unknown:
            warnings.warn(
                f"{len(unknown)} building type(s) of column {col!r} are not in gridopt's "
                f"vocabulary and count as untagged buildings (households from floor area): "
                f"{unknown[:10]}; use a standard type (住宅, 学校, 医院, 商业, 办公, "
                "社区服务中心, 工业 ...) or see gridopt.vocab.BUILDING_TYPES_ZH",
                GridoptWarning,
                stacklevel=3,
            )
        out[_WORK + "type"] = tags
        work["building_type"] = _WORK + "type"
        if col == "building_type" and not tags.equals(out[col].astype(object)):
            out["building_type_label"] = out[col]  # the user's own words, kept
    if "community" in used:
        col = used["community"]
        names = out[col].astype(object).map(lambda v: "" if pd.isna(v) else str(v).strip())
        empty = names == ""
        if empty.any():
            warnings.warn(
                f"{int(empty.sum())} building(s) have no community in column {col!r} (rows "
                f"{out.index[empty.to_numpy()][:10].tolist()}); they form the group "
                f"{NO_COMMUNITY!r}, which the plan reports",
                GridoptWarning,
                stacklevel=3,
            )
        out["community"] = names.where(~empty, NO_COMMUNITY)
    if "name" in used and used["name"] != "name":
        out["name"] = out[used["name"]]
    return out, work


def _check_whole(values: pd.Series, column: Any) -> None:
    """Household counts are whole numbers >= 0."""
    for bad, what in ((values < 0, "negative"), (values != np.floor(values), "non-integer")):
        if bad.any():
            rows = values.index[bad.to_numpy()][:10].tolist()
            raise InputError(
                f"households column {column!r} has {int(bad.sum())} {what} value(s) (rows "
                f"{rows}); household counts are whole numbers >= 0"
            )


#: Area features read as land use from an OSM extract: key -> values kept (``None``: all).
LANDUSE_KEYS: dict[str, frozenset[str] | None] = {
    "landuse": None,
    "amenity": frozenset({"school", "university", "college", "kindergarten", "hospital",
                          "clinic", "police", "fire_station", "prison", "place_of_worship"}),
    "leisure": frozenset({"stadium"}),
    "military": None,
}


def read_landuse(
    source: str | os.PathLike[str], *, to_crs: Any = None
) -> gpd.GeoDataFrame:
    """Land-use polygons of an OSM extract (its non-building areas), one ``landuse`` column.

    ``landuse=*`` areas keep their value; school, hospital, police and similar
    grounds (``amenity=*`` areas of :data:`LANDUSE_KEYS`) and stadiums take
    theirs, military areas ``military``. :func:`gridopt.estimate_households`
    reads the values through :data:`gridopt.households.LANDUSE_CLASS`.

    Examples
    --------
    >>> import gridopt
    >>> land = gridopt.io.read_landuse(gridopt.datasets.small_town())
    >>> "industrial" in set(land["landuse"])
    True
    """
    frame = pyogrio.read_dataframe(
        source, layer="multipolygons", on_invalid="ignore", where="building IS NULL",
        columns=["building", *LANDUSE_KEYS],
    )
    value = pd.Series(None, index=frame.index, dtype=object)
    for key, keep in LANDUSE_KEYS.items():
        if key not in frame.columns:
            continue
        col = frame[key]
        ok = col.notna() & value.isna() & frame["building"].isna()
        if keep is not None:
            ok &= col.isin(keep)
        value[ok] = "military" if key == "military" else col[ok]
    out = gpd.GeoDataFrame({"landuse": value[value.notna()]},
                           geometry=frame.geometry[value.notna()], crs=frame.crs)
    out = out[~out.geometry.is_empty & out.geometry.notna()]
    return reproject(out, to_crs, what="land use") if to_crs is not None and len(out) else out


def repair_report(frame: pd.DataFrame) -> pd.DataFrame:
    """The features :func:`read_buildings` repaired or skipped, with the reason.

    Returns an empty frame with columns ``source_row, building_id, action, reason``
    when nothing was changed.
    """
    rows = frame.attrs.get("gridopt_report", [])
    return pd.DataFrame(rows, columns=["source_row", "building_id", "action", "reason"])


def read_streets(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    crs: Any = None,
    to_crs: Any = None,
    layer: str | None = None,
    coords: str = "wgs84",
) -> gpd.GeoDataFrame:
    """Read streets, rivers and railways as LineStrings in a metric CRS.

    Parameters
    ----------
    source
        A line file or ``.osm.pbf`` (its ``lines`` layer), or a GeoDataFrame.
    crs
        CRS to assume when the source has none.
    to_crs
        Target metric CRS (for example the buildings' CRS) or the buildings'
        :class:`gridopt.crs.WorkingCRS`; default: the UTM zone of the streets.
    layer
        Layer to read from a multi-layer file.
    coords
        The lon/lat system of geographic streets (see :func:`read_buildings`);
        with a ``WorkingCRS`` as ``to_crs``, its own. OpenStreetMap is WGS 84.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``highway``, ``waterway``, ``railway``, ``name``, ``boundary_class``
        (:func:`gridopt.tags.boundary_class`: ``residential``, ``main``, ``major``,
        ``water``, ``railway`` or ``None``; coastlines are kept as ``water``, tunnels
        and disused railways have none) and ``barrier_kind`` (``None``,
        ``"major_street"``, ``"river"``, ``"railway"`` for the hard classes; both kept
        when the source already has them); for OSM data also ``osm_id`` and
        ``other_tags``.

    Examples
    --------
    >>> import gridopt
    >>> s = gridopt.read_streets(gridopt.datasets.small_town())
    >>> sorted(s["barrier_kind"].dropna().unique().tolist())
    ['major_street', 'railway']
    """
    frame, is_osm = _load(source, layer=layer or ("lines" if _is_osm(source) else None),
                          crs=crs, what="streets")
    for col in ("highway", "waterway", "railway", "name"):
        if col not in frame.columns:
            frame[col] = None
    if is_osm:
        coast = frame.get("other_tags", pd.Series("", index=frame.index)).fillna("").str.contains(
            '"natural"=>"coastline"', regex=False)
        keep = (frame["highway"].notna() | frame["waterway"].notna() | frame["railway"].notna()
                | coast)
        log.info("streets: kept %d of %d OSM lines (highway, waterway, railway or coastline)",
                 int(keep.sum()), len(frame))
        frame = frame[keep]
    geom_types = set(frame.geom_type.dropna().unique())
    if not geom_types & {"LineString", "MultiLineString"}:
        raise InputError(
            f"streets must be lines; found geometry types {sorted(geom_types)}. "
            "Pass a LineString layer (for an .osm.pbf, the 'lines' layer is used)."
        )
    frame = frame[frame.geom_type.isin(["LineString", "MultiLineString"])]
    frame = frame.explode(index_parts=False).reset_index(drop=True)
    if "boundary_class" not in frame.columns:
        frame["boundary_class"] = _boundary_class(frame)
    if "barrier_kind" not in frame.columns:
        frame["barrier_kind"] = _barrier_kind_of(frame["boundary_class"])
    # osm_id and other_tags stay for OSM data: the walking network needs them
    # (a crossing without a shared node is a bridge; foot=no, access=private).
    extra = [c for c in ("osm_id", "other_tags") if c in frame.columns]
    frame = frame[["highway", "waterway", "railway", "name", "boundary_class", "barrier_kind",
                   *extra, "geometry"]]
    if isinstance(to_crs, WorkingCRS):
        policy = to_crs
    else:
        policy = WorkingCRS.choose(frame, coords=coords, crs=to_crs, what="streets")
    return policy.to_working(frame, what="streets", coords="wgs84" if is_osm else None)


def read_sites(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    crs: Any = None,
    to_crs: Any = None,
    layer: str | None = None,
    what: str = "candidate sites",
) -> gpd.GeoDataFrame:
    """Read station sites (candidates or existing stations): points or polygons.

    Parameters
    ----------
    source
        A file gridopt reads (GeoPackage, GeoJSON, GeoParquet, Shapefile) or a frame.
    crs
        CRS to assume when the source has none (for example the buildings').
    to_crs
        CRS to return the sites in (for example the buildings').
    layer
        Layer of a multi-layer file.
    what
        How messages name the sites.

    Raises
    ------
    InputError
        A missing or unreadable file, an empty source, no CRS.
    """
    frame, _ = _load(source, layer=layer, crs=crs, what=what)
    if isinstance(to_crs, WorkingCRS):
        return to_crs.to_working(frame, what=what)
    return frame if to_crs is None else reproject(frame, to_crs, what=what)


def read_walk_lines(
    source: str | os.PathLike[str] | gpd.GeoDataFrame | gpd.GeoSeries,
) -> gpd.GeoDataFrame:
    """Lines for the walking network, with the tags that decide who may walk them.

    An ``.osm.pbf``'s ``lines`` layer is read as it is: its ``osm_id`` (a crossing
    without a shared node is a bridge) and ``other_tags`` (``foot=no``,
    ``access=private``) matter to the walking network, and :func:`read_streets`
    keeps only the street/river/railway lines. Other files go through
    :func:`read_streets`; frames pass unchanged (the network reprojects them).

    Raises
    ------
    InputError
        A missing file, or a source that is neither a path nor a frame.
    """
    if isinstance(source, gpd.GeoSeries):
        return gpd.GeoDataFrame(geometry=source)
    if isinstance(source, gpd.GeoDataFrame):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"streets must be a GeoDataFrame, GeoSeries or a file path, not {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"streets file not found: {path}")
    if _is_osm(path):
        return pyogrio.read_dataframe(path, layer="lines")
    return read_streets(path)


def read_area(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    crs: Any = None,
    to_crs: Any = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read the study area's polygon(s) (``area=`` of :func:`gridopt.partition_grids`).

    Parameters
    ----------
    source
        A polygon file (GeoPackage, GeoJSON, Shapefile, GeoParquet) or a GeoDataFrame.
    crs
        CRS to assume when the source has none.
    to_crs
        Target CRS (the buildings' CRS); default: UTM for a geographic source.
    layer
        Layer to read from a multi-layer file.

    Returns
    -------
    geopandas.GeoDataFrame
        The polygons in a metric CRS.

    Raises
    ------
    gridopt.InputError
        Missing file, no CRS, or no polygons in it.
    """
    frame, _ = _load(source, layer=layer, crs=crs, what="area")
    poly = frame.geom_type.isin(["Polygon", "MultiPolygon"])
    if not poly.any():
        raise InputError(
            f"area must be polygons; found geometry types {sorted(set(frame.geom_type.dropna()))}"
        )
    frame = frame[poly.to_numpy()]
    if isinstance(to_crs, WorkingCRS):
        return to_crs.to_working(frame, what="area")
    if to_crs is not None:
        return reproject(frame, to_crs, what="area")
    return to_metric_crs(frame, what="area")


def to_metric_crs(frame: gpd.GeoDataFrame, *, what: str = "data") -> gpd.GeoDataFrame:
    """Return ``frame`` in its metric working CRS (see :class:`gridopt.crs.WorkingCRS`).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> g = gpd.GeoDataFrame(geometry=[Point(120.6, 31.3)], crs=4326)
    >>> to_metric_crs(g).crs.to_epsg()
    32651
    """
    return WorkingCRS.for_frame(frame, what=what).to_working(frame, what=what)


def write_layers(path: str | os.PathLike[str], layers: Mapping[str, pd.DataFrame]) -> Path:
    """Write several layers to one GeoPackage, atomically.

    The file is written under a temporary name and moved into place at the
    end, so an interrupted run never leaves a partial file that looks complete.
    Plain DataFrames become attribute tables.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".gpkg", dir=path.parent, prefix=f".{path.stem}-")
    os.close(fd)
    os.unlink(tmp)
    try:
        for name, frame in layers.items():
            frame = _writable(frame)
            pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", append=Path(tmp).exists())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def detect_encoding(data: bytes) -> str:
    """The text encoding of ``data``: ``"utf-8-sig"`` (BOM), ``"utf-8"`` or ``"gb18030"``.

    UTF-8 is tried first because GBK text is almost never valid UTF-8, while the
    reverse decodes as GB18030 without an error but garbled. GB18030 is the superset
    of GBK and GB2312 that Chinese Windows, Excel and ArcGIS write.

    Raises
    ------
    InputError
        The bytes are neither UTF-8 nor GB18030.

    Examples
    --------
    >>> detect_encoding("社区".encode("gbk")), detect_encoding("社区".encode("utf-8"))
    ('gb18030', 'utf-8')
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for enc in ("utf-8", "gb18030"):
        try:
            data.decode(enc)
        except UnicodeDecodeError:
            continue
        return enc
    raise InputError(
        "the text is neither UTF-8 nor GBK/GB18030; save it as UTF-8 (or pass encoding=)"
    )


def read_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    encoding: str | None = None,
    sheet: str | int | None = None,
    what: str = "table",
) -> pd.DataFrame:
    """A plain table (no geometry) from CSV or Excel, as offices save them.

    Parameters
    ----------
    source
        A ``.csv``/``.txt`` file (UTF-8, UTF-8 with BOM or GBK/GB18030, detected), an
        ``.xlsx``/``.xlsm`` workbook (first sheet unless ``sheet``), or a DataFrame (copied).
    encoding
        Encoding of a CSV file; overrides detection.
    sheet
        Sheet name or position of a workbook.
    what
        Name of the table in messages (``"staff list"``).

    Raises
    ------
    InputError
        A missing or unreadable file, an old ``.xls`` workbook, text not in the encoding.
    """
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            book = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, engine="openpyxl")
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"cannot read the {what} workbook {path}: {exc}; save it again from Excel "
                "as .xlsx (or as CSV)"
            ) from exc
        return book.dropna(how="all")
    if suffix == ".xls":
        raise InputError(
            f"{path} is an old Excel 97-2003 workbook (.xls); save it as .xlsx or .csv in Excel"
        )
    data = path.read_bytes()
    text = _decode(data, encoding, what=f"{what} {path.name}")
    first = text.split("\n", 1)[0]
    sep = "\t" if "\t" in first and "," not in first else ","
    try:
        frame = pd.read_csv(_stdio.StringIO(text), sep=sep, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InputError(f"cannot read the {what} {path} as CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all")


def read_communities(
    source: str | os.PathLike[str] | gpd.GeoDataFrame,
    *,
    name: str | None = None,
    crs: Any = None,
    layer: str | None = None,
    encoding: str | None = None,
    coords: str = "wgs84",
) -> gpd.GeoDataFrame:
    """Community (社区) polygons with their names.

    Parameters
    ----------
    source
        A polygon file (Shapefile in GBK/UTF-8, GeoPackage, GeoJSON ...) or GeoDataFrame.
    name
        Column with the community names (``--community-name-col``). Default: the
        first of 名称, 社区名称, 社区, name, community.
    crs, layer, encoding, coords
        As for :func:`read_buildings`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``community`` (str) and ``geometry`` (polygons), in the source's CRS.

    Raises
    ------
    InputError
        No polygons, no name column (or the named one missing), empty names.
    """
    frame, _ = _load(source, layer=layer, crs=crs, what="communities", encoding=encoding)
    kinds = set(frame.geom_type.dropna())
    if not kinds or kinds - {"Polygon", "MultiPolygon"}:
        raise InputError(
            f"communities must be polygons; found geometry types {sorted(kinds)}. Pass the "
            "community boundaries (社区边界), not points or lines"
        )
    if name is None:
        name = next(
            (c for c in ("名称", "社区名称", "社区", "name", "community", "社区名", "NAME", "Name")
             if c in frame.columns),
            None,
        )  # fmt: skip
        if name is None:
            raise InputError(
                "the communities file has no name column (名称, 社区名称, 社区, name); name it "
                f"with --community-name-col / name=. Its columns are: "
                f"{', '.join(map(str, _user_columns(frame)))}"
            )
    elif name not in frame.columns:
        raise InputError(
            f"community name column {name!r} (--community-name-col) is not in the communities "
            f"file; its columns are: {', '.join(map(str, _user_columns(frame)))}"
        )
    names = frame[name].astype(object).map(lambda v: "" if pd.isna(v) else str(v).strip())
    if (names == "").any():
        rows = frame.index[(names == "").to_numpy()][:10].tolist()
        raise InputError(
            f"{int((names == '').sum())} community polygon(s) have no name in column {name!r} "
            f"(rows {rows}); every community needs its name"
        )
    out = gpd.GeoDataFrame({"community": names.to_numpy()}, geometry=frame.geometry.to_numpy(),
                           crs=frame.crs)
    return remove_offset(out, coords)


def join_communities(
    buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame
) -> pd.Series:
    """Each building's community: the polygon that holds its representative point.

    Where polygons overlap, the one covering most of the footprint wins. Buildings in
    no polygon get :data:`gridopt.vocab.NO_COMMUNITY` (the plan reports them).

    Returns
    -------
    pandas.Series
        Community names aligned to ``buildings``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> b = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(5, 5, 6, 6)], crs=32651)
    >>> c = gpd.GeoDataFrame({"community": ["平江社区"]}, geometry=[box(-1, -1, 2, 2)], crs=32651)
    >>> join_communities(b, c).tolist()
    ['平江社区', '无社区']
    """
    polys = reproject(communities, buildings.crs, what="communities")
    points = buildings.geometry.representative_point().to_numpy()
    geoms = polys.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    bi, pi = tree.query(points, predicate="within")
    names = polys["community"].astype(str).to_numpy()
    out = np.full(len(buildings), NO_COMMUNITY, dtype=object)
    if len(bi):
        overlap = shapely.area(
            shapely.intersection(buildings.geometry.to_numpy()[bi], geoms[pi])
        )
        order = np.lexsort((-overlap, bi))  # per building, the largest overlap first
        first = np.unique(bi[order], return_index=True)[1]
        out[bi[order][first]] = names[pi[order][first]]
    return pd.Series(out, index=buildings.index, name="community")


# --------------------------------------------------------------------------- helpers


def _is_osm(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(_OSM_SUFFIXES)


def _load(
    source: Any, *, layer: str | None, crs: Any, what: str, encoding: str | None = None
) -> tuple[gpd.GeoDataFrame, bool]:
    """Read a path or copy a GeoDataFrame; return it and whether it came from OSM."""
    if isinstance(source, gpd.GeoDataFrame):
        frame = source.copy()
        is_osm = False
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{what} file not found: {path}")
        is_osm = _is_osm(path)
        try:
            if is_osm:
                frame = _read_osm(path, layer or "multipolygons")
            elif path.suffix.lower() in (".parquet", ".geoparquet"):
                # GeoParquet through pyarrow: GDAL's Parquet driver is not in every wheel.
                frame = gpd.read_parquet(path)
            else:
                frame = pyogrio.read_dataframe(
                    path, layer=layer, on_invalid="ignore",
                    encoding=_ogr_encoding(path, encoding, what=what),
                )  # fmt: skip
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError,
                OSError) as exc:
            raise InputError(
                f"cannot read {what} from {path}: {exc}. Supported: GeoPackage, GeoJSON, "
                "GeoParquet, Shapefile, .osm.pbf"
            ) from exc
        if not isinstance(frame, gpd.GeoDataFrame):
            raise InputError(f"{path} has no geometry column; gridopt needs {what} geometries")
    else:
        raise InputError(
            f"{what} must be a file path or a GeoDataFrame, got {type(source).__name__}"
        )
    if len(frame) == 0:
        raise InputError(f"{what} source is empty (0 features); check the file and layer name")
    if frame.crs is None:
        if crs is None:
            raise InputError(no_crs_message(frame, what))
        frame = frame.set_crs(crs)
    return frame, is_osm


def _read_osm(path: Path, layer: str) -> gpd.GeoDataFrame:
    frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
    if layer != "multipolygons":
        return frame
    frame = frame[frame["building"].notna()].copy()
    if frame.empty:
        raise InputError(f"{path} has no features tagged building=*")
    tags = frame["other_tags"].fillna("")
    frame["floors"] = pd.to_numeric(_tag(tags, "building:levels"), errors="coerce")
    frame["height"] = pd.to_numeric(_tag(tags, "height").str.extract(r"([\d.]+)")[0],
                                    errors="coerce")
    # building=yes with amenity=school is a school: the amenity says more.
    btype = frame["building"].astype(str)
    amenity = frame["amenity"] if "amenity" in frame.columns else pd.Series(None, index=frame.index)
    generic = btype.isin(["yes", "public"]) & amenity.notna()
    frame["building_type"] = btype.where(~generic, amenity)
    way = frame["osm_way_id"]
    rel = frame["osm_id"]
    frame["osm_ref"] = np.where(way.notna(), "w" + way.astype(str), "r" + rel.astype(str))
    return frame.drop(columns=["building"])


def _tag(tags: pd.Series, key: str) -> pd.Series:
    pattern = '"' + re.escape(key) + r'"=>"([^"]*)"'
    return tags.str.extract(pattern)[0]


def _clean_polygons(frame: gpd.GeoDataFrame, report: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """Keep areal geometries, repair invalid ones, list every skipped or repaired row."""
    geoms = frame.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms)  # -1 missing, 3 Polygon, 6 MultiPolygon
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    areal = np.isin(kinds, [3, 6])
    if not areal.any():
        found = frame.geom_type.value_counts().to_dict()
        raise InputError(
            f"no building polygons found: geometry types {found}. gridopt needs building "
            "footprints (Polygon/MultiPolygon), not points or lines"
        )
    keep = areal & ~missing
    invalid = keep & ~shapely.is_valid(geoms)
    fixed = geoms.copy()
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        # make_valid may return a collection with stray lines: keep the polygonal part.
        fixed[invalid] = [_polygonal(g) for g in repaired]
    zero = keep & ((shapely.area(fixed) <= 0) | shapely.is_empty(fixed))
    positions = np.arange(len(frame))
    for i in positions[missing]:
        report.append(_row(frame, i, "skipped", "missing or empty geometry"))
    for i in positions[~areal & ~missing]:
        report.append(_row(frame, i, "skipped", f"not a polygon ({frame.geom_type.iloc[i]})"))
    for i in positions[invalid & ~zero]:
        report.append(_row(frame, i, "repaired", "invalid polygon fixed with make_valid"))
    for i in positions[zero]:
        report.append(_row(frame, i, "skipped", "zero-area polygon"))
    keep &= ~zero
    if not keep.any():
        raise InputError("every building geometry is missing, empty or of zero area")
    out = frame.copy()
    out.geometry = fixed
    return out[keep]


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _row(frame: pd.DataFrame, i: int, action: str, reason: str) -> dict[str, Any]:
    ref = frame["osm_ref"].iloc[i] if "osm_ref" in frame.columns else frame.index[i]
    return {"source_row": int(i), "building_id": ref, "action": action, "reason": reason}


def _set_ids(frame: gpd.GeoDataFrame, *, id_column: str | None, is_osm: bool) -> gpd.GeoDataFrame:
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(
                f"id_column {id_column!r} not found; available columns: "
                f"{', '.join(map(str, frame.columns))}"
            )
        ids = frame[id_column]
    elif is_osm:
        ids = frame["osm_ref"]
    elif not isinstance(frame.index, pd.RangeIndex):
        ids = pd.Series(frame.index, index=frame.index)
    else:
        ids = pd.Series(np.arange(len(frame)), index=frame.index)
    if ids.isna().any():
        raise InputError(f"building ids have {int(ids.isna().sum())} missing values")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        shown = sorted(map(str, dup.unique()))[:10]
        raise InputError(
            f"{dup.nunique()} building ids occur more than once (e.g. {shown}); ids must be "
            "unique: fix the data, pass another id_column, or reset the index"
        )
    out = frame.copy()
    out.index = pd.Index(ids.to_numpy(), name="building_id")
    out["building_id"] = ids.to_numpy()
    return out


def _detect(frame: pd.DataFrame, kind: str) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns}
    for alias in _COLUMN_ALIASES[kind]:
        if alias in lower:
            return lower[alias]
    return None


def _writable(frame: pd.DataFrame) -> pd.DataFrame:
    """Make columns GPKG can store: objects as strings, booleans kept, attrs dropped."""
    out = frame.copy()
    out.attrs = {}
    if out.index.name is not None and out.index.name not in out.columns:
        out = out.reset_index()
    else:
        out = out.reset_index(drop=True)
    for col in out.columns:
        if col == getattr(out, "_geometry_column_name", None):
            continue
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return out


# ---------------------------------------------------------------------------
# chunked reading: read_buildings_chunked
# ---------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".geoparquet")


def _parquet_geo(pf: Any) -> tuple[str, Any]:
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
    check(chunk_rows=chunk_rows)
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
def _decode(data: bytes, encoding: str | None, *, what: str) -> str:
    """Text of ``data`` in ``encoding``, or in the detected one."""
    if encoding is None:
        try:
            encoding = detect_encoding(data)
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    enc = _codec(encoding)
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        guess = _guess(data)
        raise InputError(
            f"{what} is not {encoding} (byte {exc.start} cannot be decoded)"
            + (f"; it reads as {guess}: pass --encoding {guess} or leave the option out"
               if guess else "")
        ) from None


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}; use utf-8, utf-8-sig, gbk or gb18030"
        ) from None


def _guess(data: bytes) -> str | None:
    try:
        return detect_encoding(data)
    except InputError:
        return None


def _ogr_encoding(path: Path, encoding: str | None, *, what: str) -> str | None:
    """The encoding to read a vector file with; Shapefile DBFs without .cpg are detected.

    GDAL reads a DBF without ``.cpg`` (and without a code page byte) as Latin-1,
    which garbles GBK names silently: here the raw bytes decide instead.
    """
    dbf = _dbf_of(path)
    if encoding is not None:
        enc = _codec(encoding)
        if dbf is None:
            # GeoPackage, GeoJSON ... are UTF-8 by definition: the option is for the others.
            log.info("%s: %s is UTF-8 by format; encoding=%s not applied", what, path.name, enc)
            return None
        _decode(_dbf_text_bytes(dbf), enc, what=f"{what} {dbf.name}")
        return enc
    if dbf is None or dbf.with_suffix(".cpg").exists() or dbf.with_suffix(".CPG").exists():
        return None
    data = _dbf_text_bytes(dbf)
    if data.isascii():
        return None
    enc = _decode_guess(data, what=f"{what} {dbf.name}")
    log.info("%s: %s has no .cpg; its text reads as %s", what, dbf.name, enc)
    return enc


def _decode_guess(data: bytes, *, what: str) -> str:
    try:
        enc = detect_encoding(data)
    except InputError as exc:
        raise InputError(f"{what}: {exc} (pass encoding= / --encoding)") from None
    return "UTF-8" if enc.startswith("utf-8") else "GB18030"


def _dbf_of(path: Path) -> Path | None:
    if path.suffix.lower() == ".dbf":
        return path
    if path.suffix.lower() != ".shp":
        return None
    for suffix in (".dbf", ".DBF"):
        if path.with_suffix(suffix).exists():
            return path.with_suffix(suffix)
    return None


def _dbf_text_bytes(dbf: Path, limit: int = 8 << 20) -> bytes:
    """Field names and records of a DBF (its text), without the binary header words."""
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            return b""
        header_len = int.from_bytes(head[8:10], "little")
        fields = fh.read(max(0, header_len - 32))
        names = b"".join(fields[i : i + 11].rstrip(b"\0") for i in range(0, len(fields) - 1, 32))
        return names + b" " + fh.read(limit)
