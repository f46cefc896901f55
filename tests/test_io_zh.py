"""A Chinese street office's own files in, a plan out (issue 16, the input side).

The files are generated (``_zh_data.py``): a GBK Shapefile without .cpg with
楼栋编号/名称/户数/层数/社区/建筑类型, GBK community polygons with 名称, a GBK staff CSV
and the same list as .xlsx with 姓名/岗位/经度/纬度/住址/手机.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

import gridopt
from _zh_data import COMMUNITIES, make_office_files
from gridopt import InputError
from gridopt.cli import main
from gridopt.io import detect_encoding, join_communities, read_communities, read_table
from gridopt.pipeline import PlanConfig
from gridopt.staffing import read_staff
from gridopt.vocab import NO_COMMUNITY


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    return make_office_files(tmp_path_factory.mktemp("office"), max_buildings=300)


@pytest.fixture(scope="module")
def buildings(office):
    return gridopt.read_buildings(office.buildings)


def test_gbk_shapefile_without_cpg_reads_cleanly(office, buildings):
    # GDAL alone garbles it (Latin-1); gridopt detects GB18030 from the bytes.
    raw = pyogrio.read_dataframe(office.buildings)
    assert "户数" not in raw.columns
    b = buildings
    assert {"户数", "层数", "社区", "建筑类型", "名称", "楼栋编号"} <= set(b.columns)
    assert set(b["community"]) <= set(COMMUNITIES)
    assert b["name"].str.endswith("号楼").all()


def test_household_column_used_as_given(office, buildings):
    b = buildings
    assert int(b["households"].sum()) == office.households
    assert set(b["households_source"]) == {"given"}
    # "120户" and full-width digits are read as numbers; the user's column is untouched.
    assert b["户数"].str.contains("户").any()
    assert b["户数"].str.contains("[０-９]").any()
    assert b.attrs["gridopt_columns"]["households"] == "户数"


def test_ids_types_and_storeys(buildings):
    b = buildings
    assert b.index.name == "building_id"
    assert b.index.str.match(r"^SZ\d{5}$").all() and b.index.is_unique
    kinds = b.groupby("建筑类型")["category"].first().to_dict()
    assert kinds["学校"] == "school" and kinds["医院"] == "hospital"
    assert kinds["商业"] == "commercial" and kinds["社区服务中心"] == "public"
    assert kinds["住宅"] == "residential"
    assert not b.loc[b["建筑类型"] != "住宅", "households"].any()
    assert b.loc[b["建筑类型"].isin(["学校", "医院", "商业"]), "exclusive_candidate"].all()
    assert (b["storeys"] >= 1).all()


def test_explicit_columns_and_encoding(office):
    b = gridopt.read_buildings(
        office.buildings,
        households="户数",
        floors="层数",
        community="社区",
        building_type="建筑类型",
        building_id="楼栋编号",
        name="名称",
        encoding="gbk",
    )
    assert int(b["households"].sum()) == office.households
    with pytest.raises(InputError, match="reads as gb18030"):
        gridopt.read_buildings(office.buildings, encoding="utf-8")
    with pytest.raises(InputError, match=r"'社区X'.*--community-col"):
        gridopt.read_buildings(office.buildings, community="社区X")


def test_staff_csv_and_xlsx_agree(office, buildings):
    a = read_staff(office.staff_csv, crs=buildings.crs)
    b = read_staff(office.staff_xlsx, crs=buildings.crs)
    assert a["staff_id"].tolist() == b["staff_id"].tolist()
    assert a["role"].tolist() == b["role"].tolist()
    assert (a.geometry.distance(b.geometry) < 0.01).all()
    assert set(a["role"]) == {"grid_worker", "info_officer", "mediator", "party_member"}
    assert "住址" not in a.columns and "手机" not in a.columns  # personal data stays out
    assert a.crs == buildings.crs
    # Homes are among the buildings.
    assert a.geometry.distance(box(*buildings.total_bounds)).max() < 1.0


def test_staff_point_layer_in_gbk(office, buildings, tmp_path):
    table = read_table(office.staff_csv)  # GBK detected
    pts = gpd.GeoDataFrame(
        table.drop(columns=["经度", "纬度"]),
        geometry=gpd.points_from_xy(table["经度"].astype(float), table["纬度"].astype(float)),
        crs=4326,
    )
    path = tmp_path / "人员点.shp"
    pts.to_file(path, encoding="gbk")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    s = read_staff(path, crs=buildings.crs)
    assert s["name"].tolist() == table["姓名"].tolist()
    assert s["role"].isin(["grid_worker", "info_officer", "mediator", "party_member"]).all()
    assert s.geometry.distance(box(*buildings.total_bounds)).max() < 1.0


def test_misspelt_community_column_in_config(office):
    with pytest.raises(InputError, match="communities column '社区名'"):
        gridopt.plan(
            office.buildings, config={"communities": "社区名", "progress": False, "time_limit_s": 2}
        )


def test_staff_csv_encodings(tmp_path):
    table = pd.DataFrame({"姓名": ["张三"], "岗位": ["网格员"], "经度": [120.6], "纬度": [31.3]})
    for enc in ("utf-8", "utf-8-sig", "gbk"):
        path = tmp_path / f"{enc}.csv"
        path.write_bytes(table.to_csv(index=False).encode(enc))
        s = read_staff(path)
        assert s["name"].tolist() == ["张三"] and s["role"].tolist() == ["grid_worker"]
    assert detect_encoding("姓名".encode("gbk")) == "gb18030"
    assert detect_encoding(b"\xef\xbb\xbfname") == "utf-8-sig"


def test_staff_xy_in_degrees_are_read_as_lonlat(buildings):
    pts = buildings.geometry.representative_point().to_crs(4326).iloc[:3]
    table = pd.DataFrame(
        {
            "staff_id": ["a", "b", "c"],
            "role": ["grid_worker"] * 3,
            "x": pts.x.to_numpy(),
            "y": pts.y.to_numpy(),
        }
    )
    s = read_staff(table, crs=buildings.crs, area=buildings)
    assert s.geometry.distance(box(*buildings.total_bounds)).max() < 1.0


def test_communities_join_and_no_community_group(office, buildings):
    polys = read_communities(office.communities)
    assert sorted(polys["community"]) == sorted(COMMUNITIES)
    joined = join_communities(buildings, polys)
    assert (joined == buildings["community"]).mean() > 0.95
    half = polys[polys["community"] != COMMUNITIES[0]]
    joined = join_communities(buildings, half)
    assert (joined == NO_COMMUNITY).sum() == (buildings["community"] == COMMUNITIES[0]).sum()


def test_plan_reports_no_community_group(office, buildings):
    polys = read_communities(office.communities)
    p = gridopt.plan(
        office.buildings, communities=polys[polys["community"] != COMMUNITIES[0]],
        config={"time_limit_s": 3, "progress": False, "staff_when_missing": "skip"},
    )  # fmt: skip
    assert any(NO_COMMUNITY in n for n in p.notes)
    assert (p.buildings.groupby("grid_id")["community"].nunique() == 1).all()


def test_staff_list_checked_before_any_stage(office, tmp_path, monkeypatch):
    def no_stage(*args, **kwargs):
        raise AssertionError("a stage ran before the staff list was checked")

    monkeypatch.setattr(gridopt.pipeline, "_buildings", no_stage)
    bad = tmp_path / "staff.csv"
    bad.write_bytes("姓名,岗位,经度,纬度\n张三,保安,120.6,31.3\n".encode("gbk"))
    with pytest.raises(InputError, match="保安"):
        gridopt.plan(office.buildings, staff=bad, config={"progress": False})
    with pytest.raises(InputError, match=r"no name column|not found"):
        gridopt.plan(
            office.buildings, communities=tmp_path / "missing.shp", config={"progress": False}
        )


def test_config_communities_must_be_a_column_name(office):
    polys = read_communities(office.communities)
    with pytest.raises(InputError, match=r"plan\(\.\.\., communities=\.\.\.\)"):
        gridopt.plan(office.buildings, config={"communities": polys})
    with pytest.raises(InputError, match="community column '社区X'"):
        gridopt.plan(office.buildings, config=PlanConfig(community_col="社区X", progress=False))


def test_read_table_xls_and_bad_bytes(tmp_path):
    (tmp_path / "a.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=r"\.xlsx"):
        read_table(tmp_path / "a.xls")
    (tmp_path / "b.csv").write_bytes(b"\x81\x30\xff\xfe\x00name")
    with pytest.raises(InputError, match="neither UTF-8 nor GBK"):
        read_table(tmp_path / "b.csv")


@pytest.mark.slow
def test_office_plan_from_the_command_line(office, tmp_path, capsys):
    out = tmp_path / "plan"
    argv = [
        "plan", str(office.buildings), "--households-col", "户数", "--floors-col", "层数",
        "--community-col", "社区", "--type-col", "建筑类型", "--communities",
        str(office.communities), "--community-name-col", "名称", "--staff", str(office.staff_xlsx),
        "--out", str(out), "--time-limit-s", "5", "--no-progress",
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(argv) == 0
    capsys.readouterr()
    b = gpd.read_file(out / "plan.gpkg", layer="buildings")
    assert int(b["households"].sum()) == office.households
    assert (b.groupby("grid_id")["community"].nunique() == 1).all()
    assert b["building_id"].str.match(r"^SZ\d{5}$").all()
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    assert set(grids["community"]) <= set(COMMUNITIES)
    staff = gpd.read_file(out / "plan.gpkg", layer="staff")
    posted = staff["grid_id"].notna()
    assert posted.sum() >= len(grids)  # every grid can have its worker
    # Mediators on the list are mediators: none refused for a missing certificate column.
    mediators = staff[staff["role"] == "mediator"]
    assert len(mediators) and mediators["post"].notna().all()
    assert (out / "report.csv").exists() and (out / "summary.txt").exists()


@pytest.mark.slow
def test_issue16_contract_command_gcj02(tmp_path, capsys):
    """The issue's whole command, GCJ-02 in and out."""
    files = make_office_files(tmp_path / "office", max_buildings=300, coords="gcj02")
    out = tmp_path / "plan"
    argv = [
        "plan", str(files.buildings), "--households-col", "户数", "--floors-col", "层数",
        "--community-col", "社区", "--type-col", "建筑类型", "--coords", "gcj02",
        "--communities", str(files.communities), "--community-name-col", "名称",
        "--staff", str(files.staff_xlsx), "--lang", "zh", "--out", str(out),
        "--time-limit-s", "5", "--no-progress",
    ]  # fmt: skip
    rc = main(argv)
    assert rc == 0, capsys.readouterr().err
    b = gpd.read_file(out / "plan.gpkg", layer="buildings").set_index("building_id")
    assert int(b["households"].sum()) == files.households
    assert (b.groupby("grid_id")["community"].nunique() == 1).all()
    # Outputs in GCJ-02 within 1 m of the input positions.
    given = pyogrio.read_dataframe(files.buildings, encoding="gbk").set_index("楼栋编号")
    metric = given.set_crs(4326, allow_override=True).to_crs(32651)
    back = b.to_crs(4326).set_crs(4326, allow_override=True).to_crs(32651)
    moved = back.geometry.centroid.distance(metric.geometry.centroid.reindex(back.index))
    assert moved.max() < 1.0, moved.max()
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    named = grids.astype(str).apply(lambda c: c.str.fullmatch(r".+社区第\d+网格").all())
    assert named.any(), grids.columns.tolist()
