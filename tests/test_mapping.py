"""plan_map and overview_png: layers, tooltips, colours, self-contained HTML, size at city scale."""

from __future__ import annotations

import html
import json
import re
import warnings
from types import SimpleNamespace

import folium
import geopandas as gpd
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import shapely

from _plan_data import (
    HOSTILE_BUILDING,
    HOSTILE_COMMUNITY,
    HOSTILE_SITE,
    hostile_plan,
    small_plan,
    zh_plan,
)
from gridopt import GridoptWarning, InputError, mapping, plan_map
from gridopt.mapping import _grid_colours, overview_png


@pytest.fixture(scope="module")
def p():
    return small_plan()


@pytest.fixture(scope="module")
def page(p):
    return plan_map(p).get_root().render()


def _layer(m: folium.Map, name: str):
    found = [c for c in m._children.values() if getattr(c, "layer_name", None) == name]
    assert found, f"no layer {name!r}"
    return found[0]


def test_layers_present_with_defaults(p):
    m = plan_map(p)
    assert isinstance(m, folium.Map)
    for name in ("Grids", "Buildings", "Walking catchments", "Service stations"):
        _layer(m, name)
    assert _layer(m, "Grids").show and _layer(m, "Service stations").show
    assert not _layer(m, "Walking catchments").show
    assert _layer(m, "Buildings").show  # 300 buildings: small enough to show
    assert not _layer(plan_map(p, max_buildings_on=100), "Buildings").show
    assert any(isinstance(c, folium.LayerControl) for c in m._children.values())


def test_tooltips_and_popups(page):
    for alias in ("grid", "community", "households", "grid workers", "info officers"):
        assert f'"{alias}"' in page
    assert "households_served" in page and "capacity_households" in page
    assert "bindTooltip" in page and "bindPopup" in page


def test_self_contained_no_cdn(page):
    assert "L.map(" in page
    srcs = re.findall(r'<script[^>]+src="([^"]+)"', page)
    links = re.findall(r'<link[^>]+href="([^"]+)"', page)
    assert srcs == [] and links == [], (srcs, links)
    assert "Leaflet 1.9.4" in page or "leaflet" in page.lower()


def test_legend_and_bounds(p, page):
    assert 'id="gridopt-legend"' in page
    assert "placeholder roster" in page  # the synthetic staff is flagged on the map too
    assert "fitBounds" in page
    # Bounds are in degrees (the only EPSG:4326 step) around the city.
    lon, lat = p.buildings.to_crs(4326).geometry.union_all().centroid.coords[0]
    nums = [
        float(x) for x in re.findall(r"\.fitBounds\(\s*\[\[([-\d.e]+),\s*([-\d.e]+)\]", page)[-1]
    ]
    assert abs(nums[0] - lat) < 0.1 and abs(nums[1] - lon) < 0.1


def test_coordinates_rounded(page):
    coords = re.findall(r"\[(\d+\.\d+), (\d+\.\d+)\]", page)
    assert coords
    assert max(len(a.split(".")[1]) for a, _ in coords[:2000]) <= 6


def test_neighbouring_grids_differ_in_colour(p):
    g = p.grids
    colour = _grid_colours(g)
    geoms = g.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="touches")
    assert len(a) > 0
    assert (colour[a] != colour[b]).all()


def test_map_from_written_plan(p, tmp_path):
    out = p.to_file(tmp_path / "plan")
    m = plan_map(out)
    html = m.get_root().render()
    assert "Service stations" in html
    assert "placeholder roster" in html  # the notes travel with the files
    with pytest.raises(InputError, match="no plan found"):
        plan_map(tmp_path / "nothing")
    with pytest.raises(InputError, match=r"gridopt\.Plan"):
        plan_map(42)


def test_overview_png(p, tmp_path):
    path = overview_png(p, tmp_path / "o.png")
    img = matplotlib.image.imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert img[..., :3].reshape(-1, 3).std(axis=0).max() > 0.05  # not a blank page


