"""Size and build time of the interactive map of a 5,000-grid city (issue 6 goal: < 25 MB).

Run: .venv/bin/python benchmarks/map_size.py
Builds a plan-shaped city (5,000 jagged grid outlines, 60,000 buildings, 400 stations; the
same generator as tests/test_mapping.py) and prints buildings, grids, MB and seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gridopt import plan_map
from test_mapping import _big_plan


def main() -> None:
    big = _big_plan(n_grids=5_000)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "map.html"
        t = time.perf_counter()
        plan_map(big).save(str(path))
        seconds = time.perf_counter() - t
        size_mb = path.stat().st_size / 1e6
    print(
        f"grids {len(big.partition.grids):,}  buildings {len(big.buildings):,}  "
        f"stations {len(big.stations.stations):,}  map {size_mb:.1f} MB  built in {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
