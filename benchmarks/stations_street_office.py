"""Time the stations stage of one street office (a seeded 700-building synthetic city).

    PYTHONPATH=src python benchmarks/stations_street_office.py [--n 700] [--repeat 3]

Builds the city, its grids (once) and its walking network, then times
``place_stations`` as ``gridopt.plan`` calls it (time limit 5 s per 1,000 buildings,
at least 5 s), ``--repeat`` times, and prints the median seconds, stations, the share
of households within 1,000 m and grids on one station. Run it with another checkout's
``src`` on PYTHONPATH to compare before and after a change on the same machine load;
keywords the other checkout lacks (``grids``) are left out there.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
import warnings

import gridopt
from gridopt.network import walk_network
from gridopt.pipeline import PlanConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=700)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    city = gridopt.synthetic_city(args.n, seed=args.seed)
    b = city.buildings
    part = gridopt.partition_grids(b, streets=city.streets, communities="community",
                                   time_limit_s=10, seed=0)
    graph = walk_network(city.streets, crs=b.crs)
    limit = PlanConfig().stage_limit_s(len(b))
    kwargs = {}
    if "grids" in inspect.signature(gridopt.place_stations).parameters:
        kwargs["grids"] = part.labels
    times, plan = [], None
    for _ in range(args.repeat):
        t = time.perf_counter()
        plan = gridopt.place_stations(b, streets=graph, time_limit_s=limit, **kwargs)
        times.append(time.perf_counter() - t)
    m = plan.metrics
    within = m.get("share_within_limit", 1 - m["households_beyond_max_walk"] / m["households"])
    print(f"buildings {len(b)}, households {m['households']}, stage limit {limit:g} s: "
          f"place_stations median {statistics.median(times):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in times)}); stations {len(plan.stations)}, "
          f"within 1,000 m {within:.1%}, grids on one station "
          f"{m.get('grids_single_station', 'n/a')}/{m.get('grids_with_households', 'n/a')}")


if __name__ == "__main__":
    main()
