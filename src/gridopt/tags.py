"""One classification of OSM street, water and rail tags into grid-boundary classes.

A street office draws grid boundaries along streets, rivers, railways and the coast; it
does not draw them along footways or the service roads inside a compound, and a railway
in a tunnel is no boundary at all. :func:`boundary_class` turns the OSM tags of a line
into one of :data:`BOUNDARY_CLASSES`; :func:`gridopt.read_streets` (``boundary_class``
and ``barrier_kind`` columns) and :mod:`gridopt.adjacency` both use it, so a line is
the same kind of boundary everywhere.

Classes, from the weakest boundary to the strongest:

``residential``
    ``residential``, ``unclassified``, ``living_street`` (and ``road``): bounds blocks;
    a grid boundary along it costs little.
``main``
    ``secondary``, ``tertiary`` and their links: bounds blocks; grids are not to straddle
    it unless one side cannot make a grid alone.
``major``
    ``motorway``, ``trunk``, ``primary`` and their links: a hard barrier.
``water``
    ``waterway=river|canal`` and ``natural=coastline``: a hard barrier.
``railway``
    ``railway=rail|light_rail|narrow_gauge`` at ground level: a hard barrier.

Anything else (footways, paths, steps, service roads, tracks, streams) has no class
(``None``), and so do lines in a tunnel (``tunnel=yes|building_passage|culvert`` or
``layer<0``), railways tagged ``rail=preserved|abandoned`` or
``railway=preserved|abandoned|disused|subway``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "BARRIER_KIND_OF",
    "BOUNDARY_CLASSES",
    "DEFAULT_BOUNDARY_CLASSES",
    "HARD_CLASSES",
    "barrier_kind",
    "boundary_class",
    "is_coastline",
]

#: Boundary classes from the weakest to the strongest.
BOUNDARY_CLASSES: tuple[str, ...] = ("residential", "main", "major", "water", "railway")
#: Classes a grid crosses only where one side cannot make a grid alone.
HARD_CLASSES: frozenset[str] = frozenset({"major", "water", "railway"})
#: Classes that bound blocks by default (all of them: residential streets and above).
DEFAULT_BOUNDARY_CLASSES: tuple[str, ...] = BOUNDARY_CLASSES
#: The ``barrier_kind`` value of each hard class (the column :func:`gridopt.read_streets` keeps).
BARRIER_KIND_OF: dict[str, str] = {"major": "major_street", "water": "river", "railway": "railway"}

_HIGHWAY_CLASS = {
    **dict.fromkeys(("residential", "unclassified", "living_street", "road"), "residential"),
    **dict.fromkeys(
        ("secondary", "secondary_link", "tertiary", "tertiary_link"), "main"
    ),
    **dict.fromkeys(
        ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"), "major"
    ),
}
_WATERWAYS = frozenset({"river", "canal"})
_RAILWAYS = frozenset({"rail", "light_rail", "narrow_gauge"})
_NOT_RAIL = frozenset({"preserved", "abandoned", "disused", "razed"})
_TUNNELS = frozenset({"yes", "building_passage", "culvert", "covered"})


def _tag(other_tags: pd.Series, key: str) -> pd.Series:
    """Value of ``key`` in GDAL's ``other_tags`` hstore text (NaN where absent)."""
    pattern = '"' + re.escape(key) + r'"=>"([^"]*)"'
    return other_tags.fillna("").astype(str).str.extract(pattern)[0]


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    """A tag as a column, or from ``other_tags`` where the column is missing or empty."""
    col = (
        frame[key].astype(object)
        if key in frame.columns
        else pd.Series(np.nan, index=frame.index, dtype=object)
    )
    if "other_tags" in frame.columns:
        col = col.where(col.notna(), _tag(frame["other_tags"], key))
    return col


def boundary_class(frame: pd.DataFrame) -> pd.Series:
    """The boundary class of every line of ``frame`` from its OSM tags.

    Parameters
    ----------
    frame
        Lines with any of the columns ``highway``, ``waterway``, ``railway``, ``natural``,
        ``tunnel``, ``layer``, ``rail`` (missing ones are read from GDAL's ``other_tags``
        where present).

    Returns
    -------
    pandas.Series
        One of :data:`BOUNDARY_CLASSES` or ``None``, aligned with ``frame``.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"highway": ["residential", "footway", "primary", None],
    ...                   "railway": [None, None, None, "rail"],
    ...                   "tunnel": [None, None, None, "yes"]})
    >>> boundary_class(f).tolist()
    ['residential', None, 'major', None]
    """
    highway = _column(frame, "highway")
    waterway = _column(frame, "waterway")
    railway = _column(frame, "railway")
    natural = _column(frame, "natural")
    tunnel = _column(frame, "tunnel").astype(object)
    layer = pd.to_numeric(_column(frame, "layer"), errors="coerce")
    rail = _column(frame, "rail")
    out = pd.Series(None, index=frame.index, dtype=object)
    out[:] = highway.map(_HIGHWAY_CLASS).astype(object).where(lambda s: s.notna(), None)
    on_rail = railway.isin(_RAILWAYS) & ~rail.isin(_NOT_RAIL)
    out[on_rail.to_numpy()] = "railway"
    water = waterway.isin(_WATERWAYS) | (natural == "coastline")
    out[water.to_numpy()] = "water"
    underground = tunnel.isin(_TUNNELS) | (layer < 0)
    # the coast and a river stay boundaries even where a culvert is tagged on a short piece
    out[(underground & ~(natural == "coastline")).to_numpy()] = None
    return out


def is_coastline(frame: pd.DataFrame) -> pd.Series:
    """Whether each line is a coastline (``natural=coastline``: land on its left, sea on its right)."""
    return (_column(frame, "natural") == "coastline").fillna(False).astype(bool)


def barrier_kind(classes: pd.Series) -> pd.Series:
    """``barrier_kind`` (``"major_street"``, ``"river"``, ``"railway"`` or ``None``) of classes."""
    return classes.map(BARRIER_KIND_OF).astype(object).where(lambda s: s.notna(), None)
