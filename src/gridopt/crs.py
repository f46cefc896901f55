"""Coordinate systems: one policy for every reprojection, and China's GCJ-02 and BD-09.

gridopt measures areas, walks and distances in metres, so every call works in one
metric CRS, chosen once from the buildings (:class:`WorkingCRS`), and writes its
results back in the coordinate system the data came in.

The rule. The working CRS is the WGS 84 UTM zone (EPSG:326xx / 327xx) of the centre
of the buildings' lon/lat extent; data already in a WGS 84 UTM zone is kept as it is.
Reprojected coordinates are rounded to the millimetre (:data:`SNAP_M`).
So the same buildings give the same working coordinates whatever their label: CGCS2000
geographic (EPSG:4490), its 3-degree Gauss-Kruger zones with the zone prefix
(EPSG:4513-4533) or without (4534-4554), its 6-degree zones (4491-4501 / 4502-4512),
WGS 84 lon/lat or Web Mercator all land in the same UTM zone. (CGCS2000 and WGS 84
differ by centimetres; PROJ treats them as equal, as the data's accuracy warrants.)

Chinese web maps do not use WGS 84: AMap (Gaode) and Tencent publish GCJ-02
coordinates, Baidu BD-09, offset from WGS 84 by 300-700 m and 1-1.5 km. ``coords=``
says which of the three lon/lat systems the data uses; the offsets are removed on the
way in and put back on the way out (GCJ-02 in, GCJ-02 out). The forward transforms
are the published closed formulas; their inverses are solved by fixed-point
iteration to far below a centimetre. Outside China's bounding box
(:data:`CHINA_BOUNDS`) no offset applies, as in the standard implementations.

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import Point
>>> g = gpd.GeoDataFrame(geometry=[Point(120.62, 31.31)], crs=4326)
>>> w = WorkingCRS.choose(g, coords="gcj02")
>>> w.crs.to_epsg(), w.coords
(32651, 'gcj02')
>>> back = w.to_output(w.to_working(g))
>>> round(float(back.geometry.x.iloc[0]), 7), round(float(back.geometry.y.iloc[0]), 7)
(120.62, 31.31)
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gridopt._errors import InputError, RepairWarning

__all__ = [
    "CHINA_BOUNDS",
    "COORDS",
    "SNAP_M",
    "WorkingCRS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_coords",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "lonlat_points",
    "no_crs_message",
    "remove_offset",
    "reproject",
    "shift_geometry",
    "to_wgs84",
    "utm_crs",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
    "written_plan_to_working",
]

log = logging.getLogger("gridopt")

#: The lon/lat systems ``coords=`` accepts.
COORDS = ("wgs84", "gcj02", "bd09")

#: China's bounding box (lon_min, lat_min, lon_max, lat_max) of the standard
#: implementations: inside it GCJ-02 / BD-09 are offset, outside they equal WGS 84.
CHINA_BOUNDS = (72.004, 0.8293, 137.8347, 55.8271)

#: Working coordinates are rounded to this (metres) when data is reprojected.
SNAP_M = 0.001

#: Key of ``GeoDataFrame.attrs`` holding the :class:`WorkingCRS` of frames gridopt read.
ATTR = "gridopt_crs"

_NAMES = {"wgs84": "WGS 84", "gcj02": "GCJ-02", "bd09": "BD-09"}
# GCJ-02 constants: the Krasovsky 1940 ellipsoid.
_A = 6378245.0
_EE = 0.00669342162296594323
# BD-09 constant.
_X_PI = math.pi * 3000.0 / 180.0
# Inverse transforms stop when the forward image is this close (degrees, ~0.1 mm).
_TOL_DEG = 1e-9
_MAX_ITER = 50
# A projected input's data may spill this far (degrees) beyond its CRS's area of use.
_MARGIN_DEG = 2.0


# --------------------------------------------------------------------------- offsets


def in_china(lon: Any, lat: Any) -> np.ndarray:
    """Whether points lie in China's bounding box, where GCJ-02 and BD-09 are offset.

    Examples
    --------
    >>> in_china([116.39, 7.42], [39.91, 43.73]).tolist()
    [True, False]
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x0, y0, x1, y1 = CHINA_BOUNDS
    return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (degrees) at WGS 84 ``lon``, ``lat`` (the published formula)."""
    x, y = lon - 105.0, lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 lon/lat to GCJ-02 (AMap/Gaode, Tencent); unchanged outside China.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.397428, 39.90923)  # Tiananmen
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.403672, 39.910634)
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat to BD-09 (Baidu); unchanged outside China.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.403672, 39.910634)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410044, 39.916973)
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    bx, by = z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006
    inside = in_china(lon, lat)
    return np.where(inside, bx, lon), np.where(inside, by, lat)


def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 lon/lat to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(forward: Any, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(x) = (lon, lat)`` by fixed-point iteration.

    The offsets vary slowly (their Jacobian is the identity within 1e-4), so
    ``x <- x - (forward(x) - target)`` gains about four digits per step.
    """
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = lon.copy(), lat.copy()
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        x, y = x - ex, y - ey
        err = np.maximum(np.abs(ex), np.abs(ey))
        if not err.size or np.nanmax(err) < _TOL_DEG:
            break
    return x, y


