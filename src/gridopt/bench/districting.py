"""Benchmark family ``districting``: minimum-cut-edge districting of US county graphs.

The 12 county instances of Validi & Buchanan (2022) with proven optimal cut-edge counts
(``../shared/benchmarks/districting/county/*.json``, format in its README): partition the
county graph into connected districts whose populations lie in ``[lower, upper]``
(+-0.5%), fewest edges between districts. :func:`gridopt.partition_graph` solves each with
``weight="population"`` and the band; the plan is checked (contiguity, band) before its
cut is reported.

The peer is GerryChain in a separate process, in the same run: ``recursive_tree_part``
(epsilon 0.005, restarted with fresh seeds and 200 attempts per cut, since one call
with the defaults did not return within 100 s on NM) for a start, capped at
:data:`PEER_START_S`, then ReCom steps that accept
only non-worsening plans (fewer or as many cut edges) for as long as gridopt's time limit
(at most :data:`PEER_STEPS` steps). Its best plan is checked the same way.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import networkx as nx

from gridopt import datasets
from gridopt._errors import GridoptError
from gridopt.bench._measure import measure, run_peer_script
from gridopt.partition import partition_graph

__all__ = ["find_instances", "load_instance", "plan_errors", "run"]

DEFAULT_TIME_LIMIT_S = 10.0
#: seconds the peer may spend on its start (the issue's 60 s with GerryChain's defaults)
PEER_START_S = 60.0
DEFAULT_PEER_TIME_LIMIT_S = PEER_START_S
#: most ReCom steps of the peer (its time is gridopt's limit)
PEER_STEPS = 2000
QUICK = ("ME", "NM")

COLUMNS = [
    ("instance", "instance", ""),
    ("size", "n / m / k", ""),
    ("objective", "gridopt cut", "obj"),
    ("best_known", "optimum", "obj"),
    ("gap_pct", "gap %", ".2f"),
    ("seconds", "gridopt s", ".2f"),
    ("status", "status", ""),
    ("peer_objective", "GerryChain cut", "obj"),
    ("peer_seconds", "GerryChain s", ".2f"),
    ("notes", "notes", ""),
]


def find_instances(instances_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The folder of ``<ST>.json`` county instances, or ``None`` where there is none.

    ``instances_dir`` may be the ``districting`` folder or its ``county`` sub-folder;
    without it, the shared data folder's ``benchmarks/districting``
    (:func:`gridopt.datasets.benchmark_dir`).
    """
    if instances_dir is not None:
        cands = [pathlib.Path(instances_dir)]
    else:
        try:
            cands = [datasets.benchmark_dir("districting")]
        except GridoptError:
            return None
    for c in cands:
        for folder in (c, c / "county"):
            if folder.is_dir() and any(folder.glob("*.json")):
                return folder
    return None


def load_instance(path: str | os.PathLike) -> tuple[nx.Graph, dict[str, Any]]:
    """The instance's graph (node attribute ``population``) and its JSON record."""
    rec = json.loads(pathlib.Path(path).read_text())
    g = nx.Graph()
    for node in rec["nodes"]:
        g.add_node(int(node["id"]), population=int(node["population"]))
    g.add_edges_from((int(u), int(v)) for u, v in rec["edges"])
    return g, rec


def plan_errors(g: nx.Graph, labels: dict, lower: float, upper: float) -> list[str]:
    """What is wrong with a plan (disconnected or out-of-band districts); empty if valid."""
    parts: dict[Any, list] = {}
    for v, lab in labels.items():
        parts.setdefault(lab, []).append(v)
    errors = []
    if set(labels) != set(g.nodes):
        errors.append("the plan does not label every node exactly once")
    for lab, members in parts.items():
        pop = sum(g.nodes[v]["population"] for v in members)
        if not lower <= pop <= upper:
            errors.append(f"district {lab}: population {pop} outside [{lower}, {upper}]")
        if not nx.is_connected(g.subgraph(members)):
            errors.append(f"district {lab} is not connected")
    return errors


def _cut_edges(g: nx.Graph, labels: dict) -> int:
    return sum(1 for u, v in g.edges if labels[u] != labels[v])


