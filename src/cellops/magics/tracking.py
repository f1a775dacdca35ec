"""Magics of the tracking area: ``%experiment``, ``%%track`` / ``%track on|off|status``,
``%%params``, ``%runs`` and ``%compare``.

They are thin adapters over the public API (``cellops``, :mod:`cellops.tracking.notebook`,
:mod:`cellops.tracking.autolog`, :mod:`cellops.display`); options users set once are
traitlets of the ``Cellops`` class (``%config Cellops.autolog = False``).
"""

from __future__ import annotations

import ast
import base64
import io
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
)
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float

import cellops
from cellops.display import run_summary_html
from cellops.errors import CellopsError
from cellops.tracking.autolog import fitted_since, log_estimators, snapshot
from cellops.tracking.notebook import NotebookSession

from .arguments import unquote


class _Tee(io.TextIOBase):
    """Writes to the real stream and keeps a copy."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, s: str) -> int:
        self.parts.append(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class CellSyntaxError(Exception):
    """A syntax error in a tracked cell's own code, shown as IPython shows one in a plain
    cell — the line and a caret, no stack (IPython gives a real ``SyntaxError`` raised
    while running code its long view, with every frame). Named ``SyntaxError`` so the
    kernel's error reply and papermill report it as one; ``original`` is the error."""

    def __init__(self, original: SyntaxError, lines: list[str]) -> None:
        super().__init__(original.msg)
        self.original = original
        self._lines = lines

    def _render_traceback_(self) -> list[str]:
        return self._lines


CellSyntaxError.__name__ = CellSyntaxError.__qualname__ = "SyntaxError"


