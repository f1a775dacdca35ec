"""The notebook run of an IPython session: params, papermill injection, cell history.

One :class:`NotebookSession` per shell. Its *notebook run* (kind ``notebook``) is
created on first need (``%%params``, ``%track on``), becomes the active run, and
ends when the kernel exits; ``%%track`` cell runs nest under it.

Under papermill (``CELLOPS_PAPERMILL_TOKEN`` set by cellops' papermill engine) the
params of a ``%%params`` cell are held until papermill's injected-parameters cell
(its source starts with ``# Parameters``) has run, so the injected values win.
"""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..execution.environment import KernelEnv
from ..execution.parameters import assigned_names
from . import active
from .api import adopted_run, get_run, start_run
from .run import Run
from .values import format_error, param_text

__all__ = ["NotebookSession", "assigned_names", "cell_history", "export_history", "is_simple"]

PAPERMILL_MARKER = "# Parameters"


def is_simple(value: Any, depth: int = 0) -> bool:
    """Numbers, strings, bools, None, and lists/tuples/dicts of those."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if depth > 4:
        return False
    if isinstance(value, (list, tuple)):
        return all(is_simple(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_simple(v, depth + 1) for k, v in value.items())
    return False


class NotebookSession:
    """Per-shell state behind ``%%params`` and ``%track on``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.run_id: str | None = None
        self.recording = False
        self.papermill_token = KernelEnv.current().papermill_token
        self._pending: dict[str, Any] | None = None
        self._cell_start: float | None = None
        self._running: str | None = None  # the source of the cell running now, if any
        self._registered = False
        atexit.register(self.close)

    # -- the notebook run ----------------------------------------------------
    def notebook_run(self) -> Run:
        """The session's notebook run, started (and made active) when there is none."""
        for r in reversed(active.stack()):
            if r.id == self.run_id and r.status == "RUNNING":
                return r
        adopted = adopted_run()  # a pipeline step's kernel logs into the step's run
        if adopted is not None:
            self.run_id = adopted.id
            return adopted
        from .context import ipython_info

        info = ipython_info() or {}
        path = info.get("notebook_path")
        run = start_run(name=Path(path).stem if path else "notebook", kind="notebook")
        self.run_id = run.id
        return run

    # -- params ----------------------------------------------------------------
    def params_from_cell(self, source: str) -> dict[str, Any]:
        """Simple values the cell assigned, read from the user namespace."""
        ns = self.shell.user_ns
        return {n: ns[n] for n in assigned_names(source) if n in ns and is_simple(ns[n])}

    def log_params(self, values: dict[str, Any]) -> tuple[Run | None, bool]:
        """Log params to the notebook run; return (run, started_new_run).

        Under papermill the values wait for the injected cell. Interactively, a
        changed value ends the notebook run and starts a new one (params are
        immutable per run).
        """
        if self.papermill_token:
            self._pending = {**(self._pending or {}), **values}
            return None, False
        return self._apply(values)

    def _apply(self, values: dict[str, Any]) -> tuple[Run, bool]:
        run = self.notebook_run()
        stored = run.params
        if not run._owned:  # a pipeline step: the runner's injected params are authoritative
            run.log_params({k: v for k, v in values.items() if k not in stored})
            return run, False
        changed = [k for k, v in values.items() if k in stored and stored[k] != param_text(v)]
        restarted = False
        if changed:
            run.end("FINISHED")
            run = self.notebook_run()
            restarted = True
            values = {**{k: v for k, v in stored.items() if k not in values}, **values}
        run.log_params(values)
        return run, restarted

    def flush_params(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._apply(pending)

    # -- cell events -----------------------------------------------------------
    def register(self) -> None:
        if not self._registered:
            self.shell.events.register("pre_run_cell", self.pre_run_cell)
            self.shell.events.register("post_run_cell", self.post_run_cell)
            self._registered = True

    def unregister(self) -> None:
        if self._registered:
            self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
            self.shell.events.unregister("post_run_cell", self.post_run_cell)
            self._registered = False

    def pre_run_cell(self, info: Any) -> None:
        raw = getattr(info, "raw_cell", "") or ""
        self._running = raw
        if self._pending is not None and not raw.lstrip().startswith(PAPERMILL_MARKER):
            self.flush_params()
        self._cell_start = time.time() if self.recording else None

    def post_run_cell(self, result: Any) -> None:
        raw = getattr(result.info, "raw_cell", "") or ""
        if self._pending is not None and raw.lstrip().startswith(PAPERMILL_MARKER):
            # papermill's injected parameters: they override the %%params defaults.
            self._pending.update(self.params_from_cell(raw))
            self.flush_params()
        if self.recording and self._cell_start is not None:
            self._record(result, raw)
        self._cell_start = None
        self._running = None

    def _record(self, result: Any, raw: str) -> None:
        err = result.error_before_exec or result.error_in_exec
        status = "ok" if err is None else (
            "interrupted" if isinstance(err, KeyboardInterrupt) else "error")
        start = self._cell_start or time.time()
        self.notebook_run().workspace.store.cells.add(self.run_id, {  # type: ignore[arg-type]
            "execution_count": result.execution_count,
            "source": raw,
            "start_time": int(start * 1000),
            "duration_ms": int((time.time() - start) * 1000),
            "status": status,
            "error": format_error(err) if err is not None else None,
        })

    # -- %track on|off|status ------------------------------------------------------
    def start_recording(self) -> Run:
        """Record every following cell under the notebook run. The first time, the cells
        the session ran before are taken from IPython's input history and recorded as
        ``untracked`` (their outcome and timing were not seen)."""
        run = self.notebook_run()
        if not self.recording and not run.workspace.store.cells.of_run(run.id):
            for i, source in enumerate(self._earlier_cells(), start=1):
                run.workspace.store.cells.add(run.id, {
                    "execution_count": i, "source": source, "start_time": int(time.time() * 1000),
                    "duration_ms": None, "status": "untracked", "error": None})
        self.recording = True
        self.register()
        return run

    def _earlier_cells(self) -> list[str]:
        """The sources of the cells this session ran before the current one."""
        history = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None)
        cells = [c for c in list(history or [])[1:] if c and c.strip()]
        # IPython stores a cell in its history before running it: the cell running
        # `%track on` now is the last entry (when there is one; not after a plain call).
        if self._running is not None and cells and cells[-1] == self._running:
            cells.pop()
        return cells

    def stop_recording(self) -> None:
        self.recording = False

    def close(self) -> None:
        """At kernel exit: write pending params before the runs are ended."""
        try:
            self.flush_params()
        except Exception:  # noqa: BLE001 - never fail interpreter shutdown
            pass


