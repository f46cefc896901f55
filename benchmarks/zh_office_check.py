"""Issue 16's whole command on the full Suzhou sample as a street office keeps it.

Writes the office's files (GBK Shapefile without .cpg with 户数/层数/社区/建筑类型/名称 in
GCJ-02, 社区 polygons, a GBK staff CSV with 姓名/岗位/经度/纬度) with the test helper,
runs ``gridopt plan`` with the issue's options, and prints what the issue checks:
households against the sum of 户数, grids across two 社区, grid names, staff posted,
how far the written buildings lie from the input, and the language of the outputs.

    GRIDOPT_DATA=../shared PYTHONPATH=src:tests python benchmarks/zh_office_check.py [OUT]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from _zh_data import make_office_files
from gridopt.cli import main

NAME = r".+社区第\d+网格"


def run(out: Path) -> None:
    files = make_office_files(out / "office", max_buildings=None, coords="gcj02")
    plan_dir = out / "plan"
    argv = [
        "plan", str(files.buildings), "--households-col", "户数", "--floors-col", "层数",
        "--community-col", "社区", "--type-col", "建筑类型", "--coords", "gcj02",
        "--communities", str(files.communities), "--community-name-col", "名称",
        "--staff", str(files.staff_csv), "--lang", "zh", "--no-progress", "--out", str(plan_dir),
    ]  # fmt: skip
    t0 = time.perf_counter()
    rc = main(argv)
    print(f"gridopt plan: exit {rc} in {time.perf_counter() - t0:.1f} s ({files.source} data)")
    b = gpd.read_file(plan_dir / "plan.gpkg", layer="buildings").set_index("building_id")
    grids = gpd.read_file(plan_dir / "plan.gpkg", layer="grids")
    staff = gpd.read_file(plan_dir / "plan.gpkg", layer="staff")
    given = pyogrio.read_dataframe(files.buildings, encoding="gbk").set_index("楼栋编号")
    metric = given.set_crs(4326, allow_override=True).to_crs(32651)
    back = b.set_crs(4326, allow_override=True).to_crs(32651)
    moved = back.geometry.centroid.distance(metric.geometry.centroid.reindex(back.index))
    report = pd.read_csv(plan_dir / "report.csv", encoding="utf-8-sig")
    print(f"buildings {len(b):,}; households {int(b['households'].sum()):,} "
          f"(sum of 户数 {files.households:,})")
    print(f"grids {len(grids)}; across two 社区: "
          f"{int((b.groupby('grid_id')['community'].nunique() > 1).sum())}")
    named = int(grids["grid_name"].str.fullmatch(NAME).sum())
    print(f"grid names like …社区第n网格: {named} of {len(grids)}")
    posted = staff["grid_id"].notna() if "grid_id" in staff.columns else pd.Series(False)
    print(f"staff posted: {int(posted.sum())} of {len(staff)}")
    print(f"written buildings vs input (GCJ-02): max {moved.max():.3f} m; CRS {b.crs}")
    bom = (plan_dir / "report.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    print(f"report.csv BOM: {bom}; headers {list(report.columns[:4])}")
    print((plan_dir / "summary.txt").read_text(encoding="utf-8").splitlines()[0])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp))
