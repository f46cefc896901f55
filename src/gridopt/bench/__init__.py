"""Benchmarks against published optima and open-source peers (``gridopt bench``).

One module per family (``pmed``, ``cpmp``, ``gap``, ``partition``, ``scale``),
each exposing ``run(instances_dir, *, peers, time_limit_s, quick) -> list[dict]``.
"""
