"""The staffing standard as data (:class:`StaffingRules`), Dalian's figures by default."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from gridopt._errors import InputError

__all__ = ["ROLES", "StaffingRules"]

#: Roles :func:`gridopt.assign_staff` knows how to place.
ROLES = ("grid_worker", "info_officer", "mediator", "party_member")


@dataclass(frozen=True)
class StaffingRules:
    """Staffing standard and the weights of the soft terms.

    The defaults are the Dalian 2022 plan (see ``STANDARDS.md``): one grid
    worker per 200 households and at least one dedicated worker per grid,
    one information officer per 50-100 households, at least one mediator per
    community and two per street mediation committee.

    Parameters
    ----------
    households_per_worker
        Households one full-time grid worker carries (also the default
        capacity of a full-time worker without ``max_households``).
    min_workers_per_grid
        Dedicated grid workers every grid must have (hard rule; a grid the
        staff on hand cannot cover appears in the shortfall).
    part_time_share
        Capacity of a part-time grid worker as a share of a full-time one.
    min_households_per_officer, max_households_per_officer
        An information officer looks after this many households: a grid of
        ``h`` households needs ``ceil(h / max)`` officers and takes at most
        ``max(ceil(h / max), floor(h / min))``.
    mediators_per_community, mediators_per_street
        Full-time people's mediators per community and per street office.
    mediator_qualification
        Qualification a mediator must hold (``None``: none required).
    candidate_grids
        Nearest grids (from home) considered for each worker or officer, besides
        their current post; keeps the model sparse.
    missing_worker_weight
        Penalty per grid without its dedicated worker(s).
    uncovered_household_weight
        Penalty per household above the workers' capacity (1 per 200 standard).
    missing_officer_weight, missing_mediator_weight
        Penalty per officer / mediator missing under the standard.
    travel_weight_per_km
        Penalty per km between home and post (straight line).
    move_weight
        Penalty for moving a person away from their current post.
    balance_weight
        Penalty per household of per-worker load (households / workers) summed
        over grids, counted above the ideal staffing; spreads surplus workers
        to the heaviest grids.
    idle_weight
        Penalty per available worker, officer or mediator left without a post.

    Raises
    ------
    InputError
        A count or weight that is not positive (or negative for weights), or a
        minimum above its maximum.

    Examples
    --------
    >>> StaffingRules().households_per_worker
    200
    >>> StaffingRules(min_households_per_officer=120)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridopt._errors.InputError: StaffingRules: min_households_per_officer (120) is above max_households_per_officer (100); ...
    """

    households_per_worker: int = 200
    min_workers_per_grid: int = 1
    part_time_share: float = 0.5
    min_households_per_officer: int = 50
    max_households_per_officer: int = 100
    mediators_per_community: int = 1
    mediators_per_street: int = 2
    mediator_qualification: str | None = "mediator_certificate"
    candidate_grids: int = 25
    missing_worker_weight: float = 100_000.0
    uncovered_household_weight: float = 100.0
    missing_officer_weight: float = 5_000.0
    missing_mediator_weight: float = 10_000.0
    travel_weight_per_km: float = 100.0
    move_weight: float = 1_000.0
    balance_weight: float = 10.0
    idle_weight: float = 2_000.0

    def __post_init__(self) -> None:
        positive = (
            "households_per_worker",
            "min_workers_per_grid",
            "min_households_per_officer",
            "max_households_per_officer",
            "candidate_grids",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise InputError(f"StaffingRules: {name} must be a positive number; got {value!r}.")
        if not (0 < self.part_time_share <= 1):
            raise InputError(
                f"StaffingRules: part_time_share must be in (0, 1]; got {self.part_time_share!r}."
            )
        for name in ("mediators_per_community", "mediators_per_street"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise InputError(f"StaffingRules: {name} must be an integer >= 0; got {value!r}.")
        if self.min_households_per_officer > self.max_households_per_officer:
            raise InputError(
                f"StaffingRules: min_households_per_officer ({self.min_households_per_officer}) "
                f"is above max_households_per_officer ({self.max_households_per_officer}); "
                "swap them or make them equal."
            )
        for f in fields(self):
            if f.name.endswith("_weight") or f.name.endswith("_weight_per_km"):
                value = getattr(self, f.name)
                if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                    raise InputError(
                        f"StaffingRules: {f.name} must be a finite number >= 0; got {value!r}."
                    )
