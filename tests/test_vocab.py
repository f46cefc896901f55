"""gridopt.vocab: Chinese columns, building types, staff roles and counts as offices write them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box

from gridopt import InputError
from gridopt.households import NON_RESIDENTIAL, estimate_households
from gridopt.vocab import (
    BUILDING_TYPES_ZH,
    STAFF_ROLES,
    building_type_tag,
    building_type_tags,
    detect_column,
    parse_counts,
    staff_role,
)

_CATEGORY = {tag: cat for cat, (tags, _, _) in NON_RESIDENTIAL.items() for tag in tags}


@pytest.mark.parametrize(
    ("kind", "columns", "expected"),
    [
        ("households", ["名称", "户数", "geometry"], "户数"),
        ("households", ["住户数"], "住户数"),
        ("floors", ["楼层"], "楼层"),
        ("floors", ["Floor"], "Floor"),
        ("community", ["社区名称"], "社区名称"),
        ("building_type", ["用途"], "用途"),
        ("name", ["名称"], "名称"),
        ("building_id", ["Id"], None),  # a constant "Id" (the Suzhou sample) is no id
    ],
)
def test_detect_column(kind, columns, expected):
    assert detect_column(columns, kind) == expected


@pytest.mark.parametrize(
    ("value", "category", "exclusive", "station"),
    # schools and hospitals get grids of their own but host no station (issue 17)
    [
        ("住宅", "residential", False, False),
        ("高层住宅楼", "residential", False, False),
        ("学校", "school", True, False),
        ("幼儿园", "school", True, False),
        ("医院", "hospital", True, False),
        ("卫生院", "hospital", True, False),
        ("商业", "commercial", True, True),
        ("商场", "commercial", True, True),
        ("办公", "office", False, True),
        ("政府", "office", False, True),
        ("社区服务中心", "public", False, True),
        ("工业", "industrial", False, False),
        ("厂房", "industrial", False, False),
        ("仓库", "industrial", False, False),
        ("宗教", "religious", False, False),
    ],
)
def test_chinese_types_behave_like_their_osm_tags(value, category, exclusive, station):
    b = gpd.GeoDataFrame({"t": [value]}, geometry=[box(0, 0, 30, 30)], crs=32651)
    tags, unknown = building_type_tags(b["t"])
    out = estimate_households(b.assign(t=tags), building_type="t", floors=None)
    assert not unknown
    assert out["category"].iloc[0] == category
    assert bool(out["exclusive_candidate"].iloc[0]) is exclusive
    assert bool(out["station_candidate"].iloc[0]) is station
    assert bool(out["households"].iloc[0] > 0) == (category == "residential")


def test_every_chinese_type_maps_to_a_known_tag():
    residential = {"residential", "apartments", "house", "dormitory", "yes"}
    for zh, tag in BUILDING_TYPES_ZH.items():
        assert tag in _CATEGORY or tag in residential, (zh, tag)


def test_unknown_chinese_types_are_reported():
    tags, unknown = building_type_tags(pd.Series(["住宅", "神秘建筑", "apartments", None]))
    assert tags.tolist() == ["residential", "yes", "apartments", "yes"]
    assert unknown == ["神秘建筑"]


def test_english_tags_pass_through():
    assert building_type_tag(" School ") == "school"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("120户", 120),
        ("１２０", 120),
        ("12层", 12),
        (" 6 ", 6),
        ("1,200", 1200),
        ("６Ｆ", 6),
        ("3.0", 3),
    ],
)
def test_parse_counts(text, number):
    assert parse_counts(pd.Series([text]), what="x").iloc[0] == number


@pytest.mark.parametrize("bad", ["约120户", "很多", "6-7层", "abc"])
def test_parse_counts_rejects_and_names_rows(bad):
    with pytest.raises(InputError, match=r"row 1: .*not numbers|not numbers.*row 1"):
        parse_counts(pd.Series(["3", bad]), what="households column '户数'")


def test_parse_counts_missing():
    s = parse_counts(pd.Series(["3", None, ""]), what="x")
    assert s.iloc[0] == 3 and s.iloc[1:].isna().all()
    with pytest.raises(InputError, match="missing"):
        parse_counts(pd.Series(["3", None]), what="x", allow_missing=False)


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "户", "层", " 户"]),
    st.booleans(),
)
def test_parse_counts_property(n, unit, full_width):
    text = f"{n}{unit}"
    if full_width:
        text = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert parse_counts(pd.Series([text]), what="x").iloc[0] == n


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("网格员", "grid_worker"),
        ("兼职网格员", "grid_worker"),
        ("网格信息员", "info_officer"),
        ("信息员", "info_officer"),
        ("专职调解员", "mediator"),
        ("调解员", "mediator"),
        ("党员", "party_member"),
        ("grid_worker", "grid_worker"),
        ("Party member", "party_member"),
        ("保安", None),
    ],
)
def test_staff_roles(label, role):
    assert staff_role(label) == role


def test_roles_cover_gridopts_roles():
    from gridopt.staffing import ROLES

    assert {r for r, _ in STAFF_ROLES.values()} == set(ROLES)
    assert np.isnan(parse_counts(pd.Series([np.nan]), what="x").iloc[0])
