"""What every entry script shares: the error contract, a logger that writes a .log file, device/thread flags.

Scripts call ``run_cli(main, argv)``: a ``ValueError`` (``ConfigError``, an unknown name, a bad
number) exits 2; any other ``NASError``, an ``OSError`` or a malformed input file (``GenotypeError``)
exits 1; each prints one line on stderr naming the bad value (``NAS_DEBUG=1`` shows the traceback).
The core raises those errors; only scripts map them to exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

from genotypes import GenotypeError
from nas.device import configure_threads
from nas.distributed import DistContext, cleanup, init_distributed
from nas.errors import ConfigError, NASError
from nas.io import get_logger, route_package_logs

UsageError = ConfigError  # the name scripts and older code use for a bad setting (exit 2)

__all__ = ["ConfigError", "NASError", "UsageError", "add_runtime_args", "get_logger", "run_cli", "setup_threads"]


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main`` and turn the toolkit's errors into one line on stderr and an exit code."""
    prog = Path(sys.argv[0]).name
    route_package_logs(False)  # the package's INFO lines (e.g. where the image cache went) until --quiet says no
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors (exit 2) and --help (exit 0)
        return exc.code if isinstance(exc.code, int) else 1
    except (ValueError, NASError, OSError, MemoryError, RecursionError) as exc:
        if os.environ.get("NAS_DEBUG"):
            raise
        # a bad setting or value is a usage error (2); malformed content of an input file is runtime (1)
        code = 2 if isinstance(exc, ValueError) and not isinstance(exc, GenotypeError) else 1
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and not isinstance(exc, NASError):
            msg = f"{exc.strerror or type(exc).__name__}: {exc.filename}" if exc.filename else msg
        elif isinstance(exc, (MemoryError, RecursionError)):
            msg = f"input too large to process ({type(exc).__name__})"
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """``--device`` (auto, cpu, cuda, cuda:N) and ``--threads`` (torch CPU threads)."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all cores; on a shared CPU 1 per process avoids spinning)")


def setup_threads(threads: int | None, *, world_size: int = 1) -> None:
    """Apply ``--threads``; without it use every core, split between the processes of a torchrun job."""
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be positive, got {threads}")
    configure_threads(threads, world_size=world_size)


@contextlib.contextmanager
def distributed_job(device: str, threads: int | None) -> Iterator[DistContext]:
    """Join the torchrun job (or run alone), apply ``--threads`` (the cores split over CPU ranks), and leave
    together: ranks finish their last piece of work at different times, so a rank waits on the store as long
    as a peer works; a rank leaving on an error does not wait."""
    ctx = init_distributed(device)
    failed = True
    try:
        setup_threads(threads, world_size=ctx.world_size if ctx.device == "cpu" else 1)
        yield ctx
        failed = False
    finally:
        cleanup(ctx, timeout_s=None, failed=failed)
