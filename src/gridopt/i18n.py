"""Every user-facing label of the plan's outputs, in Chinese and English.

A street office reads the report in Excel on Chinese Windows and prints the map: the
outputs speak the office's language. One table, :data:`LABELS`, holds every label
(report columns, summary lines, map legend, layer names, tooltip fields, kinds and
reasons); :func:`t` looks one up, :func:`labels` gives all of one language.
Free texts written by the stages (notes, reasons) are translated by pattern
(:func:`translate_text`); a text no pattern knows stays as it is.

Examples
--------
>>> t("col.households", "zh"), t("col.households", "en")
('户数', 'households')
>>> t("summary.note", "zh", note="x")
'说明：x'
>>> resolve_language("auto", columns=["geometry", "社区"])
'zh'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any

import pandas as pd
from pypinyin import lazy_pinyin

from gridopt._errors import InputError

__all__ = [
    "GRID_NAME_FIELDS",
    "LABELS",
    "LANGUAGES",
    "REPORT_COLUMNS",
    "check_grid_name",
    "community_order",
    "default_grid_name",
    "grid_names",
    "has_cjk",
    "labels",
    "resolve_language",
    "t",
    "translate_text",
]

#: Languages of the outputs.
LANGUAGES = ("zh", "en")

#: Fields a ``grid_name`` template may use.
GRID_NAME_FIELDS = ("community", "n", "grid_id")

#: Report columns in their order (the keys of ``Plan.report()``).
REPORT_COLUMNS = (
    "grid_id",
    "grid_name",
    "community",
    "kind",
    "households",
    "buildings",
    "workers",
    "officers",
    "station",
    "mean_walk_m",
    "max_walk_m",
    "share_within_15min",
    "reason",
)

#: key -> {"en": ..., "zh": ...}. ``{name}`` fields are filled by :func:`t`.
LABELS: dict[str, dict[str, str]] = {
    # report.csv / report.xlsx headers (English keeps the machine-friendly column keys)
    "col.grid_id": {"en": "grid_id", "zh": "网格编号"},
    # the column keeps its key in every language: offices and scripts join on it
    "col.grid_name": {"en": "grid_name", "zh": "grid_name"},
    "col.community": {"en": "community", "zh": "社区"},
    "col.kind": {"en": "kind", "zh": "网格类型"},
    "col.households": {"en": "households", "zh": "户数"},
    "col.buildings": {"en": "buildings", "zh": "楼栋数"},
    "col.workers": {"en": "workers", "zh": "网格员"},
    "col.officers": {"en": "officers", "zh": "网格信息员"},
    "col.station": {"en": "station", "zh": "党群服务站"},
    "col.mean_walk_m": {"en": "mean_walk_m", "zh": "平均步行距离(米)"},
    "col.max_walk_m": {"en": "max_walk_m", "zh": "最远步行距离(米)"},
    "col.share_within_15min": {"en": "share_within_15min", "zh": "15分钟步行可达户数占比"},
    "col.reason": {"en": "reason", "zh": "说明"},
    # grid kinds
    "kind.regular": {"en": "regular", "zh": "常规网格"},
    "kind.exclusive": {"en": "exclusive", "zh": "专属网格"},
    "kind.oversized": {"en": "oversized", "zh": "超大楼栋网格"},
    "kind.undersized": {"en": "undersized", "zh": "户数不足网格"},
    # grid names (templates: see PlanConfig.grid_name)
    "grid_name.template": {"en": "{community} grid {n}", "zh": "{community}第{n}网格"},
    # map layers
    "layer.grids": {"en": "Grids", "zh": "网格"},
    "layer.buildings": {"en": "Buildings", "zh": "楼栋"},
    "layer.catchments": {"en": "Walking catchments", "zh": "步行服务范围"},
    "layer.stations": {"en": "Service stations", "zh": "党群服务站"},
    "layer.uncovered": {"en": "Households beyond {walk_m} m", "zh": "步行超过{walk_m}米的住户"},
    "layer.grid_names": {"en": "Grid names", "zh": "网格名称"},
    "layer.communities": {"en": "Community borders", "zh": "社区边界"},
    "layer.osm": {"en": "OpenStreetMap background", "zh": "OpenStreetMap 底图"},
    "layer.amap": {"en": "AMap background", "zh": "高德地图底图"},
    "layer.tianditu": {"en": "Tianditu background", "zh": "天地图底图"},
    # tooltip and popup fields
    "tip.grid_id": {"en": "grid", "zh": "网格编号"},
    "tip.grid_name": {"en": "name", "zh": "网格名称"},
    "tip.community": {"en": "community", "zh": "社区"},
    "tip.kind": {"en": "kind", "zh": "网格类型"},
    "tip.households": {"en": "households", "zh": "户数"},
    "tip.workers": {"en": "grid workers", "zh": "网格员"},
    "tip.officers": {"en": "info officers", "zh": "网格信息员"},
    "tip.station": {"en": "station", "zh": "服务站"},
    "tip.reason": {"en": "note", "zh": "说明"},
    "tip.name": {"en": "building", "zh": "楼栋名称"},
    "tip.walk_m": {"en": "walk m", "zh": "步行距离(米)"},
    "tip.why": {"en": "why", "zh": "原因"},
    "tip.catchment": {"en": "catchment of station", "zh": "服务站"},
    "tip.site": {"en": "site", "zh": "站点"},
    "tip.floor_area_m2": {"en": "floor area m²", "zh": "面积(平方米)"},
    "tip.capacity_households": {"en": "capacity (households)", "zh": "可服务户数"},
    "tip.households_served": {"en": "households served", "zh": "服务户数"},
    "tip.buildings_served": {"en": "buildings served", "zh": "服务楼栋数"},
    "tip.utilisation": {"en": "utilisation", "zh": "利用率"},
    "tip.mean_walk_m": {"en": "mean walk m", "zh": "平均步行距离(米)"},
    "tip.max_walk_m": {"en": "max walk m", "zh": "最远步行距离(米)"},
    "tip.existing": {"en": "existing", "zh": "现有站点"},
    "tip.new_site": {"en": "proposed new site", "zh": "建议新址"},
    # legend and titles
    "legend.title": {"en": "gridopt plan", "zh": "网格化管理方案"},
    "legend.grids": {"en": "grids (neighbours differ)", "zh": "网格（相邻网格颜色不同）"},
    "legend.station": {
        "en": "service station (size: capacity)",
        "zh": "党群服务站（圆越大容量越大）",
    },
    "legend.catchment": {"en": "walking catchment", "zh": "步行服务范围"},
    "legend.uncovered": {"en": "households beyond {walk_m} m", "zh": "步行超过{walk_m}米的住户"},
    "legend.building": {"en": "building", "zh": "楼栋"},
    "legend.community": {"en": "community border", "zh": "社区边界"},
    "legend.street": {"en": "street", "zh": "道路"},
    "title.plan": {
        "en": "{grids} grids, {households} households, {stations} stations; "
        "{share} of households within {walk_m} m walk",
        "zh": "{grids}个网格，{households}户，{stations}个党群服务站；{share}的住户步行{walk_m}米内可达",
    },
    "title.files": {
        "en": "{grids} grids, {households} households, {stations} stations",
        "zh": "{grids}个网格，{households}户，{stations}个党群服务站",
    },
    "flag.placeholder": {
        "en": "staff: placeholder roster (no staff list given), not real people",
        "zh": "人员：未提供人员名单，所列为占位名单，并非真实人员",
    },
    "flag.households_default": {
        "en": "households: {share} estimated from default storeys (no levels or height in the data)",
        "zh": "住户：{share}按默认层数估算（数据中无层数或高度）",
    },
    "flag.no_candidates": {
        "en": "station sites assumed: no candidate sites in the data",
        "zh": "服务站选址为假设：数据中没有候选场地",
    },
    # summary.txt
    "summary.buildings": {
        "en": "{buildings} buildings, {households} households",
        "zh": "{buildings}栋楼，{households}户",
    },
    "summary.grids": {
        "en": "grids: {n} ({kinds}), band {lo}-{hi}, {share} of regular grids inside",
        "zh": "网格：{n}个（{kinds}），每格{lo}-{hi}户，{share}的常规网格在此范围内",
    },
    "summary.kind_count": {"en": "{count} {kind}", "zh": "{kind}{count}个"},
    "summary.list_sep": {"en": ", ", "zh": "，"},
    "summary.stations": {
        "en": "stations: {n}, mean walk {mean} m, max {max} m, {share} of households within "
        "15 min; {beyond} beyond {walk_m} m (~{minutes} min)",
        "zh": "党群服务站：{n}个，平均步行{mean}米，最远{max}米，{share}的住户15分钟内可达；"
        "{beyond}户超过{walk_m}米（约{minutes}分钟）",
    },
    "summary.coverage": {
        "en": "within {walk_m} m walking: {share} of households",
        "zh": "步行{walk_m}米内：{share}的住户",
    },
    "summary.coverage_new": {
        "en": " with {n} proposed new station site(s); {share} with the candidate sites alone",
        "zh": "（含{n}处建议新址；仅用现有候选点为{share}）",
    },
    "summary.coverage_grids": {
        "en": "; {one} of {n} grids walk to one station",
        "zh": "；{n}个网格中{one}个由一个服务站服务",
    },
    "summary.households_default": {
        "en": "households: {share} rest on default storeys (no levels or height in the data)",
        "zh": "住户：{share}按默认层数估算（数据中无层数或高度）",
    },
    "summary.households_range": {
        "en": "; plausible range {low}-{high} households",
        "zh": "；合理范围{low}至{high}户",
    },
    "summary.uncertain": {
        "en": "least sure household counts (check on site): {items}",
        "zh": "住户数最不确定的楼栋（请现场核实）：{items}",
    },
    "summary.uncertain_item": {
        "en": "{building}: {households} ({low}-{high}), {note}",
        "zh": "{building}：{households}户（{low}至{high}），{note}",
    },
    "summary.shortfall": {
        "en": "station capacity short by {households} households ({m2} m² of floor area)",
        "zh": "服务站容量缺口{households}户（缺少{m2}平方米用房）",
    },
    "summary.staff_none": {"en": "staff: not planned", "zh": "人员：未安排"},
    "summary.staff": {
        "en": "staff{tag}: {placed} of {total} people posted to grids; shortfall {missing} posts",
        "zh": "人员{tag}：{total}人中{placed}人已分配到网格；缺岗{missing}个",
    },
    "summary.placeholder_tag": {
        "en": " (PLACEHOLDER roster: no staff list was given)",
        "zh": "（占位名单：未提供人员名单）",
    },
    "summary.time": {"en": "time {total} s ({stages})", "zh": "用时{total}秒（{stages}）"},
    "summary.stage_time": {"en": "{stage} {s} s", "zh": "{stage}{s}秒"},
    "summary.note": {"en": "note: {note}", "zh": "说明：{note}"},
    "stage.buildings": {"en": "buildings", "zh": "楼栋"},
    "stage.grids": {"en": "grids", "zh": "网格"},
    "stage.walking network": {"en": "walking network", "zh": "步行网络"},
    "stage.stations": {"en": "stations", "zh": "服务站"},
    "stage.staff": {"en": "staff", "zh": "人员"},
}

# Free texts of the stages, English pattern -> Chinese; the groups of the pattern fill
# {0}, {1}, ... of the translation. Notes are whole texts (they contain "; " themselves);
# grid and household reasons may be several joined by "; ".
_NOTE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.S), zh)
    for p, zh in (
        (
            r"no staff list given: staff were planned with a PLACEHOLDER roster",
            "未提供人员名单：按标准比例生成了占位名单（gridopt.staffing.synthetic_staff），"
            "仅用于显示各网格所需岗位；使用分配结果前请用 staff= 提供真实名单",
        ),
        (r"no staff list given: staffing skipped", "未提供人员名单：未安排人员"),
        (
            r"no candidate station sites were given or found.*?([\d,]+) residential buildings "
            r"was treated as a possible site for a ([\d,.]+) m² station room",
            "未提供也未找到候选服务站场地（数据中没有公共、办公或社区用房）：全部{0}栋住宅楼"
            "均被视为可设{1}平方米服务站用房的备选地点；请用 candidates= 提供真实场地",
        ),
        (
            r"([\d,]+) building features were repaired or skipped when reading \((.*)\)",
            "读取时修复或跳过了{0}个建筑要素（{1}）；详见 plan.gpkg 的 repairs 图层",
        ),
        (
            r"the community polygons given replace the buildings' community column",
            "以所给社区边界为准，替换了楼栋数据中的社区列",
        ),
        (
            r"([\d,]+) buildings \(([\d,]+) households\) lie in no community",
            "{0}栋楼（{1}户）不在任何社区边界内，归入“无社区”组；请检查社区边界或社区列",
        ),
        (
            r"previous grids: ([\d,]+) of ([\d,]+) kept unchanged; ([\d,]+) households moved",
            "原有网格：{1}个中{0}个保持不变；{2}户调整到其他网格",
        ),
        (
            r"([\d,]+) buildings lie in none of the previous grids",
            "{0}栋楼不在任何原有网格内：并入相邻网格",
        ),
        (
            r"previous grids violating a standard, re-divided: (.*)",
            "不符合标准的原有网格已重新划分：{0}",
        ),
        (
            r"walking distances: (\S+) \(straight line",
            "步行距离：{0}（街道网络未覆盖处按直线距离乘以绕行系数估算）",
        ),
    )
)
_REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.S), zh)
    for p, zh in (
        (r"exclusive grid: (.*) \((\d+) buildings\)", "专属网格：{0}（{1}栋楼）"),
        (
            r"oversized: one building with (\d+) households \(> (\d+)\) cannot be split; "
            r"needs (\d+) grid workers at (\d+) households",
            "超大楼栋：一栋楼{0}户（超过{1}户）无法拆分；按每{3}户一名需配{2}名网格员"
            "（现场按单元或楼层划分）",
        ),
        (
            r"undersized: its (\d+) connected buildings hold (\d+) households \(< (\d+)\)",
            "户数不足：相连的{0}栋楼共{1}户（少于{2}户），相邻网格均无法并入"
            "（因距离、社区边界或障碍隔开）",
        ),
        (
            r"undersized: (\d+) households \(< (\d+)\) left by building sizes.*?exceeding (\d+)",
            "户数不足：受楼栋户数所限剩余{0}户（少于{1}户），并入相邻网格会超过{2}户",
        ),
        (r"crosses (\d+) barrier", "跨越{0}处障碍（道路、河流等）：一侧住户不足以单独成格"),
        (
            r"joins (\d+) clusters of buildings across empty land",
            "跨空地连接{0}组楼栋：单独一组不足以成格",
        ),
        (r"unserved: no station capacity left in reach", "未服务：可达范围内的服务站容量已满"),
        (r"beyond max_walk_m \(([\d.,]+) m\)", "超出步行上限（{0}米）"),
    )
)

# Words of the stages that appear inside a note's groups.
_GROUP_WORDS = {
    "network+straight_line": "街道网络+直线",
    "straight_line": "直线",
    "network": "街道网络",
    "skipped": "跳过",
    "repaired": "修复",
}
_WORD_PATTERN = re.compile("|".join(re.escape(w) for w in _GROUP_WORDS))

# Several reasons of one grid are joined by "; " (a reason may hold "; " itself).
_REASON_SPLIT = re.compile(
    r"; (?=exclusive grid|oversized|undersized|crosses|joins|unserved|beyond)"
)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise InputError(f"language must be one of {LANGUAGES} (or 'auto'), got {lang!r}")
    return lang


def t(key: str, lang: str, /, **fields: Any) -> str:
    """The label ``key`` in ``lang``, with ``{name}`` fields filled from ``fields``.

    Raises
    ------
    KeyError
        An unknown key (a programming error, not bad data).
    InputError
        A language other than ``"zh"`` / ``"en"``.
    """
    text = LABELS[key][_check_language(lang)]
    return text.format(**fields) if fields else text


def labels(lang: str) -> dict[str, str]:
    """Every label of one language, ``{key: text}`` (templates unfilled)."""
    _check_language(lang)
    return {key: value[lang] for key, value in LABELS.items()}


def has_cjk(text: Any) -> bool:
    """Whether ``text`` holds a Chinese character."""
    return isinstance(text, str) and _CJK.search(text) is not None


def resolve_language(
    language: str, *, columns: Iterable[Any] = (), values: Iterable[Any] = ()
) -> str:
    """``"zh"`` or ``"en"``: ``language`` itself, or for ``"auto"`` the data's language.

    ``"auto"`` is Chinese when a column name or one of ``values`` (the community
    names) holds a Chinese character, English otherwise.
    """
    if language != "auto":
        return _check_language(language)
    if any(has_cjk(c) for c in columns):
        return "zh"
    return "zh" if any(has_cjk(v) for v in values) else "en"


def translate_text(text: Any, lang: str) -> Any:
    """A note or reason of a stage in ``lang``; parts no pattern knows stay as they are.

    Reasons joined by ``"; "`` are translated one by one.
    """
    if lang == "en" or not isinstance(text, str) or not text:
        return text
    for pattern, zh in _NOTE_PATTERNS:
        found = pattern.search(text)
        if found:
            return zh.format(*(_words(g) for g in found.groups()))
    parts = []
    for part in _REASON_SPLIT.split(text):
        for pattern, zh in _REASON_PATTERNS:
            found = pattern.search(part)
            if found:
                part = zh.format(*found.groups())
                break
        parts.append(part)
    return "；".join(parts)


def _words(text: str) -> str:
    """The stages' words inside a translated note (counts of repairs, distance methods)."""
    return _WORD_PATTERN.sub(lambda m: _GROUP_WORDS[m.group(0)], text)


