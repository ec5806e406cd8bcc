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
