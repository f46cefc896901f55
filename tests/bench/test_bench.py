"""Tests of ``gridopt bench``: every family's quick mode through the CLI, and RESULTS.md updates."""

from __future__ import annotations

import importlib
import pathlib

import pytest

from gridopt import cli, datasets
from gridopt._errors import InputError
from gridopt.bench import runner

FAMILIES = list(runner.FAMILIES)
#: families whose instances are read from the shared data folder
SHARED_INSTANCES = ("pmed", "cpmp", "districting")


def _family_available(family: str) -> bool:
    try:
        importlib.import_module(f"gridopt.bench.{family}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("family", FAMILIES)
def test_quick_family_through_cli(
    family: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not _family_available(family):
        pytest.skip(f"gridopt.bench.{family} has not landed yet")
    if family in SHARED_INSTANCES:
        try:
            datasets.benchmark_dir(family)
        except InputError as exc:
            pytest.skip(str(exc))
    out = tmp_path / "RESULTS.md"
    # a short per-solve limit keeps the suite fast on a loaded 2-core machine
    argv = ["bench", family, "--quick", "--no-peers", "--time-limit-s", "5", "--out", str(out)]
    status = cli.main(argv)
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert f"== {family} ==" in printed
    assert "summary:" in printed
    text = out.read_text()
    begin = f"<!-- gridopt-bench:{family}:begin -->"
    assert begin in text and f"<!-- gridopt-bench:{family}:end -->" in text
    section = text.split(begin, 1)[1]
    table_rows = [
        ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| instance")
    ]
    assert len(table_rows) >= 2, section  # two quick instances
    assert "| error |" not in section and "unavailable" not in section


def _rows(family: str, n: int, value: float) -> list[dict]:
    return [
        {
            **dict.fromkeys(runner.ROW_KEYS),
            "family": family,
            "instance": f"{family}{k}",
            "size": f"n={k}",
            "objective": value,
            "best_known": value,
            "gap_pct": 0.0,
            "seconds": 0.5,
            "peak_mb": 100.0,
            "status": "optimal",
            "notes": "",
        }
        for k in range(n)
    ]


def _section(family: str, value: float) -> str:
    import datetime as dt

    facts = {"family": family, "started": dt.datetime.now(dt.timezone.utc), "peers": False}
    return runner.markdown_section(
        _rows(family, 2, value), facts, command=f"gridopt bench {family}"
    )


def test_results_section_replacement_keeps_other_families(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "RESULTS.md"
    runner.update_results(
        path, {"pmed": _section("pmed", 111), "staffing": _section("staffing", 222)}, command="a"
    )
    runner.update_results(path, {"pmed": _section("pmed", 333)}, command="b")
    text = path.read_text()
    assert text.count("<!-- gridopt-bench:pmed:begin -->") == 1
    assert "| 333 |" in text and "| 111 |" not in text  # pmed replaced
    assert "| 222 |" in text  # staffing kept
    # sections in the canonical family order, header first
    assert (
        text.index("# gridopt benchmark results")
        < text.index("## pmed")
        < text.index("## staffing")
    )
    assert "by `b`" in text and "cores" in text and "ortools" in text
    # "all" rewrites the whole file
    runner.update_results(path, {"cpmp": _section("cpmp", 444)}, command="c", replace_all=True)
    text = path.read_text()
    assert "## cpmp" in text and "## pmed" not in text and "## staffing" not in text


def test_unknown_and_missing_family_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(runner.InputError, match="unknown benchmark family"):
        runner.run_bench("nope", progress_bar=False)

    def broken(family: str) -> object:
        raise ImportError("No module named 'gridopt.bench.staffing'")

    monkeypatch.setattr(runner, "load_family", broken)
    df = runner.run_bench("staffing", peers=False, quick=True, progress_bar=False)
    assert list(df["status"]) == ["unavailable"]
    assert "could not be imported" in df.attrs["summaries"]["staffing"]


@pytest.mark.parametrize("family", ["pmed", "cpmp"])
def test_absent_instances_give_one_line(
    family: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDOPT_DATA", str(tmp_path))
    df = runner.run_bench(family, peers=False, quick=True, progress_bar=False)
    assert list(df["status"]) == ["unavailable"]
    note = df.loc[0, "notes"]
    assert f"benchmarks/{family} not found" in note and "GRIDOPT_DATA" in note
    assert "\n" not in note


def test_family_error_becomes_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom:
        @staticmethod
        def run(*args: object, **kwargs: object) -> list[dict]:
            raise RuntimeError("solver exploded")

    monkeypatch.setattr(runner, "load_family", lambda family: Boom)
    df = runner.run_bench("scale", peers=False, quick=True, progress_bar=False)
    assert list(df["status"]) == ["error"]
    assert "solver exploded" in df.loc[0, "notes"]


def test_format_value() -> None:
    assert runner.format_value(None, "obj") == "-"
    assert runner.format_value(5819.0, "obj") == "5819"
    assert runner.format_value(12.345, "x") == "12.3x"
    assert runner.format_value(99.5, "pct") == "99.5%"
    assert runner.format_value(0.1234, ".2f") == "0.12"


def test_partition_peer_worker_times_out() -> None:
    """A peer that overruns its cap is stopped and reported, never waited for."""
    from gridopt.bench import partition

    res = partition._isolated("_sleep_job", (30.0,), timeout_s=3.0)
    assert "timeout" in res and res["timeout"] < 20


def test_partition_metrics() -> None:
    import numpy as np

    from gridopt.bench.partition import _metrics

    hh = np.array([100, 150, 250, 50])
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    ei, ej = np.array([0, 1, 2]), np.array([1, 2, 3])
    bar = np.array([False, True, True])
    met = _metrics(np.array([7, 7, 9, 9]), hh, xy, ei, ej, bar)
    assert met["grids"] == 2
    assert list(met["h"]) == [250, 300]
    assert met["in_band_all_pct"] == 100.0
    assert met["barrier_grids"] == 1  # only grid 9 holds a barrier edge


def test_missing_peer_packages_said_once_and_gridopt_runs_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not _family_available("pmed"):
        pytest.skip("gridopt.bench.pmed has not landed yet")

    def all_missing(families: list[str] = FAMILIES) -> list[str]:
        return sorted({pkg for fam in families for pkg in runner.PEER_PACKAGES[fam]})

    monkeypatch.setattr(runner, "missing_peer_packages", all_missing)
    status = cli.main(["bench", "pmed", "--quick", "--peers", "--time-limit-s", "5"])
    captured = capsys.readouterr()
    assert status == 0
    assert captured.err.count("peer packages not installed") == 1
    assert "peer obj" not in captured.out  # no peer columns: gridopt ran alone
    assert "pmed1" in captured.out


def test_partition_instances_dir_runs_every_building_file(tmp_path: pathlib.Path) -> None:
    import gridopt
    from gridopt.bench import partition

    city = gridopt.synthetic_city(150, seed=3)
    path = tmp_path / "mini.gpkg"
    city.buildings.reset_index(drop=True).to_file(path, layer="buildings")
    city.streets.to_file(path, layer="streets")
    (tmp_path / "notes.txt").write_text("not an instance")
    rows = partition.run(tmp_path, peers=False, time_limit_s=5, quick=True)
    assert [r["instance"] for r in rows] == ["mini"]
    row = rows[0]
    assert row["buildings"] == 150 and row["grids"] >= 1
    assert row["in_band_regular_pct"] == 100.0
