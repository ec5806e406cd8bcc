"""Progress bars with an ETA for long work (tqdm), quiet where nobody is watching.

``progress(iterable, total=..., desc=...)`` shows a tqdm bar on stderr only when stderr is a terminal,
``--quiet`` was not given (``set_quiet``) and this is rank 0 of a torchrun job (``RANK`` unset or 0);
otherwise it returns the iterable untouched (no cost in tests, CI, logs or other ranks).
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

from nas.io import route_package_logs

T = TypeVar("T")
_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence every progress bar and the package's own log lines on stderr (scripts call it for ``--quiet``)."""
    global _QUIET
    _QUIET = bool(quiet)
    route_package_logs(_QUIET)


def enabled() -> bool:
    """Bars are drawn: a terminal is watching, not ``--quiet``, rank 0 (or no torchrun)."""
    return not _QUIET and sys.stderr.isatty() and os.environ.get("RANK", "0") == "0"


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = False) -> Iterable[T] | Iterator[T]:
    """``iterable`` wrapped in a tqdm bar with rate and ETA when :func:`enabled`, else ``iterable`` itself."""
    if not enabled():
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, file=sys.stderr)


def bar(*, total: int | None, desc: str = "", unit: str = "it", initial: int = 0) -> tqdm | None:
    """A manual bar (``.update(n)``) or None when bars are off; callers write ``if b: b.update()``."""
    if not enabled():
        return None
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, file=sys.stderr, leave=False)
