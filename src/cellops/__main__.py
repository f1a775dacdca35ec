"""``python -m cellops``: the ``cellops`` command, for environments whose scripts folder is
not on PATH (with the same exit codes)."""

from cellops.cli import main

raise SystemExit(main())
