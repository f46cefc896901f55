"""Grid division: contiguous grids of 200-300 households that follow streets.

:func:`partition_grids` is the entry point; :class:`Partition` its result. The work is
split into private modules: ``_divide`` (validation, components, assembly),
``_heuristic`` (spanning-tree bisection and local improvement, one pure function per
component), ``_exact`` (CP-SAT for small components) and ``_result``;
:func:`partition_graph` (``_graph``, ``_anneal``) is the general core on a networkx graph.
"""

from __future__ import annotations

from gridopt.partition._divide import partition_grids
from gridopt.partition._graph import GraphPartition, partition_graph
from gridopt.partition._result import Partition

__all__ = ["GraphPartition", "Partition", "partition_graph", "partition_grids"]
