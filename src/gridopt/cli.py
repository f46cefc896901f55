"""The ``gridopt`` command line: ``gridopt plan | partition | stations | staff | audit | map | bench``.

Each subcommand has a ``_add_<name>(subparsers)`` function that declares its
arguments and a ``_run_<name>(args)`` handler. A user's mistake (a
:class:`gridopt.GridoptError`, a missing file) prints one line on stderr and
exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from gridopt import defaults
from gridopt._errors import GridoptError, InputError

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
    _input_column_flags(p, communities=False)
    p.set_defaults(handler=_run_households)


def _run_households(args: argparse.Namespace) -> int:
    from gridopt.households import household_summary
    from gridopt.io import read_buildings, write_layers

    kwargs = {}
    if args.m2_per_household is not None:
        kwargs["m2_per_household"] = args.m2_per_household
    columns = {"households": args.households_col, "floors": args.floors_col,
               "community": args.community_col, "building_type": args.type_col,
               "building_id": args.id_col, "name": args.name_col, "encoding": args.encoding}
    buildings = read_buildings(args.buildings, **kwargs, **columns)
    print(household_summary(buildings).to_string())
    write_layers(args.out, {"buildings": buildings})
    print(f"wrote {len(buildings)} buildings to {args.out}")
    return 0


# --- partition ---------------------------------------------------------------
def _add_partition(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "partition",
        help="divide buildings into contiguous grids of 200-300 households; write a GeoPackage",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--streets", default=None, help="streets/rivers/railways file (default: from a .osm.pbf input)")
    p.add_argument("--min", dest="min_households", type=int, default=defaults.MIN_HOUSEHOLDS, help="minimum households per grid")
    p.add_argument("--max", dest="max_households", type=int, default=defaults.MAX_HOUSEHOLDS, help="maximum households per grid")
    p.add_argument("--communities", default=None, help="column of the buildings naming their community")
    p.add_argument("--exclusive", action="store_true", help="schools, hospitals, commercial get grids of their own")
    p.add_argument("--time-limit-s", type=float, default=defaults.TIME_LIMIT_S)
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--area", default=None, metavar="FILE",
                   help="study area polygon(s); the grids tile it (default: a hull of the buildings)")
    p.add_argument("--max-link-m", type=float, default=defaults.MAX_LINK_M,
                   help="buildings within this distance form one settlement "
                   f"(default {defaults.MAX_LINK_M:g})")
    p.add_argument("-o", "--out", required=True, help="output GeoPackage (layers buildings, grids)")
    _coords_options(p)
    p.set_defaults(handler=_run_partition)


def _run_partition(args: argparse.Namespace) -> int:
    import warnings

    from gridopt._errors import RepairWarning
    from gridopt.crs import WorkingCRS
    from gridopt.io import read_area, read_buildings, read_streets, write_layers
    from gridopt.partition import partition_grids

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RepairWarning)
        buildings = read_buildings(args.buildings, coords=args.coords, crs=args.crs)
        policy = WorkingCRS.of(buildings)
        streets = None
        if args.streets:
            streets = read_streets(args.streets, to_crs=policy)
        elif str(args.buildings).endswith(".osm.pbf"):
            streets = read_streets(args.buildings, to_crs=policy)
        area = read_area(args.area, to_crs=policy) if args.area else None
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
    write_layers(args.out, {"buildings": policy.to_output(out), "grids": policy.to_output(part.grids)})
    print(part.summary())
    print(f"wrote {len(out)} buildings and {len(part.grids)} grids to {args.out}")
    return 0


# --- stations ----------------------------------------------------------------
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
    p.add_argument("--max-walk-m", type=float, default=defaults.MAX_WALK_M)
    p.add_argument("--m2-per-100-households", type=float, default=defaults.M2_PER_100_HOUSEHOLDS)
    p.add_argument("--objective", choices=["median", "cover", "max_cover"], default="median")
    p.add_argument("--time-limit-s", type=float, default=defaults.TIME_LIMIT_S)
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("-o", "--out", required=True, help="output GeoPackage (layers stations, allocation, uncovered)")
    _coords_options(p)
    p.set_defaults(handler=_run_stations)


def _run_stations(args: argparse.Namespace) -> int:
    import geopandas as gpd

    from gridopt.crs import WorkingCRS
    from gridopt.io import read_buildings, read_sites, read_streets, write_layers
    from gridopt.stations import place_stations

    buildings = read_buildings(args.buildings, households=args.households, coords=args.coords,
                               crs=args.crs)
    policy = WorkingCRS.of(buildings)

    def sites(path: str | None, what: str) -> gpd.GeoDataFrame | None:
        # a file without a CRS is taken to be in the buildings' CRS
        if path is None:
            return None
        return read_sites(path, crs=buildings.crs, to_crs=policy, what=what)

    plan = place_stations(
        buildings,
        candidates=sites(args.candidates, "candidate sites"),
        existing=sites(args.existing, "existing stations"),
        streets=read_streets(args.streets, to_crs=policy) if args.streets else None,
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
    write_layers(args.out, {name: policy.to_output(frame) for name, frame in layers.items()})
    print(f"wrote {len(plan.stations)} stations and {len(plan.allocation)} buildings to {args.out}")
    return 0


# --- staff -------------------------------------------------------------------
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
    p.add_argument("--time-limit-s", type=float, default=defaults.TIME_LIMIT_S)
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


def _coords_options(p: argparse.ArgumentParser) -> None:
    """The coordinate options of every command that reads a buildings file."""
    p.add_argument("--coords", choices=["wgs84", "gcj02", "bd09"], default="wgs84",
                   help="lon/lat system of the input and output: wgs84 (GPS, OSM), gcj02 "
                   "(AMap/Gaode, Tencent) or bd09 (Baidu); default wgs84")
    p.add_argument("--crs", default=None, metavar="EPSG:XXXX",
                   help="CRS of a buildings file that has none (e.g. EPSG:4490, EPSG:4549)")


# --- plan / map --------------------------------------------------------------
def _add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="the whole plan: grids, service stations, staff, report and map",
        description="Divide the buildings into grids, place service stations, post staff and "
        "write plan.gpkg, report.csv (UTF-8 with BOM), report.xlsx, summary.txt, map.html and "
        "overview.png into --out, in Chinese or English (--lang).",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--streets", help="street lines; default: the buildings file when it is .osm.pbf")
    p.add_argument("--staff", help="staff list (.xlsx, CSV in UTF-8 or GBK, or a point file; "
                   "姓名/岗位/经度/纬度 or staff_id/role/lon/lat or x/y); default: a "
                   "placeholder roster in the standard's proportions, flagged as such")
    p.add_argument("--candidates", help="possible station sites with floor_area_m2")
    p.add_argument("--min", type=int, default=defaults.MIN_HOUSEHOLDS, dest="min_households",
                   help=f"fewest households per grid (default {defaults.MIN_HOUSEHOLDS})")
    p.add_argument("--max", type=int, default=defaults.MAX_HOUSEHOLDS, dest="max_households",
                   help=f"most households per grid (default {defaults.MAX_HOUSEHOLDS})")
    p.add_argument("--max-walk-m", type=float, default=defaults.MAX_WALK_M,
                   help=f"walking limit to a station in metres (default {defaults.MAX_WALK_M:g})")
    p.add_argument("--n-stations", type=int, default=None, help="number of stations (default: fewest)")
    p.add_argument("--time-limit-s", type=float, default=defaults.TIME_LIMIT_S,
                   help="time limit of each optimising stage (default 60)")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--previous", help="the current grid polygons: valid grids are kept as "
                   "they are, only the others are re-divided")
    p.add_argument("--area", default=None, metavar="FILE",
                   help="study area polygon(s); the grids tile it (default: a hull of the buildings)")
    p.add_argument("--max-link-m", type=float, default=defaults.MAX_LINK_M,
                   help="buildings within this distance form one settlement "
                   f"(default {defaults.MAX_LINK_M:g})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _output_options(p)
    p.add_argument("--grid-name", default=None,
                   help="grid name template with {community}, {n}, {grid_id} "
                   "(default: '{community}第{n}网格' in Chinese, '{community} grid {n}' in English)")
    p.add_argument("--grid-order", choices=["input", "pinyin"], default="input",
                   help="order of the communities in the report (default: as in the input)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _coords_options(p)
    _input_column_flags(p)
    p.set_defaults(handler=_run_plan)


#: CLI flag -> PlanConfig field of the buildings' own columns and encodings (issue 16).
_COLUMN_FLAGS = {
    "households_col": "households (户数): used as given, never estimated over",
    "floors_col": "storeys (层数)",
    "community_col": "community (社区): grids never straddle two",
    "type_col": "building type (建筑类型: 住宅, 学校, 商业 ...)",
    "id_col": "unique building ids (kept)",
    "name_col": "building names (名称)",
}


def _input_column_flags(p: argparse.ArgumentParser, *, communities: bool = True) -> None:
    """The flags naming the buildings' columns, the communities and the encoding."""
    g = p.add_argument_group(
        "input columns", "columns of the buildings file; default: the usual English or Chinese names"
    )
    for field, what in _COLUMN_FLAGS.items():
        flag = "--" + field.replace("_", "-")
        g.add_argument(flag, dest=field, metavar="COLUMN", help=f"column with {what}")
    if communities:
        g.add_argument("--communities", metavar="FILE",
                       help="community (社区) polygons; each building goes to the one holding it")
        g.add_argument("--community-name-col", metavar="COLUMN",
                       help="column of --communities with the names (default: 名称, 社区名称, name)")
    g.add_argument("--encoding", help="text encoding of the input files (gbk, utf-8) where "
                   "detection is not enough; default: detected")


