"""Architectures as data: the DARTS ``Genotype``, its safe text parser and printer, NAS-Bench-201
arch strings, and the published cells by name.

The text form is the one BPE's ``random_darts_generator.py`` writes (pt.darts style, one list of
``(op, input)`` pairs per node)::

    Genotype(normal=[[('sep_conv_3x3', 0), ('skip_connect', 1)], ...], normal_concat=range(2, 6),
             reduce=[[...], ...], reduce_concat=range(2, 6))

The flat form of DARTS, DARTS-PT and PertNAS (``normal=[('sep_conv_3x3', 0), ...]``, two pairs per
node) is read too. Text is parsed with :mod:`ast` and only ``Genotype``, ``range`` and literals are
accepted, so a results file can never become code (the seed code ran ``eval`` on it).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

# DARTS primitives in pt.darts / BPE order; 'none' is last, as DARTS' parse() assumes.
PRIMITIVES: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "none",
)
# Every op name a DARTS-space genotype may hold: DARTS-PT's S4 adds 'noise', PertNAS' op list sep_conv_7x7
# (models/ops.py builds both).
DARTS_OPS: tuple[str, ...] = PRIMITIVES + ("noise", "sep_conv_7x7")
# NAS-Bench-201 operations in the benchmark's order.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_NODES = 4  # input node + 3 computed nodes; 6 edges

Edge = tuple[str, int]
Node = tuple[Edge, ...]


class GenotypeError(ValueError):
    """A genotype text or arch string that cannot be read; the message says why."""


class Genotype(NamedTuple):
    """A DARTS cell pair: per intermediate node, the (op, input index) edges that feed it."""

    normal: tuple[Node, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Node, ...]
    reduce_concat: tuple[int, ...]

    def __str__(self) -> str:
        return format_genotype(self)


# ----------------------------------------------------------------------------- DARTS genotypes


def make_genotype(
    normal: Iterable, reduce: Iterable, normal_concat: Iterable[int] | None = None,
    reduce_concat: Iterable[int] | None = None, *, primitives: Sequence[str] = DARTS_OPS,
) -> Genotype:
    """Build a validated Genotype from nested or flat edge lists (flat lists pair up by node)."""
    n = _nodes(normal, "normal", primitives)
    r = _nodes(reduce, "reduce", primitives)
    nc = tuple(normal_concat) if normal_concat is not None else tuple(range(2, 2 + len(n)))
    rc = tuple(reduce_concat) if reduce_concat is not None else tuple(range(2, 2 + len(r)))
    for name, concat, nodes in (("normal_concat", nc, n), ("reduce_concat", rc, r)):
        bad = [i for i in concat if not isinstance(i, int) or not 0 <= i < 2 + len(nodes)]
        if bad or not concat:
            raise GenotypeError(f"{name} {list(concat)} must name states 0..{len(nodes) + 1}")
    return Genotype(n, nc, r, rc)


def _nodes(value: Iterable, field: str, primitives: Sequence[str]) -> tuple[Node, ...]:
    items = list(value)
    if not items:
        raise GenotypeError(f"{field} has no edges")
    if all(_is_edge(e) for e in items):  # flat DARTS form: two edges per node
        if len(items) % 2:
            raise GenotypeError(f"flat {field} list has {len(items)} edges; expected two per node")
        items = [items[i:i + 2] for i in range(0, len(items), 2)]
    nodes = []
    for k, node in enumerate(items):
        if _is_edge(node) or not isinstance(node, (list, tuple)) or not node:
            raise GenotypeError(f"{field} node {k} must be a list of (op, input) pairs, got {node!r}")
        edges = []
        for e in node:
            if not _is_edge(e):
                raise GenotypeError(f"{field} node {k}: {e!r} is not an (op, input) pair")
            op, src = e
            if op not in primitives:
                raise GenotypeError(f"{field} node {k}: unknown op {op!r}; allowed: {', '.join(primitives)}")
            if not 0 <= src < k + 2:
                raise GenotypeError(f"{field} node {k}: input {src} out of range 0..{k + 1}")
            edges.append((op, src))
        nodes.append(tuple(edges))
    return tuple(nodes)


def _is_edge(e: object) -> bool:
    return (isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str)
            and isinstance(e[1], int) and not isinstance(e[1], bool))


_FIELDS = Genotype._fields
# Bounds on what the parser builds: a DARTS cell text is a few hundred characters, ranges name a
# handful of states. A 6 MB line or range(2, 3000000000) is refused before it can exhaust memory.
MAX_TEXT = 20_000
MAX_ITEMS = 64


def parse_genotype(text: str, *, primitives: Sequence[str] = DARTS_OPS) -> Genotype:
    """Parse the text form (nested or flat) or a published cell's name; never executes code."""
    text = text.strip()
    if text in NAMED_GENOTYPES:
        return NAMED_GENOTYPES[text]
    if len(text) > MAX_TEXT:
        raise GenotypeError(f"genotype text of {len(text)} characters; at most {MAX_TEXT} are accepted")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise GenotypeError(f"not a Genotype(...) expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise GenotypeError("genotype text nested too deeply") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        known = ", ".join(sorted(NAMED_GENOTYPES)[:6])
        raise GenotypeError(f"expected 'Genotype(...)' or a known name (e.g. {known}, ...), got {text[:40]!r}")
    if len(tree.args) > len(_FIELDS):
        raise GenotypeError("Genotype takes at most 4 fields")
    values = dict(zip(_FIELDS, (_literal(a) for a in tree.args)))
    for kw in tree.keywords:
        if kw.arg not in _FIELDS:
            raise GenotypeError(f"unknown Genotype field {kw.arg!r}; allowed: {', '.join(_FIELDS)}")
        values[kw.arg] = _literal(kw.value)
    missing = [f for f in ("normal", "reduce") if f not in values]
    if missing:
        raise GenotypeError(f"Genotype lacks {', '.join(missing)}")
    return make_genotype(values["normal"], values["reduce"], values.get("normal_concat"),
                         values.get("reduce_concat"), primitives=primitives)


def _literal(node: ast.AST):
    """Evaluate only literals, lists, tuples and ``range(a, b)``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        if len(node.elts) > MAX_ITEMS:
            raise GenotypeError(f"a list of {len(node.elts)} items; at most {MAX_ITEMS} are accepted")
        return [_literal(e) for e in node.elts]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        bounds = [_literal(a) for a in node.args]
        if all(isinstance(b, int) for b in bounds):
            r = range(*bounds)
            if len(r) > MAX_ITEMS:
                raise GenotypeError(f"{ast.unparse(node)[:40]} has {len(r)} states; at most {MAX_ITEMS} are accepted")
            return list(r)
    raise GenotypeError(f"only literals, lists and range() are allowed, got {ast.unparse(node)[:40]!r}")


def format_genotype(g: Genotype) -> str:
    """The BPE text form; ``parse_genotype(format_genotype(g)) == g``."""
    def nodes(ns: Sequence[Node]) -> str:
        return "[" + ", ".join("[" + ", ".join(f"({op!r}, {i})" for op, i in n) + "]" for n in ns) + "]"

    def concat(c: Sequence[int]) -> str:
        c = list(c)
        if c == list(range(c[0], c[0] + len(c))):
            return f"range({c[0]}, {c[0] + len(c)})"
        return repr(c)

    return (f"Genotype(normal={nodes(g.normal)}, normal_concat={concat(g.normal_concat)}, "
            f"reduce={nodes(g.reduce)}, reduce_concat={concat(g.reduce_concat)})")


def read_genotype_file(path: str | Path) -> list[Genotype]:
    """Every non-blank, non-comment line of ``path`` as a Genotype; errors name file and line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenotypeError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\x00" in data:
        raise GenotypeError(f"{path}: a binary file, not genotype text")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise GenotypeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    out = []
    for no, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                out.append(parse_genotype(line))
            except GenotypeError as exc:
                raise GenotypeError(f"{path}:{no}: {exc}") from None
    if not out:
        raise GenotypeError(f"{path}: no genotype lines")
    return out


# ----------------------------------------------------------------------------- NAS-Bench-201


def parse_nb201(arch: str) -> tuple[tuple[tuple[str, int], ...], ...]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> per node, the (op, input) of each incoming edge."""
    arch = arch.strip()
    parts = arch.split("+")
    if len(parts) != NB201_NODES - 1:
        raise GenotypeError(f"NAS-Bench-201 arch {arch!r} must have {NB201_NODES - 1} '+'-separated nodes")
    nodes = []
    for k, part in enumerate(parts):
        if not (part.startswith("|") and part.endswith("|")):
            raise GenotypeError(f"NAS-Bench-201 node {part!r} must be written |op~i|...|")
        edges = []
        for tok in part[1:-1].split("|"):
            op, _, src = tok.partition("~")
            if op not in NB201_OPS:
                raise GenotypeError(f"unknown NAS-Bench-201 op {op!r}; allowed: {', '.join(NB201_OPS)}")
            if not src.isdigit():
                raise GenotypeError(f"NAS-Bench-201 edge {tok!r} must be op~input")
            edges.append((op, int(src)))
        if sorted(i for _, i in edges) != list(range(k + 1)):
            raise GenotypeError(f"NAS-Bench-201 node {k + 1} must take inputs 0..{k} once each")
        nodes.append(tuple(sorted(edges, key=lambda e: e[1])))
    return tuple(nodes)


def format_nb201(nodes: Sequence[Sequence[tuple[str, int]]]) -> str:
    """Inverse of :func:`parse_nb201`."""
    return "+".join("|" + "|".join(f"{op}~{i}" for op, i in node) + "|" for node in nodes)


def nb201_ops(arch: str) -> tuple[str, ...]:
    """The six edge ops of an arch string in edge order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    return tuple(op for node in parse_nb201(arch) for op, _ in node)


def nb201_from_ops(ops: Sequence[str]) -> str:
    """Arch string from the six edge ops in :func:`nb201_ops` order."""
    if len(ops) != 6:
        raise GenotypeError(f"NAS-Bench-201 needs 6 edge ops, got {len(ops)}")
    it = iter(ops)
    return format_nb201([[(next(it), i) for i in range(k + 1)] for k in range(NB201_NODES - 1)])


# ----------------------------------------------------------------------------- published cells

_NAMED_TEXT: dict[str, str] = {
    # DARTS (Liu et al., ICLR 2019), first and second order.
    "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
    "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
}
_NAMED_TEXT["DARTS"] = _NAMED_TEXT["DARTS_V2"]

NAMED_GENOTYPES: dict[str, Genotype] = {}


def _load_named() -> None:
    # The larger tables (BPE, DARTS-PT, PertNAS cells) live in a data file next to this module.
    table = Path(__file__).with_name("genotypes_published.txt")
    entries = dict(_NAMED_TEXT)
    if table.exists():
        for line in table.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, text = line.partition("=")
                entries[name.strip()] = text.strip()
    for name, text in entries.items():
        NAMED_GENOTYPES[name] = parse_genotype(text)


_load_named()

