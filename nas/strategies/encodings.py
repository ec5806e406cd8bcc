"""How a strategy sees a space: integer vectors it samples, mutates and learns over.

NAS-Bench-201 and two-input DARTS cells use ``nas.spaces`` as they are (``SpaceEncoding``). BPE's RL and
EA search a *supernet genotype* instead (``BPECellEncoding``): every one of the 14 edges of a cell keeps
its input and carries one of the 7 non-'none' ops (BPE ``get_configuration_space``, run_rl.py 89-97: 28
categorical variables of 7 choices); ``parse_json.py`` then keeps two inputs per node.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from genotypes import Genotype, format_genotype, make_genotype
from nas.errors import ConfigError
from nas.spaces import N_NODES, DartsSpace, edge_index, get_space


class BPECellEncoding:
    """BPE's supernet genotype: per cell, 14 edges each with one non-'none' op (28 positions).

    Position order is BPE's ``for cell: for node in 2..5: for prev in 0..node-1``, which is the
    node-major ``edge_index`` order of ``nas.spaces``. Values index the edge's candidate ops with
    'none' removed; for S5 that is ``PRIMITIVES[:7]``, BPE's exact indices.
    """

    kind = "darts"

    def __init__(self, space: DartsSpace):
        self.space = space
        self.name = f"{space.name}-bpe"
        self.n_edges = sum(range(2, N_NODES + 2))
        self.ops = [space.edge_ops[c][e] for c in ("normal", "reduce") for e in range(self.n_edges)]

    def choice_sizes(self) -> list[int]:
        return [len(o) for o in self.ops]

    def decode(self, vec: Sequence[int], keep: Sequence[bool] | None = None) -> Genotype:
        """Vector -> Genotype with every input of every node (or only the edges where ``keep``)."""
        if len(vec) != len(self.ops):
            raise ValueError(f"BPE cell encoding has {len(self.ops)} entries, got {len(vec)}")
        bad = [(p, v) for p, v in enumerate(vec) if not 0 <= int(v) < len(self.ops[p])]
        if bad:
            p, v = bad[0]
            raise ValueError(f"sample entry {p} is {v}; allowed 0..{len(self.ops[p]) - 1} (ops of that edge)")
        cells = []
        for c in range(2):
            nodes = []
            for k in range(N_NODES):
                node = []
                for s in range(k + 2):
                    p = c * self.n_edges + edge_index(k, s)
                    if keep is None or keep[p]:
                        node.append((self.ops[p][int(vec[p])], s))
                nodes.append(node)
            cells.append(nodes)
        return make_genotype(cells[0], cells[1])

    def encode(self, g: Genotype) -> list[int]:
        """A full supernet genotype (every node keeps all inputs) -> vector."""
        vec = [0] * len(self.ops)
        for c, nodes in enumerate((g.normal, g.reduce)):
            for k, node in enumerate(nodes):
                if sorted(s for _, s in node) != list(range(k + 2)):
                    raise ValueError(f"node {k} must keep all {k + 2} inputs in the BPE supernet encoding")
                for op, s in node:
                    p = c * self.n_edges + edge_index(k, s)
                    vec[p] = self.ops[p].index(op)
        return vec

    def sample(self, rng: random.Random) -> Genotype:
        return self.decode([rng.randrange(n) for n in self.choice_sizes()])

    def mutate(self, g: Genotype, rng: random.Random) -> Genotype:
        """BPE ``mutate_arch``: one variable gets a different op."""
        vec = self.encode(g)
        p = rng.randrange(len(vec))
        vec[p] = rng.choice([i for i in range(len(self.ops[p])) if i != vec[p]] or [vec[p]])
        return self.decode(vec)

    def key(self, g: Genotype) -> str:
        return format_genotype(g)

    def format(self, g: Genotype) -> str:
        return format_genotype(g)


class SpaceEncoding:
    """A ``nas.spaces`` space used as it is (NB201 strings, two-input DARTS cells)."""

    def __init__(self, space: Any):
        self.space = space
        self.kind = space.kind
        self.name = space.name

    def choice_sizes(self) -> list[int]:
        return self.space.choice_sizes()

    def encode(self, arch: Any) -> list[int]:
        return self.space.encode(arch)

    def decode(self, vec: Sequence[int]) -> Any:
        return self.space.decode(vec)

    def sample(self, rng: random.Random) -> Any:
        return self.space.sample(rng)

    def mutate(self, arch: Any, rng: random.Random) -> Any:
        return self.space.mutate(arch, rng)

    def key(self, arch: Any) -> str:
        return self.space.key(arch)

    def format(self, arch: Any) -> str:
        return self.space.format(arch)


ENCODINGS = ("auto", "bpe", "pair")


def make_encoding(space_name: str, encoding: str = "auto") -> BPECellEncoding | SpaceEncoding:
    """``bpe`` (supernet genotype, DARTS default) or ``pair`` (two-input cells) for DARTS spaces."""
    space = get_space(space_name)
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown --encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    if space.kind == "nb201":
        if encoding == "bpe":
            raise ConfigError("--encoding bpe is for DARTS spaces; NB201 has one encoding")
        return SpaceEncoding(space)
    return SpaceEncoding(space) if encoding == "pair" else BPECellEncoding(space)
