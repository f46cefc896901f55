"""Small plans shared by the pipeline, mapping and browser tests (computed once per run)."""

from __future__ import annotations

import dataclasses
import functools

import gridopt
from gridopt.synthetic import synthetic_city

#: Small limits keep the tests fast; the plan is still complete.
FAST = {"time_limit_s": 5.0, "progress": False}


@functools.cache
def city(n: int = 300, seed: int = 3):
    """A seeded synthetic city (300 buildings, ~4,400 households, 3 communities)."""
    return synthetic_city(n, seed=seed)


@functools.cache
def small_plan(staff_when_missing: str = "synthetic"):
    """The plan of :func:`city` with the default standards and small time limits."""
    c = city()
    return gridopt.plan(
        c.buildings, streets=c.streets, config={**FAST, "staff_when_missing": staff_when_missing}
    )


#: Names a careless page would run as HTML (issue 16): a community, a building, a site.
HOSTILE_COMMUNITY = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_BUILDING = "<script>document.title='pwned2'</script>"
HOSTILE_SITE = "<svg onload=\"document.title='pwned3'\">"

#: Chinese community names for the synthetic city's communities, in order.
ZH_COMMUNITIES = ("平江社区", "桃花坞社区", "双塔社区", "沧浪社区", "娄门社区", "观前社区")


@functools.cache
def zh_plan():
    """The plan of :func:`city` with Chinese community names (a Chinese street office)."""
    c = city()
    codes = list(dict.fromkeys(c.buildings["community"]))
    names = {code: ZH_COMMUNITIES[i % len(ZH_COMMUNITIES)] for i, code in enumerate(codes)}
    b = c.buildings.assign(community=c.buildings["community"].map(names))
    return gridopt.plan(b, streets=c.streets, config=FAST)


@functools.cache
def hostile_plan():
    """:func:`small_plan` with hostile names in its first community, buildings and first site."""
    p = small_plan()
    first = p.partition.grids["community"].iloc[0]
    grids = p.partition.grids.assign(
        community=p.partition.grids["community"].replace(first, HOSTILE_COMMUNITY)
    )
    b = p.buildings.assign(community=p.buildings["community"].replace(first, HOSTILE_COMMUNITY))
    b["name"] = None
    b.loc[b.index[b["households"] > 0][:30], "name"] = HOSTILE_BUILDING
    st = p.stations.stations.copy()
    st["site"] = st["site"].astype(object)
    st.loc[st.index[0], "site"] = HOSTILE_SITE
    return dataclasses.replace(
        p,
        buildings=b,
        partition=dataclasses.replace(p.partition, grids=grids),
        stations=dataclasses.replace(p.stations, stations=st),
    )
