"""A street office's own files, made in the tests: GBK Shapefile (no .cpg), GBK staff CSV, xlsx.

Made from the Suzhou sample in ``../shared/data`` (or ``$GRIDOPT_DATA``) when it is
there, else from a seeded synthetic city; never committed. Columns and values are
what a Chinese street office's GIS analyst has: 楼栋编号, 名称, 户数 ("120户", full-width
digits), 层数 ("6层"), 社区, 建筑类型 (住宅, 学校, 医院, 商业, 社区服务中心); staff with
姓名, 岗位, 经度, 纬度, 住址, 手机; community polygons with 名称.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt import InputError, datasets
from gridopt.synthetic import synthetic_city

#: Four communities of the office, one per quadrant.
COMMUNITIES = ("平江社区", "观前社区", "北寺塔社区", "双塔社区")
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True)
class OfficeFiles:
    """Paths of the generated files and the numbers a plan must reproduce."""

    buildings: Path  # GBK Shapefile without .cpg
    communities: Path  # GBK Shapefile of polygons with 名称, without .cpg
    staff_csv: Path  # GBK CSV
    staff_xlsx: Path
    households: int  # sum of 户数
    n_buildings: int
    source: str  # "suzhou" or "synthetic"


def suzhou_path() -> Path | None:
    """The Suzhou sample in the shared data folder (gridopt.datasets), if present."""
    try:
        return datasets.suzhou_buildings()
    except InputError:
        return None


def _footprints(max_buildings: int | None, seed: int) -> tuple[gpd.GeoDataFrame, str]:
    """Lon/lat footprints with storeys: Suzhou, or a synthetic city placed in Suzhou."""
    path = suzhou_path()
    if path is not None:
        raw = gpd.read_file(path)
        frame = gpd.GeoDataFrame(
            {"floors": raw["Floor"].astype(int)}, geometry=raw.geometry, crs=raw.crs
        ).to_crs(4326)
        source = "suzhou"
    else:
        city = synthetic_city(max_buildings or 600, seed=seed)
        b = city.buildings
        # Shift the synthetic town to Suzhou (UTM 51N) before going to degrees.
        moved = b.geometry.translate(xoff=300_000, yoff=3_465_000)
        frame = gpd.GeoDataFrame(
            {"floors": b["floors"].astype(int).to_numpy()}, geometry=moved.to_numpy(), crs=b.crs
        ).to_crs(4326)
        source = "synthetic"
    if max_buildings is not None and len(frame) > max_buildings:
        # A compact piece: the buildings nearest to the centre.
        metric = frame.to_crs(32651).geometry
        d = metric.centroid.distance(shapely.box(*metric.total_bounds).centroid)
        frame = frame.loc[d.sort_values(kind="stable").index[:max_buildings]]
    return frame.reset_index(drop=True), source


def make_office_files(
    directory: Path, *, max_buildings: int | None = 800, seed: int = 0, coords: str = "wgs84"
) -> OfficeFiles:
    """Write the office's buildings, communities and staff files into ``directory``.

    ``coords="gcj02"`` writes every longitude/latitude as AMap/Gaode would (needs
    :mod:`gridopt.crs`).
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    frame, source = _footprints(max_buildings, seed)
    metric = frame.to_crs(32651)
    area = metric.geometry.area.to_numpy()
    floors = frame["floors"].to_numpy()

    # Communities: quadrants around the median point.
    pts = metric.geometry.representative_point()
    mx, my = float(np.median(pts.x)), float(np.median(pts.y))
    quadrant = (pts.x.to_numpy() >= mx).astype(int) + 2 * (pts.y.to_numpy() >= my).astype(int)
    community = np.array(COMMUNITIES, dtype=object)[quadrant]

    # Types: mostly housing; in each community the largest low building is its service
    # centre, and a school, a hospital and a shop among the next.
    btype = np.full(len(frame), "住宅", dtype=object)
    for q in range(4):
        idx = np.flatnonzero(quadrant == q)
        low = idx[floors[idx] <= 4]
        order = low[np.argsort(-area[low], kind="stable")]
        for i, kind in zip(order[:4], ("社区服务中心", "学校", "医院", "商业"), strict=False):
            btype[i] = kind
    households = np.where(btype == "住宅", np.maximum(1, np.round(area * floors / 100.0)), 0)
    households = households.astype(int)

    hh_text = [f"{h}户" if i % 5 == 0 else str(h) for i, h in enumerate(households)]
    hh_text = [t.translate(_FULL_WIDTH) if i % 7 == 3 else t for i, t in enumerate(hh_text)]
    floors_text = [f"{f}层" if i % 4 == 1 else str(f) for i, f in enumerate(floors)]
    names = [f"{c}{i + 1}号楼" for i, c in enumerate(community)]
    table = gpd.GeoDataFrame(
        {
            "楼栋编号": [f"SZ{i + 1:05d}" for i in range(len(frame))],
            "名称": names,
            "户数": hh_text,
            "层数": floors_text,
            "社区": community,
            "建筑类型": btype,
        },
        geometry=frame.geometry.to_numpy(),
        crs=4326,
    )
    if coords != "wgs84":
        table = table.set_geometry(_shift(table.geometry, coords))
    buildings = directory / "楼栋.shp"
    _write_gbk_shapefile(table, buildings)

    # Community polygons: the quadrants, a little beyond the buildings.
    x0, y0, x1, y1 = metric.total_bounds
    pad = 50.0
    boxes = [
        shapely.box(x0 - pad, y0 - pad, mx, my), shapely.box(mx, y0 - pad, x1 + pad, my),
        shapely.box(x0 - pad, my, mx, y1 + pad), shapely.box(mx, my, x1 + pad, y1 + pad),
    ]  # fmt: skip
    polys = gpd.GeoDataFrame(
        {"名称": list(COMMUNITIES), "面积": [round(b.area) for b in boxes]},
        geometry=boxes,
        crs=32651,
    ).to_crs(4326)
    if coords != "wgs84":
        polys = polys.set_geometry(_shift(polys.geometry, coords))
    communities = directory / "社区.shp"
    _write_gbk_shapefile(polys, communities)

    staff = _staff(table, households, community, rng)
    staff_csv = directory / "人员.csv"
    staff_csv.write_bytes(staff.to_csv(index=False).encode("gbk"))
    staff_xlsx = directory / "人员.xlsx"
    staff.to_excel(staff_xlsx, index=False, engine="openpyxl")
    return OfficeFiles(
        buildings, communities, staff_csv, staff_xlsx, int(households.sum()), len(table), source
    )


