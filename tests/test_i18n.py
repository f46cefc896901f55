"""Chinese and English outputs (issue 16): the label table, grid names, report/summary files."""

from __future__ import annotations

import dataclasses
import re
import string

import openpyxl
import pandas as pd
import pytest

from _plan_data import ZH_COMMUNITIES, small_plan, zh_plan
from gridopt import InputError, i18n
from gridopt.cli import main
from gridopt.pipeline import PlanConfig


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


# --- the table --------------------------------------------------------------


def test_every_label_has_both_languages_with_the_same_fields():
    for key, value in i18n.LABELS.items():
        assert set(value) == set(i18n.LANGUAGES), key
        assert value["en"].strip() and value["zh"].strip(), key
        assert _fields(value["en"]) == _fields(value["zh"]), key
        words = re.sub(r"\{\w+\}|[\W\d_]", "", value["zh"])
        # grid_name keeps its key in every language: the contract names the column
        chinese = i18n.has_cjk(value["zh"]) or not words or key == "col.grid_name"
        assert chinese, f"{key}: the Chinese label is not Chinese"


def test_every_report_column_kind_and_stage_has_a_label():
    for col in i18n.REPORT_COLUMNS:
        assert i18n.t(f"col.{col}", "en") == col  # English keeps the machine-friendly keys
    for kind in ("regular", "exclusive", "oversized", "undersized"):
        assert i18n.t(f"kind.{kind}", "zh").endswith("网格")
    zh = i18n.labels("zh")
    assert zh["col.grid_name"] == "grid_name" and len(zh) == len(i18n.LABELS)


def test_t_fills_fields_and_rejects_unknown_languages():
    assert i18n.t("legend.uncovered", "zh", walk_m="1,000") == "步行超过1,000米的住户"
    with pytest.raises(InputError, match="language"):
        i18n.t("col.households", "fr")
    with pytest.raises(KeyError):
        i18n.t("no.such.key", "zh")


def test_auto_language_follows_the_data():
    assert i18n.resolve_language("auto", columns=["户数", "geometry"]) == "zh"
    assert i18n.resolve_language("auto", columns=["households"], values=["平江社区"]) == "zh"
    assert i18n.resolve_language("auto", columns=["households"], values=["C000-001"]) == "en"
    assert i18n.resolve_language("en", values=["平江社区"]) == "en"
    with pytest.raises(InputError):
        i18n.resolve_language("de")


@pytest.mark.parametrize(
    "text",
    [
        "exclusive grid: school, hospital (3 buildings)",
        "oversized: one building with 412 households (> 300) cannot be split; needs 3 grid "
        "workers at 200 households each (split by stairwell or floor on site)",
        "undersized: its 4 connected buildings hold 120 households (< 200) and no neighbouring "
        "grid can take them (separated by distance, a community boundary, or a barrier)",
        "undersized: 150 households (< 200) left by building sizes; no neighbouring grid could "
        "take them without exceeding 300 households",
        "crosses 2 barrier(s): the households on one side cannot make a grid alone; joins 3 "
        "clusters of buildings across empty land: a cluster alone cannot make a grid",
        "unserved: no station capacity left in reach",
        "beyond max_walk_m (1000 m)",
        "no staff list given: staff were planned with a PLACEHOLDER roster in the standard's "
        "proportions (gridopt.staffing.synthetic_staff) to show the posts each grid needs; pass "
        "staff= with the real list before using the assignments",
        "no candidate station sites were given or found (no public, office or community building "
        "in the data): every one of the 1,234 residential buildings was treated as a possible "
        "site for a 300 m² station room; pass candidates= with real sites",
        "34 building features were repaired or skipped when reading (26 skipped, 8 repaired); "
        "see the 'repairs' layer of plan.gpkg",
    ],
)
def test_stage_texts_are_translated_whole(text):
    zh = i18n.translate_text(text, "zh")
    assert i18n.has_cjk(zh)
    # Nothing English is left but names, numbers and code (staff=, plan.gpkg, ...).
    leftover = re.sub(r"[\w.]+=|gridopt[\w.]*|plan\.gpkg|repairs|max_walk_m|m²", "", zh)
    assert not re.search(r"[A-Za-z]{4,}", leftover.replace("school", "").replace("hospital", "")), (
        zh
    )
    assert i18n.translate_text(text, "en") == text


def test_unknown_text_stays_as_it_is():
    assert i18n.translate_text("something new", "zh") == "something new"
    assert i18n.translate_text("", "zh") == ""


# --- grid names -------------------------------------------------------------


def test_grid_names_number_within_each_community():
    ids = pd.Series(["G1", "G2", "G3", "G4"])
    comm = pd.Series(["平江社区", "桃花坞社区", "平江社区", None])
    names = i18n.grid_names(ids, comm, "{community}第{n}网格", area="双塔街道")
    assert list(names) == [
        "平江社区第1网格",
        "桃花坞社区第1网格",
        "平江社区第2网格",
        "双塔街道第1网格",
    ]
    assert list(i18n.grid_names(ids, None, "{community}第{n}网格")) == [
        "第1网格",
        "第2网格",
        "第3网格",
        "第4网格",
    ]
    assert list(i18n.grid_names(ids[:2], None, "{community} grid {n}")) == ["grid 1", "grid 2"]


