"""Brute force over every partition into connected parts (n <= 12), for the exact tests."""

from __future__ import annotations

import math
from collections.abc import Callable


def best_partition(nbr: list[int], part_cost: Callable[[int], float | None]) -> float:
    """Least total cost over all partitions of the nodes into connected parts.

    ``nbr[v]`` is the bitmask of v's neighbours; ``part_cost(s)`` gives the cost of the
    node set ``s`` (a bitmask) as one part, or None where it may not be one (its weight
    outside the band). Dynamic programming over subsets, each part indexed by its lowest node.
    """
    n = len(nbr)

    def connected(s: int) -> bool:
        seen = frontier = s & -s
        while frontier:
            v = (frontier & -frontier).bit_length() - 1
            frontier &= frontier - 1
            new = nbr[v] & s & ~seen
            seen |= new
            frontier |= new
        return seen == s

    parts: dict[int, list[tuple[int, float]]] = {}
    for s in range(1, 1 << n):
        c = part_cost(s)
        if c is not None and connected(s):
            parts.setdefault(s & -s, []).append((s, c))
    f = [math.inf] * (1 << n)
    f[0] = 0.0
    for mask in range(1, 1 << n):
        f[mask] = min(
            (f[mask ^ s] + c for s, c in parts.get(mask & -mask, ()) if s & ~mask == 0),
            default=math.inf,
        )
    return f[(1 << n) - 1]
