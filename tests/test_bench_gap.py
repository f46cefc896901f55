"""The gap benchmark family in quick mode: two small instances, peer included."""

from __future__ import annotations

from gridopt.bench import gap
from gridopt.bench.runner import ROW_KEYS

KEYS = set(ROW_KEYS)  # the row keys every family shares


def test_quick_rows_reach_published_optimum():
    seen = []
    rows = gap.run(quick=True, progress=seen.append)
    assert len(rows) == 2
    assert seen == ["cattrysse1994/gap1-0", "cattrysse1994/gap5-0"]
    for row in rows:
        assert set(row) == KEYS
        assert row["family"] == "gap"
        assert row["gap_pct"] == 0
        assert row["status"] == "optimal"
        assert row["peer"] == "cp-sat plain"
        assert row["peer_objective"] == row["best_known"]
        assert row["ratio"] is not None
    assert rows[0]["objective"] == 336  # OR-Library maximum of c515-1


def test_no_peers_and_custom_dir(tmp_path):
    src = gap._repo_instances()
    (tmp_path / "cattrysse1994").mkdir()
    (tmp_path / "cattrysse1994" / "gap1-0").write_text(
        (src / "cattrysse1994" / "gap1-0").read_text()
    )
    (tmp_path / "combined_best_known_min.csv").write_text(
        (src / "combined_best_known_min.csv").read_text()
    )
    rows = gap.run(tmp_path, peers=False, time_limit_s=5)
    assert [r["instance"] for r in rows] == ["gap1-0 (max)"]
    assert rows[0]["peer"] is None and rows[0]["ratio"] is None


def test_instance_filter_and_default_limits():
    rows = gap.run(peers=False, instances=["gap2-0", "cattrysse1994/gap3-1"])
    assert [r["instance"] for r in rows] == ["gap2-0 (max)", "gap3-1 (max)"]
    assert all("limit 10s" in r["notes"] for r in rows)
    assert gap._group("chu1997/d20100") == "chu_cd"
    assert gap._group("chu1997/a05100") == "chu_ab"
    assert gap._group("yagiura2004/e801600") == "yagiura"
    assert gap.DEFAULT_TIME_LIMITS_S["chu_cd"] == 30.0  # the issue's figure


def test_street_office_row_meets_the_issue_goal():
    # the issue's street office: 600 grids, ~3,000 staff, within 1% of its bound
    rows = gap.run(peers=False, instances=[gap.OFFICE_NAME], time_limit_s=30)
    assert [r["instance"] for r in rows] == [gap.OFFICE_NAME]
    row = rows[0]
    assert row["size"].startswith("600 grids")
    assert row["gap_pct"] <= 1.0
    assert row["status"] in ("optimal", "feasible")
    assert "network" in row["notes"]  # travel over the streets, not straight lines


def test_street_office_is_a_lattice_with_streets():
    grids, streets = gap.street_office(4, 6, seed=1)
    assert len(grids) == 24 and grids["households"].between(200, 300).all()
    assert len(streets) == 5 + 7
    assert grids["community"].nunique() == 2
