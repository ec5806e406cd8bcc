"""The one run-folder contract: one writer at a time, one config per folder, resume or overwrite.

Every long job (augment.py, the search strategies, search.py and project.py, PertNAS, zero_shot.py)
writes into a run folder and goes through :class:`RunFolder`:

- **one writer**: an exclusive OS file lock (``flock``) on ``<parent>/.<name>.lock``. The kernel
  releases it when the holder dies, so a crash never leaves a stale lock; a second writer gets one
  line naming the holder's pid (``NASError``, exit 1). The lock lives beside the folder, not in it,
  so that ``--overwrite`` can move the folder away while holding it.
- **one config**: ``config.json`` holds every setting that changes a result; a rerun with another
  value is refused naming the first differing field (``ConfigError``, exit 2). Fields that do not
  change results are left out of the config by the caller.
- **overwrite** removes everything the run owns (the folder and any files beside it), each first
  renamed to a ``.trash-*`` name and then deleted, the folder first: a kill part-way leaves either
  the old run without its folder, which the next run refuses with a hint, or nothing of it.
- **leftovers**: temporary files of killed atomic writes (``.*.tmp``) and ``.trash-*`` are removed.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

from nas.errors import ConfigError, NASError
from nas.io import atomic_write_json, read_json

CONFIG = "config.json"


def first_difference(old: dict[str, Any], new: dict[str, Any], ignore: Iterable[str] = (),
                     prefix: str = "") -> str | None:
    """``'field: old -> new'`` for the first differing field (sorted by name, nested dicts as
    ``budget.epochs``), or None when they agree."""
    skip = set(ignore)
    for k in sorted(set(old) | set(new)):
        if k in skip:
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            diff = first_difference(a, b, prefix=f"{prefix}{k}.")
            if diff:
                return diff
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            return f"{prefix}{k}: {a!r} -> {b!r}"
    return None


def normalize_path(p: str | os.PathLike | None) -> str | None:
    """A path as a config value: ``data/`` and ``data`` are the same setting."""
    return None if p is None else os.path.normpath(str(p))


def config_record(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a run's config.json (its ``data_path`` normalised)."""
    d = dataclasses.asdict(cfg)
    d["data_path"] = normalize_path(d["data_path"])
    return d


class RunLock:
    """An exclusive ``flock`` on ``path``; ``NASError`` naming the holder's pid when it is taken."""

    def __init__(self, path: str | Path, what: str):
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise NASError(f"{self.what} is in use by another process (pid {holder}); wait for it to end "
                               f"or stop it (a killed run releases the lock)") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def discard(paths: Sequence[str | Path]) -> None:
    """Remove each path in order: renamed to ``.trash-<pid>-<name>`` first (atomic), then deleted."""
    for p in map(Path, paths):
        if not (p.exists() or p.is_symlink()):
            continue
        trash = p.with_name(f".trash-{os.getpid()}-{p.name}")
        os.replace(p, trash)
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)


def _leftover_of(name: str, owners: Iterable[str] | None) -> bool:
    """Whether ``name`` is what a killed atomic write (``.<file>.*.tmp``) or ``discard`` (``.trash-<pid>-<file>``)
    leaves; with ``owners``, only of those files."""
    if name.startswith(".trash-"):
        base = name.split("-", 2)[2] if name.count("-") >= 2 else ""
    elif name.startswith(".") and name.endswith(".tmp"):
        base = name[1:].rsplit(".", 2)[0] if name.count(".") >= 3 else ""
    else:
        return False
    return owners is None or base in owners


def clean_leftovers(folder: str | Path, owners: Iterable[str] | None = None) -> list[Path]:
    """Delete temporary files of killed atomic writes and half-discarded runs in ``folder`` (not below);
    with ``owners`` (file names), only theirs: a folder shared by several runs keeps the others' writes."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    owners = None if owners is None else set(owners)
    for p in folder.iterdir():
        if _leftover_of(p.name, owners):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class RunFolder:
    """A run folder (``path``) plus the files beside it that the run owns (``extra``).

    ``open()`` takes the lock, removes leftovers, then either discards everything (``overwrite``) or
    checks ``config`` against the saved one, and writes it. Returns whether an earlier run is resumed.
    """

    def __init__(self, path: str | Path, config: dict[str, Any], *, extra: Sequence[str | Path] = (),
                 ignore: Iterable[str] = (), what: str | None = None, lock: bool = True):
        self.path = Path(path)
        self.config = config
        self.extra = [Path(p) for p in extra]
        self.ignore = tuple(ignore)
        self.what = what or f"run folder {self.path}"
        self.lock = RunLock(self.path.parent / f".{self.path.name}.lock", self.what) if lock else None

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def saved_config(self) -> dict[str, Any] | None:
        """The config an earlier run saved, or None."""
        if not self.config_path.is_file():
            return None
        try:
            cfg = read_json(self.config_path)
        except NASError:
            raise NASError(f"{self.config_path} is not readable JSON; move the run folder away or pass "
                           "--overwrite") from None
        if not isinstance(cfg, dict):
            raise NASError(f"{self.config_path}: not a config object; pass --overwrite")
        return cfg

    def open(self, *, overwrite: bool = False, write_config: bool = True) -> bool:
        """Lock, then overwrite or check the config; True when an earlier run's files are kept (resume)."""
        if self.lock is not None and not self.lock.held:
            self.lock.acquire()
        try:
            owned: dict[Path, list[str]] = {}
            for p in (self.path, *self.extra):
                owned.setdefault(p.parent, []).append(p.name)
            for folder, names in owned.items():  # beside other runs (their locks, not ours): only our leftovers
                clean_leftovers(folder, names)
            clean_leftovers(self.path)
            resumed = False
            if overwrite:
                discard([self.path, *self.extra])
            else:
                saved = self.saved_config()
                if saved is not None:
                    diff = first_difference(saved, self.config, self.ignore)
                    if diff and self._holds_work():
                        raise ConfigError(f"{self.what} holds a run with other settings ({diff}); rerun with "
                                          "the same settings to resume, or use another name or --overwrite")
                    resumed = not diff  # a try that saved nothing (it failed on missing data, say) takes these settings
                elif self._has_files():
                    raise ConfigError(f"{self.what} holds files but no {CONFIG} (another tool's folder, or an "
                                      "interrupted --overwrite); use another name or --overwrite")
            self.path.mkdir(parents=True, exist_ok=True)
            if write_config:
                atomic_write_json(self.config_path, self.config)
            return resumed
        except BaseException:
            self.close()
            raise

    def _has_files(self) -> bool:
        own = self.path.is_dir() and any(p.suffix != ".log" for p in self.path.iterdir())
        return own or any(p.exists() for p in self.extra)

    def _holds_work(self) -> bool:
        """Whether an earlier try saved anything besides its config and logs (a result, a checkpoint)."""
        own = self.path.is_dir() and any(p.name != CONFIG and p.suffix != ".log" for p in self.path.iterdir())
        return own or any(p.exists() and p.suffix != ".log" for p in self.extra)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
