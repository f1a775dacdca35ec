"""IPython magics, one module per area (``tracking``, ``registry``, ``serving``,
``monitoring``; :mod:`.arguments` what they share). ``%load_ext cellops`` registers every
area's magics.

An area module lists its ``@magics_class`` classes in ``MAGICS`` and may define
``unload(ipython)``; modules are found in this package when the extension loads, so a
new area adds a module and edits none.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any


def _areas() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{m.name}")
            for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]


def load_ipython_extension(ipython: Any) -> None:
    """Register the cellops magics (``%load_ext cellops``)."""
    for area in _areas():
        for magics in getattr(area, "MAGICS", ()):
            ipython.register_magics(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Stop what the areas started (``%unload_ext cellops``)."""
    for area in _areas():
        unload = getattr(area, "unload", None)
        if unload is not None:
            unload(ipython)
