"""Checks against the real files of ../shared (slow: run with -m slow; skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

import genotypes as gt
from nas.spaces import NB201Space

SHARED = Path(__file__).resolve().parents[2] / "shared"
pytestmark = pytest.mark.slow


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"missing {path} (the workplace's ../shared data)")
    return path


def test_bpe_random_cells_round_trip_exactly():
    f = _need(SHARED / "bpe" / "random_darts_architecture.txt")
    lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
    genos = gt.read_genotype_file(f)
    assert len(genos) == len(lines) == 100
    assert [gt.format_genotype(g) for g in genos] == lines


def test_nb201_table_arch_strings_parse_and_cover_the_space():
    import csv

    f = _need(SHARED / "benchmarks" / "nb201_12epoch.csv")
    with f.open() as fh:
        archs = [row["arch_str"] for row in csv.DictReader(fh)]
    space = NB201Space()
    assert len(archs) == 15625
    assert {space.key(a) for a in archs} == set(space.enumerate())
