"""The execution layer: Dask mapping, worker death, city splitting, chunked reading."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings

import cloudpickle
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import gridopt
from gridopt.city import _feasible, split_city
from gridopt.execution import local_client, map_components
from gridopt.io import read_buildings_chunked
from gridopt.synthetic import synthetic_city

# Functions of this test module travel to worker processes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _slow_square(x: int, delay_s: float) -> tuple[int, int, int]:
    """A pure task that takes a while, reporting the worker process that ran it."""
    time.sleep(delay_s)
    return x, x * x, os.getpid()


@pytest.fixture(scope="module")
def city():
    return synthetic_city(1500, seed=3)


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes (what a 2-core laptop runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with local_client(2, processes=True) as client:
            yield client


# ---------------------------------------------------------------------------- map_components


def test_map_components_sequential_keeps_order():
    assert map_components(divmod, [7, 9, 11], args=(4,)) == [(1, 3), (2, 1), (2, 3)]
    assert map_components(divmod, [], args=(4,)) == []


def test_map_components_rejects_unknown_client_string():
    with pytest.raises(gridopt.InputError, match="client must be"):
        map_components(divmod, [1], args=(2,), client="cloud")


def test_cluster_gives_same_results_in_task_order(cluster):
    tasks = list(range(40))
    sizes = np.arange(40)[::-1] % 7 + 1  # batching reorders work; results must not move
    seq = map_components(_slow_square, tasks, args=(0.0,))
    par = map_components(_slow_square, tasks, args=(0.0,), client=cluster, sizes=sizes)
    assert [r[:2] for r in par] == [r[:2] for r in seq]
    # identical pieces share a key (pure) but every position still gets its result
    same = map_components(_slow_square, [3] * 10, args=(0.0,), client=cluster, tasks_per_worker=5)
    assert [r[1] for r in same] == [9] * 10


def test_cluster_partition_labels_identical_to_sequential(cluster):
    part = pytest.importorskip("gridopt.partition")
    city = synthetic_city(700, seed=3)
    kwargs = dict(streets=city.streets, communities="community", seed=5, time_limit_s=60.0)
    seq = part.partition_grids(city.buildings, **kwargs)
    par = part.partition_grids(city.buildings, client=cluster, **kwargs)
    pd.testing.assert_series_equal(seq.labels, par.labels)
    assert seq.status != "time_limit"


def test_killed_worker_is_retried_without_loss_or_duplicates(cluster):
    # 12 tasks of 0.4 s on 2 workers: kill one worker while it runs a task.
    tasks = list(range(12))
    out: dict = {}

    def run() -> None:
        out["res"] = map_components(
            _slow_square, tasks, args=(0.4,), client=cluster, tasks_per_worker=6
        )

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.time() + 30
    while victim is None and time.time() < deadline:
        busy = {w: t for w, t in cluster.processing().items() if t}
        if busy and any(cluster.who_has().values()):
            victim = sorted(busy)[0]
        time.sleep(0.05)
    assert victim is not None, "no task ever started"
    pid_before = cluster.run(os.getpid, workers=[victim])[victim]
    try:
        cluster.run(os._exit, 1, workers=[victim])
    except Exception:  # the connection drops with the worker: expected
        pass
    thread.join(120)
    assert not thread.is_alive()
    res = out["res"]
    assert [r[0] for r in res] == tasks  # each task exactly once, in order
    assert [r[1] for r in res] == [t * t for t in tasks]
    # the killed process is gone: its tasks were rerun by the surviving or restarted worker
    alive = set(cluster.run(os.getpid).values())
    assert pid_before not in alive


# ---------------------------------------------------------------------------- split_city


def test_split_by_column_keeps_communities(city):
    pieces = split_city(city.buildings, by="community")
    assert pieces.index.equals(city.buildings.index)
    assert (pieces == city.buildings["community"]).all()


def test_split_by_missing_column_says_so(city):
    with pytest.raises(gridopt.InputError, match="no column 'district'"):
        split_city(city.buildings, by="district")


def test_split_by_blocks_covers_every_building_and_pieces_are_feasible(city):
    pieces = split_city(city.buildings, streets=city.streets)
    assert pieces.notna().all() and len(pieces) == len(city.buildings)
    h = city.buildings["households"].groupby(pieces).sum()
    assert len(h) > 5
    assert _feasible(h.to_numpy(), 200, 300).all()


def test_split_without_barriers_is_one_piece(city):
    pieces = split_city(city.buildings)
    assert pieces.nunique() == 1


def _toy_blocks(households: list[int]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A row of square blocks 100 m wide separated by major streets; one building each."""
    geoms = [shapely.box(100 * k + 30, 30, 100 * k + 70, 70) for k in range(len(households))]
    b = gpd.GeoDataFrame({"households": households}, geometry=geoms, crs=32651)
    lines = [
        shapely.LineString([(100 * k, -50), (100 * k, 150)]) for k in range(len(households) + 1)
    ]
    lines += [shapely.LineString([(-50, 0), (100 * len(households) + 50, 0)]),
              shapely.LineString([(-50, 100), (100 * len(households) + 50, 100)])]  # fmt: skip
    s = gpd.GeoDataFrame({"barrier_kind": ["major_street"] * len(lines)}, geometry=lines, crs=32651)
    return b, s


