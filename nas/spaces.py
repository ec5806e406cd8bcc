"""Search spaces: the DARTS space, DARTS-PT's S1-S5, and NAS-Bench-201.

Two names for the DARTS cell, each what its paper searches: ``darts`` is pt.darts' space as BPE's
search.py uses it (8 candidates per edge, ``'none'`` included, genotypes.py 9-18 there); ``s5`` is
DARTS-PT's (sota/cnn/spaces.py 80-92: the same 7 ops with ``'none'`` left out). Discrete cells never
hold ``'none'``, so the two differ only in the supernet (the softmax, the alpha dynamics and what
projection can pick).

Every space turns an architecture into a vector of integer choices and back (what an RL controller
samples and evolution mutates), samples and mutates with a caller's ``random.Random``, and
enumerates itself where finite. Architectures are ``Genotype`` (DARTS) or arch strings (NB201).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from genotypes import (
    NB201_OPS,
    PRIMITIVES,
    Genotype,
    GenotypeError,
    format_genotype,
    make_genotype,
    nb201_from_ops,
    nb201_ops,
    parse_genotype,
)
from nas.errors import ConfigError
from nas.io import read_text_file

N_NODES = 4  # intermediate nodes of a DARTS cell
N_EDGES = sum(range(2, N_NODES + 2))  # 14 candidate edges per cell


def edge_index(node: int, src: int) -> int:
    """Position of edge ``src -> node`` among the 14 edges (node-major, as DARTS' alphas)."""
    return sum(range(2, node + 2)) + src


# DARTS-PT's reduced spaces (Zela et al. 2020, as in DARTS-PT ``sota/cnn/spaces.py``): per edge the
# candidate ops, for the normal and the reduction cell. S5 is the full DARTS space.
_S1_NORMAL = [["skip_connect", "dil_conv_3x3"], ["skip_connect", "dil_conv_5x5"], ["skip_connect", "dil_conv_5x5"],
              ["skip_connect", "sep_conv_3x3"], ["skip_connect", "dil_conv_3x3"], ["max_pool_3x3", "skip_connect"],
              ["skip_connect", "sep_conv_3x3"], ["skip_connect", "sep_conv_3x3"], ["skip_connect", "dil_conv_3x3"],
              ["skip_connect", "sep_conv_3x3"], ["max_pool_3x3", "skip_connect"], ["skip_connect", "dil_conv_3x3"],
              ["dil_conv_3x3", "dil_conv_5x5"], ["dil_conv_3x3", "dil_conv_5x5"]]
_S1_REDUCE = [["max_pool_3x3", "avg_pool_3x3"], ["max_pool_3x3", "dil_conv_3x3"], ["max_pool_3x3", "avg_pool_3x3"],
              ["max_pool_3x3", "avg_pool_3x3"], ["skip_connect", "dil_conv_5x5"], ["max_pool_3x3", "avg_pool_3x3"],
              ["max_pool_3x3", "sep_conv_3x3"], ["skip_connect", "dil_conv_3x3"], ["skip_connect", "dil_conv_5x5"],
              ["max_pool_3x3", "avg_pool_3x3"], ["max_pool_3x3", "avg_pool_3x3"], ["skip_connect", "dil_conv_5x5"],
              ["skip_connect", "dil_conv_5x5"], ["skip_connect", "dil_conv_5x5"]]
_FULL = [op for op in PRIMITIVES]  # pt.darts / BPE: 7 ops and 'none' last
_S5 = [op for op in PRIMITIVES if op != "none"]  # DARTS-PT: 'none' commented out

DARTS_SPACE_OPS: dict[str, tuple[list[list[str]], list[list[str]]]] = {
    "s1": (_S1_NORMAL, _S1_REDUCE),
    "s2": ([["skip_connect", "sep_conv_3x3"]] * N_EDGES,) * 2,
    "s3": ([["none", "skip_connect", "sep_conv_3x3"]] * N_EDGES,) * 2,
    "s4": ([["noise", "sep_conv_3x3"]] * N_EDGES,) * 2,
    "s5": ([_S5] * N_EDGES,) * 2,
    "darts": ([_FULL] * N_EDGES,) * 2,
}


class DartsSpace:
    """A DARTS cell pair: 4 nodes, each picks 2 distinct inputs and an op per input.

    Encoding (per cell, normal then reduce; per node k): ``[in_a, op_a, in_b, op_b]`` where ``in``
    is 0..k+1 and ``op`` indexes the candidate list of that edge with 'none' left out (a chosen
    edge never holds 'none'). Vector length 2 * 4 * 4 = 32.
    """

    kind = "darts"

    def __init__(self, name: str = "s5", *, n_nodes: int = N_NODES):
        name = name.lower()
        if name not in DARTS_SPACE_OPS:
            raise ConfigError(f"unknown DARTS space {name!r}; allowed: {', '.join(DARTS_SPACE_OPS)}")
        if n_nodes != N_NODES:
            raise ValueError("only 4-node DARTS cells are supported")
        self.name = name
        self.n_nodes = n_nodes
        normal, reduce = DARTS_SPACE_OPS[name]
        # candidate ops per (cell, edge), 'none' excluded from what a discrete cell may hold
        self.edge_ops = {
            "normal": [[o for o in ops if o != "none"] for ops in normal],
            "reduce": [[o for o in ops if o != "none"] for ops in reduce],
        }
        self.supernet_ops = {"normal": [list(o) for o in normal], "reduce": [list(o) for o in reduce]}

    # -- encoding -----------------------------------------------------------------------------
    def choice_sizes(self) -> list[int]:
        """Number of options of each position of the encoding (input slots shrink per node)."""
        sizes = []
        for cell in ("normal", "reduce"):
            for k in range(self.n_nodes):
                n_op = max(len(self.edge_ops[cell][edge_index(k, s)]) for s in range(k + 2))
                sizes += [k + 2, n_op, k + 2, n_op]
        return sizes

    def encode(self, g: Genotype) -> list[int]:
        """Genotype -> integer vector (see class doc)."""
        vec = []
        for cell, nodes in (("normal", g.normal), ("reduce", g.reduce)):
            for k, node in enumerate(nodes):
                if len(node) != 2:
                    raise ValueError(f"{cell} node {k} has {len(node)} inputs; the DARTS space needs 2")
                for op, src in node:
                    ops = self.edge_ops[cell][edge_index(k, src)]
                    if op not in ops:
                        raise ValueError(f"op {op!r} is not in space {self.name} for {cell} edge {src}->{k + 2}")
                    vec += [src, ops.index(op)]
        return vec

    def decode(self, vec: Sequence[int]) -> Genotype:
        """Integer vector -> Genotype (ValueError naming an out-of-range entry)."""
        if len(vec) != 4 * self.n_nodes * 2:
            raise ValueError(f"DARTS encoding has {4 * self.n_nodes * 2} entries, got {len(vec)}")
        cells = []
        it = iter(vec)
        for cell in ("normal", "reduce"):
            nodes = []
            for k in range(self.n_nodes):
                node = []
                for _ in range(2):
                    src, op = int(next(it)), int(next(it))
                    if not 0 <= src < k + 2:
                        raise ValueError(f"{cell} node {k}: input {src} out of range 0..{k + 1}")
                    ops = self.edge_ops[cell][edge_index(k, src)]
                    if not 0 <= op < len(ops):
                        raise ValueError(f"{cell} node {k}: op index {op} out of range 0..{len(ops) - 1}")
                    node.append((ops[op], src))
                nodes.append(node)
            cells.append(nodes)
        return make_genotype(cells[0], cells[1])

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Genotype:
        """Uniform: two distinct inputs per node, a uniform op on each."""
        cells = []
        for cell in ("normal", "reduce"):
            nodes = []
            for k in range(self.n_nodes):
                srcs = rng.sample(range(k + 2), 2)
                nodes.append([(rng.choice(self.edge_ops[cell][edge_index(k, s)]), s) for s in srcs])
            cells.append(nodes)
        return make_genotype(cells[0], cells[1])

    def mutate(self, g: Genotype, rng: random.Random) -> Genotype:
        """Change one op or one input of one node (regularized evolution, Real et al. 2019)."""
        cells = {"normal": [list(n) for n in g.normal], "reduce": [list(n) for n in g.reduce]}
        cell = rng.choice(("normal", "reduce"))
        k = rng.randrange(self.n_nodes)
        j = rng.randrange(2)
        op, src = cells[cell][k][j]
        other = cells[cell][k][1 - j][1]
        if rng.random() < 0.5:  # op mutation
            choices = [o for o in self.edge_ops[cell][edge_index(k, src)] if o != op]
            if choices:
                cells[cell][k][j] = (rng.choice(choices), src)
                return make_genotype(cells["normal"], cells["reduce"])
        srcs = [s for s in range(k + 2) if s not in (src, other)]
        if not srcs:  # node 0 has only two inputs: mutate the op instead
            choices = [o for o in self.edge_ops[cell][edge_index(k, src)] if o != op] or [op]
            cells[cell][k][j] = (rng.choice(choices), src)
        else:
            s = rng.choice(srcs)
            ops = self.edge_ops[cell][edge_index(k, s)]
            cells[cell][k][j] = (op if op in ops else rng.choice(ops), s)
        return make_genotype(cells["normal"], cells["reduce"])

    def key(self, g: Genotype) -> str:
        """Canonical text of an architecture (order of a node's two inputs does not matter)."""
        def canon(nodes):
            return [sorted(n, key=lambda e: (e[1], e[0])) for n in nodes]
        return format_genotype(make_genotype(canon(g.normal), canon(g.reduce), g.normal_concat, g.reduce_concat))

    def parse(self, text: str) -> Genotype:
        return parse_genotype(text)

    def format(self, g: Genotype) -> str:
        return format_genotype(g)


class NB201Space:
    """NAS-Bench-201: 6 edges, each one of 5 ops; 15,625 cells. Encoding: 6 op indices."""

    kind = "nb201"
    name = "nb201"
    ops = NB201_OPS
    n_edges = 6

    def choice_sizes(self) -> list[int]:
        return [len(self.ops)] * self.n_edges

    def encode(self, arch: str) -> list[int]:
        return [self.ops.index(o) for o in nb201_ops(arch)]

    def decode(self, vec: Sequence[int]) -> str:
        if len(vec) != self.n_edges:
            raise ValueError(f"NB201 encoding has 6 entries, got {len(vec)}")
        if any(not 0 <= int(i) < len(self.ops) for i in vec):
            raise ValueError(f"NB201 encoding entries must be 0..{len(self.ops) - 1}, got {list(vec)}")
        return nb201_from_ops([self.ops[int(i)] for i in vec])

    def sample(self, rng: random.Random) -> str:
        return self.decode([rng.randrange(len(self.ops)) for _ in range(self.n_edges)])

    def mutate(self, arch: str, rng: random.Random) -> str:
        """Change the op of one edge to a different op (REA on NAS-Bench-201, Dong & Yang 2020)."""
        vec = self.encode(arch)
        e = rng.randrange(self.n_edges)
        vec[e] = rng.choice([i for i in range(len(self.ops)) if i != vec[e]])
        return self.decode(vec)

    def enumerate(self) -> Iterator[str]:
        for vec in itertools.product(range(len(self.ops)), repeat=self.n_edges):
            yield self.decode(vec)

    def key(self, arch: str) -> str:
        return self.decode(self.encode(arch))

    def parse(self, text: str) -> str:
        return self.key(text)

    def format(self, arch: str) -> str:
        return arch


SPACES = ("nb201", "darts", "s1", "s2", "s3", "s4", "s5")


def get_space(name: str) -> DartsSpace | NB201Space:
    """``nb201``, ``darts`` (pt.darts/BPE, with 'none') or ``s1``..``s5`` (DARTS-PT's; S5 without 'none')."""
    key = str(name).lower()
    if key == "nb201":
        return NB201Space()
    if key in DARTS_SPACE_OPS:
        return DartsSpace(key)
    raise ConfigError(f"unknown space {name!r}; allowed: {', '.join(SPACES)}")


def parse_alphas(alpha_rows: Sequence[Sequence[float]], *, n_nodes: int = N_NODES, k: int = 2,
                 primitives: Sequence[str] = PRIMITIVES) -> list[list[tuple[str, int]]]:
    """DARTS' parse (pt.darts ``parse``/BPE ``parse_numpy``): per node, the best non-'none' op of each
    incoming edge, then the ``k`` edges whose best op weighs most. ``alpha_rows``: 14 x len(primitives)."""
    if primitives[-1] != "none":
        raise ValueError("parse_alphas expects 'none' as the last primitive, as DARTS")
    nodes, start = [], 0
    for node in range(n_nodes):
        rows = [list(r) for r in alpha_rows[start:start + node + 2]]
        start += node + 2
        best = [max(range(len(primitives) - 1), key=lambda j, r=r: r[j]) for r in rows]  # ignore 'none'
        strength = [r[b] for r, b in zip(rows, best)]
        # stable descending order, as torch.topk returns the largest first
        chosen = sorted(range(len(rows)), key=lambda e: -strength[e])[:k]
        nodes.append([(primitives[best[e]], e) for e in chosen])
    return nodes


def bpe_random_genotype(rs) -> Genotype:
    """One cell pair as BPE's ``random_darts_generator.py``: Gaussian 'alphas' (28 x 8) parsed by DARTS' rule.

    ``rs`` is a ``numpy.random.RandomState``; normal rows are drawn first, then reduce, in one call.
    """
    w = rs.randn(2 * N_EDGES, len(PRIMITIVES))
    return make_genotype(parse_alphas(w[:N_EDGES]), parse_alphas(w[N_EDGES:]))


def bpe_random_genotypes_text(n: int, seed: int) -> str:
    """``n`` random cells of seed ``seed``, one genotype per line: what random_darts_generator.py writes."""
    rs = np.random.RandomState(seed)
    return "".join(format_genotype(bpe_random_genotype(rs)) + "\n" for _ in range(n))


def arch_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, text) of each architecture line of a text file: blank lines and # comments skipped."""
    lines = ((i, line.strip()) for i, line in enumerate(read_text_file(path).splitlines(), 1))
    return [(i, line) for i, line in lines if line and not line.startswith("#")]


def read_arch_file(path: str | Path, space: DartsSpace | NB201Space) -> list:
    """The architectures of a text file, one per line (blank lines and # comments skipped), parsed by ``space``;
    a bad line is a GenotypeError naming file and line, a binary or huge file a NASError, an empty one a ConfigError."""
    out = []
    for i, line in arch_lines(path):
        try:
            out.append(space.parse(line))
        except ValueError as exc:
            raise GenotypeError(f"{path}:{i}: {exc}") from None
    if not out:
        raise ConfigError(f"{path}: no architectures in the file")
    return out
