"""Paths of the sample data: bundled with gridopt, or read from the shared data folder.

The small OpenStreetMap town ships with gridopt. Data that comes from other public
repositories (the Suzhou buildings, the Monaco extract, the published benchmark
instances) is never copied into the project: it is read from the *shared data
folder*, laid out as

```
data/         suzhou_gusu_buildings.geojson, monaco.osm.pbf, ...
benchmarks/   pmed/, cpmp/, districting/ (published instances with known optima)
```

found at ``$GRIDOPT_DATA`` when that is set, else at ``shared/`` beside the
repository checkout. A missing file raises :class:`~gridopt.InputError` with a one-line
message saying where it was looked for.

Examples
--------
>>> from gridopt import datasets
>>> datasets.small_town().name
'small_town.osm.pbf'
"""

from __future__ import annotations

import os
from pathlib import Path

from gridopt._errors import InputError

__all__ = [
    "benchmark_dir",
    "monaco",
    "sample_data_dir",
    "shared_dir",
    "shared_file",
    "small_town",
    "suzhou_buildings",
]

_PACKAGE_DATA = Path(__file__).resolve().parent / "sample_data"
#: the environment variable naming the shared data folder
ENV_VAR = "GRIDOPT_DATA"


def sample_data_dir() -> Path:
    """The folder holding the bundled sample data (with its README and attributions)."""
    return _PACKAGE_DATA


def shared_dir() -> Path:
    """The shared data folder: ``$GRIDOPT_DATA``, else ``shared/`` beside the repository."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared"


def shared_file(*parts: str) -> Path:
    """A file or folder below :func:`shared_dir`; InputError (one line) when absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        raise InputError(
            f"{'/'.join(parts)} not found in the shared data folder {shared_dir()}; "
            f"set {ENV_VAR} to a folder holding data/ and benchmarks/ (see README, 'Data')"
        )
    return path


def benchmark_dir(family: str) -> Path:
    """Published instances of a benchmark family: ``<shared>/benchmarks/<family>``."""
    return shared_file("benchmarks", family)


def suzhou_buildings() -> Path:
    """Suzhou old town (Gusu): 3,076 building outlines with storey counts, no streets.

    Read from the shared data folder (``data/suzhou_gusu_buildings.geojson``).
    Building outlines: pybdshadow example data (BSD-3-Clause).
    """
    return shared_file("data", "suzhou_gusu_buildings.geojson")


def small_town() -> Path:
    """A small OpenStreetMap town (Kotka, Finland): 2,215 buildings plus its streets.

    Bundled with gridopt. (c) OpenStreetMap contributors, ODbL 1.0.
    """
    path = _PACKAGE_DATA / "small_town.osm.pbf"
    if not path.exists():
        raise InputError(
            f"sample file {path} is missing; reinstall gridopt or run from the repository checkout"
        )
    return path


def monaco() -> Path:
    """Monaco OpenStreetMap extract (~23,000 buildings) for the large benchmarks.

    Read from the shared data folder (``data/monaco.osm.pbf``).
    (c) OpenStreetMap contributors, ODbL 1.0.
    """
    return shared_file("data", "monaco.osm.pbf")
