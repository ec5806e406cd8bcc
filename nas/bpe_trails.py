"""The BPE paper's released trails (``Search_Hyperparameters_Results.xlsx``) and the importance of its knobs.

Zheng et al., "Rethinking Performance Estimation in Neural Architecture Search" (CVPR 2020) trained
the same 100 random DARTS cells under 32 budget settings. Sheet ``Hyperparameters Search`` holds one
column per setting (``Task1``..``Task32``): the 8 knobs in its first rows, the 100 accuracies
(``arch_01``..``arch_100``), then ``Mean``, ``Std.``, ``Correlation`` (Spearman with the ground
truth) and ``MeanTime(GPU Hours)`` per cell. Sheet ``Ground_truth`` holds ``Arch_1``..``Arch_100``
with their genotype and full-training accuracy. Rows are matched by the number in their label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from nas import ranking

SEARCH_SHEET = "Hyperparameters Search"
TRUTH_SHEET = "Ground_truth"
KNOBS = ("epoch", "batchsize", "learning rate", "n_layers", "fp", "channels", "cutout_len", "image_size")
_ARCH = re.compile(r"^arch_0*(\d+)$", re.IGNORECASE)


@dataclass
class Trails:
    """The parsed workbook: per setting its knobs, accuracies, and the sheet's own summary rows."""

    tasks: list[str]
    knobs: dict[str, dict[str, float]]  # task -> knob -> value
    acc: dict[str, list[float]]  # task -> accuracy of arch 1..n (ordered like ``arch_ids``)
    arch_ids: list[int]
    truth: list[float]
    genotypes: list[str]
    sheet: dict[str, dict[str, float]]  # task -> {'mean', 'std', 'correlation', 'gpu_hours'}


