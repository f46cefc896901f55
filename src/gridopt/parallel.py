"""Former home of the execution layer and city planning; kept so old imports work.

The code now lives where the data flow puts it:

- :mod:`gridopt.execution`: :func:`map_components`, :func:`local_client` (independent
  pieces, sequentially or on a ``dask.distributed.Client``);
- :mod:`gridopt.city`: :func:`split_city`, :func:`partition_city`, :func:`plan_city`,
  :class:`CityPlan`;
- :mod:`gridopt.io`: :func:`read_buildings_chunked`.
"""

from __future__ import annotations

from gridopt.city import CityPlan, OfficePlan, partition_city, plan_city, split_city
from gridopt.execution import DEFAULT_RETRIES, local_client, map_components
from gridopt.io import read_buildings_chunked

__all__ = [
    "DEFAULT_RETRIES",
    "CityPlan",
    "OfficePlan",
    "local_client",
    "map_components",
    "partition_city",
    "plan_city",
    "read_buildings_chunked",
    "split_city",
]