def _input_options(args: argparse.Namespace) -> dict:
    """The PlanConfig fields given by the input flags."""
    fields = [*_COLUMN_FLAGS, "community_name_col", "encoding"]
    return {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
def _output_options(p: argparse.ArgumentParser) -> None:
    """--lang / --basemap / --tianditu-key of `plan` and `map` (issue 16)."""
    p.add_argument("--lang", choices=["zh", "en"], default=None,
                   help="language of report, summary and maps (default: zh when the data carry "
                   "Chinese community or column names, else en)")
    p.add_argument("--basemap", choices=["osm", "amap", "tianditu", "none"], default=None,
                   help="background of map.html (default osm; amap is shifted to GCJ-02)")
    p.add_argument("--tianditu-key", default=None,
                   help="your Tianditu key for --basemap tianditu (default: $TIANDITU_KEY)")


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
        coords=args.coords,
        **_input_options(args),
        language=args.lang or "auto",
        grid_name=args.grid_name,
        grid_order=args.grid_order,
        basemap=args.basemap or "osm",
        tianditu_key=args.tianditu_key or os.environ.get("TIANDITU_KEY"),
        max_link_m=args.max_link_m,
    )
    for what, path in (("buildings", args.buildings), ("streets", args.streets),
                       ("staff", args.staff), ("candidates", args.candidates),
                       ("communities", args.communities),
                       ("previous grids", args.previous), ("area", args.area)):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} file not found: {path}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GridoptError(f"--out {out} exists and is not a folder")
    buildings = args.buildings
    if args.crs is not None:  # a file without a CRS (or with a wrong one): read it as told
        from gridopt.io import read_buildings

        buildings = read_buildings(args.buildings, crs=args.crs, coords=args.coords)
    result = plan(buildings, streets=args.streets, staff=args.staff,
                  candidates=args.candidates, config=config, communities=args.communities,
                  previous=args.previous, area=args.area)
    result.to_file(out)
    print(result.summary())
    print(f"\nwrote {out}/: plan.gpkg, report.csv, report.xlsx, overview.png, summary.txt")
    print(f"map: {(out / 'map.html').resolve()}  (open it in a browser)")
    return 0


