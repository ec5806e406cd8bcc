"""De-isomorphism of NAS-Bench-201 cells as aw_nas does it (Ning et al., NeurIPS 2021).

``canonicalize`` is aw_nas ``NasBench201SearchSpace.canonicalize`` (``aw_nas/btcs/nasbench_201.py`` 82-107)
line for line: every node is the sorted concatenation of its incoming terms, a 'none' edge (or an edge out
of a dead node 1) gives ``"#"``, skip passes the source string through, any other op wraps it as
``"(src)@op"``; the output node's string is the computation's canonical form. Two cells compute the same
function iff their strings are equal; the whole space has 6,466 classes (aw_nas ``tests/test_nasbench201.py``
260-294 and its ``non-isom.txt``). ``check_valid_arch`` is aw_nas' ``NasBench201RSController.check_valid_arch``
(518-540): some conv on an edge from an input-reachable node to an output-reaching node.

aw_nas reads its list of class representatives from a file outside its repository (``non-isom.txt``); here
the representative of a class is its first member in ``NB201Space.enumerate()`` order (op indices counted
like digits, edge 1<-0 most significant), a documented choice.
"""

from __future__ import annotations

import functools
from typing import Sequence

from genotypes import NB201_OPS, nb201_ops
from nas.spaces import NB201Space

# aw_nas' arch matrix is arch[to][from]; NB201 edge order is np.tril_indices(4, -1): (1,0),(2,0),(2,1),(3,0),...
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_VERTICES = 4


def _matrix(arch: str | Sequence[int]) -> list[list[int]]:
    """aw_nas' 4x4 lower-triangular op-index matrix of an arch string (or of 6 op indices)."""
    idx = [NB201_OPS.index(o) for o in nb201_ops(arch)] if isinstance(arch, str) else [int(i) for i in arch]
    m = [[0] * N_VERTICES for _ in range(N_VERTICES)]
    for (to, fr), k in zip(EDGES, idx):
        m[to][fr] = k
    return m


def canonicalize(arch: str | Sequence[int]) -> str:
    """aw_nas' canonical string of a cell: equal strings = isomorphic cells (nasbench_201.py 82-107)."""
    m = _matrix(arch)
    S = ["0"]
    res = ""
    for i in range(1, N_VERTICES):
        pre = []
        for j in range(i):
            if m[i][j] == 0 or S[j] == "#":
                s = "#"
            elif m[i][j] == 1:
                s = S[j]
            else:
                s = "(" + S[j] + ")" + "@" + NB201_OPS[m[i][j]]
            pre.append(s)
        pre.sort()  # the node sums its inputs: order does not matter
        s = "".join(pre)
        S.append(s)
        res = s
    return res


def _reachable(m: list[list[int]]) -> tuple[list[int], list[int]]:
    """aw_nas' valid_input (nodes the input reaches) and valid_output (nodes that reach the output); its loops
    append while iterating, so the lists can hold duplicates (harmless)."""
    valid_input = [0]
    for to in range(1, N_VERTICES):
        for inp in valid_input:
            if m[to][inp] > 0:
                valid_input.append(to)
                break
    valid_output = [N_VERTICES - 1]
    for fr in range(N_VERTICES - 2, -1, -1):
        for out in valid_output:
            if m[out][fr] > 0:
                valid_output.append(fr)
    return valid_input, valid_output


def check_valid_arch(arch: str | Sequence[int]) -> bool:
    """aw_nas' sampling filter: a conv on an edge between an input-reachable and an output-reaching node."""
    m = _matrix(arch)
    valid_input, valid_output = _reachable(m)
    return any("conv" in NB201_OPS[m[o][i]] for i in valid_input for o in valid_output)


def live_edges(arch: str) -> list[bool]:
    """Per edge: does aw_nas' supernet run it (``from`` reachable from the input, ``to`` reaching the output;
    ``NB201SharedCell.forward`` / ``NB201CandidateNet.__init__``, nasbench_201.py 2231-2259, 2328-2341)."""
    valid_input, valid_output = _reachable(_matrix(arch))
    return [fr in valid_input and to in valid_output for to, fr in EDGES]


@functools.lru_cache(maxsize=1)
def iso_classes() -> dict[str, tuple[str, ...]]:
    """Canonical string -> member arch strings (enumeration order); 6,466 classes over 15,625 cells."""
    out: dict[str, list[str]] = {}
    for vec_arch in NB201Space().enumerate():
        out.setdefault(canonicalize(vec_arch), []).append(vec_arch)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=1)
def _rep_of_canon() -> dict[str, str]:
    return {k: v[0] for k, v in iso_classes().items()}


def representative(arch: str) -> str:
    """The arch string standing for ``arch``'s class (its first member in enumeration order)."""
    return _rep_of_canon()[canonicalize(arch)]


def deiso_list(*, valid_only: bool = False) -> list[str]:
    """One representative per class (aw_nas' ``non-isom.txt`` analogue); ``valid_only``: those passing
    ``check_valid_arch`` (6,321 classes; the check agrees within every class)."""
    reps = list(_rep_of_canon().values())
    return [a for a in reps if check_valid_arch(a)] if valid_only else reps
