"""Maps of a plan: an interactive Leaflet page and a static overview for print.

This is the only module that goes to EPSG:4326 (longitude/latitude): every
other stage works in metres.

:func:`plan_map` draws the grids in distinct colours (neighbouring grids
differ), the buildings, the service stations as circles sized by capacity,
the walking catchment of each station, and the households beyond the walking
limit, with a legend and a layer switcher. Geometry is simplified (1-2 m) and
coordinates rounded to 6 decimals (about 0.1 m), so a 5,000-grid city stays a
page a browser opens smoothly.

The page is self-contained: Leaflet's JavaScript and CSS (vendored from the
npm ``leaflet`` 1.9.4 package, BSD-2-Clause, see ``gridopt/_vendor/leaflet``)
are inlined, so the map works without internet; only the optional
OpenStreetMap background needs a connection (offline it stays grey).

See :func:`plan_map` for an example.
"""

from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError

__all__ = ["load_plan_layers", "overview_png", "plan_map"]

log = logging.getLogger("gridopt")

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


@dataclass(frozen=True)
class _MapData:
    """What a map needs, in metres, whether it comes from a Plan or a plan.gpkg."""

    grids: gpd.GeoDataFrame  # grid_id, community, households, kind, workers, officers, geometry
    buildings: gpd.GeoDataFrame  # households, grid_id, station, walk_m, geometry
    stations: gpd.GeoDataFrame  # site, capacity_households, households_served, ..., geometry
    uncovered: gpd.GeoDataFrame  # households, walk_m, reason, geometry
    max_walk_m: float
    title: str
    notes: tuple[str, ...] = ()


def plan_map(
    plan: Any,
    *,
    buildings_on: bool | None = None,
    max_buildings_on: int = 5_000,
    catchments: bool = True,
    tiles: bool = True,
) -> Any:
    """An interactive map of a plan (a :class:`folium.Map`).

    Parameters
    ----------
    plan
        A :class:`gridopt.Plan`, or the path of a plan folder / ``plan.gpkg``
        written by ``Plan.to_file``.
    buildings_on
        Show the buildings layer when the page opens; default: only when there are
        at most ``max_buildings_on`` buildings (big cities stay fast).
    max_buildings_on
        See ``buildings_on``.
    catchments
        Draw each station's walking catchment (the hull of the buildings it serves).
    tiles
        Add the OpenStreetMap background (needs internet when viewed).

    Returns
    -------
    folium.Map
        Save it with ``.save("map.html")``.

    Raises
    ------
    InputError
        Not a plan, or a folder/GeoPackage without a written plan in it.

    Examples
    --------
    >>> import gridopt
    >>> city = gridopt.synthetic_city(150, seed=1)
    >>> p = gridopt.plan(city.buildings, streets=city.streets,
    ...                  config={"time_limit_s": 3, "progress": False})
    >>> m = plan_map(p)
    >>> "Grids" in m.get_root().render()
    True
    """
    data = _map_data(plan)
    return _build_map(
        data,
        buildings_on=buildings_on
        if buildings_on is not None
        else len(data.buildings) <= max_buildings_on,
        catchments=catchments,
        tiles=tiles,
    )


