"""Magics of the serving area: ``%serve``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import cellops
from cellops.errors import CellopsError

from .arguments import unquote

_started: list[Any] = []  # servers %serve started in this kernel



@magics_class
class Serving(Magics):
    """cellops serving magics."""

    @magic_arguments()
    @argument("uri", nargs="?", help="models:/NAME/VERSION, models:/NAME@ALIAS (followed), "
                                     "models:/NAME/latest or runs:/RUN_ID/PATH.")
    @argument("--port", type=int, default=0, help="Port (default: any free one).")
    @argument("--host", default="127.0.0.1", help="Interface (default 127.0.0.1).")
    @argument("--token", help="Require 'Authorization: Bearer TOKEN'.")
    @argument("--no-log", action="store_true", help="Keep no prediction log.")
    @argument("--poll-interval", type=float, default=2.0, help="Seconds between alias checks.")
    @argument("--list", action="store_true", help="Show the servers %%serve started here.")
    @argument("--stop", action="store_true", help="Stop the servers %%serve started here (all, "
                                                  "or the one serving URI).")
    @line_magic
    def serve(self, line: str) -> Any:
        """Serve a model from this kernel in the background; returns the server (shown with its
        URL and a curl): ``server = %serve models:/NAME@ALIAS``."""
        from IPython.display import display

        args = parse_argstring(self.serve, line)
        uri = unquote(args.uri)
        _started[:] = [s for s in _started if s.running]
        if args.stop:
            chosen = [s for s in _started if uri is None or s.config.uri == uri]
            if not chosen:
                print("No server started by %serve " + (f"serves {uri}." if uri else "is running."))
            for s in chosen:
                s.stop()
                print(f"Stopped {s}.")
            _started[:] = [s for s in _started if s.running]
            return None
        if args.list or uri is None:
            if not _started:
                print("No server started by %serve is running. Start one: %serve models:/NAME@ALIAS")
            for s in _started:
                display(s)
            return None
        try:
            server = cellops.serve(uri, host=args.host, port=args.port, token=unquote(args.token),
                                   log=not args.no_log, poll_interval=args.poll_interval)
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        _started.append(server)
        return server  # shown as the cell's result (URL and curl); `server = %serve URI` keeps it


def unload(ipython: Any) -> None:
    """``%unload_ext cellops`` stops the servers %serve started."""
    for server in _started:
        server.stop()
    _started.clear()


MAGICS = [Serving]