def run(
    instances_dir: str | os.PathLike | None = None,
    *,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Solve every county instance with :func:`gridopt.partition_graph` (and GerryChain).

    Parameters
    ----------
    instances_dir
        Folder of the instances (see :func:`find_instances`; default: the shared one).
    peers
        Also run GerryChain on each instance.
    time_limit_s
        gridopt's seconds per instance (default :data:`DEFAULT_TIME_LIMIT_S`); the peer's
        ReCom phase gets the same.
    quick
        Only ME and NM with a 5 s limit (for the test suite).
    progress
        Called with the instance name before each instance.

    Returns
    -------
    list of dict
        One row per instance; one row with status ``no instances`` where none are found.
    """
    folder = find_instances(instances_dir)
    if folder is None:
        where = instances_dir or "../shared/benchmarks/districting (or $GRIDOPT_DATA)"
        return [
            {
                "family": "districting",
                "instance": "-",
                "status": "no instances",
                "notes": f"no county instances in {where}: pass --instances DIR",
            }
        ]
    limit = time_limit_s or (5.0 if quick else DEFAULT_TIME_LIMIT_S)
    files = sorted(folder.glob("*.json"), key=lambda p: json.loads(p.read_text())["n"])
    if quick:
        files = [p for p in files if p.stem in QUICK]
    rows = []
    for path in files:
        if progress is not None:
            progress(path.stem)
        rows.append(_one(path, limit, peers))
    return rows


def _one(path: pathlib.Path, limit: float, peers: bool) -> dict:
    g, rec = load_instance(path)
    lower, upper, opt = rec["lower"], rec["upper"], rec.get("optimal_cut_edges")
    row: dict[str, Any] = {
        "family": "districting",
        "instance": rec.get("name", path.stem),
        "size": f"{rec['n']} / {rec['m']} / {rec['k']}",
        "best_known": opt,
    }
    try:
        res = measure(
            lambda: partition_graph(
                g, weight="population", min_weight=lower, max_weight=upper, time_limit_s=limit
            )
        )
    except GridoptError as exc:
        row.update(status="failed", notes=str(exc).splitlines()[0])
        return row
    part = res.value
    errors = plan_errors(g, part.labels, lower, upper)
    cut = _cut_edges(g, part.labels)
    row.update(
        objective=cut if not errors else None,
        gap_pct=100.0 * (cut - opt) / opt if opt and not errors else None,
        seconds=res.seconds,
        peak_mb=res.peak_mb,
        status="invalid" if errors else part.status,
        notes="; ".join(errors[:2]),
    )
    if part.bound is not None and not errors:
        row["notes"] = f"bound {part.bound:g}"
    if peers:
        peer = _peer(path, g, rec, limit)
        note = peer.pop("peer_note")
        row.update(peer)
        row["notes"] = "; ".join(t for t in (row.get("notes"), note) if t)
        if row.get("peer_objective") and row.get("objective"):
            row["ratio"] = row["peer_objective"] / row["objective"]
    return row


def _peer(path: pathlib.Path, g: nx.Graph, rec: dict, limit: float) -> dict:
    """GerryChain's best plan: its cut edges, seconds and a note."""
    arg = json.dumps(
        {"path": str(path), "start_s": PEER_START_S, "recom_s": limit, "steps": PEER_STEPS}
    )
    t0 = time.perf_counter()
    out = run_peer_script(_PEER_SCRIPT, arg, timeout_s=PEER_START_S + limit + 60.0)
    seconds = out.get("seconds", time.perf_counter() - t0)
    res = {"peer": "gerrychain", "peer_seconds": seconds}
    if "labels" not in out:
        return {**res, "peer_objective": None} | _note(out.get("error", "GerryChain: no plan"))
    labels = dict(enumerate(out["labels"]))
    errors = plan_errors(g, labels, rec["lower"], rec["upper"])
    if errors:
        return {**res, "peer_objective": None} | _note(f"GerryChain plan invalid: {errors[0]}")
    res["peer_objective"] = _cut_edges(g, labels)
    return res | _note(f"GerryChain: start {out['start_s']:.1f} s, {out['steps']} ReCom steps")


def _note(text: str) -> dict:
    return {"peer_note": text}


def summarize(rows: list[dict], *, peers: bool) -> str:
    """Instances solved, at the optimum, within 5%, worst gap, slowest, and vs. GerryChain."""
    solved = [r for r in rows if r.get("objective") is not None]
    if not solved:
        return "no county instance solved"
    at_opt = sum(1 for r in solved if r.get("gap_pct") == 0)
    within = sum(1 for r in solved if r.get("gap_pct") is not None and r["gap_pct"] <= 5.0)
    worst = max((r["gap_pct"] for r in solved if r.get("gap_pct") is not None), default=0.0)
    slowest = max(r["seconds"] for r in solved)
    text = (
        f"{len(solved)}/{len(rows)} feasible, {at_opt} at the proven optimum, {within} within "
        f"5% (worst {worst:.1f}%), at most {slowest:.1f} s each"
    )
    if peers:
        worse = [
            r["instance"]
            for r in solved
            if r.get("peer_objective") is not None and r["peer_objective"] < r["objective"]
        ]
        none = [r["instance"] for r in rows if r.get("peer") and r.get("peer_objective") is None]
        text += (
            f"; GerryChain better on {len(worse)} ({', '.join(worse) or 'none'}), "
            f"no plan on {len(none)} ({', '.join(none) or 'none'})"
        )
    return text


_PEER_SCRIPT = r"""
import json, random, sys, time, warnings
warnings.filterwarnings("ignore")
args = json.loads(sys.argv[1])
try:
    import networkx as nx
    from functools import partial
    from gerrychain import Graph, MarkovChain, Partition
    from gerrychain.constraints import contiguous
    from gerrychain.partition import recursive_tree_part
    from gerrychain.proposals import recom
    from gerrychain.tree import bipartition_tree
    from gerrychain.updaters import Tally, cut_edges
except ImportError as exc:
    print(json.dumps({"error": f"peer not installed: {exc}"})); sys.exit(0)
rec = json.load(open(args["path"]))
g = nx.Graph()
for nd in rec["nodes"]:
    g.add_node(int(nd["id"]), population=int(nd["population"]))
g.add_edges_from((int(u), int(v)) for u, v in rec["edges"])
graph = Graph.from_networkx(g)
k, lower, upper = rec["k"], rec["lower"], rec["upper"]
target = rec["total_population"] / k
# restarts: with its defaults (100,000 attempts per cut) one call did not return within
# 100 s on NM; 200 attempts per cut and fresh seeds find a start in seconds where any is found
t0 = time.perf_counter()
assign, tries = None, 0
while assign is None and time.perf_counter() - t0 < args["start_s"]:
    tries += 1
    try:
        assign = recursive_tree_part(
            graph, range(k), target, "population", 0.005,
            bipartition_tree_fn=partial(bipartition_tree, max_attempts=200),
            rng=random.Random(tries),
        )
    except Exception:
        assign = None
if assign is None:
    print(json.dumps({"error": f"GerryChain: no start in {args['start_s']:.0f} s ({tries} tries)",
                      "seconds": time.perf_counter() - t0})); sys.exit(0)
start_s = time.perf_counter() - t0
part = Partition(graph, assign, updaters={"cut_edges": cut_edges, "population": Tally("population")})
band = lambda p: all(lower <= x <= upper for x in p["population"].values())
proposal = partial(recom, pop_col="population", pop_target=target, epsilon=0.005, node_repeats=2)
accept = lambda p: len(p["cut_edges"]) <= len(p.parent["cut_edges"])
chain = MarkovChain(proposal, constraints=[contiguous, band], accept=accept,
                    initial_state=part, total_steps=args["steps"], rng=random.Random(1))
best, steps, t1 = None, 0, time.perf_counter()
for state in chain:
    steps += 1
    if band(state) and (best is None or len(state["cut_edges"]) < best[0]):
        best = (len(state["cut_edges"]), dict(state.assignment))
    if time.perf_counter() - t1 > args["recom_s"]:
        break
labels = [int(best[1][v]) for v in range(len(rec["nodes"]))] if best else None
out = {"seconds": time.perf_counter() - t0, "start_s": start_s, "steps": steps}
if labels is None:
    out["error"] = "GerryChain: its start is outside the band"
else:
    out["labels"] = labels
print(json.dumps(out))
"""
