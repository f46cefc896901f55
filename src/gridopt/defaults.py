"""Every default standard and limit of gridopt, in one place.

:class:`gridopt.PlanConfig`, the stage functions and the command line read these
constants, so a default is written once. The figures come from the 2022 plans of Dalian
and Shenyang and national life-circle practice (see the project's ``STANDARDS.md``);
other cities use other numbers, which is why each one is also a parameter.
"""

from __future__ import annotations

__all__ = [
    "CITY_TIME_LIMIT_S",
    "FALLBACK_STATION_M2",
    "M2_PER_100_HOUSEHOLDS",
    "M2_PER_HOUSEHOLD",
    "MAX_HOUSEHOLDS",
    "MAX_LINK_M",
    "MAX_WALK_M",
    "MIN_HOUSEHOLDS",
    "MIN_PIECE_S",
    "MIN_STAGE_S",
    "SECONDS_PER_1000_BUILDINGS",
    "SEED",
    "STATION_FLOOR_AREA_M2",
    "TIME_LIMIT_S",
    "WALK_SPEED_M_PER_MIN",
]

#: Fewest households of a regular grid (Dalian: 200-300 households per urban grid).
MIN_HOUSEHOLDS = 200
#: Most households of a regular grid.
MAX_HOUSEHOLDS = 300
#: Buildings whose land comes within this distance form one settlement (sparse land).
MAX_LINK_M = 300.0
#: Walking limit to a service station, metres (15-minute life circle: about 1,000 m).
MAX_WALK_M = 1000.0
#: Station floor area per 100 households served, m² (Shenyang: 30 m²).
M2_PER_100_HOUSEHOLDS = 30.0
#: Walking speed for the 5/10/15-minute shares (75 m/min = 4.5 km/h).
WALK_SPEED_M_PER_MIN = 75.0
#: Gross floor area per household used to estimate households, m² (census figure).
M2_PER_HOUSEHOLD = 100.0
#: Floor area of a station room in a residential building when no candidate is given, m².
FALLBACK_STATION_M2 = 300.0
#: Floor area of a station room in a candidate building without its own floor_area_m2.
STATION_FLOOR_AREA_M2 = 300.0
#: Time limit of each optimising stage of one plan, seconds.
TIME_LIMIT_S = 60.0
#: The stations and staff stages get this many seconds per 1,000 buildings (capped by
#: the time limit, at least :data:`MIN_STAGE_S`).
SECONDS_PER_1000_BUILDINGS = 5.0
#: Least time limit of the stations and staff stages, seconds.
MIN_STAGE_S = 5.0
#: Time limit of a whole :func:`gridopt.partition_city` call, seconds.
CITY_TIME_LIMIT_S = 600.0
#: Least time limit a piece of :func:`gridopt.partition_city` gets, seconds.
MIN_PIECE_S = 30.0
#: Seed of every randomised part.
SEED = 0
