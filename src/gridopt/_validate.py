"""Input checks as data: one rule per option, one message style, one error type.

Each option shared by :class:`gridopt.PlanConfig` and the stage entry points has one
rule in :data:`RULES`; :func:`check` applies them and raises :class:`InputError` with
a message that says what was found and what is accepted. The grid band is checked in
one place, :func:`check_band`, so every entry point words it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gridopt._errors import InputError

__all__ = ["RULES", "Integer", "Nullable", "OneOf", "Real", "check", "check_band"]


class Rule(Protocol):
    """A constraint on one value: whether it holds and how to say what it expects."""

    def holds(self, value: Any) -> bool: ...

    def expects(self) -> str: ...


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Integer:
    """A whole number (not a bool) of at least ``low``."""

    low: int | None = None

    def holds(self, value: Any) -> bool:
        return _is_int(value) and (self.low is None or value >= self.low)

    def expects(self) -> str:
        if self.low is None:
            return "a whole number"
        return "a positive whole number (> 0)" if self.low == 1 else f"a whole number >= {self.low}"


@dataclass(frozen=True)
class Real:
    """A finite number (not a bool) above ``low`` (or at least ``low`` when ``closed``)."""

    low: float | None = None
    closed: bool = False

    def holds(self, value: Any) -> bool:
        if not (isinstance(value, (int, float, np.number)) and not isinstance(value, bool)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is None:
            return True
        return value >= self.low if self.closed else value > self.low

    def expects(self) -> str:
        if self.low is None:
            return "a finite number"
        return f"a finite number {'>=' if self.closed else '>'} {self.low:g}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    options: tuple[Any, ...]

    def holds(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def expects(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Nullable:
    """``None`` or a value the inner rule accepts."""

    rule: Rule

    def holds(self, value: Any) -> bool:
        return value is None or self.rule.holds(value)

    def expects(self) -> str:
        return f"{self.rule.expects()} or None"


_POSITIVE = Real(0.0)

#: The rule of every option that more than one entry point takes.
RULES: Mapping[str, Rule] = {
    "min_households": Integer(1),
    "max_households": Integer(1),
    "max_walk_m": _POSITIVE,
    "m2_per_100_households": _POSITIVE,
    "walk_speed_m_per_min": _POSITIVE,
    "m2_per_household": _POSITIVE,
    "fallback_station_m2": _POSITIVE,
    "station_floor_area_m2": _POSITIVE,
    "max_link_m": Real(0.0, closed=True),
    "boundary_weight": Real(0.0, closed=True),
    "time_limit_s": _POSITIVE,
    "seconds_per_1000_buildings": Nullable(_POSITIVE),
    "grid_starts": Nullable(Integer(1)),
    "n_stations": Nullable(Integer(1)),
    "seed": Integer(0),
    "staff_when_missing": OneOf(("synthetic", "skip")),
    "station_objective": OneOf(("median", "cover", "max_cover")),
    "method": OneOf(("heuristic", "exact")),
    "chunk_rows": Integer(1),
    "margin_m": Real(0.0, closed=True),
}


def check(**values: Any) -> None:
    """Check options against :data:`RULES` (and the band when both bounds are given).

    Raises
    ------
    InputError
        The first option that breaks its rule, with the value found and what is accepted.

    Examples
    --------
    >>> check(min_households=200, max_households=300, time_limit_s=5)
    >>> check(time_limit_s=-1)
    Traceback (most recent call last):
    ...
    gridopt._errors.InputError: time_limit_s must be a finite number > 0, got -1
    """
    for name, value in values.items():
        rule = RULES[name]
        if not rule.holds(value):
            raise InputError(f"{name} must be {rule.expects()}, got {value!r}")
    if "min_households" in values and "max_households" in values:
        check_band(values["min_households"], values["max_households"])


def check_band(min_households: int, max_households: int) -> None:
    """The grid band must be a non-empty range of positive whole numbers.

    Raises
    ------
    InputError
        A bound that is not a positive whole number, or a lower bound above the upper.
    """
    for name, value in (("min_households", min_households), ("max_households", max_households)):
        rule = RULES[name]
        if not rule.holds(value):
            raise InputError(f"{name} must be {rule.expects()}, got {value!r}")
    if min_households > max_households:
        raise InputError(
            f"impossible grid band: min_households={min_households} is greater than "
            f"max_households={max_households}; swap them or widen the band (e.g. 200-300)"
        )
