"""Magics of the registry area: ``%register``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

import cellops
from cellops.errors import CellopsError

from .arguments import unquote


@magics_class
class Registry(Magics):
    """cellops registry magics."""

    @magic_arguments()
    @argument("name", help="Registered model name (created on its first version).")
    @argument("--run", help="Register from this run (id or prefix) instead of the last tracked cell.")
    @argument("--artifact", help="Which model file of the run (default: the one the cell captured).")
    @argument("--alias", help="Then point this alias at the new version (a protected alias "
                              "opens a promotion request instead).")
    @argument("--description", help="What the model is for (shown on its model card).")
    @line_magic
    def register(self, line: str) -> Any:
        """Register the model of the last tracked cell (or --run) as the next version of NAME."""
        from IPython.display import HTML, display

        args = parse_argstring(self.register, line)
        try:
            run = cellops.get_run(args.run) if args.run else cellops.last_active_run()
            if run is None:
                raise UsageError("No tracked cell yet: fit a model in a %%track cell, or pass --run RUN.")
            version = cellops.register_model(run, unquote(args.name), artifact=unquote(args.artifact),
                                             description=unquote(args.description))
            if args.alias:
                moved = cellops.set_alias(version.name, unquote(args.alias), version.version)
                print(f"{version.name}@{args.alias} is protected: opened {moved}"
                      if isinstance(moved, cellops.PromotionRequest)
                      else f"{version.name}@{args.alias} -> version {version.version}")
            display(HTML(cellops.model_card(version.name, version.version).summary_html()))
        except CellopsError as exc:
            raise UsageError(str(exc)) from None
        return None


MAGICS = [Registry]