def gcj02_to_wgs84(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat to WGS 84: the exact inverse of :func:`wgs84_to_gcj02` (< 0.1 mm).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.403672, 39.910634)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.397428, 39.90923)
    """
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 lon/lat to GCJ-02: the exact inverse of :func:`gcj02_to_bd09`."""
    return _invert(gcj02_to_bd09, lon, lat)


def bd09_to_wgs84(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 lon/lat to WGS 84: the exact inverse of :func:`wgs84_to_bd09`."""
    return _invert(wgs84_to_bd09, lon, lat)


_SHIFTS = {
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("bd09", "wgs84"): bd09_to_wgs84,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("gcj02", "bd09"): gcj02_to_bd09,
}


def shift_geometry(geoms: Any, source: str, target: str) -> np.ndarray:
    """Move lon/lat geometries from one of :data:`COORDS` to another.

    Parameters
    ----------
    geoms
        Shapely geometries (array, list or GeoSeries) in lon/lat degrees.
    source, target
        ``"wgs84"``, ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    numpy.ndarray
        The geometries with every vertex moved (``shapely.transform``).

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> [p] = shift_geometry([Point(121.6, 38.9)], "wgs84", "gcj02")  # Dalian
    >>> round(p.x, 4), round(p.y, 4)
    (121.6049, 38.9008)
    """
    source, target = check_coords(source), check_coords(target)
    arr = np.asarray(geoms.to_numpy() if hasattr(geoms, "to_numpy") else geoms, dtype=object)
    if source == target:
        return arr.copy()
    func = _SHIFTS[(source, target)]

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = func(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(arr, move)


def check_coords(coords: Any) -> str:
    """``coords`` as one of :data:`COORDS`, or an :class:`InputError` saying the choices.

    Examples
    --------
    >>> check_coords("GCJ-02")
    'gcj02'
    """
    key = str(coords).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in COORDS:
        raise InputError(
            f"coords={coords!r} is not a lon/lat system gridopt knows; use one of "
            f"{', '.join(COORDS)} (GCJ-02: AMap/Gaode, Tencent; BD-09: Baidu)"
        )
    return key


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class WorkingCRS:
    """The coordinate systems of one call: where the data came from, where it is computed.

    Build it with :meth:`choose` (once per call, from the buildings); then
    :meth:`to_working` brings every input into :attr:`crs` and :meth:`to_output`
    takes results back to :attr:`source` (re-applying a GCJ-02/BD-09 offset).

    Attributes
    ----------
    source
        The input's CRS, as labelled (for GCJ-02/BD-09 data the lon/lat CRS it is
        labelled with, usually EPSG:4326).
    crs
        The metric working CRS (a WGS 84 UTM zone, or an explicit target).
    coords
        The lon/lat system of geographic inputs and outputs: ``"wgs84"``,
        ``"gcj02"`` or ``"bd09"``.
    """

    source: pyproj.CRS
    crs: pyproj.CRS
    coords: str = "wgs84"

    @classmethod
    def choose(
        cls,
        frame: gpd.GeoDataFrame | gpd.GeoSeries,
        *,
        coords: str = "wgs84",
        crs: Any = None,
        what: str = "buildings",
    ) -> WorkingCRS:
        """Check ``frame``'s coordinates and pick the working CRS for them.

        Parameters
        ----------
        frame
            The buildings (or other data that defines the study area).
        coords
            The lon/lat system of geographic data: ``"wgs84"``, ``"gcj02"``, ``"bd09"``.
        crs
            A metric CRS to work in instead of the UTM zone (it must be in metres).
        what
            What the data is, for messages.

        Raises
        ------
        InputError
            No CRS; swapped lat/lon; degrees labelled as metres or the reverse; a
            Gauss-Kruger zone that does not match the coordinates; a projected CRS
            not in metres; ``coords`` other than WGS 84 for projected data.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely.geometry import Point
        >>> g = gpd.GeoDataFrame(geometry=[Point(559020.76, 3465510.64)], crs=4549)
        >>> WorkingCRS.choose(g).crs.to_epsg()  # CGCS2000 GK CM 120E -> UTM 51N
        32651
        """
        coords = check_coords(coords)
        source = frame.crs
        if source is None:
            if coords == "wgs84":
                raise InputError(no_crs_message(frame, what))
            source = pyproj.CRS.from_epsg(4326)  # GCJ-02/BD-09 are lon/lat by definition
        source = pyproj.CRS.from_user_input(source)
        if coords != "wgs84" and not source.is_geographic:
            raise InputError(
                f"coords={coords!r} applies to lon/lat data, but the {what} are in "
                f"{_label(source)} (projected); leave coords at 'wgs84' or give lon/lat data"
            )
        bounds = _bounds(frame, what)
        if source.is_geographic:
            lon, lat = _check_lonlat(bounds, source, what)
            if coords != "wgs84":
                lon, lat = (float(v) for v in _SHIFTS[(coords, "wgs84")](lon, lat))
        else:
            lon, lat = _check_projected(bounds, source, what)
        if crs is not None:
            target = pyproj.CRS.from_user_input(crs)
            if target.is_geographic or _unit(target) not in ("metre", "meter", "m"):
                raise InputError(
                    f"the working CRS must be projected in metres; {_label(target)} is not"
                )
        elif _is_wgs84_utm(source):
            target = source
        else:
            target = utm_crs(lon, lat)
        return cls(source=source, crs=target, coords=coords)

    @classmethod
    def of(cls, frame: Any) -> WorkingCRS | None:
        """The policy attached to a frame gridopt read (``frame.attrs``), or ``None``."""
        found = getattr(frame, "attrs", {}).get(ATTR)
        return found if isinstance(found, cls) else None

    @classmethod
    def for_frame(
        cls, frame: gpd.GeoDataFrame, *, coords: str = "wgs84", what: str = "buildings"
    ) -> WorkingCRS:
        """The policy a frame read by gridopt carries, else :meth:`choose` for it."""
        found = cls.of(frame)
        if found is not None and frame.crs is not None and frame.crs == found.crs:
            return found
        return cls.choose(frame, coords=coords, what=what)

    def attach(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Record this policy on ``frame.attrs`` (in place) and return the frame."""
        frame.attrs[ATTR] = self
        return frame

    def to_working(
        self,
        frame: gpd.GeoDataFrame | gpd.GeoSeries,
        *,
        what: str = "data",
        coords: str | None = None,
        warn: bool = False,
    ) -> Any:
        """``frame`` in the working CRS, with any GCJ-02/BD-09 offset removed.

        Parameters
        ----------
        frame
            Data in any CRS; without one it is taken to be in :attr:`source`.
        what
            What the data is, for the log line.
        coords
            The lon/lat system of ``frame`` when geographic; default :attr:`coords`
            (an OpenStreetMap file is always ``"wgs84"``).
        warn
            Say it with a :class:`~gridopt.RepairWarning` instead of a log line (for
            library calls handed data in mismatched CRSs).
        """
        coords = self.coords if coords is None else check_coords(coords)
        if frame.crs is None:
            log.info(
                "%s: no CRS; taken to be %s like the buildings",
                what,
                _describe(self.source, coords),
            )
            frame = frame.set_crs(self.source)
        source = frame.crs
        if source == self.crs:
            return frame
        if source.is_geographic and coords != "wgs84":
            frame = _with_geometry(frame, shift_geometry(frame.geometry, coords, "wgs84"))
        _announce(
            what,
            _describe(source, coords if source.is_geographic else "wgs84"),
            _describe(self.crs),
            warn=warn,
        )
        out = frame.to_crs(self.crs)
        return _with_geometry(out, _snap(out.geometry.to_numpy()))

    def to_output(self, frame: Any) -> Any:
        """``frame`` (working CRS) back in the input's CRS and lon/lat system.

        Frames without geometry are returned as they are.
        """
        if not isinstance(frame, (gpd.GeoDataFrame, gpd.GeoSeries)) or (
            isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name not in frame
        ):
            return frame
        if frame.crs is None:
            return frame
        out = frame if frame.crs == self.source else frame.to_crs(self.source)
        if self.coords != "wgs84":
            out = _with_geometry(out, shift_geometry(out.geometry, "wgs84", self.coords))
        return out

    def __repr__(self) -> str:
        return (
            f"WorkingCRS(source={_label(self.source)!r}, crs={_label(self.crs)!r}, "
            f"coords={self.coords!r})"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> WorkingCRS:
        # Immutable; pandas deep-copies attrs on every operation, so sharing is cheaper.
        return self

    def describe(self) -> str:
        """One line: the input's system and the working CRS."""
        return f"input {_describe(self.source, self.coords)}, working CRS {_describe(self.crs)}"


def remove_offset(frame: Any, coords: str) -> Any:
    """Lon/lat ``frame`` in GCJ-02/BD-09 (``coords``) moved to WGS 84; others unchanged.

    For tables read before the working CRS is known (community polygons, staff
    homes): the offset goes first, the projection follows with the buildings'.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> g = gpd.GeoDataFrame(geometry=[Point(116.41, 39.91)], crs=4326)
    >>> remove_offset(g, "gcj02").geometry.x.round(3).tolist()
    [116.404]
    """
    coords = check_coords(coords)
    if coords == "wgs84" or frame.crs is None or not frame.crs.is_geographic:
        return frame
    return _with_geometry(frame, shift_geometry(frame.geometry.to_numpy(), coords, "wgs84"))


def utm_crs(lon: float, lat: float) -> pyproj.CRS:
    """The WGS 84 UTM zone of a lon/lat point (the 6-degree zones, no exceptions).

    Examples
    --------
    >>> utm_crs(120.62, 31.31).to_epsg(), utm_crs(-58.4, -34.6).to_epsg()
    (32651, 32721)
    """
    zone = min(60, max(1, math.floor((lon + 180.0) / 6.0) + 1))
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def reproject(frame: Any, crs: Any, *, what: str = "data", warn: bool = False) -> Any:
    """``frame`` in ``crs`` (another frame's CRS), saying so once when it moves.

    A frame without a CRS is taken to be in ``crs`` already.
    """
    if crs is None:
        return frame
    if frame.crs is None:
        return frame.set_crs(crs)
    target = pyproj.CRS.from_user_input(crs)
    if frame.crs == target:
        return frame
    _announce(what, _describe(frame.crs), _describe(target), warn=warn)
    return frame.to_crs(target)


def lonlat_points(
    frame: gpd.GeoDataFrame, *, near: Any, what: str = "points", within_m: float = 50_000.0
) -> gpd.GeoDataFrame:
    """Points labelled with a projected CRS whose x/y are in fact lon/lat degrees, converted.

    A staff table with x/y in degrees beside buildings in metres is common. When the
    points read as metres lie far from ``near`` (more than ``within_m``) and read as
    WGS 84 lon/lat lie close to it, they are taken as lon/lat and reprojected (logged);
    otherwise ``frame`` is returned as it is.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> grids = gpd.GeoSeries([Point(273_700, 3_466_900)], crs=32651)
    >>> staff = gpd.GeoDataFrame(geometry=[Point(120.62, 31.31)], crs=32651)
    >>> round(float(lonlat_points(staff, near=grids, what="staff").geometry.x.iloc[0]), -2)
    273500.0
    """
    crs = frame.crs
    if crs is None or crs.is_geographic or not len(frame) or near is None or not len(near):
        return frame
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    if not len(xy) or not np.isfinite(xy).all():
        return frame
    if (np.abs(xy[:, 0]) > 180.0).any() or (np.abs(xy[:, 1]) > 90.0).any():
        return frame
    x0, y0, x1, y1 = near.total_bounds

    def far(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        dx = np.maximum(np.maximum(x0 - px, px - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - py, py - y1), 0.0)
        return ~(np.hypot(dx, dy) <= within_m)

    if not far(xy[:, 0], xy[:, 1]).all():
        return frame
    wgs84 = pyproj.CRS.from_epsg(4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        px, py = pyproj.Transformer.from_crs(wgs84, crs, always_xy=True).transform(
            xy[:, 0], xy[:, 1]
        )
    if far(np.asarray(px), np.asarray(py)).any():
        return frame
    _announce(
        f"{what} (x/y are lon/lat degrees, not metres)",
        _describe(wgs84),
        _describe(crs),
        warn=False,
    )
    return frame.set_crs(wgs84, allow_override=True).to_crs(crs)


def written_plan_to_working(layers: dict[str, Any]) -> dict[str, Any]:
    """The layers of a written ``plan.gpkg`` in one working CRS, offsets removed.

    A plan is written in its input's coordinate system; its ``config`` layer says
    which lon/lat system (``coords``) that was, so a GCJ-02 plan is drawn in the right
    place when it is read back.
    """
    coords = "wgs84"
    config = layers.get("config")
    if config is not None and {"name", "value"} <= set(config.columns):
        found = config.loc[config["name"] == "coords", "value"]
        if len(found):
            coords = check_coords(str(found.iloc[0]).strip("'\""))
    geo = {n: f for n, f in layers.items() if isinstance(f, gpd.GeoDataFrame) and f.crs is not None}
    if "buildings" not in geo:
        return layers
    if not geo["buildings"].crs.is_geographic:
        coords = "wgs84"  # written in a projected CRS (city plans): no offset to remove
    policy = WorkingCRS.choose(geo["buildings"], coords=coords)
    return {n: policy.to_working(f, what=n) if n in geo else f for n, f in layers.items()}


def to_wgs84(frame: Any) -> Any:
    """``frame`` in true WGS 84 lon/lat (EPSG:4326), for web maps drawn in WGS 84.

    Take it from the working CRS, never from the output: GCJ-02 output is not WGS 84.
    """
    return frame.to_crs(4326)


# --------------------------------------------------------------------------- checks


def _bounds(frame: Any, what: str) -> np.ndarray:
    geoms = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else frame
    arr = np.asarray(geoms.to_numpy(), dtype=object)
    arr = arr[~(shapely.is_missing(arr) | shapely.is_empty(arr))]
    if not len(arr):
        raise InputError(f"the {what} have no geometry to place them; check the file")
    bounds = shapely.total_bounds(arr)
    if not np.isfinite(bounds).all():
        raise InputError(f"the {what} have coordinates that are not finite numbers (NaN, inf)")
    return bounds


def _check_lonlat(bounds: np.ndarray, crs: pyproj.CRS, what: str) -> tuple[float, float]:
    """Lon/lat plausibility; returns the centre."""
    x0, y0, x1, y1 = (float(v) for v in bounds)
    lon, lat = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    big = max(abs(x0), abs(x1), abs(y0), abs(y1))
    if big > 360.0:
        raise InputError(
            f"the {what} are labelled {_label(crs)} (degrees) but their coordinates reach "
            f"{big:,.0f}: they are metres of a projected CRS{_guess_projected(x0, x1)}; "
            "set the right CRS (--crs EPSG:xxxx, or crs=/set_crs)"
        )
    if max(abs(y0), abs(y1)) > 90.0 or max(abs(x0), abs(x1)) > 180.0:
        hint = (
            " (x looks like latitude, y like longitude: swap the columns)"
            if max(abs(x0), abs(x1)) <= 90.0
            else ""
        )
        raise InputError(
            f"the {what} have latitudes up to {max(abs(y0), abs(y1)):.1f} and longitudes up "
            f"to {max(abs(x0), abs(x1)):.1f}, outside lat [-90, 90] / lon [-180, 180]{hint}"
        )
    if not bool(in_china(lon, lat)) and bool(in_china(lat, lon)):
        raise InputError(
            f"the {what} lie at lon {lon:.4f}, lat {lat:.4f}, but read the other way round "
            f"(lon {lat:.4f}, lat {lon:.4f}) they are in China: x looks like latitude; swap "
            "the x/y (lon/lat) columns"
        )
    return lon, lat


def _check_projected(bounds: np.ndarray, crs: pyproj.CRS, what: str) -> tuple[float, float]:
    """Projected plausibility (metres, zone prefix, area of use); returns the lon/lat centre."""
    unit = _unit(crs)
    if unit not in ("metre", "meter", "m"):
        raise InputError(
            f"the {what} have CRS {_label(crs)} in {unit}; gridopt needs a CRS in metres: "
            "reproject them (e.g. to the local UTM zone) or fix the CRS label"
        )
    x0, y0, x1, y1 = (float(v) for v in bounds)
    if _inside_area(crs, x0, y0, x1, y1) and (x1 - x0) < 5 and (y1 - y0) < 5:
        raise InputError(
            f"the {what} are labelled {_label(crs)} (metres) but span only "
            f"{x1 - x0:.4f} x {y1 - y0:.4f} units around ({x0:.4f}, {y0:.4f}): these look "
            "like lon/lat degrees; label them EPSG:4326 (or EPSG:4490 for CGCS2000)"
        )
    _check_zone_prefix(x0, x1, crs, what)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    to_lonlat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lon, lat = (float(v) for v in to_lonlat.transform(cx, cy))
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError(
            f"the {what}' coordinates (around {cx:,.0f}, {cy:,.0f}) do not fit their CRS "
            f"{_label(crs)}: a wrong EPSG code{_guess_projected(x0, x1)}"
        )
    area = crs.area_of_use
    if area is not None:
        w, s, e, n = area.bounds
        if e < w:  # the area crosses the antimeridian
            e += 360.0
            lon_chk = lon + 360.0 if lon < w - _MARGIN_DEG else lon
        else:
            lon_chk = lon
        if not (
            w - _MARGIN_DEG <= lon_chk <= e + _MARGIN_DEG
            and s - _MARGIN_DEG <= lat <= n + _MARGIN_DEG
        ):
            raise InputError(
                f"the {what} labelled {_label(crs)} lie at lon {lon:.2f}, lat {lat:.2f}, far "
                f"outside that CRS's area (lon {w:.1f}..{area.bounds[2]:.1f}, lat {s:.1f}.."
                f"{n:.1f}): the CRS label is wrong (another zone?){_guess_projected(x0, x1)}"
            )
    return lon, lat


def _inside_area(crs: pyproj.CRS, x0: float, y0: float, x1: float, y1: float) -> bool:
    """Whether numbers read as lon/lat lie inside ``crs``'s area of use (degrees mislabelled)."""
    area = crs.area_of_use
    if area is None:
        return False
    w, s, e, n = area.bounds
    return e >= w and w <= x0 and x1 <= e and s <= y0 and y1 <= n


def _check_zone_prefix(x0: float, x1: float, crs: pyproj.CRS, what: str) -> None:
    """Gauss-Kruger eastings may carry the zone number in front (40,559,020 = zone 40)."""
    fe = _false_easting(crs)
    if fe is None:
        return
    prefix = int(fe // 1_000_000)
    cx = (x0 + x1) / 2.0
    data_prefix = int(cx // 1_000_000) if cx >= 1_000_000 else 0
    if prefix == data_prefix:
        return
    if prefix and data_prefix:
        found = f"eastings with zone prefix {data_prefix} ({cx:,.0f})"
    elif prefix:
        found = f"eastings without a zone prefix ({cx:,.0f})"
    else:
        found = f"eastings with what looks like zone prefix {data_prefix} ({cx:,.0f})"
    expect = f"zone prefix {prefix}" if prefix else "no zone prefix"
    if data_prefix and not 13 <= data_prefix <= 60:
        return  # not a zone number: leave it to the area-of-use check
    raise InputError(
        f"the {what} have {found}, but their CRS {_label(crs)} has {expect}: the coordinates "
        f"are labelled with the wrong Gauss-Kruger zone{_guess_projected(x0, x1)}"
    )


def _false_easting(crs: pyproj.CRS) -> float | None:
    """The false easting of a Transverse Mercator CRS, or ``None``."""
    op = crs.coordinate_operation
    if op is None or "transverse mercator" not in (op.method_name or "").lower():
        return None
    for p in op.params:
        if p.code == 8806 or p.name.lower() == "false easting":
            return float(p.value)
    return None


def _guess_projected(x0: float, x1: float) -> str:
    """A hint naming the CGCS2000 zone an easting's prefix points to."""
    cx = (x0 + x1) / 2.0
    zone = int(cx // 1_000_000)
    if 25 <= zone <= 45:
        return (
            f"; eastings starting {zone},xxx,xxx are CGCS2000 3-degree zone {zone} "
            f"(CM {3 * zone}E, EPSG:{4513 + zone - 25})"
        )
    if 13 <= zone <= 23:
        return (
            f"; eastings starting {zone},xxx,xxx are CGCS2000 6-degree zone {zone} "
            f"(CM {6 * zone - 3}E, EPSG:{4491 + zone - 13})"
        )
    return ""


def no_crs_message(frame: Any, what: str) -> str:
    """The one message for data without a CRS: what the coordinates look like, how to fix."""
    try:
        x0, y0, x1, y1 = (float(v) for v in _bounds(frame, what))
    except InputError:
        x0 = y0 = x1 = y1 = float("nan")
    guess = ""
    if max(abs(x0), abs(x1)) <= 180 and max(abs(y0), abs(y1)) <= 90:
        guess = " (the coordinates look like lon/lat: EPSG:4326, or EPSG:4490 for CGCS2000)"
    elif hint := _guess_projected(x0, x1):
        guess = f" ({hint[2:]})"
    return (
        f"the {what} have no CRS{guess}; say what the coordinates are: --crs EPSG:xxxx on "
        "the command line, crs= in gridopt.read_buildings, or gdf.set_crs(...)"
    )


def _unit(crs: pyproj.CRS) -> str:
    return crs.axis_info[0].unit_name if crs.axis_info else "metre"


def _is_wgs84_utm(crs: pyproj.CRS) -> bool:
    code = crs.to_epsg(min_confidence=100) if not crs.is_geographic else None
    return code is not None and (32601 <= code <= 32660 or 32701 <= code <= 32760)


def _label(crs: pyproj.CRS) -> str:
    auth = crs.to_authority(min_confidence=100)
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def _describe(crs: pyproj.CRS, coords: str = "wgs84") -> str:
    text = f"{_label(crs)} ({crs.name})"
    if crs.is_geographic and coords != "wgs84":
        text = f"{_NAMES[coords]} lon/lat (labelled {text})"
    return text


def _announce(what: str, source: str, target: str, *, warn: bool) -> None:
    """The one wording of a reprojection: a log line, or one warning where asked."""
    message = f"{what}: reprojected from {source} to {target}"
    if warn:
        warnings.warn(message, RepairWarning, stacklevel=4)
    else:
        log.info(message)


def _snap(geoms: np.ndarray) -> np.ndarray:
    """Round working coordinates to :data:`SNAP_M`.

    The same buildings under two labels (EPSG:4490 and 4549) reach the working CRS
    1e-9 m apart; rounded, they are the same numbers, so the plans are the same too.
    """
    return shapely.transform(geoms, lambda xy: np.round(xy / SNAP_M) * SNAP_M)


def _with_geometry(frame: Any, geoms: np.ndarray) -> Any:
    if isinstance(frame, gpd.GeoSeries):
        return gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs, name=frame.name)
    out = frame.copy()
    out[out.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs)
    return out
