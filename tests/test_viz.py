"""Cell diagrams: both renderers, every input form, labels that never collide, draw_cell.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import draw_cell
from genotypes import NAMED_GENOTYPES, GenotypeError
from nas import viz
from nas.cli import run_cli

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def _ink(png) -> float:
    """Fraction of pixels that are not (near) white: a blank or stub picture has almost none."""
    a = np.asarray(Image.open(png).convert("L"))
    return float((a < 200).mean())


def test_cells_of_every_input_form():
    darts = viz.cells_of("DARTS_V2")
    assert [c.title for c in darts] == ["normal cell", "reduction cell"]
    for c in darts:
        assert len([e for e in c.edges if e[2]]) == 8 and len([e for e in c.edges if not e[2]]) == 4
        assert [r for _, _, r in c.nodes] == ["input"] * 2 + ["inner"] * 4 + ["output"]
    assert viz.cells_of(str(NAMED_GENOTYPES["DARTS_V2"]))[0].edges == darts[0].edges
    (nb,) = viz.cells_of(NB201)
    assert len(nb.nodes) == 4 and len(nb.edges) == 6 and ("1", "3", "none") in nb.edges
    with pytest.raises(GenotypeError, match="known name"):
        viz.cells_of("NOT_A_CELL")


@pytest.mark.parametrize("arch", ["DARTS_V2", NB201])
def test_matplotlib_writes_png_and_pdf(tmp_path, arch):
    paths = viz.draw_genotype(arch, tmp_path / "cell", engine="matplotlib", title="t")
    assert [p.name for p in paths] == ["cell.png", "cell.pdf"]
    assert paths[1].read_bytes()[:4] == b"%PDF"
    w, h = Image.open(paths[0]).size
    assert w > 600 and h > 200 and _ink(paths[0]) > 0.02


@pytest.mark.parametrize("name", ["DARTS_V2", "DARTS_V1", "darts_pt_s3_1", "blank_pt_s1_2", "EA_BPE2", "RS_BPE1"])
def test_matplotlib_edge_labels_never_overlap(name):
    cells = viz.cells_of(name)
    fig = viz.matplotlib_figure(cells)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ops = {op for c in cells for *_, op in c.edges if op}
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text() in ops]
        assert len(boxes) == 8
        for i in range(len(boxes)):
            for j in range(i):
                assert not boxes[i].overlaps(boxes[j]), (name, ax.get_title(), i, j)


def test_auto_falls_back_to_matplotlib_without_dot(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert not viz.dot_available()
    (png,) = viz.draw_genotype(NB201, tmp_path / "c", formats=("png",))
    assert _ink(png) > 0.02


@pytest.mark.skipif(not viz.dot_available(), reason="graphviz (package and dot) not installed")
def test_graphviz_draws_as_darts_visualize(tmp_path):
    png, pdf = viz.draw_genotype("DARTS_V2", tmp_path / "g", engine="graphviz")
    assert _ink(png) > 0.02 and pdf.read_bytes()[:4] == b"%PDF"


def test_draw_cell_cli_reads_result_files(tmp_path, capsys):
    res = tmp_path / "projection.json"
    res.write_text(json.dumps({"genotype": NB201}))
    assert draw_cell.main(["--arch", str(res), "--out", str(tmp_path / "a"), "--engine", "matplotlib"]) == 0
    assert (tmp_path / "a.png").is_file() and (tmp_path / "a.pdf").is_file()
    run = tmp_path / "run_x_0.json"
    run.write_text(json.dumps({"best_genotype": [str(NAMED_GENOTYPES["DARTS_V2"])]}))
    assert draw_cell.main(["--arch", str(run), "--out", str(tmp_path / "b"), "--format", "png"]) == 0
    assert (tmp_path / "b.png").is_file() and not (tmp_path / "b.pdf").exists()
    assert run_cli(draw_cell.main, ["--arch", "NOPE", "--out", str(tmp_path / "c")]) == 1
    assert "known name" in capsys.readouterr().err


def test_a_cell_file_is_read_as_the_arch_files_are_indented_comments_included(tmp_path):
    f = tmp_path / "cells.txt"
    f.write_text("\n  # searched by run 3\nDARTS_V2\nDARTS_V1\n")
    assert viz.arch_from_source(str(f)) == "DARTS_V2"
