"""The environment a kernel runs in: the one place that names cellops' variables.

A notebook executed by cellops (a pipeline step, a sweep trial, a reproduction, a
plain ``papermill`` run) learns what it belongs to from its environment; the runner
writes it, the tracking code in the kernel reads it. Every name is defined here:

========================  =================================================================
``CELLOPS_HOME``          the workspace folder (also a user setting)
``CELLOPS_STORE_URL``     a team workspace's PostgreSQL store (also a user setting): a
                          kernel on another host (a Dask worker) reaches the same store
``CELLOPS_ARTIFACTS_URL`` a team workspace's artifact root (also a user setting)
``CELLOPS_EXPERIMENT``    the experiment runs go to (also a user setting)
``CELLOPS_RUN_ID``        the run the kernel logs into (a step or trial run); the runner
                          ends it, not the kernel
``CELLOPS_NOTEBOOK_PATH`` the notebook being executed (papermill cannot tell the kernel)
``CELLOPS_PAPERMILL_TOKEN`` a fresh id per papermill execution: the kernel's notebook run
                          is tagged with it so the engine can find it afterwards
``CELLOPS_PAPERMILL``     ``0`` switches cellops' papermill engine off
``CELLOPS_DASK_TIMEOUT``  seconds to wait for a Dask scheduler to answer (default 10)
========================  =================================================================

This module imports nothing, so both sides can use it at no cost.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Iterator, Mapping

HOME = "CELLOPS_HOME"
STORE_URL = "CELLOPS_STORE_URL"
ARTIFACTS_URL = "CELLOPS_ARTIFACTS_URL"
EXPERIMENT = "CELLOPS_EXPERIMENT"
RUN_ID = "CELLOPS_RUN_ID"
NOTEBOOK_PATH = "CELLOPS_NOTEBOOK_PATH"
PAPERMILL_TOKEN = "CELLOPS_PAPERMILL_TOKEN"
PAPERMILL_SWITCH = "CELLOPS_PAPERMILL"
DASK_TIMEOUT = "CELLOPS_DASK_TIMEOUT"
DEFAULT_DASK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KernelEnv:
    """What a kernel is told through its environment (None: not set)."""

    workspace: str | None = None
    run_id: str | None = None
    notebook_path: str | None = None
    papermill_token: str | None = None
    experiment: str | None = None
    store_url: str | None = None
    artifacts_url: str | None = None

    _NAMES = {"workspace": HOME, "run_id": RUN_ID, "notebook_path": NOTEBOOK_PATH,
              "papermill_token": PAPERMILL_TOKEN, "experiment": EXPERIMENT,
              "store_url": STORE_URL, "artifacts_url": ARTIFACTS_URL}

    @classmethod
    def current(cls, environ: Mapping[str, str] | None = None) -> KernelEnv:
        """What this process was told (empty values read as None)."""
        env = os.environ if environ is None else environ
        return cls(**{f.name: env.get(cls._NAMES[f.name]) or None for f in fields(cls)})

    def variables(self) -> dict[str, str]:
        """The environment variables for the values that are set."""
        return {self._NAMES[f.name]: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None}

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Set these variables in ``os.environ`` (a kernel started inside inherits them);
        restore what was there afterwards, so an in-process run leaks nothing."""
        values = self.variables()
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def papermill_enabled() -> bool:
    return os.environ.get(PAPERMILL_SWITCH, "1") != "0"


def dask_timeout() -> float:
    """Seconds to wait for a Dask scheduler (``CELLOPS_DASK_TIMEOUT``, default 10)."""
    text = os.environ.get(DASK_TIMEOUT)
    if not text:
        return DEFAULT_DASK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"{DASK_TIMEOUT} must be a number of seconds from 0 to 3600, "
                                   f"not {text!r}.")
    return value


def skip_unused_format_checkers() -> None:
    """Keep this process's nbformat import cheap; only for processes cellops owns (the
    ``cellops`` command, pool workers, the fork server), never a user's own.

    nbformat imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it
    is installed (``jsonschema[format-nongpl]``, which Jupyter pulls in); that package
    builds some 35 Earley parsers at import, 0.7 s or more, for the ``iri`` formats that
    no notebook schema uses. Here that import is answered with the ImportError jsonschema
    expects when the package is missing; it then has no ``iri`` checker, which nothing in
    these processes asks for. Too late to matter once jsonschema is imported.
    """
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
