"""Tabular benchmarks: the NAS-Bench-201 table as a CSV (one row per cell, one column per metric).

The CSV needs an ``arch_str`` column (NAS-Bench-201 strings such as
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``) and any number of numeric metric
columns (``cifar10_valid_acc``, ``cifar10_test_acc``, ...). Arch strings are canonicalised through
``nas.spaces.NB201Space.key`` so that a query never misses on spelling.
"""

from __future__ import annotations

from pathlib import Path

from nas.cli import NASError, UsageError
from nas.spaces import NB201Space

ARCH_COLUMN = "arch_str"


class NB201Table:
    """An in-memory NAS-Bench-201 table: ``query(arch, column) -> float``."""

    def __init__(self, path: str | Path):
        import pandas as pd

        self.path = Path(path)
        if not self.path.is_file():
            raise NASError(f"{self.path}: no such benchmark table")
        try:
            df = pd.read_csv(self.path)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
            raise NASError(f"{self.path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
        if ARCH_COLUMN not in df.columns:
            raise NASError(f"{self.path}: no {ARCH_COLUMN!r} column; columns: {', '.join(map(str, df.columns))}")
        self.space = NB201Space()
        keys = []
        for i, a in enumerate(df[ARCH_COLUMN]):
            try:
                keys.append(self.space.key(str(a)))
            except ValueError as exc:
                raise NASError(f"{self.path}: row {i + 2}: bad arch string {a!r} ({exc})") from None
        df.index = keys
        if df.index.has_duplicates:
            dup = df.index[df.index.duplicated()][0]
            raise NASError(f"{self.path}: arch {dup!r} appears more than once")
        self.df = df
        # Rows keep file order; only numeric columns are metrics.
        self.columns = [c for c in df.columns if c != ARCH_COLUMN]

    def __len__(self) -> int:
        return len(self.df)

    def check_column(self, column: str) -> None:
        """Raise a UsageError listing the numeric columns if ``column`` is not one of them."""
        numeric = [c for c in self.columns if self.df[c].dtype.kind in "fiu"]
        if column not in numeric:
            raise UsageError(f"metric column {column!r} not in {self.path.name}; columns: {', '.join(numeric)}")

    def canonical(self, arch: str) -> str:
        """Canonical arch string (ValueError on a malformed one)."""
        return self.space.key(arch)

    def query(self, arch: str, column: str) -> float:
        """The value of ``column`` for ``arch``; a clear NASError if the table lacks the arch."""
        self.check_column(column)
        key = self.canonical(arch)
        if key not in self.df.index:
            raise NASError(f"arch {key!r} is not in {self.path.name} ({len(self)} rows)")
        return float(self.df.at[key, column])

    def time_column(self, metric: str) -> str | None:
        """A training-time column matching ``metric``'s dataset (e.g. ``cifar10_train_time``), if any."""
        prefix = metric.split("_")[0]
        times = [c for c in self.columns if "time" in c.lower()]
        for c in times:
            if c.startswith(prefix):
                return c
        return times[0] if times else None

    def rank(self, arch: str, column: str) -> int:
        """1-based rank of ``arch`` by ``column`` (1 = best, ties share the best rank)."""
        v = self.query(arch, column)
        return int((self.df[column] > v).sum()) + 1

    def best(self, column: str) -> tuple[str, float]:
        """The arch with the highest ``column`` and that value."""
        self.check_column(column)
        key = self.df[column].idxmax()
        return str(key), float(self.df.at[key, column])