def _sheets(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        book = pd.read_excel(path, sheet_name=None, header=None)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the same user problem
        raise ValueError(f"{path}: not a readable xlsx ({type(exc).__name__}: {exc})") from None
    for name in (SEARCH_SHEET, TRUTH_SHEET):
        if name not in book:
            raise ValueError(f"{path}: no sheet {name!r}; sheets: {', '.join(book)}")
    return book


def _label(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()


def read_ground_truth(path: str | Path) -> dict[int, tuple[str, float]]:
    """Sheet Ground_truth as {arch number: (genotype text, accuracy)}."""
    path = Path(path)
    gt = _sheets(path)[TRUTH_SHEET]
    out: dict[int, tuple[str, float]] = {}
    for _, row in gt.iterrows():
        m = _ARCH.match(_label(row.iloc[0]))
        if m:
            out[int(m.group(1))] = (_label(row.iloc[1]), float(row.iloc[2]))
    if not out:
        raise ValueError(f"{path}: sheet {TRUTH_SHEET!r} has no Arch_N rows")
    return out


def read_trails(path: str | Path) -> Trails:
    """Parse both sheets, checking that every setting has the knobs, the summary rows and all archs."""
    path = Path(path)
    book = _sheets(path)
    hs = book[SEARCH_SHEET]
    labels = [_label(v) for v in hs.iloc[:, 0]]
    header_row = next((i for i in range(len(hs)) if any(_label(v).lower().startswith("task")
                                                        for v in hs.iloc[i, 1:])), None)
    if header_row is None:
        raise ValueError(f"{path}: sheet {SEARCH_SHEET!r} has no Task1..TaskN header row")
    cols = [j for j in range(1, hs.shape[1]) if _label(hs.iloc[header_row, j]).lower().startswith("task")]
    tasks = [_label(hs.iloc[header_row, j]) for j in cols]

    def row_of(name: str) -> int:
        for i, lab in enumerate(labels):
            if lab.lower() == name.lower():
                return i
        raise ValueError(f"{path}: sheet {SEARCH_SHEET!r} has no row {name!r}")

    knob_rows = {k: row_of(k) for k in KNOBS}
    summary = {"mean": row_of("Mean"), "std": row_of("Std."), "correlation": row_of("Correlation"),
               "gpu_hours": row_of("MeanTime(GPU Hours)")}
    arch_rows = {int(m.group(1)): i for i, lab in enumerate(labels) if (m := _ARCH.match(lab))}
    truth_map = read_ground_truth(path)
    ids = sorted(arch_rows)
    missing = [a for a in ids if a not in truth_map]
    if missing:
        raise ValueError(f"{path}: arch_{missing[0]} has no Arch_{missing[0]} in sheet {TRUTH_SHEET!r}")

    def num(i: int, j: int, what: str) -> float:
        try:
            return float(hs.iloc[i, j])
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {SEARCH_SHEET!r} {what} of {_label(hs.iloc[header_row, j])} "
                             f"is not a number: {hs.iloc[i, j]!r}") from None

    knobs = {t: {k: num(r, j, k) for k, r in knob_rows.items()} for t, j in zip(tasks, cols)}
    acc = {t: [num(arch_rows[a], j, f"arch_{a}") for a in ids] for t, j in zip(tasks, cols)}
    sheet = {t: {k: num(r, j, k) for k, r in summary.items()} for t, j in zip(tasks, cols)}
    return Trails(tasks, knobs, acc, ids, [truth_map[a][1] for a in ids], [truth_map[a][0] for a in ids], sheet)


def evaluate_trails(trails: Trails, ks: Sequence[float] = ranking.DEFAULT_KS) -> list[dict[str, Any]]:
    """Every setting's criteria against the ground truth, beside its knobs and the sheet's own numbers."""
    rows = []
    for t in trails.tasks:
        r = ranking.evaluate_all(trails.acc[t], trails.truth, ks, setting=t)
        r["sheet_correlation"] = trails.sheet[t]["correlation"]
        r["spearman_minus_sheet"] = r["spearman"] - trails.sheet[t]["correlation"]
        r["gpu_hours_per_cell"] = trails.sheet[t]["gpu_hours"]
        r["mean_acc"] = trails.sheet[t]["mean"]
        r["knobs"] = dict(trails.knobs[t])
        rows.append(r)
    return rows


def knob_importance(rows: Sequence[dict[str, Any]], *, target: str = "spearman", seed: int = 0,
                    n_trees: int = 64) -> dict[str, float]:
    """fANOVA importance of each knob for ``target`` (optuna's FanovaImportanceEvaluator), summing to 1.

    The 32 settings become 32 completed optuna trials (one float distribution per knob spanning its
    values); a knob with one value across all settings cannot explain anything and gets 0.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    knobs = list(rows[0]["knobs"])
    span = {k: (min(r["knobs"][k] for r in rows), max(r["knobs"][k] for r in rows)) for k in knobs}
    varying = [k for k in knobs if span[k][0] < span[k][1]]
    if not varying:
        raise ValueError("no knob varies across the settings: importance is undefined")
    dists = {k: optuna.distributions.FloatDistribution(*span[k]) for k in varying}
    study = optuna.create_study(direction="maximize")
    for r in rows:
        if r.get(target) is None:
            continue
        study.add_trial(optuna.trial.create_trial(params={k: float(r["knobs"][k]) for k in varying},
                                                  distributions=dists, value=float(r[target])))
    ev = optuna.importance.FanovaImportanceEvaluator(n_trees=n_trees, seed=seed)
    imp = optuna.importance.get_param_importances(study, evaluator=ev, normalize=True)
    return {k: float(imp.get(k, 0.0)) for k in knobs}


def evaluate_workbook(path: str | Path, ks: Sequence[float] = ranking.DEFAULT_KS, *, seed: int = 0
                      ) -> tuple[list[dict[str, Any]], list, dict[str, float], str]:
    """The 32 settings' criteria, scatter panels, the knobs' fANOVA importance and a printable report."""
    trails = read_trails(path)
    rows = evaluate_trails(trails, ks)
    worst = max(rows, key=lambda r: abs(r["spearman_minus_sheet"]))
    imp = knob_importance(rows, target="spearman", seed=seed)
    for r in rows:
        r["knob_importance"] = imp  # the same table on every row keeps the output a flat list
    lines = [ranking.format_table(rows, k_show=("5%", "10%"), extra=("sheet_correlation", "gpu_hours_per_cell")),
             f"max |spearman - sheet 'Correlation'| over {len(rows)} settings: "
             f"{abs(worst['spearman_minus_sheet']):.5f} ({worst['setting']})",
             "fANOVA importance of the knobs for the Spearman correlation (optuna FanovaImportanceEvaluator):"]
    lines += [f"  {k:14s} {v:.3f}" for k, v in sorted(imp.items(), key=lambda kv: -kv[1])]
    panels = [(t, trails.acc[t], trails.truth) for t in trails.tasks]
    return rows, panels, imp, "\n".join(lines)
