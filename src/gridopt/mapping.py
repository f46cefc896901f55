"""Maps of a plan: an interactive Leaflet page and a static overview for print.

This is the only module that goes to EPSG:4326 (longitude/latitude): every
other stage works in metres.

:func:`plan_map` draws the grids in distinct colours (neighbouring grids
differ), the community borders, the buildings, the service stations as circles
sized by capacity, the walking catchment of each station, and the households
beyond the walking limit, with a legend and a layer switcher, in Chinese or
English (:mod:`gridopt.i18n`). Geometry is simplified (1-2 m) and coordinates
rounded to 6 decimals (about 0.1 m), so a 5,000-grid city stays a page a
browser opens smoothly.

Every value from the data (community and building names, site ids, reasons)
reaches the page as text, never as HTML: Leaflet and folium's tooltips insert
their content as HTML, so the values are escaped before they enter the page's
GeoJSON, and layer names and legend entries too.

The page is self-contained: Leaflet's JavaScript and CSS (vendored from the
npm ``leaflet`` 1.9.4 package, BSD-2-Clause, see ``gridopt/_vendor/leaflet``)
are inlined, so the map works without internet; only the optional background
tiles (OpenStreetMap, AMap/Gaode or Tianditu) need a connection (offline it
stays grey). AMap draws its tiles in GCJ-02, so the plan is shifted from WGS84
onto them; Tianditu (CGCS2000) and OpenStreetMap need no shift.

See :func:`plan_map` for an example.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from branca.element import MacroElement
from folium.template import Template
from matplotlib import font_manager, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from pypinyin import lazy_pinyin

from gridopt import i18n
from gridopt._errors import GridoptWarning, InputError
from gridopt.crs import to_wgs84, wgs84_to_gcj02, written_plan_to_working
from gridopt.households import default_share
from gridopt.stations._place import STATION_COLUMNS

__all__ = ["BASEMAPS", "load_plan_layers", "overview_png", "plan_map"]

log = logging.getLogger("gridopt")

#: Background maps of :func:`plan_map`.
BASEMAPS = ("osm", "amap", "tianditu", "none")

#: Colours of the grids (ColorBrewer Set3 + Paired, light enough to read labels over).
PALETTE = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
    "#a6cee3",
)
STATION_COLOUR = "#1f3a93"
UNCOVERED_COLOUR = "#d7191c"
CATCHMENT_COLOUR = "#2c7bb6"
COMMUNITY_COLOUR = "#222222"
STREET_COLOUR = "#8c8c8c"

#: Fonts with Chinese glyphs, best first (Linux, Windows, macOS names).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Arial Unicode MS",
)

_AMAP_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
_TIANDITU_TILES = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
)


@dataclass(frozen=True)
class _MapData:
    """What a map needs, in metres, whether it comes from a Plan or a plan.gpkg."""

    grids: gpd.GeoDataFrame  # grid_id, grid_name, community, households, kind, ..., geometry
    buildings: gpd.GeoDataFrame  # households, grid_id, station, walk_m, geometry
    stations: gpd.GeoDataFrame  # site, capacity_households, households_served, ..., geometry
    uncovered: gpd.GeoDataFrame  # households, walk_m, reason, geometry
    max_walk_m: float
    title: str
    language: str
    notes: tuple[str, ...] = ()
    streets: gpd.GeoDataFrame | None = None
    basemap: str = "osm"
    tianditu_key: str | None = None


def plan_map(
    plan: Any,
    *,
    language: str | None = None,
    basemap: str | None = None,
    tianditu_key: str | None = None,
    buildings_on: bool | None = None,
    max_buildings_on: int = 5_000,
    catchments: bool = True,
    tiles: bool = True,
) -> folium.Map:
    """An interactive map of a plan (a :class:`folium.Map`).

    Parameters
    ----------
    plan
        A :class:`gridopt.Plan`, or the path of a plan folder / ``plan.gpkg``
        written by ``Plan.to_file``.
    language
        ``"zh"`` or ``"en"``; default: the plan's (``Plan.language``, or the language a
        plan folder was written in).
    basemap
        ``"osm"``, ``"amap"`` (AMap/Gaode; the plan is shifted WGS84 -> GCJ-02 to sit
        on its tiles), ``"tianditu"`` (needs ``tianditu_key``) or ``"none"``;
        default: ``PlanConfig.basemap`` (``"osm"``).
    tianditu_key
        Your Tianditu key; default ``PlanConfig.tianditu_key`` or the environment
        variable ``TIANDITU_KEY``.
    buildings_on
        Show the buildings layer when the page opens; default: only when there are
        at most ``max_buildings_on`` buildings (big cities stay fast).
    max_buildings_on
        See ``buildings_on``.
    catchments
        Draw each station's walking catchment (the hull of the buildings it serves).
    tiles
        Add the background map (needs internet when viewed); ``False`` is
        ``basemap="none"``.

    Returns
    -------
    folium.Map
        Save it with ``.save("map.html")``.

    Raises
    ------
    InputError
        Not a plan, a folder/GeoPackage without a written plan in it, an unknown
        language or basemap, Tianditu without a key.

    Examples
    --------
    >>> import gridopt
    >>> city = gridopt.synthetic_city(150, seed=1)
    >>> p = gridopt.plan(city.buildings, streets=city.streets,
    ...                  config={"time_limit_s": 3, "progress": False})
    >>> m = plan_map(p)
    >>> "Grids" in m.get_root().render()
    True
    >>> "网格" in plan_map(p, language="zh").get_root().render()
    True
    """
    data = _map_data(plan, language)
    basemap = basemap or data.basemap
    if not tiles:
        basemap = "none"
    if basemap not in BASEMAPS:
        raise InputError(f"basemap must be one of {BASEMAPS}, got {basemap!r}")
    key = tianditu_key or data.tianditu_key or os.environ.get("TIANDITU_KEY")
    if basemap == "tianditu" and not key:
        raise InputError(
            "basemap='tianditu' needs your Tianditu key (tianditu_key=..., --tianditu-key or "
            "the TIANDITU_KEY environment variable); or use basemap='amap' or 'osm'"
        )
    return _build_map(
        data,
        buildings_on=buildings_on
        if buildings_on is not None
        else len(data.buildings) <= max_buildings_on,
        catchments=catchments,
        basemap=basemap,
        tianditu_key=key,
    )


def overview_png(
    plan: Any,
    path: str | os.PathLike[str],
    *,
    language: str | None = None,
    dpi: int = 150,
) -> Path:
    """A static overview of the plan for printed reports (PNG, matplotlib).

    Grids in colours (neighbours differ) labelled with their names, community borders,
    streets (when the plan has them), service stations and households beyond the
    walking limit, with a title and legend in the plan's language. Chinese text is set
    in a CJK font found on the machine (:data:`CJK_FONTS`); without one the overview
    warns (:class:`gridopt.GridoptWarning`) and writes names in pinyin instead.

    Parameters
    ----------
    plan
        A :class:`gridopt.Plan`, or a plan folder / ``plan.gpkg``.
    path
        The PNG file to write.
    language
        ``"zh"`` or ``"en"``; default: the plan's.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = _map_data(plan, language)
    lang = data.language
    grids = data.grids
    names = _grid_labels(grids)
    communities = _community_borders(grids)
    texts = [data.title, *names, *communities.get("community", pd.Series(dtype=str)).astype(str)]
    font = cjk_font()
    if font is None and any(i18n.has_cjk(x) for x in texts):
        warnings.warn(
            "no font with Chinese characters found (looked for "
            f"{', '.join(CJK_FONTS[:6])}, ...): overview.png is written with names in pinyin "
            "and an English legend; install one (Debian: apt-get install fonts-noto-cjk)",
            GridoptWarning,
            stacklevel=2,
        )
        lang = "en"
        data = _map_data(plan, "en")
        names = [_pinyin(n) for n in names]
        communities = (
            communities.assign(community=communities["community"].astype(str).map(_pinyin))
            if len(communities)
            else communities
        )
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]

    fig = Figure(figsize=(10, 10), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = [PALETTE[c % len(PALETTE)] for c in _grid_colours(grids)]
    grids.plot(ax=ax, color=colours, edgecolor="#555555", linewidth=0.4, zorder=1)
    x0, y0, x1, y1 = grids.total_bounds
    pad = 0.02 * max(x1 - x0, y1 - y0, 1.0)
    if data.streets is not None and len(data.streets):
        streets = data.streets.clip((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
        if len(streets):
            streets.plot(ax=ax, color=STREET_COLOUR, linewidth=0.6, alpha=0.8, zorder=2)
    if len(data.buildings) <= 20_000:
        data.buildings.plot(ax=ax, color="#666666", linewidth=0, alpha=0.45, zorder=3)
    if len(communities):
        communities.boundary.plot(ax=ax, color=COMMUNITY_COLOUR, linewidth=1.6, zorder=4)
    if len(data.uncovered):
        pts = data.uncovered.geometry.representative_point()
        ax.scatter(pts.x, pts.y, s=12, color=UNCOVERED_COLOUR, zorder=6)
    if len(data.stations):
        pts = data.stations.geometry.representative_point()
        cap = data.stations["capacity_households"].astype(float).to_numpy()
        size = 2.0 * _station_radius(cap) ** 2
        ax.scatter(
            pts.x,
            pts.y,
            s=size,
            facecolor=STATION_COLOUR,
            edgecolor="white",
            linewidth=0.8,
            alpha=0.85,
            zorder=7,
        )
    _label_grids(ax, grids, names, family)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    flags = _flags(data)
    ax.set_title("\n".join([data.title, *flags]), fontsize=10, family=family)
    walk = f"{data.max_walk_m:,.0f}"
    handles = [
        Patch(facecolor=PALETTE[0], edgecolor="#555555", label=i18n.t("legend.grids", lang)),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=STATION_COLOUR,
            label=i18n.t("legend.station", lang),
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=UNCOVERED_COLOUR,
            label=i18n.t("legend.uncovered", lang, walk_m=walk),
        ),
    ]
    if len(communities):
        handles.append(
            Line2D(
                [],
                [],
                color=COMMUNITY_COLOUR,
                linewidth=1.6,
                label=i18n.t("legend.community", lang),
            )
        )
    if data.streets is not None and len(data.streets):
        handles.append(
            Line2D([], [], color=STREET_COLOUR, linewidth=0.8, label=i18n.t("legend.street", lang))
        )
    # Below the map, never over it.
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        ncol=min(3, len(handles)),
        frameon=False,
        prop={"family": family, "size": 8},
    )
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs (see :data:`CJK_FONTS`), or None."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _pinyin(text: str) -> str:
    """``text`` with its Chinese characters in pinyin (for a machine without a CJK font)."""
    if not i18n.has_cjk(text):
        return text
    return "".join(
        part.capitalize() if i18n.has_cjk(ch) else part
        for ch, part in zip(text, lazy_pinyin(list(text)), strict=False)
    )


def _grid_labels(grids: gpd.GeoDataFrame) -> list[str]:
    """The grids' names (ids where a plan has none)."""
    if "grid_name" in grids.columns:
        return [
            str(n) if isinstance(n, str) and n else str(g)
            for n, g in zip(grids["grid_name"], grids["grid_id"], strict=True)
        ]
    return [str(g) for g in grids["grid_id"]]


def _label_grids(ax: Any, grids: gpd.GeoDataFrame, names: list[str], family: list[str]) -> None:
    """Each grid's name inside it, with a white halo, sized to the room the grid has.

    A name that starts with its community's goes on two lines (``平江社区`` /
    ``第3网格``); where even that does not fit, only the second line is written (the
    community borders still say which community).
    """
    if len(grids) == 0:
        return
    fig = ax.get_figure()
    x0, y0, x1, y1 = grids.total_bounds
    width_in, height_in = fig.get_size_inches()
    # Points per metre on paper, with the axes' share of the figure and equal aspect.
    pt_per_m = min(
        width_in * 0.775 * 72 / max(x1 - x0, 1.0), height_in * 0.77 * 72 / max(y1 - y0, 1.0)
    )
    centres, radius_m = _label_points(grids.geometry.to_numpy())
    communities = grids["community"] if "community" in grids.columns else [None] * len(grids)
    halo = [patheffects.withStroke(linewidth=1.8, foreground="white")]
    for centre, r, name, community in zip(centres, radius_m, names, communities, strict=True):
        lines = _label_lines(name, community)
        size = _fit(lines, 1.9 * float(r) * pt_per_m)
        if size < 4.0 and len(lines) == 2:
            lines = lines[1:]
            size = _fit(lines, 1.9 * float(r) * pt_per_m)
        ax.text(
            shapely.get_x(centre),
            shapely.get_y(centre),
            "\n".join(lines),
            fontsize=max(size, 3.0),
            ha="center",
            va="center",
            multialignment="center",
            family=family,
            zorder=8,
            path_effects=halo,
        )


def _label_points(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a label sits best in each polygon (the centre of its largest inner circle),
    and that circle's radius."""
    inscribed = getattr(shapely, "maximum_inscribed_circle", None)
    if inscribed is not None:
        circles = inscribed(geoms)
        return shapely.get_point(circles, 0), shapely.length(circles)
    # shapely < 2.1
    return shapely.point_on_surface(geoms), np.sqrt(shapely.area(geoms)) / 3.0


def _fit(lines: list[str], room_pt: float) -> float:
    """Font size (pt, at most 9) at which ``lines`` fit a circle ``room_pt`` across."""
    # A Chinese character is about 1 em wide, a Latin one about 0.6 em.
    em = max(sum(1.0 if i18n.has_cjk(ch) else 0.6 for ch in line) for line in lines)
    by_width = room_pt / max(em, 1.0)
    by_height = room_pt / (1.3 * len(lines))
    return float(min(9.0, by_width, by_height))


def _community_borders(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One polygon per community (the union of its grids); empty without communities."""
    if "community" not in grids.columns or grids["community"].isna().all():
        return gpd.GeoDataFrame({"community": []}, geometry=[], crs=grids.crs)
    g = grids[grids["community"].notna()]
    codes, names = pd.factorize(g["community"].astype(str))
    geoms = [
        shapely.union_all(shapely.buffer(g.geometry.to_numpy()[codes == i], 0.5))
        for i in range(len(names))
    ]
    return gpd.GeoDataFrame({"community": list(names)}, geometry=geoms, crs=grids.crs)


def load_plan_layers(path: str | os.PathLike[str]) -> dict[str, gpd.GeoDataFrame]:
    """The layers of a ``plan.gpkg`` (or of the ``plan.gpkg`` inside a plan folder).

    Raises
    ------
    InputError
        No such file, or a GeoPackage without the ``grids``/``buildings``/``stations`` layers.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "plan.gpkg"
    if not path.exists():
        raise InputError(f"no plan found at {path}; pass a plan folder or its plan.gpkg")
    try:
        names = [row[0] for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several types for a non-GPKG file
        raise InputError(f"cannot read {path} as a GeoPackage: {exc}") from exc
    missing = {"grids", "buildings", "stations"} - set(names)
    if missing:
        raise InputError(
            f"{path} is not a gridopt plan: layers {sorted(missing)} are missing (found {names})"
        )
    return written_plan_to_working(
        {name: pyogrio.read_dataframe(path, layer=name) for name in names}
    )


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _map_data(plan: Any, language: str | None) -> _MapData:
    if isinstance(plan, (str, os.PathLike)):
        return _data_from_layers(load_plan_layers(plan), language)
    if not hasattr(plan, "partition") or not hasattr(plan, "stations"):
        raise InputError(
            f"plan_map needs a gridopt.Plan or a plan folder, not {type(plan).__name__}"
        )
    lang = i18n.resolve_language(language or getattr(plan, "language", "en"))
    report = plan.report().set_index("grid_id")
    grids = plan.partition.grids.copy()
    for col in ("grid_name", "workers", "officers", "station"):
        if col in report.columns:
            grids[col] = grids["grid_id"].map(report[col])
    s = plan.stations
    cfg = plan.config
    column = getattr(cfg, "communities", "community")
    if "community" in grids.columns and (not column or column not in plan.buildings.columns):
        grids["community"] = None  # the partition's one "all" community: none in the data
    title = i18n.t(
        "title.plan",
        lang,
        grids=f"{len(grids):,}",
        households=f"{int(plan.buildings['households'].sum()):,}",
        stations=f"{len(s.stations):,}",
        share=f"{s.metrics.get('share_within_limit', float('nan')):.1%}",
        walk_m=f"{cfg.max_walk_m:,.0f}",
    )
    return _MapData(
        grids=grids,
        buildings=plan.buildings,
        stations=s.stations,
        uncovered=s.uncovered,
        max_walk_m=float(cfg.max_walk_m),
        title=title,
        language=lang,
        notes=tuple(plan.notes),
        streets=getattr(plan, "streets", None),
        basemap=getattr(cfg, "basemap", "osm"),
        tianditu_key=getattr(cfg, "tianditu_key", None),
    )


def _data_from_layers(layers: dict[str, gpd.GeoDataFrame], language: str | None) -> _MapData:
    grids = layers["grids"]
    for col in ("workers", "officers", "community"):
        if col not in grids.columns:
            grids[col] = None
    buildings = layers["buildings"]
    if "community" not in buildings.columns and set(grids["community"].dropna()) <= {"all"}:
        grids["community"] = None  # the partition's one "all" community: none in the data
    stations = layers["stations"]
    uncovered = layers.get("uncovered")
    if uncovered is None or not isinstance(uncovered, gpd.GeoDataFrame):
        uncovered = gpd.GeoDataFrame(
            {"households": [], "walk_m": [], "reason": []}, geometry=[], crs=grids.crs
        )
    settings: dict[str, str] = {}
    config = layers.get("config")
    if config is not None and "name" in config.columns:
        settings = {
            str(k): str(v).strip("'\"")
            for k, v in zip(config["name"], config["value"], strict=False)
        }
    try:
        max_walk = float(settings.get("max_walk_m", "nan"))
    except ValueError:
        max_walk = float("nan")
    lang = language or settings.get("output_language", "auto")
    lang = i18n.resolve_language(
        lang if lang in (*i18n.LANGUAGES, "auto") else "auto",
        columns=buildings.columns,
        values=grids["community"].dropna().unique(),
    )
    if "grid_name" not in grids.columns:  # a plan written before grids had names
        grids["grid_name"] = i18n.grid_names(
            grids["grid_id"], grids["community"], i18n.default_grid_name(lang)
        )
    title = i18n.t(
        "title.files",
        lang,
        grids=f"{len(grids):,}",
        households=f"{int(grids['households'].sum()):,}",
        stations=f"{len(stations):,}",
    )
    notes = layers.get("notes")
    streets = layers.get("streets")
    basemap = settings.get("basemap", "osm")
    return _MapData(
        grids=grids,
        buildings=buildings,
        stations=stations,
        uncovered=uncovered,
        max_walk_m=max_walk,
        title=title,
        language=lang,
        notes=tuple(notes["note"].astype(str)) if notes is not None and "note" in notes else (),
        streets=streets if isinstance(streets, gpd.GeoDataFrame) else None,
        basemap=basemap if basemap in BASEMAPS else "osm",
    )


def _grid_colours(grids: gpd.GeoDataFrame) -> np.ndarray:
    """A palette index per grid such that touching grids differ.

    Greedy colouring, most-connected grids first, each grid taking the least used
    palette colour its neighbours do not have: neighbours differ (unless a grid touches
    twelve or more others) and the whole palette is used, so nearby grids that do not
    touch rarely look alike either.
    """
    geoms = grids.geometry.to_numpy()
    n = len(geoms)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    if n:
        tree = shapely.STRtree(geoms)
        # A 1 m buffer: grid polygons from the tessellation touch, but rounding may leave slivers.
        left, right = tree.query(shapely.buffer(geoms, 1.0), predicate="intersects")
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            if a != b:
                neighbours[a].add(b)
                neighbours[b].add(a)
    colour = np.full(n, -1, dtype=int)
    used = np.zeros(len(PALETTE), dtype=int)
    for i in sorted(range(n), key=lambda i: (-len(neighbours[i]), i)):
        taken = {int(colour[j]) for j in neighbours[i] if colour[j] >= 0}
        free = [c for c in range(len(PALETTE)) if c not in taken]
        # A grid touching grids of all 12 colours (never seen in practice) shares one.
        c = min(free, key=lambda c: (used[c], c)) if free else int(np.argmin(used))
        colour[i] = c
        used[c] += 1
    return colour


def _catchments(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Per station, the convex hull (plus 15 m) of the buildings with households it serves."""
    b = buildings[buildings["station"].notna() & (buildings["households"] > 0)]
    if b.empty:
        return gpd.GeoDataFrame({"station": [], "households": []}, geometry=[], crs=buildings.crs)
    pts = shapely.get_coordinates(b.geometry.representative_point().to_numpy())
    codes, stations = pd.factorize(b["station"], sort=True)
    order = np.argsort(codes, kind="stable")  # shapely wants the parts grouped in order
    hulls = shapely.convex_hull(shapely.multipoints(pts[order], indices=codes[order]))
    hh = b.groupby(codes)["households"].sum().to_numpy()
    return gpd.GeoDataFrame(
        {"station": [str(s) for s in stations], "households": hh.astype(int)},
        geometry=shapely.buffer(hulls, 15.0),
        crs=buildings.crs,
    )


def _text(value: Any) -> str:
    """A data value as HTML text: ``<img onerror=...>`` shows as itself and runs nothing."""
    return html.escape(str(value), quote=True)


def _gcj02(xy: np.ndarray) -> np.ndarray:
    """WGS84 lon/lat rows shifted onto AMap's GCJ-02 tiles."""
    lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)])


def _web(
    frame: gpd.GeoDataFrame,
    columns: list[str],
    *,
    tolerance_m: float,
    shift: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """GeoJSON (EPSG:4326) of ``frame``: simplified, 6-decimal coordinates, escaped values.

    Text values are HTML-escaped here, before they reach the page: folium's
    tooltips and popups put the properties into the page as HTML.
    """
    cols = [c for c in columns if c in frame.columns]
    out = frame[[*cols, frame.geometry.name]].copy()
    geoms = out.geometry.to_numpy()
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    out = gpd.GeoDataFrame(out.drop(columns=out.geometry.name), geometry=geoms, crs=frame.crs)
    out = to_wgs84(out)

    def display(xy: np.ndarray) -> np.ndarray:
        return np.round(shift(xy) if shift is not None else xy, 6)

    out["geometry"] = shapely.transform(out.geometry.to_numpy(), display)
    for c in cols:
        col = out[c]
        if pd.api.types.is_float_dtype(col):
            out[c] = col.round(1).astype(object).where(col.notna(), None)
        elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            out[c] = col.astype(object)
        else:
            out[c] = col.map(
                lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else _text(v)
            )
    return json.loads(out.to_json(drop_id=True))


def _fields(present: list[str], lang: str) -> list[str]:
    """Tooltip/popup labels of ``present`` fields in ``lang``, escaped."""
    return [_text(i18n.t(f"tip.{f}", lang)) for f in present]


# ---------------------------------------------------------------------------
# The Leaflet page
# ---------------------------------------------------------------------------


def _build_map(
    data: _MapData,
    *,
    buildings_on: bool,
    catchments: bool,
    basemap: str,
    tianditu_key: str | None,
) -> folium.Map:
    lang = data.language
    shift = _gcj02 if basemap == "amap" else None
    grids = data.grids.copy()
    grids["fill"] = [PALETTE[c % len(PALETTE)] for c in _grid_colours(grids)]
    # Kinds and reasons as the reader says them.
    grids["kind"] = grids["kind"].map(
        lambda k: i18n.t(f"kind.{k}", lang) if f"kind.{k}" in i18n.LABELS else k
    )
    if "reason" in grids.columns:
        grids["reason"] = grids["reason"].map(lambda r: i18n.translate_text(r, lang) or None)
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    _inline_leaflet(m)
    _add_basemap(m, basemap, lang, tianditu_key)

    grid_fields = [
        "grid_name",
        "grid_id",
        "community",
        "kind",
        "households",
        "workers",
        "officers",
        "station",
        "reason",
    ]
    present = [f for f in grid_fields if f in grids.columns]
    folium.GeoJson(
        _web(grids, [*present, "fill"], tolerance_m=2.0, shift=shift),
        name=_text(i18n.t("layer.grids", lang)),
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#444444",
            "weight": 1,
            "fillOpacity": 0.55,
        },
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(fields=present, aliases=_fields(present, lang), sticky=True),
        show=True,
    ).add_to(m)

    _add_grid_names(m, data.grids, lang, shift)

    borders = _community_borders(data.grids)
    if len(borders):
        lines = borders.assign(geometry=borders.boundary)
        folium.GeoJson(
            _web(lines, ["community"], tolerance_m=2.0, shift=shift),
            name=_text(i18n.t("layer.communities", lang)),
            style_function=lambda f: {"color": COMMUNITY_COLOUR, "weight": 2.5, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(
                fields=["community"], aliases=_fields(["community"], lang)
            ),
            show=True,
        ).add_to(m)

    # A big city's buildings carry fewer fields: the page must stay light (grids say the rest).
    wanted = (
        ("name", "households", "grid_id", "station", "walk_m")
        if buildings_on
        else ("households", "grid_id")
    )
    b_fields = [c for c in wanted if c in data.buildings.columns]
    folium.GeoJson(
        _web(data.buildings, b_fields, tolerance_m=1.0, shift=shift),
        name=_text(i18n.t("layer.buildings", lang)),
        style_function=lambda f: {
            "color": "#333333",
            "weight": 0.5,
            "fillColor": "#777777",
            "fillOpacity": 0.6,
        },
        tooltip=folium.GeoJsonTooltip(fields=b_fields, aliases=_fields(b_fields, lang)),
        show=buildings_on,
    ).add_to(m)

    if catchments and "station" in data.buildings.columns:
        folium.GeoJson(
            _web(
                _catchments(data.buildings), ["station", "households"], tolerance_m=2.0, shift=shift
            ),
            name=_text(i18n.t("layer.catchments", lang)),
            style_function=lambda f: {
                "color": CATCHMENT_COLOUR,
                "weight": 1.5,
                "dashArray": "5 4",
                "fillOpacity": 0.05,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["station", "households"],
                aliases=_fields(["catchment", "households"], lang),
            ),
            show=False,
        ).add_to(m)

    walk = f"{data.max_walk_m:,.0f}"
    if len(data.uncovered):
        unc = data.uncovered.copy()
        unc["geometry"] = unc.geometry.representative_point()
        unc["reason"] = unc["reason"].map(lambda r: i18n.translate_text(r, lang))
        folium.GeoJson(
            _web(unc, ["households", "walk_m", "reason"], tolerance_m=0.0, shift=shift),
            name=_text(i18n.t("layer.uncovered", lang, walk_m=walk)),
            marker=folium.CircleMarker(
                radius=5,
                color=UNCOVERED_COLOUR,
                fill=True,
                fill_color=UNCOVERED_COLOUR,
                fill_opacity=0.9,
                weight=1,
            ),
            tooltip=folium.GeoJsonTooltip(
                fields=["households", "walk_m", "reason"],
                aliases=_fields(["households", "walk_m", "why"], lang),
            ),
            show=True,
        ).add_to(m)

    st = data.stations.copy()
    if len(st):
        st["geometry"] = st.geometry.representative_point()
        cap = pd.to_numeric(st["capacity_households"], errors="coerce").fillna(0).astype(float)
        st["radius"] = _station_radius(cap.to_numpy())
        if "site" not in st.columns:
            st["site"] = st.index.astype(str)
        s_fields = [c for c in STATION_COLUMNS if c in st.columns]
        tip = ["site", "households_served"] if "households_served" in s_fields else ["site"]
        folium.GeoJson(
            _web(st, [*s_fields, "radius"], tolerance_m=0.0, shift=shift),
            name=_text(i18n.t("layer.stations", lang)),
            marker=folium.CircleMarker(
                radius=8,
                color="white",
                weight=1.5,
                fill=True,
                fill_color=STATION_COLOUR,
                fill_opacity=0.85,
            ),
            style_function=lambda f: {"radius": f["properties"]["radius"]},
            popup=folium.GeoJsonPopup(fields=s_fields, aliases=_fields(s_fields, lang)),
            tooltip=folium.GeoJsonTooltip(fields=tip, aliases=_fields(tip, lang)),
            show=True,
        ).add_to(m)

    m.get_root().html.add_child(folium.Element(_legend_html(data, has_borders=len(borders) > 0)))
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = to_wgs84(gpd.GeoSeries(data.grids.geometry, crs=data.grids.crs)).total_bounds
    corners = np.array([[bounds[0], bounds[1]], [bounds[2], bounds[3]]])
    if shift is not None:
        corners = shift(corners)
    (x0, y0), (x1, y1) = corners.round(6).tolist()
    m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def _add_grid_names(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    lang: str,
    shift: Callable[[np.ndarray], np.ndarray] | None,
) -> None:
    """The grid names written on the map (as on the printed overview), escaped.

    The names appear from the zoom level at which a typical grid is wide enough for
    its name (zoomed out they would cover the map); past 2,000 grids there are none
    (the tooltips name every grid anyway).
    """
    if len(grids) > 2_000 or "grid_name" not in grids.columns:
        return
    geoms = grids.geometry.to_numpy()
    centres, _ = _label_points(geoms)
    pts = to_wgs84(gpd.GeoSeries(centres, crs=grids.crs))
    xy = shapely.get_coordinates(pts.to_numpy())
    if shift is not None:
        xy = shift(xy)
    communities = grids["community"] if "community" in grids.columns else [None] * len(grids)
    lines = [_label_lines(str(n), c) for n, c in zip(grids["grid_name"], communities, strict=True)]
    width_m = float(np.median(np.sqrt(shapely.area(geoms))))
    min_zoom = _label_zoom(width_m, lines, float(np.median(xy[:, 1])))
    layer = folium.FeatureGroup(name=_text(i18n.t("layer.grid_names", lang)), show=True)
    for (lon, lat), label in zip(xy.round(6).tolist(), lines, strict=True):
        text = "<br>".join(_text(line) for line in label)
        folium.Marker(
            [lat, lon],
            icon=folium.DivIcon(
                html=f'<div class="gridopt-grid-label">{text}</div>', icon_size=(0, 0)
            ),
            interactive=False,
        ).add_to(layer)
    layer.add_to(m)
    root = m.get_root()
    root.header.add_child(
        folium.Element(
            "<style>.gridopt-grid-label{transform:translate(-50%,-50%);white-space:nowrap;"
            "text-align:center;font:bold 11px/1.2 sans-serif;color:#222;pointer-events:none;"
            "text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}"
            ".gridopt-labels-hidden .gridopt-grid-label{display:none}</style>"
        ),
        name="gridopt_label_css",
    )
    _LabelZoom(min_zoom).add_to(m)


class _LabelZoom(MacroElement):
    """Hides the grid names below ``min_zoom`` (runs after the map exists: a map child)."""

    _template = Template(
        """{% macro script(this, kwargs) %}
    (function () {
      var map = {{ this._parent.get_name() }};
      function gridoptLabels() {
        map.getContainer().classList.toggle(
          'gridopt-labels-hidden', map.getZoom() < {{ this.min_zoom }});
      }
      map.on('zoomend', gridoptLabels);
      map.whenReady(gridoptLabels);
    })();
    {% endmacro %}"""
    )

    def __init__(self, min_zoom: int) -> None:
        super().__init__()
        self._name = "GridoptLabelZoom"
        self.min_zoom = int(min_zoom)


def _label_lines(name: str, community: Any) -> list[str]:
    """A grid name on two lines when it starts with its community's (平江社区 / 第3网格)."""
    if isinstance(community, str) and community and name.startswith(community):
        rest = name[len(community) :].strip()
        if rest:
            return [community, rest]
    return [name]


def _label_zoom(width_m: float, labels: list[list[str]], lat: float) -> int:
    """The least web-map zoom at which the median grid is as wide as its label."""
    label_px = float(
        np.median(
            [max(sum(12 if i18n.has_cjk(c) else 7 for c in s) for s in lab) for lab in labels]
        )
    )
    width_m = max(width_m, 1.0)
    metres_per_px_z0 = 40_075_016.7 * np.cos(np.radians(lat)) / 256.0
    return int(np.clip(np.ceil(np.log2(metres_per_px_z0 * label_px / width_m)), 0, 20))


def _add_basemap(m: folium.Map, basemap: str, lang: str, key: str | None) -> None:
    """The background tiles: OpenStreetMap, AMap/Gaode (GCJ-02) or Tianditu (vector + labels)."""
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name=_text(i18n.t("layer.osm", lang)), show=True).add_to(
            m
        )
    elif basemap == "amap":
        folium.TileLayer(
            tiles=_AMAP_TILES,
            attr="&copy; AutoNavi 高德地图",
            name=_text(i18n.t("layer.amap", lang)),
            subdomains="1234",
            max_zoom=18,
            show=True,
        ).add_to(m)
    elif basemap == "tianditu":
        tk = quote(str(key), safe="")
        folium.TileLayer(
            tiles=_TIANDITU_TILES.replace("{layer}", "vec").replace("{key}", tk),
            attr="&copy; 天地图 Tianditu",
            name=_text(i18n.t("layer.tianditu", lang)),
            subdomains="01234567",
            max_zoom=18,
            show=True,
        ).add_to(m)
        # Chinese place labels drawn over the vector tiles (cia/cva: annotation layer).
        folium.TileLayer(
            tiles=_TIANDITU_TILES.replace("{layer}", "cva").replace("{key}", tk),
            attr="&copy; 天地图 Tianditu",
            name=_text(i18n.t("layer.tianditu", lang)) + " (labels)",
            subdomains="01234567",
            max_zoom=18,
            overlay=True,
            control=False,
            show=True,
        ).add_to(m)


def _flags(data: _MapData) -> list[str]:
    """What a reviewer must not miss, in the map's language (full notes: summary.txt)."""
    keys = []
    if any("PLACEHOLDER" in n for n in data.notes):
        keys.append("flag.placeholder")
    if any("no candidate" in n for n in data.notes):
        keys.append("flag.no_candidates")
    flags = [i18n.t(k, data.language) for k in keys]
    b = data.buildings
    if "households_source" in b.columns and "households" in b.columns:
        flags.append(
            i18n.t("flag.households_default", data.language, share=f"{default_share(b):.0%}")
        )
    return flags


def _station_radius(capacity_households: np.ndarray) -> np.ndarray:
    """Circle radius (px) by capacity on a fixed scale, so maps of two plans compare.

    Area grows with capacity: 1,000 households (300 m²) -> 10 px, 3,000 -> about 14 px.
    A city with many stations gets smaller circles (down to 40%), which would otherwise
    hide the grids at city zoom.
    """
    cap = np.nan_to_num(np.asarray(capacity_households, dtype=float), nan=0.0)
    shrink = min(1.0, max(0.4, float(np.sqrt(50.0 / max(len(cap), 1)))))
    radius = shrink * (4.0 + 6.0 * np.sqrt(np.maximum(cap, 0.0) / 1000.0))
    return np.clip(radius, 3.0, 22.0).round(1)


def _inline_leaflet(m: Any) -> None:
    """Leaflet's JS and CSS inline instead of CDN links; drop the CDN extras we do not use."""
    vendor = files("gridopt") / "_vendor" / "leaflet"
    js = (vendor / "leaflet.js").read_text(encoding="utf-8")
    css = (vendor / "leaflet.css").read_text(encoding="utf-8")
    m.default_js = []
    m.default_css = []
    # "</script" cannot occur in leaflet.js, but guard the page against it anyway.
    js = js.replace("</script", "<\\/script")
    header = m.get_root().header
    header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js_inline")


def _legend_html(data: _MapData, *, has_borders: bool) -> str:
    lang = data.language
    swatches = "".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
        f'border:1px solid #444;margin-right:1px"></span>'
        for c in PALETTE[:6]
    )
    notes = "".join(
        f"<div style='color:#a00;max-width:320px'>&#9888; {_text(f)}</div>"
        for f in _flags(data)
    )
    border = (
        f"""<div><span style="display:inline-block;width:14px;border-top:2.5px solid
  {COMMUNITY_COLOUR}"></span> {_text(i18n.t("legend.community", lang))}</div>"""
        if has_borders
        else ""
    )
    walk = f"{data.max_walk_m:,.0f}"
    return f"""
<div id="gridopt-legend" lang="{lang}" style="position:fixed;bottom:64px;left:12px;z-index:1000;
 background:rgba(255,255,255,0.92);padding:8px 10px;border:1px solid #999;border-radius:4px;
 font:12px/1.45 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,0.3)">
 <div style="font-weight:bold;margin-bottom:3px">{_text(i18n.t("legend.title", lang))}</div>
 <div style="max-width:320px;margin-bottom:4px">{_text(data.title)}</div>
 <div>{swatches} {_text(i18n.t("legend.grids", lang))}</div>
 {border}
 <div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;
  background:{STATION_COLOUR}"></span> {_text(i18n.t("legend.station", lang))}</div>
 <div><span style="display:inline-block;width:14px;border-top:2px dashed {CATCHMENT_COLOUR}">
  </span> {_text(i18n.t("legend.catchment", lang))}</div>
 <div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;
  background:{UNCOVERED_COLOUR}"></span> {_text(i18n.t("legend.uncovered", lang, walk_m=walk))}</div>
 <div><span style="display:inline-block;width:12px;height:12px;background:#777"></span>
  {_text(i18n.t("legend.building", lang))}</div>
 {notes}
</div>"""
