"""What a search and its projection leave for TensorBoard and for readers: tags, steps from 1, cell diagrams."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import project
import search


def _events(folder: Path) -> EventAccumulator:
    ea = EventAccumulator(str(folder))
    ea.Reload()
    return ea


def test_search_and_projection_logs(tmp_path, tiny_folder, one_thread):
    common = ["--data_path", str(tiny_folder), "--device", "cpu", "--quiet"]
    assert search.main(["--space", "nb201", "--method", "darts", "--epochs", "2", "--layers", "1", "--init_channels",
                        "4", "--image_size", "8", "--batch_size", "8", "--name", "r", "--save_path", str(tmp_path),
                        *common]) == 0
    run = tmp_path / "r"
    ea = _events(run / "tb")
    assert [e.step for e in ea.Scalars("search/valid_acc")] == [1, 2]  # epochs counted from 1
    alpha_runs = sorted(p.name for p in (run / "tb").iterdir() if p.name.startswith("alpha_cell_edge00_"))
    assert len(alpha_runs) == 5  # every op of edge 0, one curve each, every epoch
    assert [e.step for e in _events(run / "tb" / alpha_runs[0]).Scalars("alpha/cell/edge00")] == [1, 2]

    assert project.main(["--resume_expid", str(run), "--proj_intv", "1", *common]) == 0
    ea = _events(run / "tb" / "projection")
    assert [e.step for e in ea.Scalars("projection/tune_valid_acc")] == [1, 2, 3, 4, 5]
    decisions = ea.Tensors("projection/decisions/text_summary")
    assert [e.step for e in decisions] == [1, 2, 3, 4, 5, 6]
    assert b"cell edge" in decisions[0].tensor_proto.string_val[0]
    for name in ("search_cell", "projection_cell"):
        assert (run / f"{name}.png").stat().st_size > 1000 and (run / f"{name}.pdf").is_file()