@pytest.mark.parametrize(
    ("template", "match"),
    [("{community}网格", "same name"), ("{street}第{n}网格", "unknown field"), ("{n", "template")],
)
def test_bad_grid_name_templates_are_refused(template, match):
    with pytest.raises(InputError, match=match):
        PlanConfig(grid_name=template)


def test_community_order_by_pinyin():
    names = ["桃花坞社区", "平江社区", "沧浪社区", "双塔社区", "平江社区"]
    assert i18n.community_order(names) == ["桃花坞社区", "平江社区", "沧浪社区", "双塔社区"]
    assert i18n.community_order(names, "pinyin") == [
        "沧浪社区",
        "平江社区",
        "双塔社区",
        "桃花坞社区",
    ]


def test_config_checks_the_output_options():
    with pytest.raises(InputError, match="language"):
        PlanConfig(language="chinese")
    with pytest.raises(InputError, match="grid_order"):
        PlanConfig(grid_order="alphabetical")
    with pytest.raises(InputError, match="Tianditu key"):
        PlanConfig(basemap="tianditu")
    cfg = PlanConfig(basemap="tianditu", tianditu_key="secret-key")
    assert "secret-key" not in repr(cfg)


# --- the plan's outputs -----------------------------------------------------


@pytest.fixture(scope="module")
def zh():
    return zh_plan()


@pytest.fixture(scope="module")
def zh_files(zh, tmp_path_factory):
    return zh.to_file(tmp_path_factory.mktemp("zh") / "plan")


def test_language_auto(zh):
    assert zh.language == "zh"
    assert small_plan().language == "en"
    assert dataclasses.replace(zh, config=zh.config.replace(language="en")).language == "en"


def test_every_grid_is_named_community_and_number(zh):
    rep = zh.report()
    assert list(rep.columns[:3]) == ["grid_id", "grid_name", "community"]
    for community, group in rep.groupby("community", sort=False):
        assert community in ZH_COMMUNITIES
        expected = [f"{community}第{n}网格" for n in range(1, len(group) + 1)]
        assert list(group["grid_name"]) == expected
    assert rep["grid_name"].is_unique
    # Communities in the input order, then by number.
    seen = list(dict.fromkeys(rep["community"]))
    assert seen == list(dict.fromkeys(zh.buildings["community"]))


def test_pinyin_order_and_a_custom_template(zh):
    p = dataclasses.replace(
        zh, config=zh.config.replace(grid_order="pinyin", grid_name="{community}{n}号网格")
    )
    rep = p.report()
    order = list(dict.fromkeys(rep["community"]))
    assert order == i18n.community_order(order, "pinyin")
    assert rep["grid_name"].str.fullmatch(r".+社区\d+号网格").all()


def test_report_csv_has_a_bom_and_chinese_headers(zh_files):
    raw = (zh_files / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel on Chinese Windows needs it
    rep = pd.read_csv(zh_files / "report.csv", encoding="utf-8-sig")
    assert list(rep.columns[:4]) == ["网格编号", "grid_name", "社区", "网格类型"]
    assert rep["grid_name"].str.fullmatch(r".+社区第\d+网格").all()
    assert set(rep["网格类型"]) <= {
        i18n.t(f"kind.{k}", "zh") for k in ("regular", "exclusive", "oversized", "undersized")
    }


def test_report_xlsx_header_bold_frozen_and_wide(zh_files):
    book = openpyxl.load_workbook(zh_files / "report.xlsx")
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["网格编号", "grid_name"]
    assert all(c.font.bold for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width >= 2 * len("平江社区第1网格") - 2
    assert sheet.max_row == len(pd.read_csv(zh_files / "report.csv", encoding="utf-8-sig")) + 1


def test_summary_and_map_in_chinese(zh_files):
    summary = (zh_files / "summary.txt").read_text(encoding="utf-8")
    assert summary.splitlines()[1].startswith("网格：")
    assert "说明：未提供人员名单" in summary
    assert "note:" not in summary and "grids:" not in summary
    page = (zh_files / "map.html").read_text(encoding="utf-8")
    for label in ("网格名称", "社区边界", "党群服务站", "平江社区第1网格"):
        assert label in page or label.encode("unicode_escape").decode() in page, label


def test_english_report_keeps_the_column_keys(tmp_path):
    out = small_plan().to_file(tmp_path / "plan")
    rep = pd.read_csv(out / "report.csv", encoding="utf-8-sig")
    assert "grid_name" in rep.columns and rep["grid_name"].str.fullmatch(r"C\d+-\d+ grid \d+").all()
    assert (out / "report.xlsx").exists()
    assert (out / "summary.txt").read_text(encoding="utf-8").startswith("300 buildings")


def test_cli_map_from_written_files(zh_files, tmp_path, monkeypatch):
    out = tmp_path / "map.html"
    assert main(["map", str(zh_files), "--lang", "en", "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Community borders" in page and "Grid names" in page
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    assert main(["map", str(zh_files), "--basemap", "tianditu", "-o", str(out)]) == 2
    assert main(["map", str(zh_files), "--basemap", "tianditu", "--tianditu-key", "k123",
                 "-o", str(out)]) == 0  # fmt: skip
    page = out.read_text(encoding="utf-8")
    assert "tianditu.gov.cn" in page and "tk=k123" in page and "社区边界" in page