def _staff(
    table: gpd.GeoDataFrame, households: np.ndarray, community: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """Workers, officers, mediators and party members living among the buildings."""
    total = int(households.sum())
    roles = (
        ["网格员"] * int(np.ceil(total / 200) + 2)
        + ["网格信息员"] * int(total // 150)
        + ["专职调解员"] * 6
        + ["党员"] * 5
    )
    homes = table.geometry.representative_point()
    pick = rng.choice(len(table), size=len(roles), replace=True)
    surnames = "王李张刘陈杨黄赵吴周"
    return pd.DataFrame(
        {
            "姓名": [
                f"{surnames[i % 10]}{'伟芳娜敏静丽强磊军洋'[i // 10 % 10]}{i}"
                for i in range(len(roles))
            ],
            "岗位": roles,
            "经度": np.round(homes.x.to_numpy()[pick], 6),
            "纬度": np.round(homes.y.to_numpy()[pick], 6),
            "住址": [f"{community[j]}{j + 1}号楼" for j in pick],
            "手机": [f"139{rng.integers(10_000_000, 99_999_999)}" for _ in roles],
        }
    )


def _shift(geoms: gpd.GeoSeries, coords: str) -> gpd.GeoSeries:
    """WGS84 lon/lat to ``coords`` (GCJ-02, BD-09) with gridopt.crs."""
    import importlib

    crs = importlib.import_module("gridopt.crs")
    return gpd.GeoSeries(
        crs.shift_geometry(geoms.to_numpy(), "wgs84", coords), index=geoms.index, crs=geoms.crs
    )


def _write_gbk_shapefile(frame: gpd.GeoDataFrame, path: Path) -> None:
    """A Shapefile in GBK without .cpg, as ArcGIS/SuperMap users hand them on."""
    frame.to_file(path, encoding="gbk")
    for cpg in (path.with_suffix(".cpg"), path.with_suffix(".CPG")):
        cpg.unlink(missing_ok=True)
    # No code-page byte either (offset 29 of the DBF header): GDAL then assumes Latin-1.
    with open(path.with_suffix(".dbf"), "r+b") as fh:
        fh.seek(29)
        fh.write(b"\0")