def _split_kv(text: str | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise UsageError(f"{what} takes key=value pairs separated by commas, got {item!r}.")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@magics_class
class Cellops(Magics):
    """cellops magics. Options: ``%config Cellops.<option> = value``."""

    autolog = Bool(True, help="Log scikit-learn estimators fitted in a %%track cell "
                              "(params, skops model, input signature).").tag(config=True)
    capture_figures = Bool(True, help="Store matplotlib figures a %%track cell shows as PNG "
                                      "artifacts.").tag(config=True)
    capture_stdout = Bool(True, help="Keep what a %%track cell prints as stdout.txt (it is "
                                     "still shown).").tag(config=True)
    live_metrics = Bool(True, help="Draw a live chart while a %%track cell logs per-step "
                                   "metrics.").tag(config=True)
    live_interval = Float(1.0, help="Seconds between live chart redraws.").tag(config=True)
    show_run = Bool(True, help="Show a summary of the run after a %%track cell.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        if shell is not None and self not in shell.configurables:
            shell.configurables.append(self)  # so that %config Cellops.<option> works
        self.session = NotebookSession(shell)
        self.session.register()
        if shell is not None:
            from cellops.widgets.live import prepare_when_idle

            prepare_when_idle()  # the live chart's library, while the kernel waits

    # -- %experiment -------------------------------------------------------------
    @magic_arguments()
    @argument("name", nargs="*", help="Experiment name (created if missing). Without it, "
                                      "print the current experiment.")
    @line_magic
    def experiment(self, line: str) -> None:
        """Set the experiment this notebook's runs go to."""
        args = parse_argstring(self.experiment, line)
        name = unquote(" ".join(args.name).strip()) or ""
        if not name:
            print(f"Current experiment: {cellops.current_experiment()}")
            return
        try:
            exp = cellops.set_experiment(name)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        print(f"Experiment: {exp.name} ({exp.run_count} runs)")

    # -- %%track and %track on|off|status ---------------------------------------------
    @magic_arguments()
    @argument("mode", nargs="?", choices=["on", "off", "status"],
              help="Line magic only: on = record every following cell of this session in "
                   "order under the notebook run; off = stop; status = say what is recorded.")
    @argument("-n", "--name", help="Run name (default: none).")
    @argument("-e", "--experiment", help="Experiment for this run (default: the current one).")
    @argument("--metrics", metavar="A,B", help="Variables to log as metrics after the cell.")
    @argument("--params", metavar="X,Y", help="Variables to log as params after the cell.")
    @argument("--tags", metavar="K=V,...", help="Tags for the run.")
    @argument("--no-autolog", action="store_true",
              help="Do not capture scikit-learn estimators in this cell.")
    @line_cell_magic
    def track(self, line: str, cell: str | None = None) -> Any:
        """%%track: run this cell as a tracked run. %track on|off|status: session history."""
        args = parse_argstring(self.track, line)
        if cell is None:
            return self._track_mode(args.mode or "status")
        if args.mode:
            raise UsageError("%%track takes options only; use the line magic %track on|off|status.")
        return self._track_cell(args, cell, f"%%track {line}".rstrip())

    def _track_mode(self, mode: str) -> None:
        s = self.session
        if mode == "on":
            run = s.start_recording()
            print(f"Recording every cell under notebook run {run.short_id}. "
                  f"Export with: cellops history {run.short_id} --to notebook out.ipynb")
        elif mode == "off":
            s.stop_recording()
            print("Stopped recording cells.")
        else:
            if s.recording and s.run_id:
                n = len(cellops.cell_history(s.run_id))
                print(f"Recording: on, {n} cells so far under run {s.run_id[:8]}.")
            else:
                print("Recording: off. Turn it on with %track on.")

    def _track_cell(self, args: Any, cell: str, first: str) -> Any:
        shell = self.shell
        ns = shell.user_ns
        tags = _split_kv(args.tags, "--tags")
        before = snapshot(ns) if self.autolog and not args.no_autolog else None
        plt = sys.modules.get("matplotlib.pyplot") if self.capture_figures else None
        figs_before = set(plt.get_fignums()) if plt is not None else set()
        try:
            run = cellops.start_run(name=args.name, experiment=args.experiment, tags=tags or None,
                                    kind="cell")
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        shown: list[bytes] = []
        publish = shell.display_pub.publish

        def spy(data: dict, *a: Any, **kw: Any) -> Any:
            if self.capture_figures and isinstance(data, dict) and "image/png" in data:
                png = data["image/png"]
                shown.append(png if isinstance(png, bytes) else base64.b64decode(png))
            return publish(data, *a, **kw)

        tee = _Tee(sys.stdout) if self.capture_stdout else None
        live = None
        if self.live_metrics:
            from cellops.widgets.live import LiveChart

            live = LiveChart(run, self.live_interval)
        shell.display_pub.publish = spy
        if tee is not None:
            sys.stdout = tee  # type: ignore[assignment]
        try:
            if live is not None:
                with live:
                    value = self._execute(cell, first)
            else:
                value = self._execute(cell, first)
        except BaseException as exc:
            self._restore(publish, tee)
            self._after(run, args, ns, before, plt, figs_before, shown, tee)
            run.fail(exc, text=self._user_traceback(exc))
            self._show(run)
            raise
        self._restore(publish, tee)
        notes = self._after(run, args, ns, before, plt, figs_before, shown, tee)
        run.end("FINISHED")
        self._show(run, notes)
        return value

    def _restore(self, publish: Any, tee: _Tee | None) -> None:
        self.shell.display_pub.publish = publish
        if tee is not None and sys.stdout is tee:
            sys.stdout = tee.stream

    def _execute(self, cell: str, first_line: str) -> Any:
        """Run the cell in the user namespace; return the last expression's value like IPython.

        The code is compiled one line down, under a name whose cached text is the whole
        cell as the user sees it (``%%track`` line included): a traceback shows "Cell
        In[N], line K" with the user's own lines, as for a cell without the magic."""
        shell = self.shell
        code = shell.transform_cell(cell)
        # The number of the cell running now, as IPython gave it: IPython 9 counts the next
        # cell from the start of this one (``shell.execution_count`` is already N + 1 here),
        # IPython 8 at its end; both keep the running cell's result on the display hook.
        running = getattr(getattr(shell, "displayhook", None), "exec_result", None)
        number = getattr(running, "execution_count", None)
        filename = shell.compile.cache(first_line + "\n" + cell,
                                       shell.execution_count if number is None else number)
        try:
            tree = ast.parse("\n" + code, filename)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, "exec")
            tail = compile(last, filename, "eval") if last is not None else None
        except SyntaxError as exc:
            stb = shell.SyntaxTB.structured_traceback(type(exc), exc, [])
            raise CellSyntaxError(exc, stb) from None
        exec(body, shell.user_ns)
        if tail is not None:
            return eval(tail, shell.user_ns)
        return None

    def _user_traceback(self, exc: BaseException) -> str:
        """The traceback as IPython shows it for a cell without the magic — the user's
        frames only — set as the exception's rendering, and returned as plain text for the
        run's stored error (the same text, without colours)."""
        import re
        import traceback

        ansi = re.compile(r"\x1b\[[0-9;]*m")
        if isinstance(exc, CellSyntaxError):  # the cell does not compile: line and caret
            return ansi.sub("", "\n".join(exc._render_traceback_())).strip("\n")
        if isinstance(exc, SyntaxError) or exc.__traceback__ is None:
            # IPython shows a SyntaxError with its own view (the whole stack, as for any
            # compiled code); what is stored is what a plain cell shows: the line and caret.
            try:
                stb = self.shell.SyntaxTB.structured_traceback(type(exc), exc, [])
                return ansi.sub("", "\n".join(stb)).strip("\n")
            except Exception:  # noqa: BLE001
                return "".join(traceback.format_exception_only(type(exc), exc))
        tb = exc.__traceback__
        while tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(
                "cellops.magics"):
            tb = tb.tb_next  # the magic's own frames
        try:
            stb = self.shell.InteractiveTB.structured_traceback(type(exc), exc, tb, tb_offset=0)
            exc._render_traceback_ = lambda: stb  # type: ignore[attr-defined]  # IPython shows this
        except Exception:  # noqa: BLE001 - an exception without attributes: IPython's own view
            return "".join(traceback.format_exception(type(exc), exc, tb))
        return ansi.sub("", "\n".join(stb))

    def _after(self, run: cellops.Run, args: Any, ns: dict, before: Any, plt: Any,
               figs_before: set, shown: list[bytes], tee: _Tee | None) -> list[str]:
        """Log what the cell produced; problems become notes, never a failed cell."""
        notes: list[str] = []
        for name in _names(args.metrics):
            if name not in ns:
                notes.append(f"--metrics: no variable {name!r}")
                continue
            try:
                run.log_metric(name, ns[name])
            except CellopsError as exc:
                notes.append(f"--metrics {name}: {exc}")
        params = {}
        for name in _names(args.params):
            if name not in ns:
                notes.append(f"--params: no variable {name!r}")
            else:
                params[name] = ns[name]
        if params:
            try:
                run.log_params(params)
            except CellopsError as exc:
                notes.append(f"--params: {exc}")
        if before is not None:
            fitted = fitted_since(before, ns)
            if fitted:
                notes += log_estimators(run, fitted, ns)
        for i, png in enumerate(shown):
            run.log_artifact(png, f"figures/figure-{i + 1}.png")
        if plt is not None:
            k = len(shown)
            for num in plt.get_fignums():
                if num in figs_before:
                    continue
                buf = io.BytesIO()
                plt.figure(num).savefig(buf, format="png", bbox_inches="tight")
                k += 1
                run.log_artifact(buf.getvalue(), f"figures/figure-{k}.png")
        if tee is not None and tee.parts:
            run.log_text("".join(tee.parts), "stdout.txt")
        return notes

    def _show(self, run: cellops.Run, notes: list[str] | None = None) -> None:
        if not self.show_run:
            return
        from IPython.display import HTML, display

        display(HTML(run_summary_html(run, notes=notes or [])))

    # -- %%params -----------------------------------------------------------------
    @magic_arguments()
    @argument("--no-log", action="store_true", help="Run the assignments without logging them.")
    @cell_magic
    def params(self, line: str, cell: str) -> None:
        """Run a cell of assignments and log its simple values as params of the notebook run.

        Numbers, strings, bools, None and lists/dicts of those are logged. Tag the cell
        `parameters` for papermill: the values papermill injects win. Changing a value
        interactively starts a new notebook run (params are immutable per run).
        """
        args = parse_argstring(self.params, line)
        self._execute(cell, f"%%params {line}".rstrip())
        if args.no_log:
            return
        values = self.session.params_from_cell(self.shell.transform_cell(cell))
        try:
            run, restarted = self.session.log_params(values)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        if run is not None and restarted:
            print(f"Params changed: started a new notebook run {run.short_id}.")

    # -- %%expect_error --------------------------------------------------------------
    @magic_arguments()
    @argument("error", nargs="?", default=None,
              help="The exception the cell raised when it was recorded, e.g. ZeroDivisionError.")
    @cell_magic
    def expect_error(self, line: str, cell: str) -> Any:
        """Run the cell and print the exception it raises instead of stopping the notebook.

        `cellops history RUN --to notebook` puts the cells that raised when they were
        recorded under it, so the replay runs to the end under papermill (which stops at
        any error and ignores the raises-exception tag) as under Jupyter. The error goes
        to stderr as text, not as an error output. A cell that now runs through says so.
        """
        args = parse_argstring(self.expect_error, line)
        try:
            value = self._execute(cell, f"%%expect_error {line}".rstrip())
        except Exception as exc:  # noqa: BLE001 - showing it is the point
            text = self._user_traceback(exc)
            if args.error and type(exc).__name__ != args.error:
                text += f"\n(it raised {args.error} when it was recorded)"
            print(text, file=sys.stderr)
            return None
        print(f"This cell raised {args.error or 'an error'} when it was recorded; it ran "
              "through this time.", file=sys.stderr)
        return value

    # -- widgets ------------------------------------------------------------------
    @magic_arguments()
    @argument("filter", nargs="*", help="Filter in the search grammar, e.g. metrics.acc > 0.9")
    @argument("-e", "--experiment", help="Experiment (default: the current one; 'all' for every one).")
    @line_magic
    def runs(self, line: str) -> Any:
        """Show a runs table: sort, filter, select runs to compare."""
        args = parse_argstring(self.runs, line)
        from cellops.widgets.runs_table import RunsTable

        exp = args.experiment or cellops.current_experiment()
        try:
            return RunsTable(experiment=None if exp == "all" else exp,
                             filter=" ".join(args.filter) or None)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @argument("run_ids", nargs="+", help="Two or more run ids (or unique prefixes).")
    @argument("-m", "--metric", help="With three or more runs: the metric of the "
              "parallel-coordinates chart (default: the one most runs have).")
    @line_magic
    def compare(self, line: str) -> Any:
        """Compare runs: params side by side, metric histories as charts, cell-source diff,
        and for three or more runs the params that vary against a metric (parallel axes)."""
        args = parse_argstring(self.compare, line)
        from cellops.widgets.compare import compare_report

        try:
            return compare_report(args.run_ids, args.metric)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None


MAGICS = [Cellops]


def unload(ipython: Any) -> None:
    """Stop the session's cell hooks (``%unload_ext cellops``)."""
    magics = ipython.magics_manager.registry.get("Cellops")
    if magics is not None:
        magics.session.unregister()
