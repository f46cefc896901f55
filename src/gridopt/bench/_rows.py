"""One result row per benchmark instance, built the same way by every family.

A family measures its solve (:func:`gridopt.bench._measure.measure`), calls
:func:`result_row` with what it knows (objective, best known value or its own
proven gap, status) and, when a peer ran, :func:`add_peer`; the gap, the ratio and
the notes about load and limits are worked out here, once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from gridopt.bench._measure import Measured

__all__ = ["add_note", "add_peer", "load_note", "result_row", "wall_cap_s"]


#: a solve's wall-clock safety cap, times its work budget (gridopt's limits are work,
#: so that its rows are the same on a busy machine; the cap is hit only far beyond it)
WALL_CAP_FACTOR = 4.0


def wall_cap_s(work_s: float) -> float:
    """Wall-clock safety cap of a solve given ``work_s`` work-seconds."""
    return WALL_CAP_FACTOR * work_s + 10.0


def load_note() -> str:
    """``load 1.9 on 2 cores``: the machine's load when the row was measured."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"load {load:.1f} on {os.cpu_count()} cores"


def result_row(
    family: str,
    instance: str,
    *,
    size: str,
    measured: Measured,
    objective: float | None,
    status: str,
    best_known: float | None = None,
    gap_pct: float | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """A row with every key of :data:`gridopt.bench.runner.ROW_KEYS`.

    ``gap_pct`` defaults to the gap to ``best_known``; a family without a published
    value passes its own proven gap instead (and says so in ``notes``).
    """
    if gap_pct is None and best_known is not None and objective is not None:
        gap_pct = 100.0 * (objective - best_known) / abs(best_known) if best_known else 0.0
    return {
        "family": family,
        "instance": instance,
        "size": size,
        "objective": objective,
        "best_known": best_known,
        "gap_pct": gap_pct,
        "seconds": measured.seconds,
        "peak_mb": measured.peak_mb,
        "status": status,
        "peer": None,
        "peer_objective": None,
        "peer_seconds": None,
        "ratio": None,
        "notes": "; ".join([load_note(), *notes]),
    }


def add_peer(row: dict[str, Any], name: str, peer: dict[str, Any], *, limit_s: float) -> None:
    """Put a peer's result (``objective``, ``seconds``, ``status`` or ``error``) into ``row``.

    The ratio is peer seconds over gridopt seconds; where the peer stopped at its limit
    (or had no solution) the notes say that the ratio is only a lower bound.
    """
    row["peer"] = name
    if "error" in peer:
        add_note(row, peer["error"])
        return
    row["peer_objective"] = peer.get("objective")
    row["peer_seconds"] = peer.get("seconds")
    if row["seconds"] and peer.get("seconds") is not None:
        row["ratio"] = peer["seconds"] / row["seconds"]
    if peer.get("objective") is None:
        add_note(
            row,
            f"peer had no solution at its {limit_s:.0f} s limit (model build included); "
            "ratio is a lower bound",
        )
    elif str(peer.get("status")).lower() != "optimal" or peer["seconds"] >= limit_s:
        add_note(
            row,
            f"peer stopped at its {limit_s:.0f} s limit ({peer.get('status')}); "
            "incumbent shown, ratio is a lower bound",
        )


def add_note(row: dict[str, Any], text: str) -> None:
    """Append ``text`` to the row's notes."""
    row["notes"] = f"{row['notes']}; {text}" if row.get("notes") else text
