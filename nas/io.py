"""Result files: atomic writes, run metadata (config, versions, seed, timing), safe JSON reads."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from nas.errors import NASError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a kill leaves either the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; results should read like any other file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset, tuple, range)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """JSON with indentation, written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_default) + "\n")


def read_json(path: str | Path) -> Any:
    """Read JSON, turning a missing or corrupt file into one clear ``NASError``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NASError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NASError(f"{path}: is a folder, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NASError(f"{path}: not valid JSON ({exc})") from None


def read_text_file(path: str | Path, *, max_bytes: int = 64 << 20) -> str:
    """A UTF-8 text file as a string; NASError (one line, naming the file) when missing, binary or huge."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise NASError(f"{path}: {size} bytes is too large for a text input (limit {max_bytes})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise NASError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NASError(f"{path}: is a folder, not a text file") from None
    if b"\x00" in data:
        raise NASError(f"{path}: a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NASError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide a result."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("torch", "torchvision", "numpy"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = getattr(m, "__version__", "?")
    return out


def run_metadata(config: Any, *, seed: int | None, started: float) -> dict[str, Any]:
    """What every result JSON records: config, versions, seed and timing."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config)) \
        if hasattr(config, "__dict__") else config
    return {
        "config": cfg,
        "seed": seed,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "elapsed_seconds": round(time.time() - started, 3),
        "argv": sys.argv,
    }


def _formatter() -> logging.Formatter:
    """The one line format of every log (stderr and files)."""
    return logging.Formatter("%(asctime)s %(message)s", datefmt="%m/%d %H:%M:%S")


def attach_log_file(logger: logging.Logger, path: str | Path) -> logging.Handler | None:
    """Also append ``logger``'s records to ``path`` (once), in the format of ``get_logger``; the new handler."""
    path = Path(path)
    if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in logger.handlers):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(path)
    fh.setFormatter(_formatter())
    logger.addHandler(fh)
    return fh


@contextlib.contextmanager
def log_to_file(logger: logging.Logger, path: str | Path | None) -> Iterator[None]:
    """``logger`` also writes to ``path`` inside the block; the file is closed after it (None: no file)."""
    handler = attach_log_file(logger, path) if path is not None else None
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()


class _BarSafeHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` through ``tqdm.write``: a progress bar there is cleared and redrawn,
    never broken. The stream is looked up at each record, so a replaced stderr (pytest, a notebook) is followed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def get_logger(name: str, log_file: str | Path | None = None, *, quiet: bool = False) -> logging.Logger:
    """A logger printing to stderr (unless ``quiet``) and, if given, appending to ``log_file``."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    if not quiet:
        sh = _BarSafeHandler()
        sh.setFormatter(_formatter())
        logger.addHandler(sh)
    if log_file is not None:
        attach_log_file(logger, log_file)
    route_package_logs(quiet)
    return logger


def route_package_logs(quiet: bool) -> None:
    """The ``nas.*`` module loggers (e.g. nas.data's cache messages) print at INFO like the script's, or not at all."""
    pkg = logging.getLogger("nas")
    for h in [h for h in pkg.handlers if isinstance(h, _BarSafeHandler)]:  # get_logger("nas") added one too
        pkg.removeHandler(h)
    pkg.setLevel(logging.INFO)
    if not quiet:
        sh = _BarSafeHandler()
        sh.setFormatter(_formatter())
        pkg.addHandler(sh)
