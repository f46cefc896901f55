"""The :class:`Partition` result of :func:`gridopt.partition_grids`."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from gridopt._status import Status

__all__ = ["Partition"]


@dataclass(frozen=True)
class Partition:
    """Grids of a set of buildings.

    Attributes
    ----------
    labels
        Grid id of every building, aligned with the input's index (no missing values).
    grids
        One row per grid: ``grid_id``, ``community``, ``households``, ``n_buildings``,
        ``kind`` (``regular``, ``exclusive``, ``oversized``, ``undersized``), ``reason``
        (non-empty for every non-regular grid), ``grid_workers`` (workers the standard asks
        for), ``barrier_crossings`` (barriers the grid spans), ``rms_distance_m``
        (household root-mean-square distance to the grid's centre building),
        ``compactness`` (Polsby-Popper of the polygon, 1 = disc), ``boundary_on_streets``
        (share of the grid's boundary with other grids that runs along a street, river or
        railway; NaN for a grid alone), ``blocks_split`` (blocks with buildings this grid
        shares with another grid) and one Polygon geometry. The polygons tile the study
        area: every building's cell and every block without buildings belongs to one grid.
    status
        ``"optimal"`` (exact mode, proven), ``"feasible"`` (heuristic converged) or
        ``"time_limit"`` (stopped by the time limit; the best plan found is returned).
    objective
        Household-weighted mean squared distance to the grid centre building (m²) plus the
        balance term, over the grids the solver shapes (regular and undersized).
    bound
        Proven lower bound of the objective (exact mode), else ``None``.
    runtime_s
        Wall-clock seconds of the whole call.
    min_households, max_households
        The band the grids were cut to.
    households_moved
        With ``previous=``: households whose building left its old grid; else ``None``.
    details
        Timings and counts per stage (tessellation, components, solve, pocket repair) and
        ``details["gap_links"]``: the links across empty land that hold grids together (a
        DataFrame with ``building_a``, ``building_b``, ``gap_m``, ``grid_id``).
    metrics
        How the grids sit on the land: ``boundary_on_streets`` (share of all boundaries
        between grids that run along a street, river or railway), ``grids_straddling``
        (per boundary class, grids with buildings on both sides of such a line),
        ``area_covered`` (share of the study area inside the grids), ``overlap_m2``,
        ``undersized`` (grids), ``gap_links`` (settlements joined across open land),
        ``blocks``, ``blocks_whole`` (share of the blocks holding at most the band's
        maximum that lie whole inside one grid), ``blocks_note`` (non-empty when the
        streets closed no block) and ``boundary_m`` (lengths behind the shares).
    """

    labels: pd.Series
    grids: gpd.GeoDataFrame
    status: Status
    objective: float
    bound: float | None
    runtime_s: float
    min_households: int
    max_households: int
    households_moved: int | None = None
    details: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def n_grids(self) -> int:
        """Number of grids."""
        return len(self.grids)

    @property
    def share_in_band(self) -> float:
        """Share of the regular grids whose households lie inside the band (1.0 by design)."""
        reg = self.grids[self.grids["kind"] == "regular"]["households"]
        if len(reg) == 0:
            return float("nan")
        inside = reg.between(self.min_households, self.max_households)
        return float(inside.mean())

    @property
    def barrier_crossings(self) -> int:
        """Total number of barrier crossings inside grids."""
        return int(self.grids["barrier_crossings"].sum())

    @property
    def gap_pct(self) -> float | None:
        """Gap between objective and bound in percent, where a bound is known."""
        if self.bound is None or not np.isfinite(self.bound) or self.objective <= 0:
            return None
        return 100.0 * (self.objective - self.bound) / self.objective

    def summary(self) -> str:
        """A few lines a person can read: grids by kind, band, barriers, time."""
        g = self.grids
        kinds = g["kind"].value_counts()
        reg = g[g["kind"] == "regular"]["households"]
        lines = [
            f"{len(self.labels):,} buildings, {int(g['households'].sum()):,} households -> {len(g):,} grids "
            f"({', '.join(f'{kinds.get(k, 0)} {k}' for k in ('regular', 'exclusive', 'oversized', 'undersized'))})",
            f"band {self.min_households}-{self.max_households}: {self.share_in_band:.1%} of regular grids inside"
            + (
                f", households {int(reg.min())}-{int(reg.max())} (median {reg.median():.0f})"
                if len(reg)
                else ""
            ),
            f"barrier crossings: {self.barrier_crossings}; grid workers needed: {int(g['grid_workers'].sum())}",
            f"objective {self.objective:,.1f} m² (mean squared distance to grid centre + balance)"
            + (
                f", bound {self.bound:,.1f} (gap {self.gap_pct:.2f}%)"
                if self.gap_pct is not None
                else ""
            ),
            f"status {self.status}, {self.runtime_s:.2f} s",
        ]
        if self.households_moved is not None:
            lines.append(f"households moved from their previous grid: {self.households_moved:,}")
        return "\n".join(lines)
