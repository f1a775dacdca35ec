"""papermill integration: plain ``papermill in.ipynb out.ipynb -p alpha 0.5`` records a run.

cellops installs a papermill engine (entry point ``papermill.engine``) and makes it
papermill's default. It behaves exactly like papermill's own nbclient engine and
adds two things:

- before the kernel starts it sets ``CELLOPS_PAPERMILL_TOKEN`` (a fresh id) and
  ``CELLOPS_NOTEBOOK_PATH`` (the input notebook) in the kernel's environment, so a
  notebook that uses cellops (``%%params``, the API) tags its notebook run with
  the token, names it after the notebook, and lets papermill's injected parameters
  win over the ``%%params`` defaults;
- after execution, if that run exists, it stores the executed notebook as an
  artifact of the run and, when a cell failed, marks the run FAILED with the cell
  and the exception.

A notebook that does not use cellops is untouched: no workspace is created. Set
``CELLOPS_PAPERMILL=0`` to switch the integration off.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from .environment import KernelEnv, papermill_enabled


def _delegate() -> Any:
    from papermill.engines import NBClientEngine

    return NBClientEngine


def _failure(nb: Any) -> str | None:
    """'cell N raised Error: message' for the first failed cell of an executed notebook."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                return (f"Cell {index} raised {out.get('ename')}: {out.get('evalue')}\n"
                        + "\n".join(out.get("traceback", []))[-4000:])
    return None


def attach_executed_notebook(token: str, nb: Any, output_path: str | None,
                             error: BaseException | None = None) -> str | None:
    """Store the executed notebook on the runs tagged with ``token``; return the first id."""
    import nbformat

    import cellops

    if cellops.find_workspace() is None:
        return None  # the notebook never used cellops: leave no trace
    df = cellops.search_runs(filter=f"tags.`papermill.token` = '{token}'")
    if df.empty:
        return None
    name = os.path.basename(str(output_path)) if output_path and "://" not in str(output_path) \
        else "executed.ipynb"
    if not name.endswith(".ipynb"):
        name = "executed.ipynb"
    data = nbformat.writes(nb).encode("utf-8")
    failure = _failure(nb)
    if failure is None and error is not None:
        failure = f"{type(error).__name__}: {error}"
    for run_id in df["run_id"]:
        run = cellops.get_run(run_id)
        run.attach(data, name)
        if failure is not None:
            run.end("FAILED", error=failure, amend=True)
        elif run.status == "RUNNING":  # the kernel went away without ending it
            run.end("FINISHED")
    return str(df["run_id"].iloc[0])


class CellopsEngine:
    """papermill's nbclient engine, plus cellops run bookkeeping (see the module docstring)."""

    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                         **kwargs: Any) -> Any:
        engine = _delegate()
        if not papermill_enabled():
            return engine.execute_notebook(nb, kernel_name, output_path=output_path, **kwargs)
        token = uuid.uuid4().hex
        input_path = kwargs.get("input_path")
        local = input_path and "://" not in str(input_path)
        env = KernelEnv(papermill_token=token,
                        notebook_path=os.path.abspath(str(input_path)) if local else None)
        result, error = nb, None
        try:
            with env.applied():  # the kernel inherits them
                result = engine.execute_notebook(nb, kernel_name, output_path=output_path, **kwargs)
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                attach_executed_notebook(token, result, output_path, error)
            except Exception as exc:  # noqa: BLE001 - bookkeeping must not break papermill
                print(f"cellops: could not record the executed notebook: {exc}", file=sys.stderr)

    @classmethod
    def nb_kernel_name(cls, nb: Any, name: str | None = None) -> str:
        return _delegate().nb_kernel_name(nb, name)

    @classmethod
    def nb_language(cls, nb: Any, language: str | None = None) -> str:
        return _delegate().nb_language(nb, language)


def _install() -> None:
    """Make CellopsEngine papermill's default engine.

    Runs when papermill loads this entry point (``papermill.engines`` is then half
    imported but already holds ``papermill_engines``) or when this module is
    imported first (then importing papermill.engines loads the entry point, which
    finds this module complete).
    """
    engines = sys.modules.get("papermill.engines")
    if engines is None or not hasattr(engines, "papermill_engines"):
        import papermill.engines as engines  # noqa: PLW0621
    engines.papermill_engines.register(None, CellopsEngine)


_install()
