"""The toolkit's two error kinds; scripts turn them into exit codes (``nas.cli.run_cli``), the core never exits.

- ``ConfigError`` (a ``ValueError``): a setting or an input value that is not allowed (unknown name,
  bad number, malformed genotype text). The message names the value and what is allowed. Exit code 2.
- ``NASError``: a runtime failure the user can act on (missing data, corrupt checkpoint, a run folder
  in use by another process). Exit code 1.
"""

from __future__ import annotations


class NASError(Exception):
    """A runtime failure the user can act on (missing data, corrupt checkpoint, ...): exit 1."""


class ConfigError(NASError, ValueError):
    """A setting or input value that is not allowed; the message lists the allowed ones: exit 2."""


def check_positive(name: str, value: float | int | None, *, allow_none: bool = True, zero: bool = False) -> None:
    """``ConfigError`` unless ``value`` is a finite number > 0 (>= 0 with ``zero``); ``name`` is the flag."""
    if value is None:
        if allow_none:
            return
        raise ConfigError(f"{name} is required")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if v < 0 or (v == 0 and not zero):
        raise ConfigError(f"{name} must be {'>= 0' if zero else 'positive'}, got {value!r}")
