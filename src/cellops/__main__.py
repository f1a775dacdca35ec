"""``python -m cellops``: the ``cellops`` command, for environments whose scripts folder is
not on PATH."""

from cellops.cli import main

main()
