"""Scoring a list of architectures into a CSV, one row each, written as it goes and resumable after a kill.

``ScoreTable`` keeps the settings that produced the scores in ``<out>.settings.json`` beside the CSV and
refuses to resume with other settings (the first differing field named). A kill at any moment leaves a
CSV whose complete rows are kept: a torn last row (no newline) is cut off on the next run, a file with
only its header resumes at the first architecture. One writer at a time (``nas.rundir.RunLock``).
evaluate_estimators.py reads the CSV (``arch_str`` or ``genotype`` column, one numeric column per score).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from genotypes import GenotypeError
from nas.errors import ConfigError, NASError
from nas.estimators.zeroshot import score_architecture
from nas.io import atomic_write_json, read_json, read_text_file
from nas.progress import bar
from nas.rundir import RunLock, discard, first_difference


class ScoreTable:
    """Rows ``[arch, *columns, seconds]`` appended to ``path``; ``done`` holds the architectures already there."""

    def __init__(self, path: str | Path, *, arch_column: str, columns: Sequence[str], settings: dict[str, Any],
                 overwrite: bool = False):
        self.path = Path(path)
        self.header = [arch_column, *columns, "seconds"]
        self.settings = settings
        self.settings_path = self.path.with_name(self.path.name + ".settings.json")
        self.lock = RunLock(self.path.with_name(f".{self.path.name}.lock"), f"score table {self.path}")
        self.done: dict[str, dict[str, float]] = {}
        self._f = None
        self.lock.acquire()
        try:
            self._open(overwrite)
        except BaseException:
            self.close()
            raise

    def _open(self, overwrite: bool) -> None:
        if overwrite:
            discard([self.path, self.settings_path])
        if self.path.exists():
            if not self.settings_path.exists():
                raise ConfigError(f"{self.path} exists without {self.settings_path.name} (written by another "
                                  "tool or an older version); pass --overwrite or another --out")
            saved = read_json(self.settings_path)
            diff = first_difference(saved, self.settings)
            if diff:
                raise ConfigError(f"{self.path} was scored with other settings ({diff}); rerun with the same "
                                  "settings to resume, or pass --overwrite or another --out")
            self._read_rows()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.settings_path, self.settings)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", newline="")  # noqa: SIM115 - held open while scoring
        if new:
            self._write_line(self.header)

    def _read_rows(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # killed mid-row: keep the complete rows only
            cut = raw.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)
            raw = raw[:cut]
        if not raw:
            return
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
        if rows[0] != self.header:
            raise ConfigError(f"{self.path} has other columns ({rows[0]}); pass --overwrite or another --out")
        for i, row in enumerate(rows[1:], 2):
            if len(row) != len(self.header):
                raise NASError(f"{self.path}:{i}: {len(row)} fields, expected {len(self.header)}; "
                               "pass --overwrite to start over")
            try:
                self.done[row[0]] = {c: float(v) for c, v in zip(self.header[1:], row[1:])}
            except ValueError:
                raise NASError(f"{self.path}:{i}: not a number in {row[1:]}; pass --overwrite") from None

    def _write_line(self, fields: Sequence[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow(fields)
        self._f.write(buf.getvalue())
        self._f.flush()
        os.fsync(self._f.fileno())  # a kill loses at most the row in progress

    def append(self, key: str, values: dict[str, float], seconds: float) -> None:
        """One architecture's scores (``repr`` keeps every digit; NaN and -inf are written as such)."""
        self._write_line([key, *[repr(float(values[c])) for c in self.header[1:-1]], f"{seconds:.3f}"])
        self.done[key] = {**values, "seconds": seconds}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        self.lock.release()

    def __enter__(self) -> ScoreTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ProxyScorer:
    """Zero-shot measures of a list of architectures, averaged over seeds (zero_shot.py's job)."""

    names: list[str]
    cfg: Any  # NetConfig
    batches: Any  # BatchSource
    seeds: list[int]
    device: torch.device

    def __call__(self, arch: Any) -> tuple[dict[str, float], float]:
        return score_architecture(arch, cfg=self.cfg, batches=self.batches.get, seeds=self.seeds, names=self.names,
                                  device=self.device)


def read_arch_list(path: str | Path, space: Any) -> list:
    """Architectures of a file, one per line (blank lines and # comments skipped); errors name file:line."""
    out = []
    for i, line in enumerate(read_text_file(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(space.parse(line))
        except ValueError as exc:
            raise GenotypeError(f"{path}:{i}: {exc}") from None
    if not out:
        raise ConfigError(f"--archs {path}: no architectures in the file")
    return out


def score_all(archs: Sequence, space: Any, table: ScoreTable, *, proxies: ProxyScorer | None = None,
              oneshot: Any = None, logger: Any = None, progress: Any = None) -> int:
    """Score every architecture not yet in ``table``; returns how many were scored now (with a progress bar
    over them unless ``progress``, an object with ``update(n)``, is given)."""
    own = progress is None
    if own:
        progress = bar(total=sum(space.key(a) not in table.done for a in archs), desc="score", unit="arch")
    n_new, total = 0, 0.0
    columns = table.header[1:-1]
    for i, arch in enumerate(archs):
        key = space.key(arch)
        if key in table.done:
            continue
        vals, sec = proxies(arch) if proxies is not None else ({}, 0.0)
        if oneshot is not None:
            s = oneshot.score(arch)
            vals["oneshot"], sec = s.value, sec + s.cost_seconds
        table.append(key, vals, sec)
        n_new += 1
        total += sec
        if progress is not None:
            progress.update(1)
        if logger is not None:
            logger.info("[%d/%d] %.2fs  %s", i + 1, len(archs), sec, " ".join(f"{n}={vals[n]:.4g}" for n in columns))
    if own and progress is not None:
        progress.close()
    if logger is not None and n_new:
        logger.info("scored %d architectures, %.2f s per architecture; wrote %s", n_new, total / n_new, table.path)
    return n_new
