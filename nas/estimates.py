"""Reading (architecture, value) pairs from the toolkit's files: estimates and ground truths.

A CSV (zero_shot.py's, a benchmark table), a results or run JSON (augment.py, the strategies), or the BPE
xlsx (its Ground_truth sheet). Architectures are matched by their canonical text (``arch_key``).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from genotypes import format_genotype, parse_genotype
from nas import ranking
from nas.bpe_trails import read_ground_truth
from nas.errors import NASError
from nas.io import read_json
from nas.spaces import NB201Space

ARCH_COLUMNS = ("arch_str", "genotype", "arch")
_RECORD_LISTS = ("records", "history", "results", "evaluations", "archs")
_NON_ESTIMATES = {"seconds", "cost_seconds", "index", "arch_index", "seed"}


def arch_key(text: str) -> str:
    """Canonical text of an architecture, so that spellings of one cell match (NB201 string or Genotype)."""
    text = str(text).strip()
    if text.startswith("|"):
        return NB201Space().key(text)
    return format_genotype(parse_genotype(text))


def _read_csv_columns(path: Path, cols: Sequence[str] | None) -> dict[str, dict[str, float]]:
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raise NASError(f"{path}: its last row is incomplete (a killed writer?); rerun what wrote it to finish it")
    try:
        df = pd.read_csv(io.BytesIO(raw))  # the bytes checked above, not a second read
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
        raise NASError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    arch_col = next((c for c in ARCH_COLUMNS if c in df.columns), None)
    if arch_col is None:
        raise NASError(f"{path}: no architecture column ({'/'.join(ARCH_COLUMNS)}); "
                         f"columns: {', '.join(map(str, df.columns))}")
    numeric = [c for c in df.columns if c != arch_col and df[c].dtype.kind in "fiu"]
    if cols is None:
        cols = [c for c in numeric if c not in _NON_ESTIMATES]
        if not cols:
            raise NASError(f"{path}: no numeric column to evaluate")
    for c in cols:
        if c not in numeric:
            raise NASError(f"{path}: no numeric column {c!r}; numeric columns: {', '.join(numeric) or 'none'}")
    keys = []
    for i, a in enumerate(df[arch_col]):
        try:
            keys.append(arch_key(a))
        except ValueError as exc:
            raise NASError(f"{path}: row {i + 2}: bad architecture {str(a)[:60]!r} ({exc})") from None
    return {c: dict(zip(keys, map(float, df[c]))) for c in cols}


def _read_json_records(path: Path, cols: Sequence[str] | None) -> dict[str, dict[str, float]]:
    doc = read_json(path)
    recs = doc if isinstance(doc, list) else next(
        (doc[k] for k in _RECORD_LISTS if isinstance(doc, dict) and isinstance(doc.get(k), list)), None)
    if not recs or not all(isinstance(r, dict) for r in recs):
        raise NASError(f"{path}: no list of records (a top-level list or one of keys {', '.join(_RECORD_LISTS)})")
    if cols is None:  # augment.py records carry valid_acc, strategy runs carry value
        first = recs[0]
        cols = [next((c for c in ("valid_acc", "value", "score", "best_valid_acc") if c in first), "valid_acc")]
    out: dict[str, dict[str, float]] = {c: {} for c in cols}
    for i, r in enumerate(recs):
        text = next((r[k] for k in ("genotype", "arch_str", "arch") if k in r), None)
        if text is None:
            raise NASError(f"{path}: record {i} has no genotype/arch_str/arch")
        try:
            key = arch_key(text)
        except ValueError as exc:
            raise NASError(f"{path}: record {i}: bad architecture ({exc})") from None
        for c in cols:
            if c not in r:
                raise NASError(f"{path}: record {i} has no {c!r}; keys: {', '.join(r)}")
            out[c][key] = float(r[c])
    return out


def read_values(path: str | Path, cols: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """{column: {arch key: value}} from a CSV (zero_shot.py, a benchmark table), a results/run JSON,
    or the BPE xlsx (its Ground_truth sheet); ``cols=None`` takes every estimate column."""
    path = Path(path)
    if not path.is_file():
        raise NASError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv_columns(path, cols)
    if suffix == ".json":
        return _read_json_records(path, cols)
    if suffix in (".xlsx", ".xls"):
        gt = read_ground_truth(path)
        return {"ground_truth": {arch_key(g): acc for g, acc in gt.values()}}
    raise NASError(f"{path}: unknown file type {suffix!r}; allowed: .csv, .json, .xlsx")


def pair_up(est: dict[str, float], truth: dict[str, float]) -> tuple[list[str], list[float], list[float]]:
    """The architectures both sides know, in the estimates' order."""
    common = [a for a in est if a in truth]
    return common, [est[a] for a in common], [truth[a] for a in common]


def evaluate_files(estimates: str | Path, truth: str | Path, *, est_cols: Sequence[str] | None = None,
                   truth_col: str | None = None, ks: Sequence[float] = ranking.DEFAULT_KS,
                   log: logging.Logger | None = None) -> tuple[list[dict], list, str, str]:
    """Every estimate column of ``estimates`` against ``truth``: (criteria rows, scatter panels, truth name, table)."""
    est = read_values(estimates, est_cols)
    if truth_col is None and Path(truth).suffix.lower() == ".csv":
        truth_col = "cifar10_test_acc"
    truth_name, truth_vals = next(iter(read_values(truth, [truth_col] if truth_col else None).items()))
    rows, panels = [], []
    for name, values in est.items():
        archs, e, t = pair_up(values, truth_vals)
        if len(archs) < 2:
            raise NASError(f"{name}: only {len(archs)} of {len(values)} architectures of {estimates} are in {truth}")
        if len(archs) < len(values) and log is not None:
            log.warning("%s: %d of %d architectures have no ground truth; left out", name, len(values) - len(archs),
                        len(values))
        rows.append(ranking.evaluate_all(e, t, ks, setting=name))
        panels.append((name, e, t))
    shown = tuple(ranking.k_label(k) for k in ks if k in (0.05, 0.1)) or (ranking.k_label(ks[0]),)
    return rows, panels, truth_name, ranking.format_table(rows, k_show=shown)
