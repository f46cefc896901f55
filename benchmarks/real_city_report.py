"""Issue 17's figures on real OSM cities: households, station sites, coverage, fallback.

Run from the repository root (about a minute per city on a laptop):

    PYTHONPATH=src python benchmarks/real_city_report.py [--city monaco|small_town|both]
        [--plan] [--time-limit-s 20]

Monaco (``data/monaco.osm.pbf`` of the shared data folder, ``$GRIDOPT_DATA``: 23k buildings, nearly all ``building=yes``,
landmarks, a coast) stands in for the issue's Copenhagen; the bundled Finnish
small town for Helsinki. Printed per city:

- households: total, the share resting on default storeys (no levels, no height),
  buildings above 300 households and the five largest with their tags and name;
- stations (``place_stations``, objective median, walk limit 1,000 m): candidate
  sites, how many sit in police/fire/hospital/school/industrial/religious
  buildings, the share of households within the limit with the candidates alone
  and with proposed new sites (where the installed gridopt proposes them), the
  largest station capacity;
- walking: the share of households measured by the straight-line fallback;
- with ``--plan`` (small town only: the grid stage is slow on 23k buildings),
  grids whose households walk to more than one station.

It only reads attributes that exist, so the same script measures the code
before and after issue 17. Data: (c) OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import gridopt
from gridopt.network import walk_network
from gridopt.stations import place_stations

_FORBIDDEN = {
    "police", "fire_station", "hospital", "clinic", "school", "kindergarten", "university",
    "college", "industrial", "factory", "warehouse", "church", "chapel", "cathedral",
    "mosque", "temple", "place_of_worship", "religious",
}


def _households(b) -> None:
    hh = b["households"].astype(float)
    total = hh.sum()
    src = b["households_source"].astype(str)
    default = src.str.startswith("default")
    print(f"  buildings {len(b):,}, households {int(total):,}")
    print(f"  households on default storeys: {hh[default].sum() / total:.1%} "
          f"(buildings {default.mean():.1%})")
    if "households_low" in b.columns:
        print(f"  range: {int(b['households_low'].sum()):,} - {int(b['households_high'].sum()):,}")
    big = b[hh > 300]
    print(f"  buildings above 300 households: {len(big)} "
          f"({int(big['households'].sum()):,} households)")
    cols = [c for c in ("households", "households_source", "building_type", "name",
                        "footprint_m2") if c in b.columns]
    top = b.sort_values("households", ascending=False).head(5)[cols]
    for idx, row in top.iterrows():
        print(f"    {idx}: " + ", ".join(f"{c}={row[c]}" for c in cols))
    print("  sources: " + ", ".join(f"{k} {v}" for k, v in src.value_counts().items()))


def _stations(b, graph, time_limit_s: float) -> None:
    t = time.perf_counter()
    sp = place_stations(b, streets=graph, max_walk_m=1000.0, time_limit_s=time_limit_s)
    secs = time.perf_counter() - t
    m = sp.metrics
    total = m["households"]
    cand = b[b["station_candidate"].fillna(False).astype(bool)]
    kinds = cand["building_type"].astype(str)
    if "category" in cand.columns:
        kinds = kinds + "/" + cand["category"].astype(str)
    bad_cand = cand[cand["building_type"].astype(str).isin(_FORBIDDEN)]
    st = sp.stations
    sites = st["site"].astype(object)
    in_bld = sites[sites.isin(b.index)]
    bad_open = b.loc[in_bld, "building_type"].astype(str).isin(_FORBIDDEN).sum()
    print(f"  candidates {len(cand):,} (in police/fire/hospital/school/industry/religious "
          f"buildings: {len(bad_cand)}); stations open {len(st)}, of them in such buildings: "
          f"{int(bad_open)}")
    within = m.get("share_within_limit_existing", 1 - m["households_beyond_max_walk"] / total)
    print(f"  within {m['max_walk_limit_m']:g} m, existing candidates only: {within:.1%}")
    if "share_within_limit" in m:
        print(f"  within {m['max_walk_limit_m']:g} m, with {m.get('n_new_sites', 0)} proposed "
              f"new sites: {m['share_within_limit']:.1%}")
    print(f"  within 15 min: {m['share_within_15min']:.1%}; largest station capacity "
          f"{int(st['capacity_households'].max()):,} households "
          f"({float(st['floor_area_m2'].max()):,.0f} m2)")
    fb = sp.allocation
    fb_hh = fb.loc[fb["distance_method"] == "straight_line", "households"].sum()
    print(f"  households on straight-line fallback: {fb_hh / total:.2%} "
          f"(network pieces {m['network_pieces']})")
    print(f"  place_stations {secs:.1f} s, status {sp.status}")


def _plan(path: str, time_limit_s: float) -> None:
    p = gridopt.plan(path, config={"time_limit_s": time_limit_s, "progress": False})
    b = p.buildings[p.buildings["households"] > 0]
    per_grid = b.groupby("grid_id")["station"].nunique()
    print(f"  plan: {len(per_grid)} grids with households; served by more than one station: "
          f"{int((per_grid > 1).sum())}")
    for line in p.summary().splitlines():
        print(f"  | {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", choices=("monaco", "small_town", "both"), default="both")
    parser.add_argument("--plan", action="store_true", help="also run gridopt.plan (small town)")
    parser.add_argument("--time-limit-s", type=float, default=20.0)
    args = parser.parse_args()
    cities = ["monaco", "small_town"] if args.city == "both" else [args.city]
    for city in cities:
        path = str(getattr(gridopt.datasets, city)())
        print(f"== {city}: {path}")
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = gridopt.read_buildings(path)
            graph = walk_network(path, crs=b.crs)
        print(f"  read + network {time.perf_counter() - t:.1f} s; network pieces "
              f"{graph.graph['n_components']}")
        _households(b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _stations(b, graph, args.time_limit_s)
            if args.plan and city == "small_town":
                _plan(path, args.time_limit_s)
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
