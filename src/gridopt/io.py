"""Reading buildings and streets, writing GeoPackages.

Everything gridopt computes happens in a projected metric CRS: a geographic
input is reprojected to its local UTM zone and the choice is logged.
Repaired or skipped features are never dropped silently: they are listed in
``gdf.attrs["gridopt_report"]`` (read it with :func:`repair_report`) and a
:class:`~gridopt.RepairWarning` says how many.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridopt._errors import InputError, RepairWarning
from gridopt.households import estimate_households
from gridopt.tags import barrier_kind as _barrier_kind_of
from gridopt.tags import boundary_class as _boundary_class

__all__ = [
    "BARRIER_HIGHWAYS",
    "read_area",
    "read_buildings",
    "read_streets",
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
    id_column: str | None = None,
    crs: Any = None,
    layer: str | None = None,
    **estimate_options: Any,
) -> gpd.GeoDataFrame:
    """Read building footprints and estimate their households.

    Parameters
    ----------
    source
        A GeoPackage, GeoJSON, GeoParquet, Shapefile or OpenStreetMap ``.osm.pbf``
        path, or a GeoDataFrame.
    households
        Column with known household counts (used as given). Without it,
        households are estimated (see :func:`gridopt.estimate_households`).
    floors, height, building_type
        Columns with storeys, height (m) and building tag. By default the usual
        names are detected (``Floor``, ``building:levels``, ``height``, ``building``).
    id_column
        Column with unique building ids; default: OSM ids, else the row number.
    crs
        CRS to assume when the source has none.
    layer
        Layer to read from a multi-layer file.
    **estimate_options
        Passed to :func:`gridopt.estimate_households` (``m2_per_household`` ...).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per building (Polygon or MultiPolygon) in a metric CRS, indexed
        by ``building_id``, with ``households`` and ``households_source`` among
        the columns listed in :func:`gridopt.estimate_households`.

    Raises
    ------
    InputError
        Missing or unreadable file, empty layer, no CRS, no polygons, duplicate
        ids, a named column that does not exist, bad household values.

    Examples
    --------
    >>> import gridopt
    >>> b = gridopt.read_buildings(gridopt.datasets.suzhou_buildings())
    >>> len(b), b.crs.to_epsg()
    (3076, 32651)
    >>> b["households_source"].value_counts().to_dict()
    {'floors_x_area': 2947, 'too_small': 129}
    """
    frame, is_osm = _load(source, layer=layer, crs=crs, what="buildings")
    report: list[dict[str, Any]] = []
    frame = _clean_polygons(frame, report)
    frame = _set_ids(frame, id_column=id_column, is_osm=is_osm)
    frame = to_metric_crs(frame, what="buildings")
    columns = {
        "floors": floors or _detect(frame, "floors"),
        "height": height or _detect(frame, "height"),
        "building_type": building_type or _detect(frame, "building_type"),
    }
    out = estimate_households(frame, households=households, **columns, **estimate_options)
    out.attrs["gridopt_report"] = report
    if report:
        warnings.warn(
            f"{len(report)} building features were repaired or skipped; "
            "see gridopt.io.repair_report(buildings) for the list",
            RepairWarning,
            stacklevel=2,
        )
    return out


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
) -> gpd.GeoDataFrame:
    """Read streets, rivers and railways as LineStrings in a metric CRS.

    Parameters
    ----------
    source
        A line file or ``.osm.pbf`` (its ``lines`` layer), or a GeoDataFrame.
    crs
        CRS to assume when the source has none.
    to_crs
        Target CRS (for example the buildings' CRS); default: UTM for a
        geographic source, else the source's own.
    layer
        Layer to read from a multi-layer file.

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
    if to_crs is not None:
        frame = frame.to_crs(to_crs)
    return to_metric_crs(frame, what="streets")


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
    if to_crs is not None:
        frame = frame.to_crs(to_crs)
    return to_metric_crs(frame, what="area")


def to_metric_crs(frame: gpd.GeoDataFrame, *, what: str = "data") -> gpd.GeoDataFrame:
    """Return ``frame`` in a projected metric CRS, reprojecting geographic data to UTM.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> g = gpd.GeoDataFrame(geometry=[Point(120.6, 31.3)], crs=4326)
    >>> to_metric_crs(g).crs.to_epsg()
    32651
    """
    if frame.crs is None:
        raise InputError(f"{what} have no CRS; set one with .set_crs() or pass crs=")
    if frame.crs.is_geographic:
        utm = frame.estimate_utm_crs()
        log.info("%s: CRS %s is geographic (degrees); reprojected to %s (%s)",
                 what, frame.crs.to_string(), utm.to_string(), utm.name)
        return frame.to_crs(utm)
    unit = frame.crs.axis_info[0].unit_name if frame.crs.axis_info else "metre"
    if unit not in ("metre", "meter", "m"):
        raise InputError(
            f"{what} have CRS {frame.crs.to_string()} in {unit}; gridopt needs metres. "
            "Reproject with .to_crs() to a metric CRS (for example the local UTM zone)."
        )
    return frame


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


# --------------------------------------------------------------------------- helpers


def _is_osm(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(_OSM_SUFFIXES)


def _load(source: Any, *, layer: str | None, crs: Any, what: str) -> tuple[gpd.GeoDataFrame, bool]:
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
                frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
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
            raise InputError(
                f"{what} have no CRS; pass crs='EPSG:4326' (or the right code) to say what "
                "the coordinates are"
            )
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
