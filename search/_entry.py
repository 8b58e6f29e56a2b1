"""The ``hpsearch`` console script. It imports the command (``search.cli``) and runs it:
Ctrl-C that comes while the command is imported, before it handles its own interrupts,
ends it with one line and exit 130, as it would a moment later, not with a traceback."""

from __future__ import annotations

import os
import sys


def entry() -> None:
    try:
        from search.cli import entry as command
    except KeyboardInterrupt:
        print("`hpsearch` interrupted while it started: nothing stored was changed.",
              file=sys.stderr)  # fmt: skip
        os._exit(130)
    command()
