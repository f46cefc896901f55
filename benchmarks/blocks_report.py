"""How the grids sit on the land: coverage, boundaries on streets, blocks kept whole.

Runs :func:`gridopt.partition_grids` on an OSM extract and prints one row of figures
that do not depend on the implementation (so the same script measures an older
gridopt too, run with that version first on ``PYTHONPATH``):

- ``area_covered``: union of the grid polygons over the blocks' area (the area this
  version reports, else the concave hull of the buildings as in ``gridopt.blocks``);
- ``boundary_on_streets``: share of the boundary between grids within 3 m of a street,
  river or railway line of a boundary class;
- ``blocks_whole``: share of the blocks (streets of the boundary classes polygonised)
  holding at most the band's maximum whose buildings all lie in one grid;
- ``straddle_tertiary``: grids with buildings on both sides of a tertiary-or-above street,
  river, canal or coast (the sides: blocks of those lines alone);
- ``holes``, ``multi``: grids with holes, grids not one Polygon; partition seconds.

Usage::

    PYTHONPATH=src python benchmarks/blocks_report.py /work/shared/data/monaco.osm.pbf \\
        --png /tmp/monaco.png --zoom 373300,4843400,1200
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import shapely

import gridopt

try:
    from gridopt.tags import boundary_class
except ImportError:  # an older gridopt on the path: take the classification from this checkout
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location(
        "_tags", Path(__file__).resolve().parents[1] / "src" / "gridopt" / "tags.py"
    )
    _tags = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_tags)
    boundary_class = _tags.boundary_class


def _blocks(lines: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    merged = shapely.union_all(np.concatenate([lines, [area.boundary]]))
    polys = shapely.get_parts(shapely.polygonize(shapely.get_parts(merged)))
    shapely.prepare(area)
    return polys[shapely.contains(area, shapely.point_on_surface(polys))]


def _side_count(blocks: np.ndarray, pts: np.ndarray, labels: np.ndarray) -> dict:
    """Per block: grid labels of the buildings inside."""
    tree = shapely.STRtree(blocks)
    bi, bj = tree.query(pts, predicate="within")
    out: dict[int, set] = {}
    for b, blk in zip(bi, bj, strict=False):
        out.setdefault(int(blk), set()).add(labels[b])
    return out, bi, bj


def report(path: str, *, png: str | None = None, zoom: str | None = None) -> dict:
    warnings.filterwarnings("ignore")
    b = gridopt.read_buildings(path)
    s = gridopt.read_streets(path, to_crs=b.crs)
    t, cpu = time.perf_counter(), time.process_time()
    part = gridopt.partition_grids(b, streets=s)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    cls = boundary_class(s)
    lines = s.geometry.to_numpy()
    pts = shapely.point_on_surface(b.geometry.to_numpy())
    labels = part.labels.to_numpy()
    grids = part.grids.geometry.to_numpy()
    union = shapely.union_all(grids)
    hull = shapely.buffer(
        shapely.concave_hull(
            shapely.multipoints(np.unique(np.round(shapely.get_coordinates(
                shapely.centroid(b.geometry.to_numpy())), 1), axis=0)), ratio=0.3), 30.0)
    area = hull
    # boundaries between grids: shared lines of the grid polygons
    tree = shapely.STRtree(grids)
    gi, gj = tree.query(grids)
    keep = gi < gj
    shared = shapely.intersection(shapely.boundary(grids[gi[keep]]), shapely.boundary(grids[gj[keep]]))
    shared = shared[shapely.length(shared) > 0]
    bound_lines = lines[cls.notna().to_numpy()]
    near = shapely.buffer(shapely.union_all(bound_lines), 3.0) if len(bound_lines) else shapely.Polygon()
    total = float(shapely.length(shared).sum())
    on = float(shapely.length(shapely.intersection(shared, near)).sum()) if total else 0.0
    # blocks of all boundary classes: kept whole?
    blk = _blocks(bound_lines, area)
    per_block, bi, bj = _side_count(blk, pts, labels)
    hh = b["households"].to_numpy()
    hblk = np.bincount(bj, weights=hh[bi], minlength=len(blk))
    fits = [k for k in per_block if hblk[k] <= part.max_households]
    whole = float(np.mean([len(per_block[k]) == 1 for k in fits])) if fits else float("nan")
    # straddling tertiary+ streets and water: blocks of those lines only
    strong = cls.isin(["main", "major", "water", "railway"]).to_numpy()
    sblk = _blocks(lines[strong], area)
    per_sblock, _, _ = _side_count(sblk, pts, labels)
    seen: dict = {}
    for k, labs in per_sblock.items():
        for g in labs:
            seen.setdefault(g, set()).add(k)
    straddle = sum(1 for g, ks in seen.items() if len(ks) > 1)
    holes = int(sum(1 for g in grids if g.geom_type == "Polygon" and len(g.interiors)))
    multi = int(sum(1 for g in grids if g.geom_type != "Polygon"))
    row = {
        "instance": path.rsplit("/", 1)[-1],
        "buildings": len(b),
        "grids": part.n_grids,
        "in_band": part.share_in_band,
        "undersized": int((part.grids["kind"] == "undersized").sum()),
        "area_covered": float(shapely.intersection(union, area).area / area.area),
        "boundary_on_streets": on / total if total else float("nan"),
        "blocks_whole": whole,
        "straddle_tertiary": straddle,
        "holes": holes,
        "multi": multi,
        "seconds": seconds,
        "cpu_s": cpu,
    }
    if png:
        _render(part, s, cls, png, zoom)
    return row


def _render(part, streets, cls, png: str, zoom: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 10), dpi=110)
    g = part.grids.reset_index(drop=True)
    g.plot(ax=ax, column=np.arange(len(g)) % 20, cmap="tab20", alpha=0.55, edgecolor="black", linewidth=1.2)
    widths = {"residential": 0.8, "main": 1.6, "major": 2.4, "water": 2.0, "railway": 1.6}
    colours = {"residential": "grey", "main": "darkorange", "major": "red", "water": "blue", "railway": "purple"}
    for c, w in widths.items():
        sel = streets[(cls == c).to_numpy()]
        if len(sel):
            sel.plot(ax=ax, color=colours[c], linewidth=w)
    if zoom:
        x, y, r = (float(v) for v in zoom.split(","))
        ax.set_xlim(x - r / 2, x + r / 2)
        ax.set_ylim(y - r / 2, y + r / 2)
    ax.set_axis_off()
    fig.savefig(png, bbox_inches="tight")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--png")
    ap.add_argument("--zoom", help="x,y,size in metres of the rendered window")
    args = ap.parse_args()
    for p in args.paths:
        row = report(p, png=args.png, zoom=args.zoom)
        print(" | ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