def test_infeasible_block_merged_with_neighbour():
    # blocks: 250 | 120 | 260 | 350 ; the 120 block cannot make a grid alone, nor can 350
    b, s = _toy_blocks([250, 120, 260, 350])
    pieces = split_city(b, streets=s)
    assert pieces.notna().all()
    h = b["households"].groupby(pieces).sum()
    assert _feasible(h.to_numpy(), 200, 300).all()
    assert h.sum() == b["households"].sum()
    # 120 joins a touching neighbour, never the far block
    assert pieces.iloc[1] in (pieces.iloc[0], pieces.iloc[2])


def test_island_block_joins_nearest():
    b, s = _toy_blocks([250, 260])
    island = gpd.GeoDataFrame(
        {"households": [50]}, geometry=[shapely.box(1000, 30, 1040, 70)], crs=32651
    )
    b = pd.concat([b, island], ignore_index=True)
    ring = gpd.GeoDataFrame(
        {"barrier_kind": ["river"]}, geometry=[shapely.box(980, 10, 1060, 90).exterior], crs=32651
    )
    pieces = split_city(b, streets=pd.concat([s, ring], ignore_index=True))
    assert pieces.iloc[2] == pieces.iloc[1]  # nearest block, not dropped


# ---------------------------------------------------------------------------- chunked reading


@pytest.fixture(scope="module")
def files(tmp_path_factory, city):
    d = tmp_path_factory.mktemp("chunks")
    raw = city.buildings[["floors", "building_type", "community", "geometry"]].reset_index(
        drop=True
    )
    raw = raw.sample(frac=1.0, random_state=0).reset_index(drop=True)  # communities interleaved
    pq = d / "b.parquet"
    gpkg = d / "b.gpkg"
    raw.to_parquet(pq, row_group_size=300)
    raw.to_file(gpkg, driver="GPKG")
    return pq, gpkg


@pytest.mark.parametrize("fmt", ["parquet", "gpkg"])
@pytest.mark.parametrize("by", [None, "community"])
def test_chunked_reading_yields_every_building_once(files, fmt, by):
    path = files[0] if fmt == "parquet" else files[1]
    whole = gridopt.read_buildings(path)
    chunks = list(read_buildings_chunked(path, chunk_rows=400, by=by))
    assert len(chunks) >= 3
    joined = pd.concat(chunks)
    assert joined.index.is_unique
    assert set(joined.index) == set(whole.index)
    joined = joined.loc[whole.index]
    assert (joined["households"] == whole["households"]).all()
    assert shapely.equals_exact(joined.geometry.to_numpy(), whole.geometry.to_numpy(), 1e-6).all()
    if by:
        # a community never spans two chunks
        owner = pd.concat(
            [c["community"].drop_duplicates().to_frame().assign(k=k) for k, c in enumerate(chunks)]
        )
        assert owner["community"].is_unique


def test_chunked_reading_rejects_other_formats(tmp_path):
    p = tmp_path / "b.geojson"
    p.write_text("{}")
    with pytest.raises(gridopt.InputError, match="GeoParquet"):
        next(read_buildings_chunked(p))


# ---------------------------------------------------------------------------- partition_city


def test_partition_city_stitches_pieces(cluster):
    pytest.importorskip("gridopt.partition")
    from gridopt.city import partition_city

    city = synthetic_city(800, seed=4)
    b = city.buildings
    seq = partition_city(b, streets=city.streets, seed=2, time_limit_s=120)
    assert seq.details["pieces"] == b["street"].nunique() > 1
    assert seq.labels.index.equals(b.index) and seq.labels.notna().all()
    g = seq.grids
    assert g["grid_id"].is_unique and set(seq.labels) == set(g["grid_id"])
    assert g["households"].sum() == b["households"].sum()
    assert (g.set_index("grid_id")["households"] == b["households"].groupby(seq.labels).sum()).all()
    assert (g.geom_type == "Polygon").all()
    # polygons of different pieces do not overlap (more than rounding)
    geoms = g.geometry.to_numpy()
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    cross = (g["piece"].to_numpy()[i] != g["piece"].to_numpy()[j]) & (i < j)
    assert shapely.area(shapely.intersection(geoms[i[cross]], geoms[j[cross]])).max(initial=0) < 0.5
    # a street office's grids stay inside it
    assert (g.groupby("grid_id")["piece"].nunique() == 1).all()
    par = partition_city(b, streets=city.streets, seed=2, time_limit_s=120, client=cluster)
    pd.testing.assert_series_equal(seq.labels, par.labels)


