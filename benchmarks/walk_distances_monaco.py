"""Walking distances from every Monaco building to every candidate site within 1,500 m.

Issue 4's goal: under 20 s for ~23,000 buildings. Run from the repository root:

    .venv/bin/python benchmarks/walk_distances_monaco.py [--extra-candidates N]

Reads the buildings with gridopt.read_buildings (candidates = station_candidate
buildings), builds the walking network from the same extract, and times
gridopt.network.walking_distances with gridopt.bench._measure.measure. With
``--extra-candidates N`` it also adds N seeded random buildings as candidates
(a stress case: Monaco's OSM tags mark few public buildings); with
``--place-time-limit-s T`` it also times a whole place_stations run.
The ``monaco-walk`` row of ``gridopt bench scale`` measures the same with 2,000
extra candidates.
Data: (c) OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
import warnings

import gridopt
from gridopt.bench._measure import measure
from gridopt.bench.scale import monaco_candidates
from gridopt.network import walk_network, walking_distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-walk-m", type=float, default=1500.0)
    parser.add_argument("--extra-candidates", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--place-time-limit-s",
        type=float,
        default=0.0,
        help="also time place_stations (median) on the same candidates with this limit",
    )
    args = parser.parse_args()
    path = gridopt.datasets.monaco()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gridopt.RepairWarning)
        read = measure(lambda: gridopt.read_buildings(path))
    buildings = read.value
    net = measure(lambda: walk_network(path, crs=buildings.crs))
    graph = net.value
    candidates = monaco_candidates(buildings, extra=args.extra_candidates, seed=args.seed)
    dist = measure(
        lambda: walking_distances(graph, buildings, candidates, max_walk_m=args.max_walk_m)
    )
    d = dist.value
    print(f"read_buildings: {len(buildings)} buildings in {read.seconds:.2f} s")
    print(
        f"walk_network: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges, "
        f"{graph.graph['n_components']} pieces in {net.seconds:.2f} s"
    )
    print(
        f"walking_distances: buildings={len(buildings)} candidates={len(candidates)} "
        f"max_walk_m={args.max_walk_m:g} nnz={d.matrix.nnz} fallback_pairs={d.fallback.nnz} "
        f"seconds={dist.seconds:.2f} peak_mb={dist.peak_mb:.0f} (rss before {dist.rss_start_mb:.0f})"
    )
    print(d.summary())
    if args.place_time_limit_s > 0:
        plan = measure(
            lambda: gridopt.place_stations(
                buildings,
                candidates=candidates,
                streets=graph,
                time_limit_s=args.place_time_limit_s,
                seed=args.seed,
            )
        )
        print(
            f"place_stations: seconds={plan.seconds:.1f} peak_mb={plan.peak_mb:.0f} "
            f"(time_limit_s={args.place_time_limit_s:g}, distances included)"
        )
        print(plan.value.summary())


if __name__ == "__main__":
    main()