CELLOPS_MAGICS = ("%%track", "%track", "%%params", "%experiment", "%runs", "%compare",
                  "%%expect_error")


def export_history(run_id: str, path: str | os.PathLike[str]) -> Path:
    """Write a notebook run's recorded cell history as a new notebook, in execution order.

    Run top to bottom (by Jupyter, nbconvert or papermill) it repeats what happened.
    Cells that raised (or were interrupted) are kept under ``%%expect_error NAME``, which
    runs them and prints the error instead of stopping the notebook — papermill stops at
    any error and ignores the ``raises-exception`` tag —; a note at the top says so. Cells
    that ran before ``%track on`` come from IPython's history and are marked
    ``untracked``; a first ``%load_ext cellops`` cell is added when cells use cellops'
    magics and none loads them.
    """
    import nbformat

    run = get_run(run_id)
    cells = run.workspace.store.cells.of_run(run.id)
    if not cells:
        raise InvalidArgumentError(
            f"Run {run.short_id} has no recorded cells. Record them with `%track on` in a "
            "notebook (after %load_ext cellops)."
        )
    nb = nbformat.v4.new_notebook()
    nb.metadata["cellops"] = {"run_id": run.id, "notebook_path": run.info.get("notebook_path")}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    failed = [c for c in cells if c["status"] in ("error", "interrupted")]
    if failed:
        intro = nbformat.v4.new_markdown_cell(
            f"Replay of run `{run.id}`, recorded with `%track on`: its cells in the order they "
            f"ran. {len(failed)} cell(s) raised when recorded; each runs under "
            "`%%expect_error`, which shows the error and lets the notebook go on, so it "
            "runs to the end under papermill as under Jupyter.")
        intro.metadata["cellops"] = {"added": "explains %%expect_error"}
        nb.cells.append(intro)
    sources = [c["source"] for c in cells]
    uses_magics = failed or any(line.lstrip().startswith(CELLOPS_MAGICS)
                                for src in sources for line in src.splitlines())
    loads = any("%load_ext cellops" in src for src in sources)
    if uses_magics and not loads:
        first = nbformat.v4.new_code_cell("%load_ext cellops")
        first.metadata["cellops"] = {"added": "the history uses cellops magics"}
        nb.cells.append(first)
    for c in cells:
        source = c["source"]
        meta = {"seq": c["seq"], "execution_count": c["execution_count"],
                "status": c["status"], "duration_ms": c["duration_ms"]}
        if c["status"] == "untracked":
            meta["note"] = "ran before %track on: taken from IPython's history, outcome not recorded"
        elif c["status"] in ("error", "interrupted"):
            lines = (c["error"] or "").strip().splitlines()
            meta["error"] = lines[-1:]
            name = error_name(lines[-1] if lines else "") or (
                "KeyboardInterrupt" if c["status"] == "interrupted" else "")
            source = f"%%expect_error {name}".rstrip() + "\n" + source
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["cellops"] = meta
        nb.cells.append(cell)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out


def error_name(line: str) -> str | None:
    """``ZeroDivisionError: division by zero`` -> ``ZeroDivisionError`` (None if it is no
    exception line)."""
    name = line.split(":", 1)[0].strip()
    return name if name.replace(".", "").replace("_", "").isalnum() and name[:1].isalpha() \
        else None


def cell_history(run_id: str) -> list[dict[str, Any]]:
    """The recorded cells of a notebook run (seq, execution_count, source, status, ...)."""
    run = get_run(run_id)
    return run.workspace.store.cells.of_run(run.id)

