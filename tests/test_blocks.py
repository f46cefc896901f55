"""Blocks, cells that fill the land, and grids that tile the study area (issue 15)."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridopt import InputError, partition_grids
from gridopt.blocks import EDGE_CLASSES, land_blocks, land_graph
from gridopt.tags import barrier_kind, boundary_class

CRS = 32651


def _city(
    nx_: int, ny_: int, *, spacing: float = 60.0, per_block: int = 4, hh: int = 30, seed: int = 0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A lattice of blocks between residential streets, ``per_block`` houses in each."""
    rng = np.random.default_rng(seed)
    geoms, households = [], []
    for i in range(nx_):
        for j in range(ny_):
            x0, y0 = i * spacing, j * spacing
            for k in range(per_block):
                cx = x0 + spacing * (0.25 + 0.5 * (k % 2))
                cy = y0 + spacing * (0.25 + 0.5 * (k // 2 % 2)) + 3 * (k // 4)
                geoms.append(shapely.box(cx - 6, cy - 5, cx + 6, cy + 5))
                households.append(int(rng.integers(hh // 2, hh + hh // 2)))
    b = gpd.GeoDataFrame({"households": households}, geometry=geoms, crs=CRS)
    lines = [shapely.LineString([(i * spacing, -50), (i * spacing, ny_ * spacing + 50)])
             for i in range(nx_ + 1)]  # fmt: skip
    lines += [shapely.LineString([(-50, j * spacing), (nx_ * spacing + 50, j * spacing)])
              for j in range(ny_ + 1)]  # fmt: skip
    s = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=CRS)
    return b, s


def _check_tiling(part, area: shapely.Geometry, n: int) -> None:
    g = part.grids.geometry
    assert (g.geom_type == "Polygon").all(), g.geom_type.value_counts().to_dict()
    union = shapely.union_all(g.to_numpy())
    assert abs(union.area - area.area) <= 0.005 * area.area
    assert shapely.difference(area, union).area <= 0.005 * area.area
    overlap = float(g.area.sum() - union.area)
    assert overlap <= max(1.0, area.area / 1e6)
    assert part.labels.notna().all() and len(part.labels) == n
    assert set(part.labels) == set(part.grids["grid_id"]) | (set(part.labels) - set(part.grids["grid_id"]))
    assert set(part.labels) <= set(part.grids["grid_id"])
    assert part.metrics["area_covered"] == pytest.approx(1.0, abs=0.005)


def test_tags_classify_streets_water_rail_and_tunnels():
    f = pd.DataFrame(
        {
            "highway": ["residential", "footway", "tertiary", "primary", None, None, None, "service"],
            "railway": [None, None, None, None, "rail", "rail", None, None],
            "waterway": [None] * 6 + ["canal", None],
            "other_tags": [None, None, None, '"layer"=>"-1"', '"tunnel"=>"yes"',
                           '"rail"=>"preserved"', None, None],
        }
    )  # fmt: skip
    cls = boundary_class(f)
    assert cls.tolist() == ["residential", None, "main", None, None, None, "water", None]
    coast = pd.DataFrame({"other_tags": ['"natural"=>"coastline"']})
    assert boundary_class(coast).tolist() == ["water"]
    assert barrier_kind(pd.Series(["major", "main", "water", None])).tolist() == [
        "major_street", None, "river", None
    ]


def test_read_streets_and_adjacency_share_one_classification():
    import gridopt

    s = gridopt.read_streets(gridopt.datasets.small_town())
    assert "boundary_class" in s.columns
    assert (boundary_class(s.drop(columns=["boundary_class", "barrier_kind"])).fillna("-")
            == s["boundary_class"].fillna("-")).all()  # fmt: skip
    # secondary roads are main streets now, not barriers
    sec = s["highway"] == "secondary"
    assert s.loc[sec, "barrier_kind"].isna().all()


def test_blocks_and_cells_tile_the_area():
    b, s = _city(3, 2)
    land = land_graph(b.geometry.to_numpy(), crs=CRS, streets=s)
    assert len(land.blocks) == 6 + 0 or len(land.blocks) >= 6
    areas = shapely.area(land.land)
    assert areas.sum() == pytest.approx(land.area.area, rel=1e-6)
    assert shapely.union_all(land.land).area == pytest.approx(land.area.area, rel=1e-6)
    # every cell holds its building's point
    assert shapely.contains(land.cells, shapely.point_on_surface(b.geometry.to_numpy())).all()
    # neighbours across a residential street and inside a block
    assert set(np.unique(land.cls)) >= {0, EDGE_CLASSES.index("residential")}


def test_partition_tiles_the_area_and_keeps_blocks_whole():
    b, s = _city(4, 3, per_block=4, hh=30)  # 120 households per block
    part = partition_grids(b, streets=s, min_households=200, max_households=300)
    _check_tiling(part, land_graph(b.geometry.to_numpy(), crs=CRS, streets=s).area, len(b))
    assert part.share_in_band == 1.0
    assert part.metrics["blocks_whole"] >= 0.95
    assert part.metrics["boundary_on_streets"] > 0.9
    assert {"boundary_on_streets", "blocks_split"} <= set(part.grids.columns)
    assert part.metrics["grids_straddling"]["main"] == 0


def test_area_is_tiled_and_must_cover_the_buildings():
    b, s = _city(2, 2)
    area = shapely.box(-100, -100, 220, 220)
    part = partition_grids(b, streets=s, min_households=100, max_households=300, area=area)
    _check_tiling(part, area, len(b))
    with pytest.raises(InputError, match=r"misses \d+ of \d+ buildings"):
        partition_grids(b, streets=s, min_households=100, max_households=300,
                        area=shapely.box(0, 0, 60, 60))  # fmt: skip
    with pytest.raises(InputError, match="polygons"):
        partition_grids(b, streets=s, area=shapely.LineString([(0, 0), (1, 1)]))
    with pytest.raises(InputError, match="boundary_classes"):
        partition_grids(b, streets=s, boundary_classes=("footway",))


def test_streets_that_close_no_block_fall_back_to_the_area():
    b, _ = _city(2, 2)
    stub = gpd.GeoDataFrame(
        {"highway": ["residential"]}, geometry=[shapely.LineString([(10, 10), (20, 10)])], crs=CRS
    )
    for streets in (None, stub):
        part = partition_grids(b, streets=streets, min_households=100, max_households=300)
        assert part.metrics["blocks"] == 1
        assert "one block" in part.metrics["blocks_note"]
        assert (part.grids.geom_type == "Polygon").all()


def test_duplicated_and_reprojected_streets():
    b, s = _city(2, 2)
    doubled = pd.concat([s, s], ignore_index=True)
    ref = partition_grids(b, streets=s, min_households=100, max_households=300)
    dup = partition_grids(b, streets=doubled, min_households=100, max_households=300)
    assert dup.metrics["blocks"] == ref.metrics["blocks"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other = partition_grids(b, streets=s.to_crs(3857), min_households=100, max_households=300)
    assert any("reprojected" in str(w.message) for w in caught)
    assert other.metrics["blocks"] == ref.metrics["blocks"]


def test_land_without_buildings_joins_a_grid():
    b, s = _city(3, 1, per_block=4)
    # empty the middle block: its land must still belong to a grid
    mid = b.geometry.centroid.x.between(60, 120)
    b = b[~mid.to_numpy()]
    part = partition_grids(b, streets=s, min_households=50, max_households=300)
    area = land_graph(b.geometry.to_numpy(), crs=CRS, streets=s).area
    _check_tiling(part, area, len(b))


def test_villages_far_apart_stay_one_grid_each_not_one_per_farmhouse():
    rng = np.random.default_rng(3)
    geoms, hh = [], []
    for cx in (0.0, 3000.0):  # two villages 3 km apart, 12 houses of 5 households
        for _ in range(12):
            x, y = cx + rng.uniform(-80, 80), rng.uniform(-80, 80)
            geoms.append(shapely.box(x, y, x + 8, y + 8))
            hh.append(5)
    b = gpd.GeoDataFrame({"households": hh}, geometry=geoms, crs=CRS)
    part = partition_grids(b, min_households=200, max_households=300, max_link_m=300)
    assert part.n_grids == 2
    assert (part.grids["kind"] == "undersized").all()
    # undersized grids share one grid worker instead of one each
    assert part.grids["grid_workers"].sum() == 1
    assert part.grids["reason"].str.contains("shares the grid worker").sum() == 1


def test_land_blocks_counts_buildings():
    b, s = _city(2, 2, per_block=3)
    blocks = land_blocks(b, streets=s)
    assert blocks["n_buildings"].sum() == len(b)
    assert (blocks["n_buildings"] >= 0).all()


@st.composite
def _random_city(draw):
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(8, 40))
    size = 400.0
    xs = rng.uniform(0, size, n)
    ys = rng.uniform(0, size, n)
    geoms = [shapely.box(x, y, x + rng.uniform(6, 20), y + rng.uniform(6, 20)) for x, y in zip(xs, ys, strict=False)]
    hh = rng.integers(0, 60, n)
    hh[0] = max(hh[0], 1)
    b = gpd.GeoDataFrame({"households": hh}, geometry=geoms, crs=CRS)
    k = draw(st.integers(0, 6))
    lines = []
    for _ in range(k):
        if rng.random() < 0.5:
            x = rng.uniform(0, size)
            lines.append(shapely.LineString([(x, -50), (x + rng.uniform(-80, 80), size + 50)]))
        else:
            y = rng.uniform(0, size)
            lines.append(shapely.LineString([(-50, y), (size + 50, y + rng.uniform(-80, 80))]))
    if lines and rng.random() < 0.3:
        lines.append(lines[0])  # a duplicated line
    kinds = rng.choice(["residential", "tertiary", "primary"], len(lines))
    s = gpd.GeoDataFrame({"highway": kinds}, geometry=lines, crs=CRS) if lines else None
    return b, s


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_city())
def test_random_cities_tile_and_lose_nothing(city):
    b, s = city
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part = partition_grids(b, streets=s, min_households=60, max_households=120, time_limit_s=10)
    area = land_graph(b.geometry.to_numpy(), crs=CRS, streets=s).area
    _check_tiling(part, area, len(b))
    assert int(part.grids["households"].sum()) == int(b["households"].sum())
    reg = part.grids[part.grids["kind"] == "regular"]
    assert reg["households"].between(60, 120).all()
    assert (part.grids.loc[part.grids["kind"] != "regular", "reason"].str.len() > 0).all()


def test_cli_area_that_misses_buildings_is_one_line_and_exit_2(tmp_path, capsys):
    import gridopt
    from gridopt.cli import main

    town = gridopt.datasets.small_town()
    b = gridopt.read_buildings(town)
    x, y = b.geometry.iloc[0].centroid.coords[0]
    area = gpd.GeoDataFrame(geometry=[shapely.box(x - 50, y - 50, x + 50, y + 50)], crs=b.crs)
    area_path = tmp_path / "area.gpkg"
    area.to_file(area_path)
    out = tmp_path / "grids.gpkg"
    rc = main(["partition", str(town), "--area", str(area_path), "--max-link-m", "200",
               "-o", str(out)])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("misses" in line and "buildings" in line for line in err)
    assert not out.exists()
