"""Execute one notebook step with papermill; runs in a worker process (local or Dask).

Everything the step needs travels in a plain dict, and everything it reports comes
back as one: no cellops state crosses the process boundary. The kernel logs into
the step's run through ``CELLOPS_RUN_ID`` (see :func:`cellops.tracking.api.adopted_run`).
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any


def make_task(notebook: str | os.PathLike[str], output: str | os.PathLike[str], *,
              parameters: dict[str, Any], kernel: str, cwd: str, timeout: float | None,
              workspace_path: str | os.PathLike[str], run_id: str,
              progress_bar: bool = False) -> dict[str, Any]:
    """The plain dict :func:`execute_step` takes: one notebook run logging into ``run_id``."""
    return {"notebook": str(notebook), "output": str(output), "parameters": dict(parameters),
            "kernel": kernel, "cwd": cwd, "timeout": timeout, "progress_bar": progress_bar,
            "env": {"CELLOPS_HOME": str(workspace_path), "CELLOPS_RUN_ID": run_id,
                    "CELLOPS_NOTEBOOK_PATH": str(notebook)}}


def cell_progress(output: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(cells started, code cells) of a notebook papermill is writing, or None if unreadable.

    papermill saves the output notebook as each cell starts, with the cell's status in
    its metadata; a half-written file reads as None and the caller just asks again.
    """
    import json

    try:
        with open(output, encoding="utf-8") as fh:
            nb = json.load(fh)
    except (OSError, ValueError):
        return None
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    started = sum(((c.get("metadata") or {}).get("papermill") or {}).get("status")
                  in ("running", "completed", "failed") for c in cells)
    return started, len(cells)


def execute_step(task: dict[str, Any]) -> dict[str, Any]:
    """Run ``task['notebook']`` into ``task['output']``; return status and error details.

    status: ``ok`` | ``failed`` (a cell raised) | ``timeout`` | ``dead`` (the kernel died)
    | ``error`` (papermill itself failed, e.g. unknown kernel).
    """
    env = task.get("env", {})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits these
    try:
        return _execute(task)
    finally:
        for k, v in saved.items():  # an in-process run must not leak them
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _execute(task: dict[str, Any]) -> dict[str, Any]:
    import logging

    import papermill as pm

    # papermill warns about pipeline-wide parameters a notebook does not declare; that is normal here.
    logging.getLogger("papermill").setLevel(logging.ERROR)

    t0 = time.time()
    out: dict[str, Any] = {"status": "ok", "started": t0}
    try:
        pm.execute_notebook(
            task["notebook"], task["output"], parameters=task.get("parameters") or {},
            kernel_name=task.get("kernel"), cwd=task.get("cwd"),
            execution_timeout=task.get("timeout"), progress_bar=bool(task.get("progress_bar")),
            log_output=False,
            request_save_on_cell_execute=True,
        )
    except pm.PapermillExecutionError as exc:
        out.update(status="failed", cell_index=exc.cell_index, ename=exc.ename,
                   evalue=exc.evalue, error=f"Cell {exc.cell_index} raised {exc.ename}: {exc.evalue}")
    except BaseException as exc:  # noqa: BLE001 - everything is reported, nothing hangs
        name = type(exc).__name__
        if name == "DeadKernelError":
            out.update(status="dead", error=f"The kernel died while running the step ({exc}). "
                                            "It may have run out of memory or been killed.")
        elif name == "CellTimeoutError" or isinstance(exc, TimeoutError):
            out.update(status="timeout", error=f"A cell ran past the step's timeout of "
                                               f"{task.get('timeout')} s ({exc}).")
        else:
            out.update(status="error", error=f"{name}: {exc}",
                       traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    out["duration"] = time.time() - t0
    return out