def default_grid_name(lang: str) -> str:
    """The default ``grid_name`` template of a language (``"{community}第{n}网格"`` in zh)."""
    return t("grid_name.template", lang)


def check_grid_name(template: str) -> str:
    """``template`` if it formats with the grid fields and numbers the grids, else InputError."""
    if not isinstance(template, str):
        raise InputError(f"grid_name must be a text template, got {template!r}")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    except ValueError as exc:
        raise InputError(f"grid_name {template!r} is not a valid template: {exc}") from exc
    unknown = sorted(names - set(GRID_NAME_FIELDS))
    if unknown:
        raise InputError(
            f"grid_name {template!r} uses unknown field(s) {unknown}; it may use "
            f"{{community}}, {{n}} (number within the community) and {{grid_id}}"
        )
    if not names & {"n", "grid_id"}:
        raise InputError(
            f"grid_name {template!r} would give every grid of a community the same name; "
            "put {n} (the grid's number within its community) in it, e.g. '{community}第{n}网格'"
        )
    return template


def community_order(communities: Iterable[Any], order: str = "input") -> list[Any]:
    """The distinct communities in the office's order.

    ``"input"``: as they first appear; ``"pinyin"``: by the pinyin of their names
    (Chinese offices list communities alphabetically by pinyin).
    """
    seen = list(dict.fromkeys(c for c in communities if not _missing(c)))
    if order == "input":
        return seen
    if order == "pinyin":
        return sorted(seen, key=lambda c: ("".join(lazy_pinyin(str(c))).lower(), str(c)))
    raise InputError(f"grid_order must be 'input' or 'pinyin', got {order!r}")


def grid_names(
    grid_ids: pd.Series,
    communities: pd.Series | None,
    template: str,
    *,
    area: str = "",
) -> pd.Series:
    """A name per grid, numbered 1, 2, ... within each community in the order of ``grid_ids``.

    Grids without a community take ``area`` (the street office, or nothing) in its place.

    Examples
    --------
    >>> ids = pd.Series(["G0001", "G0002", "G0003"])
    >>> list(grid_names(ids, pd.Series(["平江社区", "平江社区", "桃花坞社区"]), "{community}第{n}网格"))
    ['平江社区第1网格', '平江社区第2网格', '桃花坞社区第1网格']
    """
    check_grid_name(template)
    comm = (
        pd.Series([area] * len(grid_ids), index=grid_ids.index)
        if communities is None
        else communities.reindex(grid_ids.index).map(lambda c: area if _missing(c) else str(c))
    )
    n = comm.groupby(comm, sort=False).cumcount() + 1
    names = [
        " ".join(template.format(community=c, n=int(k), grid_id=g).split())
        for c, k, g in zip(comm, n, grid_ids, strict=True)
    ]
    return pd.Series(names, index=grid_ids.index, name="grid_name")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""
