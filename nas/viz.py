"""Cell diagrams: a DARTS genotype's normal and reduction cells, or a NAS-Bench-201 cell, as PNG and PDF.

``draw_genotype(arch, "out/cell")`` writes ``out/cell.png`` and ``out/cell.pdf``. With graphviz (the
Python package and its ``dot`` program) the cells are drawn as DARTS' ``visualize.py`` draws them
(left to right; inputs c_{k-2}, c_{k-1} green, intermediate nodes blue, the output c_{k} yellow, each
edge labelled with its op); without ``dot`` matplotlib draws the same picture. Edges are coloured by op
family (convolutions, pools, skip, noise) and NAS-Bench-201's 'none' edges are drawn dotted, so that
the cell reads at a glance.
"""

from __future__ import annotations

import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genotypes import Genotype, parse_genotype, parse_nb201
from nas.errors import NASError
from nas.io import atomic_write_bytes, read_json
from nas.plots import pyplot
from nas.spaces import arch_lines

log = logging.getLogger(__name__)

ENGINES = ("auto", "graphviz", "matplotlib")
ROLE_COLOURS = {"input": "#c1e1c1", "inner": "#add8e6", "output": "#f5e6a8"}  # DARTS' darkseagreen2 / lightblue
FAMILY_COLOURS = {"conv": "#1f4e9c", "pool": "#2e7d32", "skip": "#555555", "noise": "#c62828", "none": "#b0b0b0",
                  "concat": "#888888"}


def op_family(op: str) -> str:
    """conv, pool, skip, noise, none, or concat (the unlabelled edges into c_{k})."""
    if not op:
        return "concat"
    if "conv" in op:
        return "conv"
    if "pool" in op:
        return "pool"
    if op in ("skip_connect", "identity"):
        return "skip"
    return op if op in ("noise", "none") else "conv"


@dataclass
class CellGraph:
    """One cell as a small DAG: nodes (id, label, role) in topological order and edges (src, dst, op)."""

    title: str
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)


def darts_cell(nodes: Any, concat: Any, title: str) -> CellGraph:
    """A DARTS cell: c_{k-2}, c_{k-1}, one node per intermediate state, c_{k} fed by the concatenated states."""
    g = CellGraph(title, [("c_{k-2}", "c_{k-2}", "input"), ("c_{k-1}", "c_{k-1}", "input")])
    names = ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(len(nodes))]
    for i, edges in enumerate(nodes):
        g.nodes.append((str(i), str(i), "inner"))
        for op, src in edges:
            g.edges.append((names[src], str(i), op))
    g.nodes.append(("c_{k}", "c_{k}", "output"))
    for state in concat:
        g.edges.append((names[state], "c_{k}", ""))
    return g


def nb201_cell(arch: str, title: str) -> CellGraph:
    """A NAS-Bench-201 cell: node 0 (input), 1, 2, 3 (output), and the six edges j -> i."""
    nodes = parse_nb201(arch)
    n = len(nodes) + 1
    labels = ["0 (in)"] + [str(i) for i in range(1, n - 1)] + [f"{n - 1} (out)"]
    g = CellGraph(title, [(str(i), labels[i], "input" if i == 0 else "output" if i == n - 1 else "inner")
                          for i in range(n)])
    for i, edges in enumerate(nodes, start=1):
        for op, src in edges:
            g.edges.append((str(src), str(i), op))
    return g


def cells_of(arch: Any) -> list[CellGraph]:
    """The cells to draw: a Genotype, Genotype text, a published name, or a NAS-Bench-201 arch string."""
    if isinstance(arch, str) and arch.strip().startswith("|"):
        return [nb201_cell(arch.strip(), "NAS-Bench-201 cell")]
    g = arch if isinstance(arch, Genotype) else parse_genotype(str(arch))
    return [darts_cell(g.normal, g.normal_concat, "normal cell"),
            darts_cell(g.reduce, g.reduce_concat, "reduction cell")]


def arch_from_source(value: str) -> str:
    """``value`` itself (a name or text), or the genotype a file holds: a result JSON's ``genotype`` (search.json,
    projection.json) or ``best_genotype`` (run_*.json), or a text file's first architecture line."""
    path = Path(value)
    if len(value) > 255 or not path.is_file():
        return value
    if path.suffix == ".json":
        doc = read_json(path)
        arch = doc.get("genotype") if isinstance(doc, dict) else None
        if not isinstance(arch, str) and isinstance(doc, dict):
            best = doc.get("best_genotype")
            arch = best[0] if isinstance(best, list) and best else best
        if not isinstance(arch, str):
            raise NASError(f"{path}: no 'genotype' or 'best_genotype' string in it")
        return arch
    lines = arch_lines(path)
    if not lines:
        raise NASError(f"{path}: no architecture line in it")
    return lines[0][1]


