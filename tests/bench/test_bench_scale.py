"""Pieces of the scale benchmark family that run without the Monaco extract."""

import geopandas as gpd
from shapely.geometry import box

from gridopt.bench import scale


def _buildings(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"station_candidate": [k % 10 == 0 for k in range(n)]},
        geometry=[box(k * 20, 0, k * 20 + 10, 10) for k in range(n)],
        crs=32632,
    )


def test_monaco_candidates_adds_seeded_random_buildings():
    b = _buildings(100)
    plain = scale.monaco_candidates(b, extra=0)
    assert plain.index.tolist() == list(range(0, 100, 10))
    more = scale.monaco_candidates(b, extra=25, seed=3)
    assert len(more) == 35 and more.index.is_unique
    assert more.index.tolist() == scale.monaco_candidates(b, extra=25, seed=3).index.tolist()
    # asking for more than there is takes every building once
    assert len(scale.monaco_candidates(b, extra=1000)) == 100


def test_monaco_walk_is_a_default_instance():
    assert "monaco-walk" in scale.FULL
