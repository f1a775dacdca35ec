"""Execute one notebook with papermill in a fresh kernel; runs in a worker process
(inline, a local pool or a Dask worker).

A :class:`Task` says everything the execution needs and a :class:`Report` says what
happened; both are plain, picklable records, so no cellops state crosses the process
boundary. The kernel learns its run and workspace from the task's
:class:`~cellops.execution.environment.KernelEnv`.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..errors import StepError
from .environment import KernelEnv


@dataclass
class Task:
    """One notebook to execute into ``output`` with ``parameters``, logging as ``env`` says."""

    notebook: str
    output: str
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel: str | None = None
    cwd: str | None = None
    timeout: float | None = None
    env: KernelEnv = field(default_factory=KernelEnv)
    progress_bar: bool = False


@dataclass
class Report:
    """What became of a :class:`Task`.

    ``status``: ``ok`` | ``failed`` (a cell raised) | ``timeout`` | ``dead`` (the kernel
    died) | ``error`` (papermill itself failed, e.g. an unknown kernel).
    """

    status: str
    started: float
    duration: float = 0.0
    output: str | None = None
    message: str | None = None
    cell_index: int | None = None
    ename: str | None = None
    evalue: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def error(self, step: str | None = None) -> StepError | None:
        """The failure as a :class:`~cellops.errors.StepError` (None when it ran through)."""
        if self.ok:
            return None
        return StepError(self.message or self.status, kind=self.status, cell_index=self.cell_index,
                         ename=self.ename, evalue=self.evalue, output_notebook=self.output,
                         step=step)


def make_task(notebook: str | os.PathLike[str], output: str | os.PathLike[str], *,
              parameters: dict[str, Any], kernel: str | None, cwd: str | None,
              timeout: float | None, workspace_path: str | os.PathLike[str], run_id: str,
              progress_bar: bool = False, store_url: str | None = None,
              artifacts_url: str | None = None) -> Task:
    """A task that executes ``notebook`` logging into the run ``run_id`` of a workspace
    (a team's: ``store_url`` and ``artifacts_url`` travel with it, so that a kernel on
    another host logs to the same store)."""
    return Task(str(notebook), str(output), dict(parameters), kernel, cwd, timeout,
                KernelEnv(workspace=str(workspace_path), run_id=run_id,
                          notebook_path=str(notebook), store_url=store_url,
                          artifacts_url=artifacts_url), progress_bar)


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


_ipc_manager: type | None = None


def kernel_manager_class() -> type:
    """jupyter_client's kernel manager, talking to the kernel over IPC (Unix sockets)
    instead of TCP ports on localhost: no port is opened, and the kernel has no "running
    over TCP without encryption" warning to print over our output. Each kernel's sockets
    get a unique, short name in the temp folder (jupyter_client's default, ``kernel-ipc``
    in the working directory, would be shared by kernels started side by side there)."""
    global _ipc_manager
    if _ipc_manager is None:
        import tempfile
        import uuid

        from jupyter_client.manager import AsyncKernelManager
        from traitlets import CaselessStrEnum, default

        class IPCKernelManager(AsyncKernelManager):
            transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

            @default("ip")
            def _unique_ipc_prefix(self) -> str:
                return os.path.join(tempfile.gettempdir(), f"cellops-{uuid.uuid4().hex[:16]}")

        _ipc_manager = IPCKernelManager
    return _ipc_manager


def execute_step(task: Task) -> Report:
    """Run ``task.notebook`` into ``task.output``; never raises: everything is in the report."""
    with task.env.applied():  # the kernel inherits these
        return _execute(task)


def _execute(task: Task) -> Report:
    import logging

    import papermill as pm

    # papermill warns about pipeline-wide parameters a notebook does not declare; that is normal here.
    logging.getLogger("papermill").setLevel(logging.ERROR)

    t0 = time.time()
    report = Report("ok", t0, output=task.output)
    ipc = {"kernel_manager_class": kernel_manager_class()} if os.name == "posix" else {}
    try:
        pm.execute_notebook(
            task.notebook, task.output, parameters=task.parameters or {},
            kernel_name=task.kernel, cwd=task.cwd, execution_timeout=task.timeout,
            progress_bar=task.progress_bar, log_output=False, request_save_on_cell_execute=True,
            **ipc,
        )
    except pm.PapermillExecutionError as exc:
        report.status, report.cell_index = "failed", exc.cell_index
        report.ename, report.evalue = exc.ename, exc.evalue
        report.message = f"Cell {exc.cell_index} raised {exc.ename}: {exc.evalue}"
    except BaseException as exc:  # noqa: BLE001 - everything is reported, nothing hangs
        name = type(exc).__name__
        if name == "DeadKernelError":
            report.status = "dead"
            report.message = (f"The kernel died while running the step ({exc}). It may have "
                              "run out of memory or been killed.")
        elif name == "CellTimeoutError" or isinstance(exc, TimeoutError):
            report.status = "timeout"
            report.message = f"A cell ran past the step's timeout of {task.timeout} s ({exc})."
        else:
            report.status, report.message = "error", f"{name}: {exc}"
            report.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    report.duration = time.time() - t0
    if not os.path.isfile(task.output):
        report.output = None
    return report
