"""Staff assignment on a synthetic street office: 600 grids, about 3,000 staff.

Goal (issue 5): solved within 1% of its bound in under 60 s on 2 cores.

Run: ``.venv/bin/python benchmarks/staff_street_office.py [--rows 25 --cols 24 --coverage 0.95 --seed 0]``

The same instance is the ``street-office-600`` row of ``gridopt bench staffing``. The
street office (:func:`gridopt.bench.staffing.street_office`) is a lattice of 150 m
square grids of 200-300 households in communities of 12 grids, with streets
along every grid edge; the staff come from
:func:`gridopt.staffing.synthetic_staff` (homes near their grids, 10% part-time
grid workers, officers at 1 per 75 households, 2% unavailable, 70% holding a
current post), times ``coverage``. Travel walks the streets unless
``--straight-line``.
"""

from __future__ import annotations

import argparse

from gridopt.bench._measure import measure
from gridopt.bench.staffing import street_office
from gridopt.staffing import assign_staff, synthetic_staff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--cols", type=int, default=24)
    ap.add_argument("--coverage", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit-s", type=float, default=60.0)
    ap.add_argument(
        "--straight-line", action="store_true", help="travel by straight line, not the streets"
    )
    args = ap.parse_args()
    grids, streets = street_office(args.rows, args.cols, seed=args.seed)
    staff = synthetic_staff(grids, seed=args.seed, coverage=args.coverage)
    planned = staff[staff["role"] != "party_member"]
    m = measure(
        lambda: assign_staff(
            grids,
            staff,
            streets=None if args.straight_line else streets,
            time_limit_s=args.time_limit_s,
        )
    )
    plan = m.value
    print(
        f"grids {len(grids)}, households {int(grids['households'].sum())}, staff {len(staff)} "
        f"({len(planned)} workers/officers/mediators + {len(staff) - len(planned)} party members)"
    )
    print(plan.summary())
    print(plan.per_street.to_string(index=False))
    print(
        f"status {plan.status}, objective {plan.objective:.0f}, bound {plan.bound:.0f}, "
        f"gap {100 * plan.gap:.3f}%, seconds {m.seconds:.1f}, peak {m.peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
