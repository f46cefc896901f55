"""plan_map and overview_png: layers, tooltips, colours, self-contained HTML, size at city scale."""

from __future__ import annotations

import re
from types import SimpleNamespace

import folium
import geopandas as gpd
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import shapely

from _plan_data import small_plan
from gridopt import InputError, plan_map
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
