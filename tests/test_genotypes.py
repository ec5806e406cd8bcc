"""Genotype text: safe parsing, exact round-trip, clear errors; NAS-Bench-201 arch strings."""

from __future__ import annotations

import pytest

import genotypes as gt

BPE_LINE = ("Genotype(normal=[[('dil_conv_5x5', 0), ('sep_conv_3x3', 1)], [('skip_connect', 0), ('avg_pool_3x3', 1)], "
            "[('sep_conv_3x3', 2), ('max_pool_3x3', 0)], [('skip_connect', 3), ('dil_conv_5x5', 2)]], "
            "normal_concat=range(2, 6), reduce=[[('sep_conv_5x5', 0), ('max_pool_3x3', 1)], [('skip_connect', 0), "
            "('sep_conv_5x5', 2)], [('avg_pool_3x3', 0), ('sep_conv_5x5', 1)], [('sep_conv_3x3', 2), "
            "('max_pool_3x3', 4)]], reduce_concat=range(2, 6))")


def test_bpe_text_round_trips_exactly():
    g = gt.parse_genotype(BPE_LINE)
    assert gt.format_genotype(g) == BPE_LINE
    assert gt.parse_genotype(str(g)) == g
    assert g.normal[3] == (("skip_connect", 3), ("dil_conv_5x5", 2))
    assert g.normal_concat == (2, 3, 4, 5)


def test_flat_darts_form_is_paired_by_node():
    g = gt.NAMED_GENOTYPES["DARTS_V2"]
    assert len(g.normal) == 4 and all(len(n) == 2 for n in g.normal)
    assert g.normal[2] == (("sep_conv_3x3", 1), ("skip_connect", 0))
    assert gt.parse_genotype(gt.format_genotype(g)) == g


def test_published_cells_all_parse():
    names = ("DARTS_V1", "DARTS_V2", "EA_BPE1", "RL_BPE2", "darts_pt_s5_0", "blank_pt_s2_1", "EVAL_BEST_EVOLUTIONARY")
    for name in names:
        assert name in gt.NAMED_GENOTYPES
        assert gt.parse_genotype(name) == gt.NAMED_GENOTYPES[name]


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os').system('echo pwned')", "expected 'Genotype(...)'"),
    ("Genotype(normal=[('sep_conv_3x3', 0)] * 8, reduce=[])", "only literals"),
    ("Genotype(normal=open('x'), reduce=[])", "only literals"),
    (BPE_LINE.replace("dil_conv_5x5', 0", "conv_9x9', 0"), "unknown op 'conv_9x9'"),
    (BPE_LINE.replace("('skip_connect', 3)", "('skip_connect', 7)"), "input 7 out of range"),
    (BPE_LINE.replace("normal_concat", "normal_cat"), "unknown Genotype field"),
    ("Genotype(normal=[[('sep_conv_3x3', 0)]]", "not a Genotype"),
])
def test_bad_text_is_rejected_with_reason(text, fragment):
    with pytest.raises(gt.GenotypeError, match=None) as exc:
        gt.parse_genotype(text)
    assert fragment in str(exc.value)


def test_file_errors_name_file_and_line(tmp_path):
    f = tmp_path / "cells.txt"
    f.write_text(BPE_LINE + "\n\n# comment\n" + BPE_LINE.replace("avg_pool_3x3', 1", "avgpool', 1") + "\n")
    with pytest.raises(gt.GenotypeError, match=r"cells\.txt:4: .*unknown op 'avgpool'"):
        gt.read_genotype_file(f)
    f.write_text(BPE_LINE + "\n")
    assert len(gt.read_genotype_file(f)) == 1
    with pytest.raises(gt.GenotypeError, match="cannot read"):
        gt.read_genotype_file(tmp_path / "missing.txt")


def test_nb201_strings():
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    assert gt.format_nb201(gt.parse_nb201(arch)) == arch
    ops = gt.nb201_ops(arch)
    assert ops == ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "skip_connect")
    assert gt.nb201_from_ops(ops) == arch
    for bad in ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|",
                "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"):
        with pytest.raises(gt.GenotypeError, match=r"NAS-Bench-201|op|node|edge|input|arch"):
            gt.parse_nb201(bad)
