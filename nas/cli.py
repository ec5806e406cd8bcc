"""What every entry script shares: the error contract and a logger that writes a .log file.

Scripts call ``run_cli(main, argv)``: a ``UsageError`` exits 2, any ``NASError`` exits 1, and each
prints one line (no traceback) naming the bad value. Set ``NAS_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence


class NASError(Exception):
    """A runtime failure the user can act on (missing data, corrupt checkpoint, ...): exit 1."""


class UsageError(NASError):
    """Bad command-line input (unknown name, bad value): exit 2."""


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main`` and turn the toolkit's errors into one line on stderr and an exit code."""
    from genotypes import GenotypeError

    prog = Path(sys.argv[0]).name
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors (exit 2) and --help (exit 0)
        return exc.code if isinstance(exc.code, int) else 1
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (NASError, GenotypeError, ValueError, FileNotFoundError) as exc:
        if os.environ.get("NAS_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def get_logger(name: str, log_file: str | Path | None = None, *, quiet: bool = False) -> logging.Logger:
    """A logger printing to stderr and, if given, appending to ``log_file``."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(message)s", datefmt="%m/%d %H:%M:%S")
    if not quiet:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        logger.addHandler(sh)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger
