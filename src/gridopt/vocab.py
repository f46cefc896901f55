"""The words street offices use: column names, building types, staff roles and counts.

Chinese street offices keep their building and staff tables with Chinese headers
(户数, 层数, 社区, 建筑类型; 姓名, 岗位, 经度, 纬度) and values (住宅, 学校; 网格员;
"120户", "12层", full-width digits). This module is the one table that maps them to
gridopt's vocabulary, so the stages below see only the OpenStreetMap-style tags of
:data:`gridopt.households.NON_RESIDENTIAL` and the roles of
:data:`gridopt.staffing.ROLES`.

Examples
--------
>>> building_type_tag("高层住宅"), building_type_tag("幼儿园"), building_type_tag("apartments")
('apartments', 'kindergarten', 'apartments')
>>> parse_counts(pd.Series(["120户", "１２", "1,200", None]), what="households").tolist()
[120.0, 12.0, 1200.0, nan]
>>> staff_role("网格信息员"), staff_role("Grid worker")
('info_officer', 'grid_worker')
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from gridopt._errors import InputError

__all__ = [
    "BUILDING_COLUMNS",
    "BUILDING_TYPES_ZH",
    "NO_COMMUNITY",
    "STAFF_COLUMNS",
    "STAFF_ROLES",
    "building_type_tag",
    "building_type_tags",
    "detect_column",
    "parse_counts",
    "staff_role",
]

#: Community of buildings that lie in no community polygon (reported by the plan).
NO_COMMUNITY = "无社区"

#: Building columns recognised by default, by meaning (first match wins; case-insensitive).
BUILDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": (
        "households",
        "household",
        "hh",
        "户数",
        "住户数",
        "总户数",
        "居民户数",
        "户数(户)",
        "户数（户）",
    ),
    "floors": (
        "floors",
        "floor",
        "building:levels",
        "building_levels",
        "levels",
        "storeys",
        "stories",
        "num_floors",
        "层数",
        "楼层",
        "楼层数",
        "总层数",
        "地上层数",
        "建筑层数",
    ),
    "height": ("height", "building_height", "height_m", "高度", "建筑高度", "楼高"),
    "community": ("community", "社区", "社区名称", "所属社区", "社区名", "居委会"),
    "building_type": (
        "building_type",
        "building",
        "btype",
        "建筑类型",
        "用途",
        "建筑用途",
        "房屋用途",
        "使用性质",
        "类型",
    ),
    "building_id": ("building_id", "建筑编号", "楼栋编号", "建筑物编号", "楼栋id"),
    "name": ("name", "名称", "建筑名称", "楼栋名称", "楼名"),
}

#: Staff-list columns recognised by default (``address`` and ``phone`` are read and ignored).
STAFF_COLUMNS: dict[str, tuple[str, ...]] = {
    "staff_id": ("staff_id", "id", "编号", "工号", "人员编号", "序号"),
    "name": ("name", "姓名", "名字"),
    "role": ("role", "岗位", "角色", "职务", "身份", "类别"),
    "lon": ("lon", "lng", "long", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "x": ("x", "x坐标", "横坐标"),
    "y": ("y", "y坐标", "纵坐标"),
    "address": ("address", "住址", "地址", "家庭住址", "居住地址"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话", "联系电话"),
    "full_time": ("full_time", "专职"),
    "community": ("community", "社区", "所属社区"),
    "current_post": ("current_post", "现网格", "当前网格"),
    "qualifications": ("qualifications", "资格", "资质", "证书", "持证情况"),
}

#: Chinese building types -> the OSM-style tag gridopt's household rules know.
#: Residential tags give households; school/hospital/commercial tags make exclusive-grid
#: candidates; office/public/community tags make station candidates
#: (see :data:`gridopt.households.NON_RESIDENTIAL`).
BUILDING_TYPES_ZH: dict[str, str] = {
    # housing
    "住宅": "residential",
    "居住": "residential",
    "住宅楼": "apartments",
    "居民楼": "apartments",
    "高层住宅": "apartments",
    "多层住宅": "apartments",
    "小区": "apartments",
    "公寓": "apartments",
    "商住": "apartments",
    "商住楼": "apartments",
    "住宅区": "residential",
    "别墅": "house",
    "平房": "house",
    "民居": "house",
    "农房": "house",
    "自建房": "house",
    "宿舍": "dormitory",
    "集体宿舍": "dormitory",
    # exclusive grids: schools, hospitals, commerce
    "学校": "school",
    "小学": "school",
    "中学": "school",
    "初中": "school",
    "高中": "school",
    "职校": "school",
    "教育": "education",
    "幼儿园": "kindergarten",
    "托儿所": "kindergarten",
    "大学": "university",
    "高校": "university",
    "学院": "college",
    "医院": "hospital",
    "卫生院": "clinic",
    "诊所": "clinic",
    "卫生站": "clinic",
    "社区卫生服务中心": "clinic",
    "社区卫生服务站": "clinic",
    "医疗": "healthcare",
    "商业": "commercial",
    "商场": "mall",
    "购物中心": "mall",
    "商铺": "retail",
    "商店": "retail",
    "门面": "retail",
    "超市": "supermarket",
    "酒店": "hotel",
    "宾馆": "hotel",
    "市场": "market",
    "菜市场": "market",
    "农贸市场": "market",
    # offices and public buildings: station sites
    "办公": "office",
    "写字楼": "office",
    "办公楼": "office",
    "政府": "government",
    "机关": "government",
    "街道办": "government",
    "银行": "bank",
    "社区服务中心": "community_centre",
    "党群服务中心": "community_centre",
    "党群服务站": "community_centre",
    "社区用房": "community_centre",
    "居委会": "community_centre",
    "文化": "civic",
    "文化中心": "civic",
    "图书馆": "library",
    "养老院": "social_facility",
    "敬老院": "social_facility",
    "养老": "social_facility",
    "派出所": "police",
    "公安": "police",
    "消防站": "fire_station",
    "邮局": "post_office",
    "体育馆": "sports_hall",
    "体育": "sports_centre",
    "公共建筑": "public",
    "公建": "public",
    "公共服务": "public",
    # neither housing nor sites
    "宗教": "religious",
    "寺庙": "temple",
    "寺": "temple",
    "庙": "temple",
    "道观": "temple",
    "教堂": "church",
    "清真寺": "mosque",
    "工业": "industrial",
    "厂房": "factory",
    "工厂": "factory",
    "仓库": "warehouse",
    "仓储": "warehouse",
    "物流": "warehouse",
    "车库": "garage",
    "停车场": "parking",
    "停车楼": "parking",
    "配电房": "service",
    "变电站": "service",
    "泵房": "service",
    "门卫": "service",
    "公厕": "toilets",
    "厕所": "toilets",
    "在建": "construction",
    "棚": "shed",
    "杂物间": "shed",
    "车站": "train_station",
    "交通": "transportation",
    "其他": "yes",
    "其它": "yes",
    "未知": "yes",
}

#: Staff roles as offices write them -> gridopt's roles (and whether full-time).
STAFF_ROLES: dict[str, tuple[str, bool]] = {
    "grid_worker": ("grid_worker", True),
    "grid worker": ("grid_worker", True),
    "worker": ("grid_worker", True),
    "网格员": ("grid_worker", True),
    "专职网格员": ("grid_worker", True),
    "专职": ("grid_worker", True),
    "兼职网格员": ("grid_worker", False),
    "info_officer": ("info_officer", True),
    "information officer": ("info_officer", True),
    "information_officer": ("info_officer", True),
    "officer": ("info_officer", True),
    "网格信息员": ("info_officer", True),
    "信息员": ("info_officer", True),
    "mediator": ("mediator", True),
    "people's mediator": ("mediator", True),
    "专职调解员": ("mediator", True),
    "调解员": ("mediator", True),
    "人民调解员": ("mediator", True),
    "专职人民调解员": ("mediator", True),
    "party_member": ("party_member", True),
    "party member": ("party_member", True),
    "党员": ("party_member", True),
    "在职党员": ("party_member", True),
    "中共党员": ("party_member", True),
}

_UNIT_SUFFIX = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(户|层|楼|f|户数|层楼|hh|floors?)?\s*$")
_KEYS_LONGEST_FIRST = sorted(BUILDING_TYPES_ZH, key=len, reverse=True)


def normalise_text(value: object) -> str:
    """NFKC form (full-width digits and letters to ASCII), stripped, lower case."""
    return unicodedata.normalize("NFKC", str(value)).strip().lower()


def detect_column(
    columns: Iterable[object], kind: str, *, table: str = "buildings"
) -> object | None:
    """The first column of ``columns`` that is a known alias of ``kind``, or ``None``.

    Matching ignores case, surrounding spaces and full-width forms.

    Examples
    --------
    >>> detect_column(["名称", "层数", "geometry"], "floors")
    '层数'
    """
    aliases = (BUILDING_COLUMNS if table == "buildings" else STAFF_COLUMNS)[kind]
    normal = {}
    for col in columns:
        normal.setdefault(normalise_text(col), col)
    for alias in aliases:
        if normalise_text(alias) in normal:
            return normal[normalise_text(alias)]
    return None


def parse_counts(values: pd.Series, *, what: str, allow_missing: bool = True) -> pd.Series:
    """Numbers from a column as offices write them: ``"120户"``, ``"12层"``, ``"１２"``, ``"1,200"``.

    Parameters
    ----------
    values
        The column (numbers or text).
    what
        Name used in the error message (``"households column '户数'"``).
    allow_missing
        Whether empty cells may stay missing (``NaN``); otherwise they are an error.

    Returns
    -------
    pandas.Series
        Floats aligned to ``values``.

    Raises
    ------
    InputError
        Any value that is not a number with an optional unit (户, 层, 楼, F), naming the
        rows and the values found.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = values.astype(float)
    else:
        out = pd.Series(np.nan, index=values.index, dtype=float)
        bad = []
        for idx, raw in values.items():
            if raw is None or (isinstance(raw, float) and np.isnan(raw)):
                continue
            text = normalise_text(raw).replace(",", "")
            if text in ("", "nan", "none", "null"):
                continue
            m = _UNIT_SUFFIX.match(text)
            if m is None:
                bad.append((idx, raw))
                continue
            out[idx] = float(m.group(1))
        if bad:
            shown = ", ".join(f"row {i}: {v!r}" for i, v in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise InputError(
                f"{what} has {len(bad)} value(s) that are not numbers ({shown}{more}); write "
                "a whole number per building (a unit such as '120户' or '12层' is accepted)"
            )
    if not allow_missing and out.isna().any():
        rows = values.index[out.isna().to_numpy()][:10].tolist()
        raise InputError(
            f"{what} has {int(out.isna().sum())} missing (empty) value(s) (rows {rows}); fill them "
            "(0 for a non-residential building)"
        )
    return out


def building_type_tag(value: object) -> str:
    """The OSM-style tag of one building type, Chinese or English.

    An exact Chinese name wins, then the longest known name inside it ("高层住宅楼" ->
    apartments); English tags pass through lower-cased. An unknown Chinese type
    maps to ``"yes"`` (an untagged building; see :func:`building_type_tags`).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "yes"
    text = normalise_text(value)
    if not text:
        return "yes"
    if text in BUILDING_TYPES_ZH:
        return BUILDING_TYPES_ZH[text]
    if not _has_cjk(text):
        return text
    for key in _KEYS_LONGEST_FIRST:
        if key in text:
            return BUILDING_TYPES_ZH[key]
    return "yes"


def building_type_tags(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Tags for a whole column, and the Chinese values that are not in the vocabulary.

    The caller reports the unknown values (they are treated as untagged buildings).
    """
    uniques = pd.unique(values.astype(object))
    table = {v: building_type_tag(v) for v in uniques}
    unknown = sorted(
        str(v)
        for v, tag in table.items()
        if tag == "yes"
        and isinstance(v, str)
        and _has_cjk(v)
        and normalise_text(v) not in BUILDING_TYPES_ZH
    )
    return values.astype(object).map(table), unknown


def staff_role(value: object, roles: Mapping[str, tuple[str, bool]] = STAFF_ROLES) -> str | None:
    """gridopt's role for a role as written (Chinese or English), or ``None`` if unknown."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = normalise_text(value).replace("-", "_")
    if text in roles:
        return roles[text][0]
    text = text.replace("_", " ")
    return roles[text][0] if text in roles else None


def staff_full_time(value: object) -> bool:
    """False only for roles written as part-time (兼职网格员)."""
    text = normalise_text(value) if value is not None else ""
    entry = STAFF_ROLES.get(text)
    return True if entry is None else entry[1]


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
