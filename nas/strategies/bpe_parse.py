"""BPE's result file: the keys its tools read (``bpe_results``), and what parse_json.py does with a run.

``rl_choose_by_prob`` is BPE parse_json.py ``RL_choose_by_prob`` (9-47) and ``ea_sample_cells`` its
``Evolution_choose_randomly`` (50-90).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from genotypes import format_genotype
from nas.errors import NASError
from nas.io import atomic_write_text, read_json
from nas.spaces import N_NODES, edge_index
from nas.strategies.encodings import BPECellEncoding, make_encoding


def bpe_results(history: list[dict], method: str) -> dict:
    """The keys BPE's tools read: val_acc, genotype, sample, best_val_acc, best_genotype (+ optim_prob for RL)."""
    vals = [h["value"] for h in history]
    best = max(range(len(vals)), key=lambda i: vals[i]) if vals else None
    res = {
        "val_acc": vals,
        "genotype": [h["arch"] for h in history],
        "sample": [h["sample"] for h in history],
        "best_val_acc": [vals[best]] if best is not None else [],
        "best_genotype": [history[best]["arch"]] if best is not None else [],
        "best_index": best,
        "cost_seconds": [h["cost_seconds"] for h in history],
        "extras": [h["extras"] for h in history],
    }
    if method == "rl":
        res["optim_prob"] = [h.get("optim_prob", []) for h in history]
        res["baseline_reward"] = [h.get("baseline") for h in history]
    return res


def load_run(path: str | Path) -> dict:
    """A run JSON with its encoding resolved; clear errors for missing keys."""
    run = read_json(path)
    if not isinstance(run, dict):
        raise NASError(f"{path}: not a run JSON object")
    missing = [k for k in ("val_acc", "sample", "best_genotype") if k not in run]
    if missing or not run["val_acc"]:
        raise NASError(f"{path}: not a search run (missing or empty: {', '.join(missing) or 'val_acc'})")
    meta = run.get("run_metadata", {})
    enc = meta.get("encoding")
    if enc is None:  # a JSON written by BPE itself: 28-entry supernet samples
        enc = "darts-bpe" if len(run["sample"][0]) == 28 else None
    run["bpe_encoding"] = bool(enc and enc.endswith("-bpe"))
    if run["bpe_encoding"]:
        run["encoding_obj"] = make_encoding(enc[: -len("-bpe")], "bpe")
        for i, sample in enumerate(run["sample"]):  # out-of-range indices are refused, not wrapped
            try:
                run["encoding_obj"].decode(sample)
            except (ValueError, TypeError) as exc:
                raise NASError(f"{path}: sample {i}: {exc}") from None
    run["path"] = str(path)
    return run


def value_label(run: dict) -> tuple[str, str]:
    """The estimator of a run and the axis label of its values (what a search curve plots)."""
    meta = run.get("run_metadata", {})
    kind, est = str(meta.get("config", {}).get("estimator", "train")), str(meta.get("estimator", "train"))
    parts = est.split(":")  # table:<file>:<column>, nb201api:<dataset>:<metric>:<hp>, or a zero-shot proxy's name
    label = {"table": f"{parts[-1]} (%)", "nb201api": " ".join(parts[1:3]) + " (%)",
             "nb301": "NAS-Bench-301 predicted accuracy (%)"}.get(kind) or \
        (f"{kind[9:]} (zero-shot score)" if kind.startswith("zeroshot:") else "validation accuracy (%)")
    return est, label


def rl_choose_by_prob(run: dict) -> str:
    """BPE ``RL_choose_by_prob``: best sample, per node keep the two inputs whose policy is most certain."""
    enc: BPECellEncoding = run["encoding_obj"]
    val = list(run["val_acc"])
    if len(val) > 1:
        val[0] = float("-inf")  # BPE drops the first evaluation ("remove the invalid value")
    index = int(np.argmax(val))
    if not run.get("optim_prob") or not run["optim_prob"][index]:
        raise NASError(f"{run['path']}: no optim_prob for evaluation {index}; was it written by run_rl.py?")
    prob = np.array([max(p) for p in run["optim_prob"][index]])
    sample = run["sample"][index]
    keep = [False] * len(sample)
    for c in range(2):
        for k in range(N_NODES):
            pos = [c * enc.n_edges + edge_index(k, s) for s in range(k + 2)]
            # two largest, first occurrence wins ties (np.argmax in BPE)
            for p in sorted(pos, key=lambda q: (-prob[q], q))[:2]:
                keep[p] = True
    geno = enc.decode(sample, keep)
    lines = [f"# index: {index}", f"# sample: {sample}", f"# best genotype: {run['best_genotype']}",
             f"# keep: {[int(x) for x in keep]}", "# new genotype:", format_genotype(geno)]
    return "\n".join(lines)


def ea_sample_cells(run: dict, *, number: int = 10, seed: int | None = None, saveto: str | Path | None = None
                    ) -> list[str]:
    """BPE ``Evolution_choose_randomly``: ``number`` two-input cells drawn from the best supernet genotype."""
    enc: BPECellEncoding = run["encoding_obj"]
    val = run["val_acc"]
    index = max(range(len(val)), key=lambda i: val[i])
    sample = run["sample"][index]
    rng = random.Random(seed)
    out = []
    for _ in range(number):
        keep = []
        for _c in range(2):
            for k in range(N_NODES):
                # drop k of the node's k+2 inputs at random, as BPE's get_mask_for_cell
                drop = set(rng.sample(range(k + 2), k))
                keep += [s not in drop for s in range(k + 2)]
        out.append(format_genotype(enc.decode(sample, keep)))
    if saveto is not None:
        atomic_write_text(saveto, "".join(g + "\n" for g in out))
    return out
