"""Bad inputs as street offices make them: one clear line on stderr, exit 2, nothing written.

Every case starts from the generated office files (GBK Shapefile without .cpg, GBK
staff CSV; see ``_zh_data.py``) and breaks one thing the way it happens in practice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point

from _zh_data import make_office_files
from gridopt.cli import main


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    return make_office_files(tmp_path_factory.mktemp("office"), max_buildings=150)


def _buildings(office, tmp: Path, change: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> str:
    frame = pyogrio.read_dataframe(office.buildings, encoding="gbk")
    path = tmp / "楼栋.shp"
    change(frame).to_file(path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return str(path)


def _staff(
    office, tmp: Path, change: Callable[[pd.DataFrame], pd.DataFrame], name: str = "人员.csv"
) -> str:
    frame = pd.read_csv(office.staff_csv, encoding="gbk")
    path = tmp / name
    path.write_bytes(change(frame).to_csv(index=False).encode("gbk"))
    return str(path)


def _set(frame: pd.DataFrame, column: str, rows: list[int], value: object) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[rows, column] = value
    return out


def _points(office, tmp: Path) -> str:
    polys = pyogrio.read_dataframe(office.communities, encoding="gbk")
    path = tmp / "社区点.shp"
    polys.assign(geometry=[Point(p.centroid.coords[0]) for p in polys.geometry]).to_file(
        path, encoding="gbk"
    )
    return str(path)


def _no_names(office, tmp: Path) -> str:
    polys = pyogrio.read_dataframe(office.communities, encoding="gbk")
    path = tmp / "社区无名.shp"
    polys.drop(columns=["名称"]).to_file(path, encoding="gbk")
    return str(path)


# Each case: (id, function(office, tmp) -> extra CLI args replacing the defaults, message).
CASES = [
    (
        "misspelt households column",
        lambda o, t: {"--households-col": "户 数"},
        "households column '户 数'",
    ),
    (
        "misspelt community column",
        lambda o, t: {"--community-col": "社区名"},
        "community column '社区名'",
    ),
    (
        "household text",
        lambda o, t: {"buildings": _buildings(o, t, lambda f: _set(f, "户数", [3, 9], "约120户"))},
        "not numbers",
    ),
    (
        "household empty",
        lambda o, t: {"buildings": _buildings(o, t, lambda f: _set(f, "户数", [4], None))},
        "missing",
    ),
    (
        "negative storeys",
        lambda o, t: {"buildings": _buildings(o, t, lambda f: _set(f, "层数", [2], "-3"))},
        "zero or negative",
    ),
    (
        "unreadable storeys",
        lambda o, t: {"buildings": _buildings(o, t, lambda f: _set(f, "层数", [2], "六层半"))},
        "not numbers",
    ),
    (
        "duplicate ids",
        lambda o, t: {
            "--id-col": "楼栋编号",
            "buildings": _buildings(o, t, lambda f: _set(f, "楼栋编号", [1, 2], "SZ00001")),
        },
        "more than once",
    ),
    ("wrong encoding", lambda o, t: {"--encoding": "utf-8"}, "reads as gb18030"),
    ("unknown encoding", lambda o, t: {"--encoding": "gbk2000"}, "unknown encoding"),
    (
        "staff unknown role",
        lambda o, t: {"--staff": _staff(o, t, lambda f: _set(f, "岗位", [0], "保安"))},
        "roles gridopt does not know",
    ),
    (
        "staff without coordinates",
        lambda o, t: {"--staff": _staff(o, t, lambda f: f.drop(columns=["经度", "纬度"]))},
        "no home coordinates",
    ),
    (
        "staff missing a coordinate",
        lambda o, t: {"--staff": _staff(o, t, lambda f: _set(f, "纬度", [1], None))},
        "no home coordinates",
    ),
    (
        "staff lon/lat swapped",
        lambda o, t: {
            "--staff": _staff(o, t, lambda f: f.rename(columns={"经度": "纬度", "纬度": "经度"}))
        },
        "swapped",
    ),
    (
        "staff in another city",
        lambda o, t: {"--staff": _staff(o, t, lambda f: f.assign(经度=116.40, 纬度=39.90))},
        "more than 20 km",
    ),
    (
        "staff x/y in another system",
        lambda o, t: {
            "--staff": _staff(
                o,
                t,
                lambda f: f.rename(columns={"经度": "x", "纬度": "y"}).assign(
                    x=lambda d: d["x"] * 1e5, y=lambda d: d["y"] * 1e5
                ),
            )
        },
        "more than 20 km",
    ),
    (
        "staff duplicate ids",
        lambda o, t: {"--staff": _staff(o, t, lambda f: f.assign(编号=1))},
        "repeats ids",
    ),
    (
        "staff no role column",
        lambda o, t: {"--staff": _staff(o, t, lambda f: f.drop(columns=["岗位"]))},
        "no role column",
    ),
    ("staff old excel", lambda o, t: {"--staff": str(_touch(t / "人员.xls"))}, "97-2003"),
    ("staff broken workbook", lambda o, t: {"--staff": str(_touch(t / "人员.xlsx"))}, "workbook"),
    (
        "communities without names",
        lambda o, t: {"--communities": _no_names(o, t), "--community-name-col": None},
        "no name column",
    ),
    (
        "misspelt community name column",
        lambda o, t: {"--community-name-col": "名字"},
        "community name column '名字'",
    ),
    ("communities as points", lambda o, t: {"--communities": _points(o, t)}, "must be polygons"),
    ("communities file missing", lambda o, t: {"--communities": str(t / "无.shp")}, "not found"),
]


def _touch(path: Path) -> Path:
    path.write_bytes(b"\xd0\xcf\x11\xe0")  # the start of an OLE2 (.xls) file
    return path


@pytest.mark.parametrize(("case", "make", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_office_input(office, tmp_path, capsys, case, make, message):
    args = {
        "buildings": str(office.buildings),
        "--households-col": "户数",
        "--floors-col": "层数",
        "--community-col": "社区",
        "--type-col": "建筑类型",
        "--communities": str(office.communities),
        "--community-name-col": "名称",
        "--staff": str(office.staff_csv),
    }
    args.update(make(office, tmp_path))
    args = {k: v for k, v in args.items() if v is not None}
    out = tmp_path / "out"
    argv = [
        "plan",
        args.pop("buildings"),
        *[x for kv in args.items() for x in kv],
        "--out",
        str(out),
        "--time-limit-s",
        "5",
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("gridopt plan: error:"), err
    assert message in err, err
    assert "Traceback" not in err
    assert not out.exists()
