"""Same seed, same plan, whatever the machine's load.

``gridopt plan`` runs twice on the bundled small town, in fresh interpreters (so hash
randomisation differs too), the second time while other processes keep every core busy.
The layers a street office acts on (grids, stations, allocation, staff) must be equal
row by row: a stage that stops on the wall clock instead of on its own work limit gives
another plan under load, and the failure names the layers that differ.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
import shapely

from gridopt import datasets

LAYERS = ("grids", "stations", "allocation", "staff")

_BURN = "while True:\n    pass\n"


def _plan(out: Path) -> None:
    """``gridopt plan`` on the small town in a fresh interpreter."""
    cmd = [
        sys.executable, "-m", "gridopt.cli", "plan", str(datasets.small_town()),
        "--no-progress", "-o", str(out),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]


def _table(path: Path, layer: str) -> pd.DataFrame:
    """A layer as plain values: attributes plus the geometry as WKB hex."""
    frame = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True)
    table = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    if "geometry" in frame.columns:
        table["geometry"] = shapely.to_wkb(frame.geometry.to_numpy(), hex=True)
    return table


def _differences(a: Path, b: Path) -> dict[str, str]:
    """What differs per layer between two plan.gpkg files (empty: identical)."""
    out = {}
    for layer in LAYERS:
        ta, tb = _table(a, layer), _table(b, layer)
        if ta.shape != tb.shape or list(ta.columns) != list(tb.columns):
            out[layer] = f"shape {ta.shape} vs {tb.shape}"
            continue
        same = (ta == tb) | (ta.isna() & tb.isna())
        rows = ~same.all(axis=1)
        if rows.any():
            cols = sorted(same.columns[~same.all(axis=0)])
            out[layer] = f"{int(rows.sum())} of {len(ta)} rows differ, in columns {cols}"
    return out


@pytest.mark.slow
def test_same_plan_under_full_load(tmp_path):
    quiet, loaded = tmp_path / "quiet", tmp_path / "loaded"
    _plan(quiet)
    burners = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        _plan(loaded)
    finally:
        for proc in burners:
            proc.kill()
        for proc in burners:
            proc.wait()
    diff = _differences(quiet / "plan.gpkg", loaded / "plan.gpkg")
    assert not diff, f"plans differ under load: {diff}"
