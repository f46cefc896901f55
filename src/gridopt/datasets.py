"""Paths of the sample data bundled with gridopt.

Examples
--------
>>> from gridopt import datasets
>>> datasets.suzhou_buildings().name
'suzhou_gusu_buildings.geojson'
"""

from __future__ import annotations

import os
from pathlib import Path

from gridopt._errors import InputError

__all__ = ["monaco", "sample_data_dir", "small_town", "suzhou_buildings"]

_PACKAGE_DATA = Path(__file__).resolve().parent / "sample_data"


def sample_data_dir() -> Path:
    """The folder holding the bundled sample data (with its README and attributions)."""
    return _PACKAGE_DATA


def suzhou_buildings() -> Path:
    """Suzhou old town (Gusu): 3,076 building outlines with storey counts, no streets.

    Building outlines: pybdshadow example data (BSD-3-Clause).
    """
    return _existing(_PACKAGE_DATA / "suzhou_gusu_buildings.geojson")


def small_town() -> Path:
    """A small OpenStreetMap town (Kotka, Finland): 2,215 buildings plus its streets.

    (c) OpenStreetMap contributors, ODbL 1.0.
    """
    return _existing(_PACKAGE_DATA / "small_town.osm.pbf")


def monaco() -> Path:
    """Monaco OpenStreetMap extract (~23,000 buildings) for the large benchmarks.

    Not shipped in the wheel: looked up in ``$GRIDOPT_DATA`` and then in the
    ``shared/data`` folder beside the repository. (c) OpenStreetMap contributors, ODbL 1.0.
    """
    candidates = []
    if os.environ.get("GRIDOPT_DATA"):
        candidates.append(Path(os.environ["GRIDOPT_DATA"]) / "monaco.osm.pbf")
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "data" / "monaco.osm.pbf", repo / "data" / "monaco.osm.pbf"]
    for path in candidates:
        if path.exists():
            return path
    raise InputError(
        "the Monaco extract (monaco.osm.pbf) was not found in "
        + ", ".join(str(p) for p in candidates)
        + "; set GRIDOPT_DATA to the folder that holds it"
    )


def _existing(path: Path) -> Path:
    if not path.exists():
        raise InputError(
            f"sample file {path} is missing; reinstall gridopt or run from the repository checkout"
        )
    return path
