"""Staff lists as street offices keep them: CSV (UTF-8 or GBK), Excel or a point layer.

Headers may be Chinese or English (姓名/name, 岗位/角色/role, 经度/纬度 or lon/lat,
x/y); roles are read in either language (网格员, 网格信息员/信息员, 专职调解员/调解员,
党员; see :data:`gridopt.vocab.STAFF_ROLES`). Addresses (住址) and phone numbers (手机)
are not used and not carried into the plan's files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from gridopt._errors import InputError
from gridopt.crs import remove_offset, reproject
from gridopt.io import _load, read_table
from gridopt.staffing._rules import StaffingRules
from gridopt.vocab import STAFF_ROLES, detect_column, parse_counts, staff_full_time, staff_role

__all__ = ["read_staff"]

log = logging.getLogger("gridopt")

_TABLES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls")
#: Columns read and then left out of the plan (no use for them; personal data).
_DROPPED = ("address", "phone")


def read_staff(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    crs: Any = None,
    encoding: str | None = None,
    coords: str = "wgs84",
    sheet: str | int | None = None,
    area: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Read and check a staff list; home points in ``crs`` (or lon/lat when it is None).

    Parameters
    ----------
    source
        A CSV (UTF-8, UTF-8 with BOM or GBK, detected), ``.xlsx`` workbook, point
        layer (Shapefile, GeoPackage, GeoJSON), DataFrame or GeoDataFrame.
    crs
        CRS of the result (the buildings' metric CRS). Plain ``x``/``y`` columns are
        taken to be in it, unless every value lies in the range of degrees and, with
        ``area``, reading them as longitude/latitude puts the homes nearer to it
        (without ``crs``, such values are read as longitude/latitude).
    encoding
        Encoding of a CSV or Shapefile; overrides detection.
    coords
        Coordinate system of longitude/latitude (``"wgs84"``).
    sheet
        Sheet of a workbook (default: the first).
    area
        The buildings or grids (in ``crs``) the staff serve; decides how ambiguous
        ``x``/``y`` are read.

    Returns
    -------
    geopandas.GeoDataFrame
        ``staff_id`` (the list's own ids, else 1, 2, ...), ``name`` (when given),
        ``role`` (one of :data:`gridopt.staffing.ROLES`), ``role_label`` (as written),
        ``full_time``, ``qualifications`` (without such a column, the people listed as
        mediators hold the standard's mediator qualification), the list's other
        columns (without addresses and phone numbers) and point geometries.

    Raises
    ------
    InputError
        No role column, unknown roles, duplicate ids, rows without coordinates,
        coordinates that cannot be numbers, an unreadable file.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"姓名": ["张三", "李四"], "岗位": ["网格员", "党员"],
    ...                       "经度": [120.62, 120.63], "纬度": [31.31, 31.32]})
    >>> s = read_staff(table, crs=32651)
    >>> s[["staff_id", "name", "role"]].values.tolist()
    [['1', '张三', 'grid_worker'], ['2', '李四', 'party_member']]
    """
    frame = _table(source, encoding=encoding, sheet=sheet)
    cols = {kind: detect_column(frame.columns, kind, table="staff") for kind in _KINDS}
    if cols["role"] is None:
        raise InputError(
            "the staff list has no role column (岗位, 角色, 职务 or role); its columns are: "
            f"{', '.join(map(str, _columns(frame)))}"
        )
    geometry = _homes(frame, cols, crs=crs, coords=coords, area=area)
    out = pd.DataFrame(index=frame.index)
    out["staff_id"] = _ids(frame, cols["staff_id"])
    if cols["name"] is not None:
        out["name"] = frame[cols["name"]].astype(object)
    labels = frame[cols["role"]]
    out["role"] = _roles(labels)
    out["role_label"] = labels.astype(str).str.strip()
    if cols["full_time"] is not None:
        out["full_time"] = frame[cols["full_time"]].map(_truthy)
    else:
        out["full_time"] = labels.map(staff_full_time).astype(bool)
    used = {c for c in cols.values() if c is not None}
    drop = {cols[k] for k in _DROPPED if cols[k] is not None}
    geom_name = getattr(frame, "_geometry_column_name", None)
    for col in frame.columns:
        if col not in used and col not in drop and col != geom_name and col not in out.columns:
            out[col] = frame[col]
    for kind in ("community", "current_post", "qualifications"):
        if cols[kind] is not None:
            out[kind] = frame[cols[kind]]
    if cols["qualifications"] is None:
        # A list that names someone 专职调解员 says they are a mediator; without a
        # qualifications column, that is the qualification the standard asks for.
        cert = StaffingRules().mediator_qualification or ""
        out["qualifications"] = out["role"].map(lambda r: cert if r == "mediator" else "")
    result = gpd.GeoDataFrame(out, geometry=geometry, crs=geometry.crs)
    if crs is not None and result.crs is not None and result.crs != crs:
        result = reproject(result, crs, what="staff")
    elif crs is not None and result.crs is None:
        result = result.set_crs(crs)
    return result.reset_index(drop=True)


_KINDS = (
    "staff_id", "name", "role", "lon", "lat", "x", "y", "address", "phone", "full_time",
    "community", "current_post", "qualifications",
)  # fmt: skip


