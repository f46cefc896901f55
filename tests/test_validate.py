"""Input checks as data (gridopt._validate), the shared Status and the defaults."""

from __future__ import annotations

import numpy as np
import pytest

import gridopt
from gridopt import defaults
from gridopt._status import STATUSES, combine_status
from gridopt._validate import RULES, check, check_band
from gridopt.city import split_city
from gridopt.partition import partition_grids
from gridopt.synthetic import synthetic_city


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("min_households", [1, 200, np.int64(5)], [0, -3, 2.5, True, "200", None]),
        ("time_limit_s", [0.1, 60, np.float32(2)], [0, -1, float("inf"), float("nan"), True]),
        ("seconds_per_1000_buildings", [None, 5.0], [0, -1.0]),
        ("grid_starts", [None, 1, 8], [0, 1.5]),
        ("seed", [0, 7], [-1, 1.0, None]),
        ("staff_when_missing", ["synthetic", "skip"], ["maybe", None, 1]),
        ("method", ["heuristic", "exact"], ["magic"]),
        ("margin_m", [0, 100.0], [-1]),
    ],
)
def test_each_rule_accepts_and_rejects(name, good, bad):
    for value in good:
        check(**{name: value})
    for value in bad:
        with pytest.raises(gridopt.InputError, match=f"^{name} must be .*, got"):
            check(**{name: value})


def test_every_rule_describes_itself():
    for name, rule in RULES.items():
        assert rule.expects(), name


def test_the_band_is_worded_the_same_everywhere():
    city = synthetic_city(120, seed=1)
    with pytest.raises(gridopt.InputError) as direct:
        check_band(300, 200)
    message = str(direct.value)
    assert message.startswith("impossible grid band: min_households=300 is greater than")
    for call in (
        lambda: gridopt.PlanConfig(min_households=300, max_households=200),
        lambda: partition_grids(city.buildings, min_households=300, max_households=200),
        lambda: split_city(city.buildings, min_households=300, max_households=200),
    ):
        with pytest.raises(gridopt.InputError) as caught:
            call()
        assert str(caught.value) == message


def test_plan_config_reads_the_defaults():
    cfg = gridopt.PlanConfig()
    assert (cfg.min_households, cfg.max_households) == (
        defaults.MIN_HOUSEHOLDS,
        defaults.MAX_HOUSEHOLDS,
    )
    assert cfg.max_walk_m == defaults.MAX_WALK_M and cfg.time_limit_s == defaults.TIME_LIMIT_S
    assert cfg.stage_limit_s(1) == defaults.MIN_STAGE_S


def test_combine_status_is_the_weakest_piece():
    assert STATUSES == ("optimal", "feasible", "time_limit", "infeasible")
    assert combine_status([]) == "optimal"
    assert combine_status(["optimal"] * 3) == "optimal"
    assert combine_status(["optimal", "feasible"]) == "feasible"
    assert combine_status(["feasible", "time_limit", "optimal"]) == "time_limit"
    assert combine_status(["time_limit", "infeasible"]) == "infeasible"
    with pytest.raises(gridopt.SolverError, match="unknown status"):
        combine_status(["done"])
