"""Imported first in the processes cellops owns (the ``cellops`` command, the pool workers
that run notebooks and the fork server they come from): keeps their nbformat import cheap.

nbformat imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it is
installed (``jsonschema[format-nongpl]``, which Jupyter pulls in); that package builds
some 35 Earley parsers at import, 0.7 s or more, for the ``iri`` formats that no notebook
schema uses. In these processes, and only in these (a user's own process is left as it
is), that import is answered with the ImportError jsonschema expects when the package is
missing; jsonschema then has no ``iri`` checker, which nothing here asks for.
"""

from __future__ import annotations

import sys


def skip_unused_format_checkers() -> None:
    if "jsonschema" not in sys.modules:  # too late to matter once jsonschema is in
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


skip_unused_format_checkers()
