"""The ``gridopt bench`` runner: family registry, progress bar, tables and ``RESULTS.md``.

A benchmark family is a module ``gridopt.bench.<family>`` with a function
``run(instances_dir=None, *, peers=True, time_limit_s=None, quick=False, progress=None)``
returning one dict per instance (keys in :data:`ROW_KEYS`). A family may also define

- ``COLUMNS``: ``[(key, header, format), ...]`` for its table (default :data:`BASE_COLUMNS`
  plus :data:`PEER_COLUMNS` when peers ran);
- ``summarize(rows, *, peers) -> str``: its one-line summary (default :func:`default_summary`);
- ``DEFAULT_TIME_LIMIT_S`` / ``DEFAULT_PEER_TIME_LIMIT_S``: written into its section
  (``LIMIT_UNIT``: the unit of gridopt's limit, ``"work-s"`` where it is a work budget).

Families are imported lazily, so a family whose module is missing or broken is
reported as such (a row with status ``unavailable``) and never stops the others.

``benchmarks/RESULTS.md`` holds one section per family between HTML comment markers.
Writing a family's results replaces only that family's section (each section carries its
own date, command, machine load and versions, because families run at different times);
``all`` writes each family's section as soon as that family finishes (so a run that
stops midway keeps what it measured) and rewrites the whole file at the end.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.util
import logging
import math
import os
import pathlib
import platform
import re
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pandas as pd

from gridopt._errors import GridoptError, InputError

__all__ = [
    "FAMILIES",
    "ROW_KEYS",
    "default_summary",
    "format_table",
    "machine_info",
    "markdown_section",
    "missing_peer_packages",
    "run_bench",
    "run_family",
    "update_results",
]

log = logging.getLogger("gridopt")

#: the family registry: ``gridopt.bench.<family>`` -> the optional packages its peers
#: import (the ``gridopt[bench]`` extra), in the order of ``all`` and of RESULTS.md.
#: A new family is one line here (and its module).
REGISTRY: dict[str, tuple[str, ...]] = {
    "partition": ("spopt", "gerrychain"),
    "pmed": ("spopt", "pulp", "highspy"),
    "cpmp": ("spopt", "pulp", "highspy"),
    "staffing": (),
    "scale": (),
    "districting": ("gerrychain",),
}

#: benchmark families in the order of ``all`` and of the sections of RESULTS.md.
FAMILIES: tuple[str, ...] = tuple(REGISTRY)

#: keys every family row has.
ROW_KEYS: tuple[str, ...] = (
    "family",
    "instance",
    "size",
    "objective",
    "best_known",
    "gap_pct",
    "seconds",
    "peak_mb",
    "status",
    "peer",
    "peer_objective",
    "peer_seconds",
    "ratio",
    "notes",
)

#: the optional packages each family's peers import (the ``gridopt[bench]`` extra).
PEER_PACKAGES: dict[str, tuple[str, ...]] = REGISTRY

#: packages whose versions go into the RESULTS.md header.
VERSION_PACKAGES: tuple[str, ...] = (
    "gridopt",
    "ortools",
    "numpy",
    "scipy",
    "shapely",
    "geopandas",
    "spopt",
    "gerrychain",
    "pulp",
    "highspy",
)

Column = tuple[str, str, str]

#: default table columns: (row key, header, format); format "" is str(), others below.
BASE_COLUMNS: list[Column] = [
    ("instance", "instance", ""),
    ("size", "size", ""),
    ("objective", "gridopt", "obj"),
    ("best_known", "best known", "obj"),
    ("gap_pct", "gap %", ".2f"),
    ("seconds", "gridopt s", ".2f"),
    ("peak_mb", "peak MB", ".0f"),
    ("status", "status", ""),
]
PEER_COLUMNS: list[Column] = [
    ("peer", "peer", ""),
    ("peer_objective", "peer obj", "obj"),
    ("peer_seconds", "peer s", ".2f"),
    ("ratio", "peer/gridopt", "x"),
]

_BEGIN = "<!-- gridopt-bench:{family}:begin -->"
_END = "<!-- gridopt-bench:{family}:end -->"
_HEADER_END = "<!-- gridopt-bench:header:end -->"


# ---------------------------------------------------------------------------
# registry


def load_family(family: str) -> Any:
    """Import ``gridopt.bench.<family>``; raises ImportError (with the cause) when it fails."""
    if family not in FAMILIES:
        raise InputError(
            f"unknown benchmark family {family!r}; choose one of {', '.join(FAMILIES)} or 'all'"
        )
    return importlib.import_module(f"gridopt.bench.{family}")


def missing_peer_packages(families: Sequence[str] = FAMILIES) -> list[str]:
    """The peer packages (``gridopt[bench]``) that the given families need and that are absent."""
    need: list[str] = []
    for fam in families:
        for pkg in PEER_PACKAGES.get(fam, ()):
            if pkg not in need:
                need.append(pkg)
    return [pkg for pkg in need if importlib.util.find_spec(pkg) is None]


def _empty_row(family: str, status: str, notes: str) -> dict:
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(family=family, instance="-", status=status, notes=notes)
    return row


# ---------------------------------------------------------------------------
# running


class _Progress:
    """A tqdm bar fed by the families' ``progress(name)`` callback (one call per instance)."""

    def __init__(self, family: str, *, enabled: bool) -> None:
        self._bar = None
        self._started = 0
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=f"bench {family}", unit="instance", file=sys.stderr, leave=True)

    def __call__(self, name: str) -> None:
        log.info("bench: %s", name)
        if self._bar is None:
            return
        if self._started:
            self._bar.update(1)
        self._started += 1
        self._bar.set_postfix_str(str(name), refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            if self._started:
                self._bar.update(1)
            self._bar.close()


def run_family(
    family: str,
    *,
    instances_dir: pathlib.Path | None = None,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    progress_bar: bool = True,
) -> tuple[list[dict], dict]:
    """Run one family; return its rows and the facts of the run (for its Markdown section).

    A family that cannot be imported or that raises gives one row with status
    ``unavailable`` or ``error`` and the reason in ``notes``; it never raises.
    """
    started = _dt.datetime.now(_dt.timezone.utc)
    load_start = _loadavg()
    facts: dict[str, Any] = {
        "family": family,
        "started": started,
        "load_start": load_start,
        "peers": peers,
        "quick": quick,
        "time_limit_s": time_limit_s,
        "module": None,
        "error": None,
    }
    try:
        module = load_family(family)
    except ImportError as exc:
        msg = f"family module gridopt.bench.{family} could not be imported: {exc}"
        log.warning(msg)
        facts["error"] = msg
        return [_empty_row(family, "unavailable", msg)], facts
    facts["module"] = module
    facts["default_time_limit_s"] = getattr(module, "DEFAULT_TIME_LIMIT_S", None)
    facts["default_peer_time_limit_s"] = getattr(module, "DEFAULT_PEER_TIME_LIMIT_S", None)
    missing = missing_peer_packages([family])
    fam_peers = peers and not (
        PEER_PACKAGES.get(family) and len(missing) == len(PEER_PACKAGES[family])
    )
    facts["peers"] = fam_peers
    facts["missing_peers"] = missing if peers else []
    bar = _Progress(family, enabled=progress_bar)
    try:
        rows = module.run(
            pathlib.Path(instances_dir) if instances_dir is not None else None,
            peers=fam_peers,
            time_limit_s=time_limit_s,
            quick=quick,
            progress=bar,
        )
    except GridoptError as exc:  # its instances are absent: one line says where to find them
        facts["error"] = str(exc)
        rows = [_empty_row(family, "unavailable", str(exc))]
    except Exception as exc:  # a broken family must not stop the others
        msg = f"{type(exc).__name__}: {exc}"
        log.error("bench %s failed: %s\n%s", family, msg, traceback.format_exc())
        facts["error"] = msg
        rows = [_empty_row(family, "error", msg)]
    finally:
        bar.close()
    rows = [
        {**dict.fromkeys(ROW_KEYS), **row, "family": row.get("family") or family} for row in rows
    ]
    if not rows:
        rows = [_empty_row(family, "no instances", "no instance files found")]
    facts["finished"] = _dt.datetime.now(_dt.timezone.utc)
    facts["load_end"] = _loadavg()
    return rows, facts


def run_bench(
    family: str,
    *,
    instances_dir: pathlib.Path | str | None = None,
    peers: bool = True,
    time_limit_s: float | None = None,
    quick: bool = False,
    out: pathlib.Path | str | None = None,
    command: str | None = None,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Run a benchmark family (or ``"all"``) and return one row per instance.

    Parameters
    ----------
    family
        A name in :data:`FAMILIES` or ``"all"``.
    instances_dir
        Folder of the instance files; default ``benchmarks/<family>/`` of the shared
        data folder (:func:`gridopt.datasets.shared_dir`: ``$GRIDOPT_DATA``, else
        ``../shared`` beside the repository). With ``"all"`` it must hold one
        sub-folder per family.
    peers
        Also run the open-source peers (the ``gridopt[bench]`` extra) on every instance.
        Missing peer packages are logged once and the affected families run gridopt alone.
    time_limit_s
        Time limit per solve (gridopt and peers); ``None`` uses each family's default.
    quick
        Two small instances per family (the test suite uses it).
    out
        Markdown file to write: the family's section is replaced (other families'
        sections kept); ``"all"`` rewrites the whole file.
    command
        The command line recorded in the Markdown (default: ``sys.argv``).
    progress_bar
        Show a tqdm progress bar on stderr.

    Returns
    -------
    pandas.DataFrame
        One row per instance with the columns of :data:`ROW_KEYS` plus any
        family-specific columns. ``df.attrs`` holds, per family, ``"tables"`` (the printed
        text table), ``"summaries"`` (the summary line) and ``"sections"`` (the Markdown).

    Raises
    ------
    gridopt.InputError
        Unknown family.

    Examples
    --------
    >>> df = run_bench("pmed", quick=True, peers=False, progress_bar=False)  # doctest: +SKIP
    >>> list(df["instance"])  # doctest: +SKIP
    ['pmed1', 'pmed2']
    """
    families = list(FAMILIES) if family == "all" else [family]
    for fam in families:
        if fam not in FAMILIES:
            raise InputError(
                f"unknown benchmark family {fam!r}; choose one of {', '.join(FAMILIES)} or 'all'"
            )
    if peers:
        missing = missing_peer_packages(families)
        if missing:
            log.warning(
                "peer packages not installed: %s (pip install 'gridopt[bench]'); "
                "families whose peers are all missing run gridopt alone",
                ", ".join(missing),
            )
    command = command or _command_line()
    all_rows: list[dict] = []
    sections: dict[str, str] = {}
    summaries: dict[str, str] = {}
    tables: dict[str, str] = {}
    for fam in families:
        fam_dir = instances_dir
        if instances_dir is not None and family == "all":
            fam_dir = pathlib.Path(instances_dir) / fam
        rows, facts = run_family(
            fam,
            instances_dir=pathlib.Path(fam_dir) if fam_dir is not None else None,
            peers=peers,
            time_limit_s=time_limit_s,
            quick=quick,
            progress_bar=progress_bar,
        )
        summaries[fam] = family_summary(rows, facts)
        sections[fam] = markdown_section(rows, facts, command=command)
        tables[fam] = format_table(rows, _columns(rows, facts))
        all_rows.extend(rows)
        if out is not None and len(families) > 1:
            # a long ``all`` run that stops midway keeps the families it finished
            update_results(pathlib.Path(out), {fam: sections[fam]}, command=command)
    if out is not None:
        update_results(pathlib.Path(out), sections, command=command, replace_all=family == "all")
    df = pd.DataFrame(all_rows)
    df.attrs["summaries"] = summaries
    df.attrs["sections"] = sections
    df.attrs["tables"] = tables
    return df


# ---------------------------------------------------------------------------
# formatting


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_value(value: Any, fmt: str) -> str:
    """One table cell: ``obj`` (integer when integral, else 6 significant digits),
    ``x`` (ratio like ``12.3x``), ``pct`` (``98.5%``), a format spec, or ``str``."""
    if _is_missing(value):
        return "-"
    if isinstance(value, (bool,)) or not fmt:
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isinf(v):
        return "inf"
    if fmt == "obj":
        return f"{round(v)}" if abs(v - round(v)) < 1e-6 and abs(v) < 1e15 else f"{v:.6g}"
    if fmt == "x":
        return f"{v:.1f}x" if v < 100 else f"{v:.0f}x"
    if fmt == "pct":
        return f"{v:.1f}%"
    return format(v, fmt)


def _columns(rows: list[dict], facts: dict) -> list[Column]:
    module = facts.get("module")
    cols = getattr(module, "COLUMNS", None)
    if cols is None:
        cols = BASE_COLUMNS + (PEER_COLUMNS if facts.get("peers") else [])
    elif not facts.get("peers"):
        peer_cols = set(getattr(module, "PEER_KEYS", ()))
        cols = [c for c in cols if c[0] not in peer_cols]
    return list(cols)


def _cells(rows: list[dict], cols: list[Column]) -> list[list[str]]:
    return [[format_value(row.get(key), fmt) for key, _, fmt in cols] for row in rows]


def format_table(
    rows: list[dict], cols: list[Column] | None = None, *, markdown: bool = False
) -> str:
    """The rows as an aligned text table (or a Markdown table)."""
    cols = cols or BASE_COLUMNS
    header = [h for _, h, _ in cols]
    body = _cells(rows, cols)
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" if not fmt else "---:" for _, _, fmt in cols) + "|")
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[k]) for r in body)) if body else len(h) for k, h in enumerate(header)
    ]
    right = [bool(fmt) for _, _, fmt in cols]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=False)
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in body]
    return "\n".join(out)


def default_summary(rows: list[dict], *, peers: bool) -> str:
    """``k/n at the known optimum (max gap g%); median ratio PEER/gridopt r x``."""
    ok = [r for r in rows if r.get("status") not in ("unavailable", "error", "no instances")]
    if not ok:
        return "; ".join(str(r.get("notes")) for r in rows) or "no results"
    parts = []
    gaps = [float(r["gap_pct"]) for r in ok if not _is_missing(r.get("gap_pct"))]
    if gaps:
        at = sum(1 for g in gaps if g <= 1e-6)
        parts.append(
            f"{at}/{len(ok)} at the known optimum or best known (max gap {max(gaps):.2f}%, mean {sum(gaps) / len(gaps):.2f}%)"
        )
    else:
        parts.append(f"{len(ok)} instances")
    total_s = sum(float(r["seconds"]) for r in ok if not _is_missing(r.get("seconds")))
    parts.append(f"gridopt total {total_s:.1f} s")
    ratios = [float(r["ratio"]) for r in ok if not _is_missing(r.get("ratio"))]
    if peers and ratios:
        peer = next((r["peer"] for r in ok if r.get("peer")), "peer")
        parts.append(
            f"median ratio {peer}/gridopt {pd.Series(ratios).median():.1f}x over {len(ratios)} instances"
        )
    return "; ".join(parts)


def family_summary(rows: list[dict], facts: dict) -> str:
    """The family's one-line summary (its own ``summarize`` when it has one)."""
    module = facts.get("module")
    fn = getattr(module, "summarize", None)
    if fn is not None and facts.get("error") is None:
        try:
            return str(fn(rows, peers=bool(facts.get("peers"))))
        except Exception as exc:  # the summary is cosmetic; never lose the table for it
            log.warning("summary of %s failed: %s", facts["family"], exc)
    return default_summary(rows, peers=bool(facts.get("peers")))


# ---------------------------------------------------------------------------
# machine and versions


def _loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (OSError, AttributeError):  # pragma: no cover - Windows
        return None


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model, OS, Python and the versions of the benchmarked packages."""
    import psutil

    versions = {}
    for pkg in VERSION_PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": psutil.virtual_memory().total / 1024**3,
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and pathlib.Path(argv[0]).name in ("gridopt", "__main__.py", "cli.py"):
        argv[0] = "gridopt"
    return " ".join(argv)


def _machine_line(info: dict[str, Any]) -> str:
    cores = f"{info['cores']} cores"
    if info.get("usable_cores") and info["usable_cores"] != info["cores"]:
        cores += f" ({info['usable_cores']} usable by this process)"
    return f"{cores}, {info['ram_gb']:.0f} GB RAM, {info['cpu']}, {info['os']}, Python {info['python']}"


def _versions_line(info: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in info["versions"].items())


def _fmt_load(load: tuple[float, float, float] | None) -> str:
    return "n/a" if load is None else " / ".join(f"{x:.2f}" for x in load)


# ---------------------------------------------------------------------------
# Markdown


def markdown_section(rows: list[dict], facts: dict, *, command: str) -> str:
    """One family's section of RESULTS.md, between its begin/end markers."""
    family = facts["family"]
    info = machine_info()
    started = facts["started"].strftime("%Y-%m-%d %H:%M UTC")
    finished = facts.get("finished")
    wall = f"{(finished - facts['started']).total_seconds():.0f} s" if finished else "n/a"
    limits = []
    if facts.get("time_limit_s") is not None:
        limits.append(f"--time-limit-s {facts['time_limit_s']:g} (gridopt and peers)")
    else:
        if facts.get("default_time_limit_s") is not None:
            unit = getattr(facts.get("module"), "LIMIT_UNIT", "s")
            limits.append(f"gridopt {facts['default_time_limit_s']:g} {unit}")
        if facts.get("default_peer_time_limit_s") is not None:
            limits.append(f"peers {facts['default_peer_time_limit_s']:g} s")
    lines = [
        _BEGIN.format(family=family),
        f"## {family}",
        "",
        f"- run: {started}, {wall} wall; command: `{command}`"
        + (" (quick mode)" if facts.get("quick") else ""),
        f"- machine: {_machine_line(info)}; load average (1/5/15 min) at start {_fmt_load(facts.get('load_start'))},"
        f" at end {_fmt_load(facts.get('load_end'))}",
        f"- versions: {_versions_line(info)}",
        f"- time limits: {', '.join(limits) if limits else 'family defaults'}; peers: "
        + ("yes" if facts.get("peers") else "no")
        + (
            f" (not installed: {', '.join(facts['missing_peers'])})"
            if facts.get("missing_peers")
            else ""
        ),
        "",
        f"**Summary:** {family_summary(rows, facts)}",
        "",
        format_table(rows, _columns(rows, facts), markdown=True),
    ]
    notes = [(r.get("instance"), r.get("notes")) for r in rows if r.get("notes")]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {inst}: {note}" for inst, note in notes]
    doc = getattr(facts.get("module"), "RESULTS_NOTE", None)
    if doc:
        lines += ["", str(doc).strip()]
    lines.append(_END.format(family=family))
    return "\n".join(lines) + "\n"


def _file_header(command: str) -> str:
    info = machine_info()
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# gridopt benchmark results",
            "",
            "Produced by `gridopt bench` and never edited by hand. Each family's section below was",
            "written by its own run and carries that run's date, command, machine load and package",
            "versions (machine time is shared, so families run at different times and the peer/gridopt",
            "ratios measured side by side in one run are the figures that count).",
            "",
            "Reproduce: `gridopt bench all --peers --out benchmarks/RESULTS.md` (all families), or",
            "`gridopt bench FAMILY --peers --out benchmarks/RESULTS.md` (replaces that family's section).",
            "",
            f"- last written: {now} by `{command}`",
            f"- machine: {_machine_line(info)}",
            f"- versions: {_versions_line(info)}",
            _HEADER_END,
            "",
        ]
    )


def _split_sections(text: str) -> dict[str, str]:
    sections = {}
    for fam in FAMILIES:
        m = re.search(
            re.escape(_BEGIN.format(family=fam))
            + r".*?"
            + re.escape(_END.format(family=fam))
            + r"\n?",
            text,
            re.S,
        )
        if m:
            sections[fam] = m.group(0).rstrip("\n") + "\n"
    return sections


def update_results(
    path: pathlib.Path,
    sections: dict[str, str],
    *,
    command: str,
    replace_all: bool = False,
) -> pathlib.Path:
    """Write ``sections`` (family -> Markdown) into ``path``, keeping the other families'.

    The file is the header followed by the family sections in :data:`FAMILIES` order;
    text outside the markers is not kept (the file is generated, never hand-edited).
    """
    path = pathlib.Path(path)
    existing = {}
    if path.exists() and not replace_all:
        existing = _split_sections(path.read_text(encoding="utf-8"))
    existing.update(sections)
    body = [existing[f] for f in FAMILIES if f in existing]
    text = _file_header(command) + "\n".join(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
