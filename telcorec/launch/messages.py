"""How the launcher talks: progress and errors on stderr (a job's stdout stays clean)."""
from __future__ import annotations

import sys


class UsageError(Exception):
    """A command line the launcher cannot run: the message goes to stderr, exit code 2."""


class LaunchError(Exception):
    """Something the launcher tried failed (a config, a cluster daemon): exit code 1.
    Lines after the first are printed indented, as hints."""


def log(*lines: str) -> None:
    """The first line as is, the others indented below it, all prefixed `[telcorec]`."""
    for i, line in enumerate(lines):
        print(f"[telcorec] {'  ' if i else ''}{line}", file=sys.stderr, flush=True)
