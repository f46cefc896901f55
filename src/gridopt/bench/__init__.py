"""Benchmarks against published optima and open-source peers (``gridopt bench``).

One module per family (``partition``, ``pmed``, ``cpmp``, ``staffing``, ``scale``,
``districting``),
each exposing ``run(instances_dir, *, peers, time_limit_s, quick) -> list[dict]``.
"""
