"""A seeded synthetic city for tests and benchmarks.

Square superblocks (one community each) bounded by major streets, each split
by minor streets into four compounds (小区) of one type: six-storey slab
blocks, high-rise towers (now and then one above 300 households), low-rise
lanes, or an institution (school, hospital, shopping centre). Every
superblock has a community centre (a station site). A river meanders across
the city. Nine superblocks (3 x 3) form a street office.

Households follow from floor area exactly as for real data
(:func:`gridopt.estimate_households` with the storeys given), about 25 per
building on average, so 200,000 buildings hold about 5 million households.

Examples
--------
>>> city = synthetic_city(500, seed=1)
>>> len(city.buildings), city.buildings.crs.to_epsg()
(500, 32651)
>>> bool(city.buildings["households"].gt(0).any())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridopt._errors import InputError
from gridopt.households import estimate_households

__all__ = ["SyntheticCity", "synthetic_city"]

SUPERBLOCK_M = 420.0
_MAJOR_HALF_WIDTH_M = 15.0
_MINOR_HALF_WIDTH_M = 6.0
_RIVER_HALF_WIDTH_M = 25.0
#: compound type -> probability
_COMPOUND_MIX = {"slab": 0.60, "tower": 0.17, "lowrise": 0.13, "institution": 0.10}


@dataclass(frozen=True)
class SyntheticCity:
    """A generated city: buildings, streets (with barriers), communities and station sites."""

    buildings: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    seed: int

    @property
    def candidates(self) -> gpd.GeoDataFrame:
        """Buildings that can host a service station (community centres, schools, ...)."""
        return self.buildings[self.buildings["station_candidate"]]

    def summary(self) -> str:
        b = self.buildings
        return (
            f"synthetic city (seed {self.seed}): {len(b):,} buildings, "
            f"{int(b['households'].sum()):,} households, {len(self.communities):,} communities, "
            f"{b['street'].nunique():,} street offices, {len(self.streets):,} street lines"
        )


def synthetic_city(n_buildings: int, *, seed: int = 0, crs: int = 32651) -> SyntheticCity:
    """Generate a city of exactly ``n_buildings`` buildings.

    Parameters
    ----------
    n_buildings
        Number of buildings (10 to a few hundred thousand).
    seed
        Random seed; the same seed gives the same city.
    crs
        Metric CRS of the coordinates (default UTM 51N, Suzhou/Shanghai).

    Returns
    -------
    SyntheticCity
    """
    if not isinstance(n_buildings, (int, np.integer)) or n_buildings < 10:
        raise InputError(f"n_buildings must be an integer >= 10, got {n_buildings!r}")
    rng = np.random.default_rng(seed)
    n_blocks = max(1, math.ceil(n_buildings / 84 * 1.25))
    ncols = max(1, math.ceil(math.sqrt(n_blocks)))
    river = _river(ncols, rng)
    parts: list[pd.DataFrame] = []
    total = 0
    block = 0
    while total < n_buildings:
        row, col = divmod(block, ncols)
        frame = _superblock(row, col, rng)
        frame = frame[_away_from_river(frame, river)]
        parts.append(frame)
        total += len(frame)
        block += 1
    table = pd.concat(parts, ignore_index=True).iloc[:n_buildings]
    nrows = int(table["row"].max()) + 1
    geometry = shapely.box(table.x0, table.y0, table.x1, table.y1)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": np.arange(len(table)),
            "floors": table["floors"].to_numpy(),
            "building_type": table["building_type"].to_numpy(),
            "community": [f"C{r:03d}-{c:03d}" for r, c in zip(table.row, table.col, strict=True)],
            "street": [f"S{r // 3:02d}-{c // 3:02d}" for r, c in zip(table.row, table.col, strict=True)],
        },
        geometry=geometry,
        crs=crs,
    ).set_index(pd.Index(np.arange(len(table)), name="building_id"))
    buildings = estimate_households(buildings, floors="floors", building_type="building_type")
    used = buildings["community"].unique()
    communities = _communities(nrows, ncols, crs)
    communities = communities[communities["community"].isin(used)].reset_index(drop=True)
    streets = _streets(nrows, ncols, river, crs)
    return SyntheticCity(buildings=buildings, streets=streets, communities=communities, seed=seed)


def _superblock(row: int, col: int, rng: np.random.Generator) -> pd.DataFrame:
    ox, oy = col * SUPERBLOCK_M + _MAJOR_HALF_WIDTH_M, row * SUPERBLOCK_M + _MAJOR_HALF_WIDTH_M
    inner = SUPERBLOCK_M - 2 * _MAJOR_HALF_WIDTH_M
    half = (inner - 2 * _MINOR_HALF_WIDTH_M) / 2
    types = rng.choice(list(_COMPOUND_MIX), size=4, p=list(_COMPOUND_MIX.values()))
    frames = []
    for k, kind in enumerate(types):
        cx = ox + (k % 2) * (half + 2 * _MINOR_HALF_WIDTH_M)
        cy = oy + (k // 2) * (half + 2 * _MINOR_HALF_WIDTH_M)
        frames.append(_compound(str(kind), cx, cy, half, rng))
    frame = pd.concat(frames, ignore_index=True)
    # The first building of the superblock becomes its community centre.
    frame.loc[0, ["building_type", "floors"]] = ["community_centre", 3]
    frame["row"], frame["col"] = row, col
    return frame


def _compound(kind: str, x: float, y: float, size: float, rng: np.random.Generator) -> pd.DataFrame:
    """Buildings of one compound whose lower-left corner is (x, y) and side ``size`` m."""
    margin = 8.0
    if kind == "slab":
        nx, ny, w, h = 2, 6, 60.0, 12.0
        floors = rng.integers(5, 8, size=nx * ny)
        btype = np.full(nx * ny, "apartments", dtype=object)
    elif kind == "tower":
        nx, ny, w, h = 3, 3, 24.0, 24.0
        floors = rng.integers(18, 34, size=nx * ny)
        btype = np.full(nx * ny, "apartments", dtype=object)
        if rng.random() < 0.15:  # a super-tower above the grid maximum
            floors[rng.integers(nx * ny)] = 72
    elif kind == "lowrise":
        nx, ny, w, h = 8, 8, 15.0, 10.0
        floors = rng.integers(2, 4, size=nx * ny)
        btype = np.full(nx * ny, "residential", dtype=object)
    else:
        what = rng.choice(["school", "hospital", "retail"], p=[0.5, 0.25, 0.25])
        nx, ny, w, h = 2, 1, 60.0, 30.0
        floors = rng.integers(3, 6, size=nx * ny)
        btype = np.full(nx * ny, what, dtype=object)
    step_x = (size - 2 * margin) / nx
    step_y = (size - 2 * margin) / ny
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    ix, iy = ix.ravel(), iy.ravel()
    scale = rng.uniform(0.85, 1.0, size=(len(ix), 2))
    bw = np.minimum(w * scale[:, 0], step_x * 0.9)
    bh = np.minimum(h * scale[:, 1], step_y * 0.85)
    x0 = x + margin + ix * step_x + (step_x - bw) / 2 + rng.uniform(-1, 1, len(ix))
    y0 = y + margin + iy * step_y + (step_y - bh) / 2 + rng.uniform(-1, 1, len(ix))
    return pd.DataFrame(
        {"x0": x0, "y0": y0, "x1": x0 + bw, "y1": y0 + bh, "floors": floors, "building_type": btype}
    )


def _river(ncols: int, rng: np.random.Generator) -> np.ndarray:
    """River centre line as an (k, 2) array: a meander across the city, a third of the way up."""
    width = ncols * SUPERBLOCK_M
    xs = np.linspace(-50, width + 50, max(50, ncols * 8))
    y0 = SUPERBLOCK_M * max(1.0, ncols / 3) + SUPERBLOCK_M * 0.37
    ys = y0 + 0.3 * SUPERBLOCK_M * np.sin(xs / (2.5 * SUPERBLOCK_M) * 2 * np.pi + rng.uniform(0, 6))
    return np.column_stack([xs, ys])


def _away_from_river(frame: pd.DataFrame, river: np.ndarray) -> np.ndarray:
    boxes = shapely.box(frame.x0, frame.y0, frame.x1, frame.y1)
    line = shapely.LineString(river)
    return shapely.distance(boxes, line) > _RIVER_HALF_WIDTH_M


def _communities(nrows: int, ncols: int, crs: int) -> gpd.GeoDataFrame:
    rows, cols = np.divmod(np.arange(nrows * ncols), ncols)
    geoms = shapely.box(cols * SUPERBLOCK_M, rows * SUPERBLOCK_M,
                        (cols + 1) * SUPERBLOCK_M, (rows + 1) * SUPERBLOCK_M)
    return gpd.GeoDataFrame(
        {
            "community": [f"C{r:03d}-{c:03d}" for r, c in zip(rows, cols, strict=True)],
            "street": [f"S{r // 3:02d}-{c // 3:02d}" for r, c in zip(rows, cols, strict=True)],
        },
        geometry=geoms,
        crs=crs,
    )


def _streets(nrows: int, ncols: int, river: np.ndarray, crs: int) -> gpd.GeoDataFrame:
    width, height = ncols * SUPERBLOCK_M, nrows * SUPERBLOCK_M
    lines, highway, kind = [], [], []
    for i in range(ncols + 1):
        lines.append(shapely.LineString([(i * SUPERBLOCK_M, 0), (i * SUPERBLOCK_M, height)]))
        highway.append("primary")
        kind.append("major_street")
    for j in range(nrows + 1):
        lines.append(shapely.LineString([(0, j * SUPERBLOCK_M), (width, j * SUPERBLOCK_M)]))
        highway.append("primary")
        kind.append("major_street")
    for i in range(ncols):
        x = (i + 0.5) * SUPERBLOCK_M
        lines.append(shapely.LineString([(x, 0), (x, height)]))
        highway.append("residential")
        kind.append(None)
    for j in range(nrows):
        y = (j + 0.5) * SUPERBLOCK_M
        lines.append(shapely.LineString([(0, y), (width, y)]))
        highway.append("residential")
        kind.append(None)
    frame = gpd.GeoDataFrame({"highway": highway, "waterway": None, "railway": None,
                              "name": None, "barrier_kind": kind}, geometry=lines, crs=crs)
    # The street lines are split at every crossing so they form a routable network.
    frame = frame.set_geometry(frame.geometry.intersection(shapely.box(0, 0, width, height)))
    noded = shapely.node(shapely.GeometryCollection(list(frame.geometry)))
    pieces = gpd.GeoDataFrame(geometry=list(noded.geoms), crs=crs)
    pieces = pieces.sjoin(frame, how="left", predicate="within").drop(columns="index_right")
    pieces = pieces[~pieces.index.duplicated(keep="first")]
    river_line = shapely.LineString(river).intersection(shapely.box(-50, 0, width + 50, height))
    river_frame = gpd.GeoDataFrame({"highway": [None], "waterway": ["river"], "railway": [None],
                                    "name": ["synthetic river"], "barrier_kind": ["river"]},
                                   geometry=[river_line], crs=crs)
    out = pd.concat([pieces, river_frame], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs).explode(index_parts=False).reset_index(drop=True)
