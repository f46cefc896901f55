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

# --- stations (issue 4) -----------------------------------------------------

# --- staff (issue 5) --------------------------------------------------------

# --- plan / map (issue 6) ---------------------------------------------------

# --- bench (issue 7) --------------------------------------------------------


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
