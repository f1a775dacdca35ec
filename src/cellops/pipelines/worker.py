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
            execution_timeout=task.get("timeout"), progress_bar=False, log_output=False,
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
