"""Benchmark family ``staffing``: :func:`gridopt.assign_staff` on street offices.

It measures what users run: ``assign_staff`` (min-cost flows, then a HiGHS MIP for
the grid workers where capacities differ) with walking travel over the office's
streets, against the same model solved as plain HiGHS MIPs
(``assign_staff(method="mip")``) in the same run. Neither has a published value, so
the gap is each solver's own proven gap (objective to its bound).

Instances (all generated from a seed, the same on every machine):

- ``street-office-600``: :func:`street_office`, 600 square grids of 200-300
  households on a 150 m street lattice and about 3,000 staff from
  :func:`gridopt.staffing.synthetic_staff` at 95% of the standard;
- ``city-office-<n>``: :func:`city_office`, the grids that
  :func:`gridopt.partition_grids` draws on ``synthetic_city(n, seed=0)`` with its
  streets and communities (one street office), and its synthetic staff.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString, box

from gridopt.bench._measure import measure
from gridopt.bench._rows import add_note, add_peer, result_row, wall_cap_s
from gridopt.partition import partition_grids
from gridopt.staffing import assign_staff, synthetic_staff
from gridopt.synthetic import synthetic_city

__all__ = ["city_office", "run", "street_office"]

# the MIPs stop at node budgets from the office's size; these seconds set the wall-clock
# safety cap (wall_cap_s), so that a busy machine does not cut a run short
DEFAULT_TIME_LIMIT_S = 60.0
DEFAULT_PEER_TIME_LIMIT_S = 60.0
#: share of the standard's staff on hand in every instance
COVERAGE = 0.95
#: (name, kind, size): a street office of rows x cols grids, or a city of n buildings
INSTANCES: tuple[tuple[str, str, Any], ...] = (
    ("street-office-600", "lattice", (25, 24)),
    ("city-office-3k", "city", 3000),
)
QUICK: tuple[tuple[str, str, Any], ...] = (
    ("street-office-30", "lattice", (6, 5)),
    ("city-office-400", "city", 400),
)
PEER_NAME = "same model, plain HiGHS MIP"


def street_office(
    rows: int = 25, cols: int = 24, *, seed: int = 0, cell_m: float = 150.0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A synthetic street office: ``rows x cols`` square grids and the streets around them.

    Each grid is a ``cell_m`` square with 200-300 households (uniform, seeded);
    communities are blocks of 4 x 3 grids; one street office. The streets run
    along every grid edge, so walking travel follows them.

    Returns
    -------
    tuple of geopandas.GeoDataFrame
        ``(grids, streets)`` in a metric CRS (EPSG:32651).

    Examples
    --------
    >>> grids, streets = street_office(2, 3)
    >>> len(grids), len(streets), grids["community"].nunique()
    (6, 7, 1)
    """
    rng = np.random.default_rng(seed)
    polys, comm = [], []
    for r in range(rows):
        for c in range(cols):
            polys.append(box(c * cell_m, r * cell_m, (c + 1) * cell_m, (r + 1) * cell_m))
            comm.append(f"c{r // 4}_{c // 3}")
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [f"g{i}" for i in range(len(polys))],
            "households": rng.integers(200, 301, len(polys)),
            "community": comm,
            "street": "street-1",
        },
        geometry=polys,
        crs=32651,
    )
    width, height = cols * cell_m, rows * cell_m
    lines = [LineString([(0, r * cell_m), (width, r * cell_m)]) for r in range(rows + 1)]
    lines += [LineString([(c * cell_m, 0), (c * cell_m, height)]) for c in range(cols + 1)]
    streets = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=32651)
    return grids, streets


def city_office(n_buildings: int, *, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The grids of ``synthetic_city(n_buildings)`` as one street office, and its streets."""
    city = synthetic_city(n_buildings, seed=seed)
    part = partition_grids(
        city.buildings, streets=city.streets, communities=city.communities, seed=seed
    )
    grids = part.grids.copy()
    grids["street"] = "street-1"
    return grids, city.streets


def _instance(kind: str, size: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    if kind == "lattice":
        return street_office(*size, seed=0)
    return city_office(int(size), seed=0)


def run(
    instances_dir: pathlib.Path | None = None,
    *,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Staff every street office with ``assign_staff`` (and the plain MIP); one row each.

    ``instances_dir`` is not used: the instances are generated.
    """
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    peer_limit = DEFAULT_PEER_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    rows = []
    for name, kind, size in QUICK if quick else INSTANCES:
        if progress is not None:
            progress(name)
        grids, streets = _instance(kind, size)
        staff = synthetic_staff(grids, seed=0, coverage=COVERAGE)
        res = measure(
            lambda g=grids, s=staff, st=streets: assign_staff(
                g, s, streets=st, time_limit_s=wall_cap_s(limit), seed=0
            )
        )
        plan = res.value
        party = int((staff["role"] == "party_member").sum())
        row = result_row(
            "staffing",
            name,
            size=f"{len(grids)} grids, {len(staff) - party:,} staff",
            measured=res,
            objective=float(plan.objective),
            status=plan.status,
            gap_pct=100.0 * plan.gap,
            notes=[
                f"{int(grids['households'].sum()):,} households; {party:,} party members",
                f"gap to its own proven bound {plan.bound:.0f} (no published value)",
                f"travel {plan.metrics.get('travel_method')}",
            ],
        )
        if peers:
            peer = measure(
                lambda g=grids, s=staff, st=streets: assign_staff(
                    g, s, streets=st, time_limit_s=wall_cap_s(peer_limit), seed=0, method="mip"
                )
            )
            ref = peer.value
            add_peer(
                row,
                PEER_NAME,
                {"objective": ref.objective, "seconds": peer.seconds, "status": ref.status},
                limit_s=wall_cap_s(peer_limit),
            )
            add_note(row, f"peer bound {ref.bound:.0f} (gap {100 * ref.gap:.3f}%)")
        rows.append(row)
    return rows


def summarize(rows: list[dict], *, peers: bool) -> str:
    """``k/n proven within 0.01%; the plain MIP ... ``: the family's one-line summary."""
    done = [r for r in rows if r.get("objective") is not None]
    if not done:
        return "; ".join(str(r.get("notes")) for r in rows) or "no results"
    proven = sum(1 for r in done if (r.get("gap_pct") or 0.0) <= 0.01)
    parts = [
        f"{proven}/{len(done)} within 0.01% of their own proven bound "
        f"(max gap {max(r.get('gap_pct') or 0.0 for r in done):.3f}%)",
        f"gridopt total {sum(r['seconds'] for r in done):.1f} s",
    ]
    ran = [r for r in done if r.get("peer_objective") is not None]
    if peers and ran:
        same = sum(1 for r in ran if r["objective"] <= r["peer_objective"] + 1e-6)
        ratios = sorted(r["ratio"] for r in ran if r.get("ratio") is not None)
        parts.append(
            f"as good as the plain MIP on {same}/{len(ran)}, median time ratio "
            f"MIP/gridopt {ratios[len(ratios) // 2]:.1f}x"
        )
    return "; ".join(parts)