def overview_png(plan: Any, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """A static overview of the plan for printed reports (PNG, matplotlib).

    Parameters
    ----------
    plan
        A :class:`gridopt.Plan`, or a plan folder / ``plan.gpkg``.
    path
        The PNG file to write.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = _map_data(plan)
    grids = data.grids
    fig = Figure(figsize=(10, 10), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = [PALETTE[c % len(PALETTE)] for c in _grid_colours(grids)]
    grids.plot(ax=ax, color=colours, edgecolor="#555555", linewidth=0.4)
    if len(data.buildings) <= 20_000:
        data.buildings.plot(ax=ax, color="#666666", linewidth=0, alpha=0.5)
    if len(data.uncovered):
        pts = data.uncovered.geometry.representative_point()
        ax.scatter(pts.x, pts.y, s=12, color=UNCOVERED_COLOUR, zorder=4)
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
            zorder=5,
        )
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("\n".join([data.title, *_flags(data.notes)]), fontsize=10)
    ax.legend(
        handles=[
            Patch(facecolor=PALETTE[0], edgecolor="#555555", label="grid (neighbours differ)"),
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color=STATION_COLOUR,
                label="service station (size: capacity)",
            ),
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color=UNCOVERED_COLOUR,
                label=f"households beyond {data.max_walk_m:,.0f} m",
            ),
        ],
        loc="lower left",
        fontsize=8,
        framealpha=0.9,
    )
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path


def load_plan_layers(path: str | os.PathLike[str]) -> dict[str, gpd.GeoDataFrame]:
    """The layers of a ``plan.gpkg`` (or of the ``plan.gpkg`` inside a plan folder).

    Raises
    ------
    InputError
        No such file, or a GeoPackage without the ``grids``/``buildings``/``stations`` layers.
    """
    import pyogrio

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
    return {name: pyogrio.read_dataframe(path, layer=name) for name in names}


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _map_data(plan: Any) -> _MapData:
    if isinstance(plan, (str, os.PathLike)):
        return _data_from_layers(load_plan_layers(plan))
    if not hasattr(plan, "partition") or not hasattr(plan, "stations"):
        raise InputError(
            f"plan_map needs a gridopt.Plan or a plan folder, not {type(plan).__name__}"
        )
    report = plan.report().set_index("grid_id")
    grids = plan.partition.grids.copy()
    for col in ("workers", "officers", "station"):
        grids[col] = grids["grid_id"].map(report[col])
    s = plan.stations
    cfg = plan.config
    m = s.metrics
    title = (
        f"{len(grids):,} grids, {int(plan.buildings['households'].sum()):,} households, "
        f"{len(s.stations):,} stations; {m.get('share_within_limit', float('nan')):.1%} "
        f"of households within {cfg.max_walk_m:,.0f} m walk"
    )
    return _MapData(
        grids=grids,
        buildings=plan.buildings,
        stations=s.stations,
        uncovered=s.uncovered,
        max_walk_m=float(cfg.max_walk_m),
        title=title,
        notes=tuple(plan.notes),
    )


def _data_from_layers(layers: dict[str, gpd.GeoDataFrame]) -> _MapData:
    grids = layers["grids"]
    for col in ("workers", "officers", "community"):
        if col not in grids.columns:
            grids[col] = None
    buildings = layers["buildings"]
    stations = layers["stations"]
    uncovered = layers.get("uncovered")
    if uncovered is None or not isinstance(uncovered, gpd.GeoDataFrame):
        uncovered = gpd.GeoDataFrame(
            {"households": [], "walk_m": [], "reason": []}, geometry=[], crs=grids.crs
        )
    max_walk = float("nan")
    config = layers.get("config")
    if config is not None and "name" in config.columns:
        values = dict(zip(config["name"], config["value"], strict=False))
        try:
            max_walk = float(values.get("max_walk_m", "nan"))
        except ValueError:
            pass
    title = (
        f"{len(grids):,} grids, {int(grids['households'].sum()):,} households, "
        f"{len(stations):,} stations"
    )
    notes = layers.get("notes")
    return _MapData(
        grids=grids,
        buildings=buildings,
        stations=stations,
        uncovered=uncovered,
        max_walk_m=max_walk,
        title=title,
        notes=tuple(notes["note"].astype(str)) if notes is not None and "note" in notes else (),
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


def _web(frame: gpd.GeoDataFrame, columns: list[str], *, tolerance_m: float) -> dict:
    """GeoJSON (EPSG:4326) of ``frame``: simplified, 6-decimal coordinates, plain values."""
    cols = [c for c in columns if c in frame.columns]
    out = frame[[*cols, frame.geometry.name]].copy()
    geoms = out.geometry.to_numpy()
    if tolerance_m > 0:
        geoms = shapely.simplify(geoms, tolerance_m, preserve_topology=True)
    out = gpd.GeoDataFrame(out.drop(columns=out.geometry.name), geometry=geoms, crs=frame.crs)
    out = out.to_crs(4326)
    out["geometry"] = shapely.transform(out.geometry.to_numpy(), lambda xy: np.round(xy, 6))
    for c in cols:
        col = out[c]
        if pd.api.types.is_float_dtype(col):
            out[c] = col.round(1).astype(object).where(col.notna(), None)
        elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_integer_dtype(col):
            out[c] = col.astype(object)
        else:
            out[c] = col.map(
                lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            )
    return json.loads(out.to_json(drop_id=True))


# ---------------------------------------------------------------------------
# The Leaflet page
# ---------------------------------------------------------------------------


def _build_map(data: _MapData, *, buildings_on: bool, catchments: bool, tiles: bool) -> Any:
    import folium

    grids = data.grids.copy()
    grids["fill"] = [PALETTE[c % len(PALETTE)] for c in _grid_colours(grids)]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    _inline_leaflet(m)
    if tiles:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap background", show=True).add_to(m)

    grid_fields = [
        "grid_id",
        "community",
        "kind",
        "households",
        "workers",
        "officers",
        "station",
        "reason",
    ]
    grid_aliases = [
        "grid",
        "community",
        "kind",
        "households",
        "grid workers",
        "info officers",
        "station",
        "note",
    ]
    present = [f for f in grid_fields if f in grids.columns]
    folium.GeoJson(
        _web(grids, [*present, "fill"], tolerance_m=2.0),
        name="Grids",
        style_function=lambda f: {
            "fillColor": f["properties"]["fill"],
            "color": "#444444",
            "weight": 1,
            "fillOpacity": 0.55,
        },
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(
            fields=present,
            aliases=[grid_aliases[grid_fields.index(f)] for f in present],
            sticky=True,
        ),
        show=True,
    ).add_to(m)

    # A big city's buildings carry fewer fields: the page must stay light (grids say the rest).
    wanted = (
        ("households", "grid_id", "station", "walk_m")
        if buildings_on
        else ("households", "grid_id")
    )
    b_fields = [c for c in wanted if c in data.buildings.columns]
    folium.GeoJson(
        _web(data.buildings, b_fields, tolerance_m=1.0),
        name="Buildings",
        style_function=lambda f: {
            "color": "#333333",
            "weight": 0.5,
            "fillColor": "#777777",
            "fillOpacity": 0.6,
        },
        tooltip=folium.GeoJsonTooltip(fields=b_fields),
        show=buildings_on,
    ).add_to(m)

    if catchments and "station" in data.buildings.columns:
        folium.GeoJson(
            _web(_catchments(data.buildings), ["station", "households"], tolerance_m=2.0),
            name="Walking catchments",
            style_function=lambda f: {
                "color": CATCHMENT_COLOUR,
                "weight": 1.5,
                "dashArray": "5 4",
                "fillOpacity": 0.05,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["station", "households"], aliases=["catchment of station", "households"]
            ),
            show=False,
        ).add_to(m)

    if len(data.uncovered):
        unc = data.uncovered.copy()
        unc["geometry"] = unc.geometry.representative_point()
        folium.GeoJson(
            _web(unc, ["households", "walk_m", "reason"], tolerance_m=0.0),
            name=f"Households beyond {data.max_walk_m:,.0f} m",
            marker=folium.CircleMarker(
                radius=5,
                color=UNCOVERED_COLOUR,
                fill=True,
                fill_color=UNCOVERED_COLOUR,
                fill_opacity=0.9,
                weight=1,
            ),
            tooltip=folium.GeoJsonTooltip(
                fields=["households", "walk_m", "reason"], aliases=["households", "walk m", "why"]
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
        from gridopt.stations._place import STATION_COLUMNS

        s_fields = [c for c in STATION_COLUMNS if c in st.columns]
        folium.GeoJson(
            _web(st, [*s_fields, "radius"], tolerance_m=0.0),
            name="Service stations",
            marker=folium.CircleMarker(
                radius=8,
                color="white",
                weight=1.5,
                fill=True,
                fill_color=STATION_COLOUR,
                fill_opacity=0.85,
            ),
            style_function=lambda f: {"radius": f["properties"]["radius"]},
            popup=folium.GeoJsonPopup(fields=s_fields),
            tooltip=folium.GeoJsonTooltip(
                fields=["site", "households_served"]
                if "households_served" in s_fields
                else ["site"]
            ),
            show=True,
        ).add_to(m)

    m.get_root().html.add_child(folium.Element(_legend_html(data)))
    folium.LayerControl(collapsed=False).add_to(m)
    x0, y0, x1, y1 = (
        gpd.GeoSeries(data.grids.geometry, crs=data.grids.crs).to_crs(4326).total_bounds
    )
    m.fit_bounds(
        [[round(float(y0), 6), round(float(x0), 6)], [round(float(y1), 6), round(float(x1), 6)]]
    )
    return m


def _flags(notes: tuple[str, ...]) -> list[str]:
    """Short flags for what a reviewer must not miss (the full notes are in summary.txt)."""
    flags = []
    if any("PLACEHOLDER" in n for n in notes):
        flags.append("staff: placeholder roster (no staff list given), not real people")
    if any("no candidate" in n for n in notes):
        flags.append("station sites assumed: no candidate sites in the data")
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
    import folium

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


def _legend_html(data: _MapData) -> str:
    swatches = "".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
        f'border:1px solid #444;margin-right:1px"></span>'
        for c in PALETTE[:6]
    )
    notes = "".join(
        f"<div style='color:#a00;max-width:320px'>&#9888; {html.escape(f)}</div>"
        for f in _flags(data.notes)
    )
    return f"""
<div id="gridopt-legend" style="position:fixed;bottom:64px;left:12px;z-index:1000;
 background:rgba(255,255,255,0.92);padding:8px 10px;border:1px solid #999;border-radius:4px;
 font:12px/1.45 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,0.3)">
 <div style="font-weight:bold;margin-bottom:3px">gridopt plan</div>
 <div style="max-width:320px;margin-bottom:4px">{html.escape(data.title)}</div>
 <div>{swatches} grids (neighbours differ)</div>
 <div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;
  background:{STATION_COLOUR}"></span> service station (size: capacity)</div>
 <div><span style="display:inline-block;width:14px;border-top:2px dashed {CATCHMENT_COLOUR}">
  </span> walking catchment</div>
 <div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;
  background:{UNCOVERED_COLOUR}"></span> households beyond {data.max_walk_m:,.0f} m</div>
 <div><span style="display:inline-block;width:12px;height:12px;background:#777"></span>
  building</div>
 {notes}
</div>"""