def _table(source: Any, *, encoding: str | None, sheet: str | int | None) -> pd.DataFrame:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"staff file not found: {path}")
        if path.suffix.lower() in _TABLES:
            frame = read_table(path, encoding=encoding, sheet=sheet, what="staff list")
            frame.index = frame.index + 2  # rows as the spreadsheet numbers them (header: 1)
        else:
            frame, _ = _load(path, layer=None, crs=None, what="staff", encoding=encoding)
    elif isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        raise InputError(
            "staff must be a file (CSV, .xlsx, point layer), a DataFrame or a GeoDataFrame, "
            f"not {type(source).__name__}"
        )
    if len(frame) == 0:
        raise InputError("the staff list is empty; pass the list with one row per person")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _columns(frame: pd.DataFrame) -> list[Any]:
    geom = getattr(frame, "_geometry_column_name", None)
    return [c for c in frame.columns if c != geom]


def _ids(frame: pd.DataFrame, column: Any) -> pd.Series:
    if column is None:
        return pd.Series([str(i + 1) for i in range(len(frame))], index=frame.index)
    ids = frame[column].map(lambda v: None if pd.isna(v) else _id_text(v))
    missing = ids.isna()
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} staff row(s) have no id in column {column!r} (rows "
            f"{_rows(frame.index[missing.to_numpy()])}); fill them or drop the column"
        )
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise InputError(
            f"the staff list repeats ids in column {column!r}: {sorted(set(dup))[:10]}; "
            "every person needs a unique id"
        )
    return ids


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _roles(labels: pd.Series) -> pd.Series:
    roles = labels.map(staff_role)
    unknown = roles.isna()
    if unknown.any():
        found = sorted({str(v) for v in labels[unknown]})
        known = sorted({k for k in STAFF_ROLES if not k.isascii()}) + sorted(
            {r for r, _ in STAFF_ROLES.values()}
        )
        raise InputError(
            f"{int(unknown.sum())} staff row(s) have roles gridopt does not know: {found[:10]} "
            f"(rows {_rows(labels.index[unknown.to_numpy()])}); use one of {', '.join(known)}"
        )
    return roles


def _homes(
    frame: pd.DataFrame, cols: dict[str, Any], *, crs: Any, coords: str, area: Any
) -> gpd.GeoSeries:
    """Home points: the layer's geometry, lon/lat columns, or x/y (metric or degrees)."""
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        geom = frame.geometry
        kinds = set(geom.dropna().geom_type)
        if kinds - {"Point"}:
            geom = geom.representative_point()
        _check_present(frame, ~(geom.isna() | geom.is_empty))
        if geom.crs is not None and geom.crs.is_geographic:
            geom = remove_offset(gpd.GeoDataFrame(geometry=geom), coords).geometry
        return geom
    if cols["lon"] is not None and cols["lat"] is not None:
        xcol, ycol, degrees = cols["lon"], cols["lat"], True
    elif cols["x"] is not None and cols["y"] is not None:
        xcol, ycol, degrees = cols["x"], cols["y"], None
    else:
        where = " (住址 addresses are not geocoded)" if cols["address"] is not None else ""
        raise InputError(
            "the staff list has no home coordinates: add 经度/纬度 (longitude/latitude) or "
            f"x/y in the buildings' CRS{where}; its columns are: "
            f"{', '.join(map(str, _columns(frame)))}"
        )
    x = parse_counts(frame[xcol], what=f"staff column {xcol!r}")
    y = parse_counts(frame[ycol], what=f"staff column {ycol!r}")
    _check_present(frame, x.notna() & y.notna())
    if degrees is None:
        degrees = bool((x.abs() <= 180).all() and (y.abs() <= 90).all())
        if degrees and crs is not None:
            degrees = area is not None and _nearer_as_degrees(x, y, crs, area)
        if degrees:
            log.info("staff: x/y lie within -180..180 / -90..90: read as longitude/latitude")
    if degrees:
        bad = (x.abs() > 180) | (y.abs() > 90)
        if bad.any():
            raise InputError(
                f"{int(bad.sum())} staff row(s) have longitude/latitude out of range (rows "
                f"{_rows(frame.index[bad.to_numpy()])}): are 经度 and 纬度 swapped?"
            )
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326, index=frame.index)
        return remove_offset(points, coords).geometry
    return gpd.GeoSeries(gpd.points_from_xy(x, y), index=frame.index, crs=crs)


def _nearer_as_degrees(x: pd.Series, y: pd.Series, crs: Any, area: gpd.GeoDataFrame) -> bool:
    """Whether x/y read as lon/lat lie nearer to ``area`` than read as metres in ``crs``."""
    box = shapely.box(*area.to_crs(crs).total_bounds)
    metric = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=crs)
    lonlat = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=4326).to_crs(crs)
    return float(lonlat.distance(box).median()) < float(metric.distance(box).median())


def _check_present(frame: pd.DataFrame, present: pd.Series) -> None:
    if not present.all():
        missing = frame.index[~present.to_numpy()]
        raise InputError(
            f"{len(missing)} staff row(s) have no home coordinates (rows {_rows(missing)}); "
            "give each person's 经度/纬度 (or x/y)"
        )


def _rows(index: pd.Index) -> str:
    return ", ".join(map(str, index[:10])) + (" ..." if len(index) > 10 else "")


def _truthy(value: Any) -> bool:
    if pd.isna(value):
        return True
    return str(value).strip().lower() not in ("0", "false", "no", "n", "否", "兼职", "f")