def _big_plan(n_grids: int = 5_000, buildings_per_grid: int = 12, seed: int = 0):
    """A plan-shaped object of a 5,000-grid city: jagged grid outlines, ~60,000 buildings."""
    rng = np.random.default_rng(seed)
    side = 20_000.0 * np.sqrt(n_grids / 5_000)  # grids of the same size at any count
    pts = shapely.points(rng.uniform(0, side, (n_grids, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts)))
    cells = shapely.intersection(cells, shapely.box(0, 0, side, side))
    # Tessellation outlines are jagged: a vertex every 20 m, moved up to 4 m.
    cells = shapely.segmentize(cells, 20.0)
    # (a function of the point itself, so rings stay closed)
    cells = shapely.transform(cells, lambda xy: xy + 4 * np.sin(xy[:, ::-1] * 0.7))
    cells = shapely.make_valid(cells)
    crs = 32651
    hh = rng.integers(200, 301, len(cells))
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"G{i:05d}" for i in range(len(cells))],
            "community": [f"C{i // 12:04d}" for i in range(len(cells))],
            "households": hh,
            "kind": "regular",
            "reason": "",
        },
        geometry=cells,
        crs=crs,
    )
    centres = shapely.get_coordinates(shapely.point_on_surface(cells))
    bxy = np.repeat(centres, buildings_per_grid, axis=0) + rng.normal(
        0, 60, (len(cells) * buildings_per_grid, 2)
    )
    nb = len(bxy)
    b = gpd.GeoDataFrame(
        {
            "households": np.repeat(hh // buildings_per_grid, buildings_per_grid),
            "grid_id": np.repeat(grids["grid_id"].to_numpy(), buildings_per_grid),
            "station": [f"S{i % 400:03d}" for i in range(nb)],
            "walk_m": rng.uniform(0, 1000, nb),
        },
        geometry=shapely.box(bxy[:, 0] - 20, bxy[:, 1] - 8, bxy[:, 0] + 20, bxy[:, 1] + 8),
        crs=crs,
    )
    sxy = rng.uniform(0, side, (400, 2))
    stations = gpd.GeoDataFrame(
        {
            "site": [f"S{i:03d}" for i in range(400)],
            "floor_area_m2": 1000.0,
            "capacity_households": 3333,
            "households_served": 3000,
            "buildings_served": 150,
            "utilisation": 0.9,
            "mean_walk_m": 500.0,
            "max_walk_m": 990.0,
            "existing": False,
        },
        geometry=shapely.points(sxy),
        crs=crs,
    )
    uncovered = b.iloc[:50][["households", "walk_m", "geometry"]].assign(reason="beyond 1,000 m")
    report = pd.DataFrame(
        {"grid_id": grids["grid_id"], "workers": 2, "officers": 3, "station": "S000"}
    )
    return SimpleNamespace(
        partition=SimpleNamespace(grids=grids),
        stations=SimpleNamespace(
            stations=stations, uncovered=uncovered, metrics={"share_within_15min": 0.99}
        ),
        buildings=b,
        config=SimpleNamespace(max_walk_m=1000.0),
        staff_synthetic=False,
        notes=(),
        report=lambda: report,
    )


def test_map_size_scales_to_5000_grids_under_25_mb(tmp_path):
    """1,000 grids measured, x5 for the 5,000-grid city (size is linear in features).

    ``benchmarks/map_size.py`` builds the full 5,000-grid map and prints its size.
    """
    big = _big_plan(n_grids=1_000)
    path = tmp_path / "big.html"
    plan_map(big).save(str(path))
    leaflet = 170_000  # the inlined Leaflet JS + CSS, paid once
    size_mb = (leaflet + 5 * (path.stat().st_size - leaflet)) / 1e6
    assert size_mb < 25, f"a 5,000-grid city would need about {size_mb:.1f} MB"


# --- issue 16: language, escaping, basemaps, overview font --------------------


def _coords(page: str) -> np.ndarray:
    return np.array(
        [[float(a), float(b)] for a, b in re.findall(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]", page)]
    )


def test_map_in_chinese(p):
    m = plan_map(p, language="zh")
    for name in ("网格", "网格名称", "社区边界", "楼栋", "步行服务范围", "党群服务站"):
        _layer(m, name)
    page = m.get_root().render()
    for alias in ("网格员", "网格信息员", "户数", "服务户数"):
        assert f'"{alias.encode("unicode_escape").decode()}"' in page or f'"{alias}"' in page
    assert "网格化管理方案" in page and "人员：未提供人员名单" in page
    assert 'lang="zh"' in page


def test_data_values_reach_the_page_escaped():
    page = plan_map(hostile_plan()).get_root().render()
    for raw in (HOSTILE_COMMUNITY, HOSTILE_BUILDING, HOSTILE_SITE):
        assert raw not in page
        assert json.dumps(raw)[1:-1] not in page  # not even inside the GeoJSON
    # Shown as text (folium's JSON writes "&" as \u0026 inside <script>).
    assert html.escape(HOSTILE_COMMUNITY).replace("&", "\\u0026") in page
    assert "<script>document.title" not in page and 'onerror="document' not in page


def test_tianditu_needs_a_key_and_uses_it(p, monkeypatch):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(InputError, match="Tianditu key"):
        plan_map(p, basemap="tianditu")
    page = plan_map(p, basemap="tianditu", tianditu_key="a b&c").get_root().render()
    assert "t{s}.tianditu.gov.cn/vec_w/wmts" in page and "tk=a%20b%26c" in page
    assert "cva_w" in page  # the Chinese place labels over the tiles
    with pytest.raises(InputError, match="basemap"):
        plan_map(p, basemap="google")


def _lonlat(m: folium.Map) -> np.ndarray:
    """Every drawn coordinate of the map as lon/lat rows: GeoJSON layers and label markers."""
    rows = []
    for layer in m._children.values():
        if isinstance(layer, folium.GeoJson):
            geoms = shapely.from_geojson(json.dumps(layer.data))
            rows.append(shapely.get_coordinates(geoms))
        elif isinstance(layer, folium.FeatureGroup):
            latlon = [c.location for c in layer._children.values() if hasattr(c, "location")]
            rows.append(np.array(latlon, dtype=float).reshape(-1, 2)[:, ::-1])
    return np.vstack(rows)


def test_amap_shifts_every_coordinate_onto_gcj02(p, monkeypatch):
    """The overlay moves with the shift: grids, buildings, stations, labels and the view."""
    monkeypatch.setattr(mapping, "wgs84_to_gcj02", lambda lon, lat: (lon + 0.004, lat - 0.002))
    osm = plan_map(p, basemap="osm")
    amap = plan_map(p, basemap="amap")
    assert "autonavi.com" in amap.get_root().render()
    a, b = _lonlat(osm), _lonlat(amap)
    assert a.shape == b.shape and len(a) > 1000
    assert np.allclose(b - a, [0.004, -0.002], atol=2e-6)
    # The view too (Leaflet's bounds are [lat, lon]).
    fit = [c.bounds for m in (osm, amap) for c in m._children.values() if hasattr(c, "bounds")]
    assert np.allclose(np.subtract(fit[1], fit[0]), [[-0.002, 0.004], [-0.002, 0.004]], atol=2e-6)


def test_amap_shift_is_hundreds_of_metres_in_china(p):
    lon, lat = mapping._gcj02(np.array([[120.62, 31.30]]))[0]  # Suzhou
    dx = (lon - 120.62) * 111_320 * np.cos(np.radians(31.3))
    dy = (lat - 31.30) * 110_540
    assert 300 < np.hypot(dx, dy) < 700


def test_overview_in_chinese_with_a_cjk_font(tmp_path):
    if mapping.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph warning from matplotlib either
        path = overview_png(zh_plan(), tmp_path / "o.png")
    assert matplotlib.image.imread(path).shape[0] > 300


def test_overview_without_a_cjk_font_warns_and_writes_pinyin(tmp_path, monkeypatch):
    monkeypatch.setattr(mapping, "cjk_font", lambda: None)
    with pytest.warns(GridoptWarning, match="no font with Chinese characters"):
        overview_png(zh_plan(), tmp_path / "o.png")
    assert (tmp_path / "o.png").exists()
    assert mapping._pinyin("平江社区第3网格") == "PingJiangSheQuDi3WangGe"


def test_grid_labels_fit_their_grids(p):
    names = mapping._grid_labels(p.grids)
    assert len(names) == len(p.grids) and all(names)
    assert mapping._fit(["平江社区", "第1网格"], 20.0) < mapping._fit(["第1网格"], 20.0) <= 9.0


def test_grid_names_appear_from_the_zoom_they_fit():
    lines = [["平江社区", "第1网格"]] * 3
    small, large = mapping._label_zoom(100.0, lines, 31.3), mapping._label_zoom(400.0, lines, 31.3)
    assert 12 <= large < small <= 20  # smaller grids need a closer view
    assert mapping._label_lines("平江社区第3网格", "平江社区") == ["平江社区", "第3网格"]
    assert mapping._label_lines("第3网格", None) == ["第3网格"]