def _add_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="measure existing grid polygons against the standards",
        description="Put every building in its existing grid and report, grid by grid, what "
        "violates which standard; write audit.gpkg, audit.csv and audit.html into --out.",
    )
    p.add_argument("buildings", help="buildings file (.gpkg, .geojson, .parquet, .shp, .osm.pbf)")
    p.add_argument("--grids", required=True, help="the existing grid polygons (.shp, .gpkg, ...)")
    p.add_argument("--id-column", help="column of grid ids (default grid_id or the first unique)")
    p.add_argument("--streets", help="street lines; default: the buildings file when it is .osm.pbf")
    p.add_argument("--stations", help="existing station points: checks walking coverage")
    p.add_argument("--min", type=int, default=200, dest="min_households")
    p.add_argument("--max", type=int, default=300, dest="max_households")
    p.add_argument("--max-walk-m", type=float, default=1000.0)
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.set_defaults(handler=_run_audit)


def _run_audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gridopt.audit import audit

    for what, path in (("buildings", args.buildings), ("grids", args.grids),
                       ("streets", args.streets), ("stations", args.stations)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(2, f"{what} file does not exist", path)
    result = audit(args.buildings, grids=args.grids, id_column=args.id_column,
                   streets=args.streets, stations=args.stations,
                   min_households=args.min_households, max_households=args.max_households,
                   max_walk_m=args.max_walk_m)
    out = result.to_file(args.out)
    print(result.summary())
    print(f"\nwrote {out}/: audit.gpkg, audit.csv, audit.html")
    return 0


def _add_map(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("map", help="(re)draw the interactive map of a written plan")
    p.add_argument("plan", help="a plan folder written by 'gridopt plan' or its plan.gpkg")
    p.add_argument("-o", "--out", required=True, help="HTML file to write")
    p.add_argument("--png", help="also write a static overview PNG here")
    _output_options(p)
    p.set_defaults(handler=_run_map)


def _run_map(args: argparse.Namespace) -> int:
    from gridopt.mapping import overview_png, plan_map

    plan_map(
        args.plan, language=args.lang, basemap=args.basemap, tianditu_key=args.tianditu_key
    ).save(args.out)
    print(f"map: {args.out}")
    if args.png:
        overview_png(args.plan, args.png, language=args.lang)
        print(f"overview: {args.png}")
    return 0


# --- city --------------------------------------------------------------------
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
    p.add_argument("--time-limit-s", type=float, default=defaults.TIME_LIMIT_S,
                   help="time limit of each optimising stage per office (default 60)")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--map-office", help="street office shown in map.html (default: the first)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.set_defaults(handler=_run_city)


def _run_city(args: argparse.Namespace) -> int:
    import contextlib

    from gridopt.city import plan_city
    from gridopt.execution import local_client
    from gridopt.io import read_streets

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


# --- bench -------------------------------------------------------------------
def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks against published optima and the open-source peers",
        description=(
            "Run a benchmark family and print one row per instance; --out writes the same "
            "table as Markdown (replacing only that family's section of the file)."
        ),
    )
    p.add_argument("family", choices=["partition", "pmed", "cpmp", "staffing", "scale", "districting", "all"])
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