def dot_available() -> bool:
    """The graphviz package imports and its ``dot`` program is on PATH."""
    try:
        import graphviz  # noqa: F401  (optional)
    except ImportError:
        return False
    return shutil.which("dot") is not None


def draw_genotype(arch: Any, path_stem: str | Path, *, title: str | None = None, engine: str = "auto",
                  formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Draw ``arch`` (Genotype, its text, a published name or an NB201 string) to ``<path_stem>.png/.pdf``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    cells = cells_of(arch)
    stem = Path(path_stem)
    use_dot = engine == "graphviz" or (engine == "auto" and dot_available())
    out = []
    for fmt in formats:
        data = None
        if use_dot:
            try:
                data = _graphviz_bytes(cells, title, fmt)
            except Exception as exc:  # noqa: BLE001 - a broken graphviz install falls back to matplotlib
                if engine == "graphviz":
                    raise
                log.warning("graphviz failed (%s); drawing with matplotlib", exc)
                use_dot = False
        if data is None:
            data = _matplotlib_bytes(cells, title, fmt)
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write_bytes(path, data)
        out.append(path)
    return out


def try_draw(arch: Any, path_stem: str | Path, *, title: str | None = None, logger: Any = None) -> list[Path]:
    """``draw_genotype`` for scripts: a diagram never fails a run (a warning names the problem instead)."""
    try:
        paths = draw_genotype(arch, path_stem, title=title)
    except Exception as exc:  # noqa: BLE001 - the result is already written; the picture is a bonus
        (logger or log).warning("could not draw the cell diagram %s: %s", path_stem, exc)
        return []
    (logger or log).info("cell diagram: %s", ", ".join(str(p) for p in paths))
    return paths


# ----------------------------------------------------------------------------- graphviz (DARTS' visualize.py)


def _graphviz_bytes(cells: list[CellGraph], title: str | None, fmt: str) -> bytes:
    import graphviz

    g = graphviz.Digraph(engine="dot", format=fmt)
    g.attr(rankdir="LR", nodesep="0.35", ranksep="0.7", dpi="150" if fmt == "png" else "72", fontname="times",
           newrank="true")
    if title:
        g.attr(label=title, labelloc="t", fontsize="22")
    g.attr("node", style="filled,rounded", shape="rect", fontsize="20", fontname="times", penwidth="1.5",
           height="0.5", width="0.5")
    g.attr("edge", fontsize="15", fontname="times", penwidth="1.6", arrowsize="0.8")
    # dot stacks disconnected clusters bottom-up under rankdir=LR: add them in reverse to read top-down
    for k, cell in reversed(list(enumerate(cells))):
        with g.subgraph(name=f"cluster_{k}") as c:
            c.attr(label=cell.title, fontsize="20", style="rounded", color="#bbbbbb", margin="14")
            for nid, label, role in cell.nodes:
                c.node(f"cell{k}|{nid}", label=_gv_label(label), fillcolor=ROLE_COLOURS[role])
            for src, dst, op in cell.edges:
                colour = FAMILY_COLOURS[op_family(op)]
                c.edge(f"cell{k}|{src}", f"cell{k}|{dst}", label=f" {op} " if op else "", color=colour,
                       fontcolor=colour, style="dotted" if op == "none" else "solid")
    return g.pipe(format=fmt)


def _gv_label(label: str) -> str:
    # c_{k-2} as graphviz HTML with a subscript, as a paper writes it
    if label.startswith("c_{"):
        return f"<c<sub>{label[3:-1]}</sub>>"
    return label


# ----------------------------------------------------------------------------- matplotlib (no dot needed)


SPACING = 2.4  # data units between neighbouring nodes on the line
ARC = 0.36  # an arc over k nodes rises LIFT + ARC * k * SPACING / 2: labels of different spans never meet
LIFT = 0.3  # keeps the labels of short arcs clear of the node boxes
UNDER = 0.22  # curvature of the unlabelled arcs into c_{k}, under the line
BOX = 0.26  # half height of a node box


def _matplotlib_bytes(cells: list[CellGraph], title: str | None, fmt: str) -> bytes:
    fig = matplotlib_figure(cells, title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def matplotlib_figure(cells: list[CellGraph], title: str | None = None) -> Any:
    """The matplotlib figure of ``cells`` (one arc diagram per cell, stacked)."""
    plt = pyplot()

    n = max(len(c.nodes) for c in cells)
    rise = max(_rise(c, s, d) for c in cells for s, d, op in c.edges if op)  # the highest labelled arc
    sink = UNDER * (n - 2) * SPACING / 2 if any(op == "" for c in cells for *_, op in c.edges) else 0.0
    width, height = (n - 1) * SPACING + 1.6, rise + sink + 1.4
    fig, axes = plt.subplots(len(cells), 1, figsize=(0.62 * width, 0.62 * height * len(cells) + 0.4),
                             squeeze=False)
    for ax, cell in zip(axes[:, 0], cells):
        _draw_cell(ax, cell)
        ax.set_xlim(-0.8, width - 0.8)
        ax.set_ylim(-sink - 0.5, rise + 0.45)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig


def _rise(cell: CellGraph, src: str, dst: str) -> float:
    ids = [nid for nid, _, _ in cell.nodes]
    return LIFT + ARC * (ids.index(dst) - ids.index(src)) * SPACING / 2


def _draw_cell(ax, cell: CellGraph) -> None:
    """An arc diagram: the nodes in topological order on a line, each op an arc above it labelled at its top
    (arcs of the same span have apexes a node apart, arcs of different spans rise to different heights, so
    no two labels meet); the unlabelled edges into c_{k} are thin arcs below the line. Arcs leave a node's
    right half and enter the next node's left half, the longer ones outside, so nested arcs never cross."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ids = [nid for nid, _, _ in cell.nodes]
    x = {nid: i * SPACING for i, nid in enumerate(ids)}
    half = {}
    for nid, label, role in cell.nodes:
        w = 1.0 if label.startswith("c_{") else max(0.8, 0.45 + 0.1 * len(label))
        half[nid] = w / 2
        ax.add_patch(FancyBboxPatch((x[nid] - w / 2, -BOX), w, 2 * BOX, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=ROLE_COLOURS[role], edgecolor="#333333", lw=1.3, zorder=3))
        text = f"$c_{{{label[3:-1]}}}$" if label.startswith("c_{") else label
        ax.text(x[nid], 0, text, ha="center", va="center", fontsize=12, family="serif", zorder=4)
    seen: set[tuple[str, str]] = set()
    arcs = []  # (src, dst, op, below)
    for src, dst, op in cell.edges:
        arcs.append((src, dst, op, op == "" or (src, dst) in seen))  # a repeated pair goes under the line
        seen.add((src, dst))
    ends = {}  # where each arc meets its two boxes: spread over the half box, longer arcs further out
    for nid in ids:
        for side, below in ((0, False), (1, False), (0, True), (1, True)):
            mine = [a for a in arcs if a[3] == below and a[side] == nid]
            mine.sort(key=lambda a: ids.index(a[1]) - ids.index(a[0]), reverse=side == 0)
            for k, a in enumerate(mine):
                frac = (k + 1) / (len(mine) + 1)
                off = half[nid] * (0.15 + 0.75 * frac) * (1 if side == 0 else -1)
                ends[(a, side)] = x[nid] + (off if side == 0 else -half[nid] * (0.15 + 0.75 * (1 - frac)))
    for a in arcs:
        src, dst, op, below = a
        x1, x2, y = ends[(a, 0)], ends[(a, 1)], -BOX if below else BOX
        h = UNDER * (x2 - x1) / 2 if op == "" else _rise(cell, src, dst) - BOX
        rad = 2 * h / (x2 - x1)  # arc3 bends by rad * length at its control point: the apex is h off the line
        colour = FAMILY_COLOURS[op_family(op)]
        ax.add_patch(FancyArrowPatch((x1, y), (x2, y), shrinkA=0, shrinkB=0, arrowstyle="-|>", mutation_scale=13,
                                     connectionstyle=f"arc3,rad={rad if below else -rad}", color=colour,
                                     lw=1.0 if op == "" else 1.6, zorder=2, linestyle=":" if op == "none" else "-"))
        if op:
            ax.text((x1 + x2) / 2, y + (-h if below else h), op, ha="center", va="center", fontsize=9, color=colour,
                    zorder=5, bbox=dict(boxstyle="round,pad=0.18", facecolor="white", edgecolor=colour, lw=0.6,
                                        alpha=0.95))
    ax.set_title(cell.title, fontsize=12, loc="left")
    ax.set_aspect("equal")
    ax.axis("off")