def test_partition_city_piece_without_households_joins_neighbour():
    pytest.importorskip("gridopt.partition")
    from gridopt.city import partition_city

    city = synthetic_city(900, seed=4)
    b = city.buildings.copy()
    office = b["street"].unique()[1]
    b.loc[b["street"] == office, "households"] = 0  # an office of shops and schools only
    part = partition_city(b, streets=city.streets, time_limit_s=60)
    assert part.labels.notna().all() and len(part.labels) == len(b)
    assert part.details["pieces"] == b["street"].nunique() - 1


def test_partition_city_blocks_without_offices():
    pytest.importorskip("gridopt.partition")
    from gridopt.city import partition_city

    city = synthetic_city(500, seed=6)
    b = city.buildings.drop(columns=["street"])
    part = partition_city(b, streets=city.streets, time_limit_s=60)
    assert part.details["pieces"] > 1
    assert part.labels.notna().all() and len(part.labels) == len(b)
    with pytest.raises(gridopt.InputError, match="previous"):
        partition_city(b, previous=part.labels)


# ---------------------------------------------------------------------------- plan_city


def test_plan_city_per_office_and_files(cluster, tmp_path):
    pytest.importorskip("gridopt.stations", exc_type=ImportError).place_stations  # noqa: B018
    from gridopt.city import plan_city
    from gridopt.mapping import load_plan_layers

    city = synthetic_city(260, seed=8)
    b = city.buildings
    cfg = {"time_limit_s": 3, "progress": False, "staff_when_missing": "skip"}
    cp = plan_city(b, by="community", streets=city.streets, config=cfg)
    assert len(cp.offices) == b["community"].nunique() > 1
    layer = cp.layer("buildings")
    assert len(layer) == len(b) and layer["building_id"].is_unique
    assert set(layer["building_id"]) == set(b.index)
    assert int(layer["households"].sum()) == int(b["households"].sum())
    grids = cp.grids
    assert grids["grid_id"].is_unique and set(layer["grid_id"]) == set(grids["grid_id"])
    assert "grids:" in cp.summary()
    out = cp.to_file(tmp_path / "plan")
    layers = load_plan_layers(out)
    assert len(layers["buildings"]) == len(b)
    assert (out / "map.html").stat().st_size > 1000
    par = plan_city(b, by="community", streets=city.streets, config=cfg, client=cluster)
    assert list(par.grids["grid_id"]) == list(grids["grid_id"])
    assert (par.layer("buildings")["grid_id"].to_numpy() == layer["grid_id"].to_numpy()).all()
    # streamed from a file, a few communities at a time: the same plan
    path = tmp_path / "b.parquet"
    b[["floors", "building_type", "community", "street", "geometry"]].reset_index(
        drop=True
    ).to_parquet(path)
    streamed = plan_city(path, by="community", streets=city.streets, config=cfg, chunk_rows=120)
    assert sorted(o.name for o in streamed.offices) == sorted(o.name for o in cp.offices)
    got = streamed.layer("buildings").set_index("building_id")["grid_id"].sort_index()
    want = layer.set_index("building_id")["grid_id"].sort_index()
    assert (got.to_numpy() == want.to_numpy()).all()


def test_cli_city_writes_plan(tmp_path, capsys):
    pytest.importorskip("gridopt.stations", exc_type=ImportError).place_stations  # noqa: B018
    from gridopt.cli import main

    city = synthetic_city(200, seed=9)
    path = tmp_path / "b.parquet"
    city.buildings[["floors", "building_type", "community", "street", "geometry"]].reset_index(
        drop=True
    ).to_parquet(path)
    streets = tmp_path / "s.gpkg"
    city.streets.to_file(streets)
    out = tmp_path / "out"
    args = [
        "city", str(path), "--streets", str(streets), "--by", "community",
        "--time-limit-s", "2", "--chunk-rows", "80", "-o", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    assert {"plan.gpkg", "report.csv", "summary.txt", "map.html"} <= {p.name for p in out.iterdir()}
    assert "grids:" in capsys.readouterr().out
    assert main(["city", str(path), "--by", "district", "-o", str(out)]) == 2


@pytest.mark.parametrize("name", ["gridopt.execution", "gridopt.city"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted >= 1 and result.failed == 0


def test_old_import_path_still_works():
    import gridopt.parallel

    assert gridopt.parallel.plan_city is gridopt.plan_city
    assert gridopt.parallel.local_client is local_client
    assert gridopt.parallel.read_buildings_chunked is read_buildings_chunked
