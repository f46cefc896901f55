"""The ``gridopt`` command line: ``gridopt plan | partition | stations | staff | map | bench``.

Each subcommand has a ``_add_<name>(subparsers)`` function that declares its
arguments and a ``_run_<name>(args)`` handler. A user's mistake (a
:class:`gridopt.GridoptError`, a missing file) prints one line on stderr and
exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gridopt._errors import GridoptError

__all__ = ["main"]

log = logging.getLogger("gridopt")


def _build_parser() -> argparse.ArgumentParser:
    from gridopt import __version__

    parser = argparse.ArgumentParser(
        prog="gridopt",
        description="Grid-management plans from building footprints.",
    )
    parser.add_argument("--version", action="version", version=f"gridopt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


# ---------------------------------------------------------------------------
# Subcommands. Each block: _add_<name>(sub) and _run_<name>(args) -> int.
# Keep each block self-contained; import heavy modules inside the handler.
# ---------------------------------------------------------------------------


# --- households (foundation) ------------------------------------------------
def _add_households(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "households",
        help="read buildings, estimate households, print a summary and write a GeoPackage",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("-o", "--out", required=True, help="output GeoPackage")
    p.add_argument("--m2-per-household", type=float, default=None)
    p.set_defaults(handler=_run_households)


def _run_households(args: argparse.Namespace) -> int:
    from gridopt.households import household_summary
    from gridopt.io import read_buildings, write_layers

    kwargs = {}
    if args.m2_per_household is not None:
        kwargs["m2_per_household"] = args.m2_per_household
    buildings = read_buildings(args.buildings, **kwargs)
    print(household_summary(buildings).to_string())
    write_layers(args.out, {"buildings": buildings})
    print(f"wrote {len(buildings)} buildings to {args.out}")
    return 0


# --- partition (issue 3) ----------------------------------------------------
def _add_partition(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "partition",
        help="divide buildings into contiguous grids of 200-300 households; write a GeoPackage",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--streets", default=None, help="streets/rivers/railways file (default: from a .osm.pbf input)")
    p.add_argument("--min", dest="min_households", type=int, default=200, help="minimum households per grid")
    p.add_argument("--max", dest="max_households", type=int, default=300, help="maximum households per grid")
    p.add_argument("--communities", default=None, help="column of the buildings naming their community")
    p.add_argument("--exclusive", action="store_true", help="schools, hospitals, commercial get grids of their own")
    p.add_argument("--time-limit-s", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--area", default=None, metavar="FILE",
                   help="study area polygon(s); the grids tile it (default: a hull of the buildings)")
    p.add_argument("--max-link-m", type=float, default=300.0,
                   help="buildings within this distance form one settlement (default 300)")
    p.add_argument("-o", "--out", required=True, help="output GeoPackage (layers buildings, grids)")
    p.set_defaults(handler=_run_partition)


def _run_partition(args: argparse.Namespace) -> int:
    import warnings

    from gridopt._errors import RepairWarning
    from gridopt.io import read_area, read_buildings, read_streets, write_layers
    from gridopt.partition import partition_grids

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RepairWarning)
        buildings = read_buildings(args.buildings)
        streets = None
        if args.streets:
            streets = read_streets(args.streets)
        elif str(args.buildings).endswith(".osm.pbf"):
            streets = read_streets(args.buildings)
        area = read_area(args.area, to_crs=buildings.crs) if args.area else None
    for w in caught:
        log.warning("%s", w.message)
    if streets is None:
        log.warning("no streets given: grids follow only the spacing of the buildings")
    part = partition_grids(
        buildings,
        min_households=args.min_households,
        max_households=args.max_households,
        streets=streets,
        communities=args.communities,
        exclusive=True if args.exclusive else None,
        seed=args.seed,
        time_limit_s=args.time_limit_s,
        area=area,
        max_link_m=args.max_link_m,
    )
    out = buildings.assign(grid_id=part.labels)
    write_layers(args.out, {"buildings": out, "grids": part.grids})
    print(part.summary())
    print(f"wrote {len(out)} buildings and {len(part.grids)} grids to {args.out}")
    return 0


# --- stations (issue 4) -----------------------------------------------------
def _add_stations(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stations",
        help="place service stations within walking distance; write stations and allocation",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--streets", default=None, help="street lines or .osm.pbf (default: none, straight lines x detour)")
    p.add_argument("--candidates", default=None, help="candidate sites with floor_area_m2 (default: public/commercial buildings)")
    p.add_argument("--existing", default=None, help="existing stations that stay open (with floor_area_m2)")
    p.add_argument("--households", default=None, metavar="COLUMN", help="column of known household counts (default: estimated)")
    p.add_argument("--n-stations", type=int, default=None)
    p.add_argument("--max-walk-m", type=float, default=1000.0)
    p.add_argument("--m2-per-100-households", type=float, default=30.0)
    p.add_argument("--objective", choices=["median", "cover", "max_cover"], default="median")
    p.add_argument("--time-limit-s", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", required=True, help="output GeoPackage (layers stations, allocation, uncovered)")
    p.set_defaults(handler=_run_stations)


def _run_stations(args: argparse.Namespace) -> int:
    import geopandas as gpd

    from gridopt.io import read_buildings, write_layers
    from gridopt.stations import place_stations

    buildings = read_buildings(args.buildings, households=args.households)

    def sites(path: str | None) -> gpd.GeoDataFrame | None:
        if path is None:
            return None
        frame = gpd.read_file(path)
        return frame if frame.crs is None else frame.to_crs(buildings.crs)

    plan = place_stations(
        buildings,
        candidates=sites(args.candidates),
        existing=sites(args.existing),
        streets=args.streets,
        n_stations=args.n_stations,
        max_walk_m=args.max_walk_m,
        m2_per_100_households=args.m2_per_100_households,
        objective=args.objective,
        seed=args.seed,
        time_limit_s=args.time_limit_s,
    )
    print(plan.summary())
    layers = {"stations": plan.stations, "allocation": plan.allocation}
    if len(plan.uncovered):
        layers["uncovered"] = plan.uncovered
    write_layers(args.out, layers)
    print(f"wrote {len(plan.stations)} stations and {len(plan.allocation)} buildings to {args.out}")
    return 0


# --- staff (issue 5) --------------------------------------------------------
def _add_staff(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "staff",
        help="assign grid workers, officers, mediators and party members to grids",
    )
    p.add_argument("grids", help="grids file (GeoPackage with a `grids` layer, or any polygon file)")
    p.add_argument("staff", help="staff CSV with x/y (grids' CRS) or a point file")
    p.add_argument("-o", "--out", required=True, help="output GeoPackage (layers staff, shortfall)")
    p.add_argument(
        "--streets", default=None, help="street lines or .osm.pbf: travel is walked (default: straight line)"
    )
    p.add_argument("--time-limit-s", type=float, default=60.0)
    p.set_defaults(handler=_run_staff)


def _run_staff(args: argparse.Namespace) -> int:
    import geopandas as gpd
    import pyogrio

    from gridopt.io import write_layers
    from gridopt.staffing import assign_staff

    layers = [name for name, _ in pyogrio.list_layers(args.grids)]
    grids = gpd.read_file(args.grids, layer="grids" if "grids" in layers else None)
    plan = assign_staff(grids, args.staff, streets=args.streets, time_limit_s=args.time_limit_s)
    print(plan.summary())
    write_layers(args.out, {"staff": plan.assignments, "shortfall": plan.shortfall})
    print(f"wrote {len(plan.assignments)} staff and {len(plan.shortfall)} shortfall rows to {args.out}")
    return 0


# --- plan / map (issue 6) ---------------------------------------------------
def _add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="the whole plan: grids, service stations, staff, report and map",
        description="Divide the buildings into grids, place service stations, post staff and "
        "write plan.gpkg, report.csv, map.html and overview.png into --out.",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--streets", help="street lines; default: the buildings file when it is .osm.pbf")
    p.add_argument("--staff", help="staff list (CSV with x/y or a point file); default: a "
                   "placeholder roster in the standard's proportions, flagged as such")
    p.add_argument("--candidates", help="possible station sites with floor_area_m2")
    p.add_argument("--min", type=int, default=200, dest="min_households",
                   help="fewest households per grid (default 200)")
    p.add_argument("--max", type=int, default=300, dest="max_households",
                   help="most households per grid (default 300)")
    p.add_argument("--max-walk-m", type=float, default=1000.0,
                   help="walking limit to a station in metres (default 1000)")
    p.add_argument("--n-stations", type=int, default=None, help="number of stations (default: fewest)")
    p.add_argument("--time-limit-s", type=float, default=60.0,
                   help="time limit of each optimising stage (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--area", default=None, metavar="FILE",
                   help="study area polygon(s); the grids tile it (default: a hull of the buildings)")
    p.add_argument("--max-link-m", type=float, default=300.0,
                   help="buildings within this distance form one settlement (default 300)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.set_defaults(handler=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gridopt.pipeline import PlanConfig, plan

    # Everything checkable is checked before the long work starts.
    config = PlanConfig(
        min_households=args.min_households,
        max_households=args.max_households,
        max_walk_m=args.max_walk_m,
        n_stations=args.n_stations,
        time_limit_s=args.time_limit_s,
        seed=args.seed,
        progress=not args.no_progress,
        max_link_m=args.max_link_m,
    )
    for what, path in (("buildings", args.buildings), ("streets", args.streets),
                       ("staff", args.staff), ("candidates", args.candidates),
                       ("area", args.area)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(2, f"{what} file does not exist", path)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GridoptError(f"--out {out} exists and is not a folder")
    result = plan(args.buildings, streets=args.streets, staff=args.staff,
                  candidates=args.candidates, config=config, area=args.area)
    result.to_file(out)
    print(result.summary())
    print(f"\nwrote {out}/: plan.gpkg, report.csv, overview.png, summary.txt")
    print(f"map: {(out / 'map.html').resolve()}  (open it in a browser)")
    return 0


def _add_map(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("map", help="(re)draw the interactive map of a written plan")
    p.add_argument("plan", help="a plan folder written by 'gridopt plan' or its plan.gpkg")
    p.add_argument("-o", "--out", required=True, help="HTML file to write")
    p.add_argument("--png", help="also write a static overview PNG here")
    p.set_defaults(handler=_run_map)


def _run_map(args: argparse.Namespace) -> int:
    from gridopt.mapping import overview_png, plan_map

    plan_map(args.plan).save(args.out)
    print(f"map: {args.out}")
    if args.png:
        overview_png(args.plan, args.png)
        print(f"overview: {args.png}")
    return 0


# --- city (issue 8) ---------------------------------------------------------
def _add_city(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "city",
        help="a whole city or province, street office by street office (optionally on Dask)",
        description="Run the plan for every street office (column --by) independently, "
        "sequentially or on a Dask cluster, and write one plan.gpkg, report.csv, summary.txt "
        "and map.html (of one street office) into --out.",
    )
    p.add_argument("buildings", help="buildings file (.parquet or .gpkg to stream it by office)")
    p.add_argument("--streets", help="street lines with barrier_kind (any format gridopt reads)")
    p.add_argument("--by", default="street", help="street-office column (default: street)")
    p.add_argument("--workers", type=int, default=0,
                   help="Dask worker processes on this machine (default 0: sequential)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    p.add_argument("--chunk-rows", type=int, default=None,
                   help="read the buildings file a few offices at a time, about this many rows")
    p.add_argument("--time-limit-s", type=float, default=60.0,
                   help="time limit of each optimising stage per office (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--map-office", help="street office shown in map.html (default: the first)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.set_defaults(handler=_run_city)


def _run_city(args: argparse.Namespace) -> int:
    import contextlib

    from gridopt.io import read_streets
    from gridopt.parallel import local_client, plan_city

    streets = read_streets(args.streets) if args.streets else None
    config = {"time_limit_s": args.time_limit_s, "seed": args.seed, "progress": False}
    if args.scheduler:
        from distributed import Client

        ctx = Client(args.scheduler)
    elif args.workers > 0:
        ctx = local_client(args.workers)
    else:
        ctx = contextlib.nullcontext()
    with ctx as client:
        cp = plan_city(
            args.buildings, by=args.by, streets=streets, config=config, client=client,
            chunk_rows=args.chunk_rows, progress=log.info,
        )  # fmt: skip
    cp.to_file(args.out, map_office=args.map_office)
    print(cp.summary())
    print(f"wrote {args.out}/plan.gpkg, report.csv, summary.txt, map.html")
    return 0


# --- bench (issue 7) --------------------------------------------------------
def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks against published optima and the open-source peers",
        description=(
            "Run a benchmark family and print one row per instance; --out writes the same "
            "table as Markdown (replacing only that family's section of the file)."
        ),
    )
    p.add_argument("family", choices=["partition", "pmed", "cpmp", "gap", "scale", "all"])
    p.add_argument("--instances", metavar="DIR", default=None, help="folder of instance files")
    p.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the open-source peers (gridopt[bench] extra); default: yes",
    )
    p.add_argument("--time-limit-s", type=float, default=None, metavar="S", help="per-solve limit")
    p.add_argument("--quick", action="store_true", help="two small instances per family")
    p.add_argument("--out", metavar="FILE.md", default=None, help="Markdown results file")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from gridopt.bench.runner import FAMILIES, missing_peer_packages, run_bench

    peers = args.peers
    families = list(FAMILIES) if args.family == "all" else [args.family]
    if peers:
        missing = missing_peer_packages(families)
        if missing:
            print(
                f"peer packages not installed: {', '.join(missing)} "
                "(pip install 'gridopt[bench]'); running gridopt alone where their peers are missing",
                file=sys.stderr,
            )
    logging.getLogger("gridopt").setLevel(logging.INFO if args.verbose else logging.ERROR)
    df = run_bench(
        args.family,
        instances_dir=args.instances,
        peers=peers,
        time_limit_s=args.time_limit_s,
        quick=args.quick,
        out=args.out,
    )
    for fam, table in df.attrs["tables"].items():
        print(f"\n== {fam} ==")
        print(table)
        print(f"summary: {df.attrs['summaries'][fam]}")
    if args.out:
        print(f"\nwrote {args.out}")
    failed = df["status"].isin(["unavailable", "error"]).any()
    return 1 if failed else 0



def _subcommands() -> list:
    """All ``_add_*`` functions of this module, in definition order."""
    module = sys.modules[__name__]
    return [
        getattr(module, name)
        for name in vars(module)
        if name.startswith("_add_") and callable(getattr(module, name))
    ]


_SUBCOMMANDS: list = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gridopt`` command; returns the exit status."""
    _SUBCOMMANDS[:] = _subcommands()
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except GridoptError as exc:
        print(f"gridopt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"gridopt {args.command}: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
