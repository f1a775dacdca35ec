"""Magics of the monitoring area: ``%drift`` and ``%monitor``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import cellops
from cellops.errors import CellopsError


@magics_class
class Monitoring(Magics):
    """cellops monitoring magics."""

    def _value(self, name: str) -> Any:
        """A variable of the notebook (a DataFrame), else the name of a logged dataset."""
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
            return name[1:-1]
        ns = self.shell.user_ns if self.shell is not None else {}
        return ns[name] if name in ns else name

    @magic_arguments()
    @argument("reference", help="A DataFrame variable, or the name of a logged dataset.")
    @argument("current", help="A DataFrame variable (e.g. cellops.predictions(...)), or a "
                              "logged dataset's name.")
    @argument("--columns", help="Comma-separated columns to test (default: those both have).")
    @argument("--categorical", help="Comma-separated columns to treat as categories.")
    @argument("--method", default="auto", help="auto, or a test name such as psi or ks.")
    @argument("--threshold", type=float, help="The test's threshold (default: its own).")
    @argument("--log", action="store_true", help="Record the report as a run (kind monitor).")
    @line_magic
    def drift(self, line: str) -> Any:
        """Test CURRENT for drift from REFERENCE and show the report, e.g. ``%drift train
        recent`` after ``recent = cellops.predictions("churn")``; returns the DriftReport."""
        args = parse_argstring(self.drift, line)
        split = lambda s: [c.strip() for c in s.split(",") if c.strip()] if s else None  # noqa: E731
        try:
            return cellops.drift(self._value(args.reference), self._value(args.current),
                                 columns=split(args.columns), categorical=split(args.categorical),
                                 method=args.method, threshold=args.threshold, log=args.log)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @argument("name", nargs="?", help="The monitor (default: list them).")
    @argument("--run", action="store_true", help="Evaluate new complete windows first.")
    @line_magic
    def monitor(self, line: str) -> Any:
        """Show a monitor's state, its drift-share and performance charts over windows and
        its open alerts: ``%monitor churn-drift`` (``--run`` evaluates new windows first)."""
        from IPython.display import HTML

        args = parse_argstring(self.monitor, line)
        try:
            if args.name is None:
                found = cellops.monitors()
                if not found:
                    print("No monitors. Create one with cellops.create_monitor(...) or "
                          "`cellops monitor apply monitors.yaml`.")
                    return None
                rows = "".join(f"<tr><td>{m.name}</td><td>{m.model}</td><td>"
                               f"{m.spec['window']['text']}</td><td>{m.state}</td></tr>"
                               for m in found)
                return HTML("<table><tr><th>monitor</th><th>model</th><th>window</th>"
                            f"<th>state</th></tr>{rows}</table>")
            monitor = cellops.get_monitor(args.name)
            if args.run:
                for result in cellops.run_monitors(args.name):
                    print(result)
            return monitor
        except CellopsError as exc:
            raise UsageError(str(exc)) from None


MAGICS = [Monitoring]
