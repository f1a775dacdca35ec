"""The ``cellops`` command line: a thin adapter over the public API.

One module per area (``runs``, ``pipelines``, ``registry``; serving and monitoring add
theirs), each adding its commands to the group in :mod:`.base`; they are found when the
command line loads, so a new area adds a module and edits none.

Exit codes scripts can rely on: 0 success, 1 a cellops error (not found, bad
filter, ...; message on stderr, no traceback), 2 a usage error.
``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Sequence

import click

from .base import cli

__all__ = ["cli", "command_paths", "main"]

for _area in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _area.name not in ("base", "__main__"):
        importlib.import_module(f"{__name__}.{_area.name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cellops`` script."""
    from ..execution import skip_unused_format_checkers

    skip_unused_format_checkers()  # this process is ours: its nbformat import can be cheap
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="cellops",
                 standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    """Every command path (``runs list``...), for the docs test."""
    out = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out += command_paths(cmd, path + " ")
        else:
            out.append(path)
    return out


if __name__ == "__main__":
    sys.exit(main())
