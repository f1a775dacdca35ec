"""Model files: scikit-learn models saved with skops, loaded without trusting pickle.

A skops file names every type it needs. :func:`load_skops` loads one when each of
those types is trusted:

- the types skops itself trusts by default (common scikit-learn estimators, numpy and
  scipy basics);
- every *class* defined in scikit-learn, numpy or scipy: estimators, transformers and the
  helper types they keep (``sklearn.tree._tree.Tree``, optimizers, loss objects), numpy
  dtypes and scalars, scipy sparse matrices. Functions are not included, and nothing from
  another package is;
- the names the caller passes in ``trusted=``, after reading the file's list.

Anything else — a class or function from ``__main__``, a third-party package,
``builtins.eval`` — makes :class:`~cellops.errors.UntrustedTypesError` list the types
and show the call that trusts them. Nothing is imported to decide, except modules of
scikit-learn, numpy and scipy themselves.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import sys
from pathlib import Path
from typing import IO, Any, Iterable

from .errors import InvalidArgumentError, UntrustedTypesError

__all__ = ["dump_skops", "load_skops", "trusted_by_default", "untrusted_types"]

TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def dump_skops(model: Any) -> bytes:
    """The skops bytes of a fitted model (never pickle)."""
    import skops.io as sio

    return sio.dumps(model)


def trusted_by_default(type_name: str) -> bool:
    """Whether :func:`load_skops` trusts ``type_name`` without being told (see module doc)."""
    if not _DOTTED.match(type_name):
        return False
    module_name, _, attr = type_name.rpartition(".")
    if module_name.split(".", 1)[0] not in TRUSTED_PACKAGES:
        return False
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - an unknown module of those packages is not trusted
        return False
    obj = getattr(module, attr, None)
    if not isinstance(obj, type):
        return False
    home = (getattr(obj, "__module__", "") or "").split(".", 1)[0]
    return home in TRUSTED_PACKAGES


def untrusted_types(source: str | os.PathLike[str] | bytes | IO[bytes]) -> list[str]:
    """The types a skops file needs that :func:`load_skops` would not trust by default."""
    import skops.io as sio

    return [t for t in sio.get_untrusted_types(data=_read(source)) if not trusted_by_default(t)]


def load_skops(source: str | os.PathLike[str] | bytes | IO[bytes], *,
               trusted: Iterable[str] = ()) -> Any:
    """Load a model saved with skops, trusting only the types described in this module.

    ``source`` is a path, the file's bytes, or a binary file object. ``trusted`` names
    extra types to allow: pass them only for a file whose author you trust, having read
    the list the error gives.
    """
    import skops.io as sio

    if isinstance(trusted, str):
        raise InvalidArgumentError("trusted takes a list of type names, e.g. "
                                   "trusted=['mypkg.MyTransformer'], not one string.")
    data = _read(source)
    try:
        needed = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - zipfile, json and skops errors alike
        raise InvalidArgumentError(
            f"{_label(source)} is not a readable skops file ({type(exc).__name__}: {exc}). "
            "Save models with cellops.dump_skops(model) or skops.io.dump.") from None
    allowed = set(trusted)
    missing = [t for t in needed if t not in allowed and not trusted_by_default(t)]
    if missing:
        shown = ", ".join(repr(t) for t in missing)
        raise UntrustedTypesError(
            f"{_label(source)} needs types that are not trusted by default: {shown}. Loading "
            "runs code from them, so load it only if you trust whoever wrote the file, by "
            f"naming them: cellops.load_skops(source, trusted=[{shown}]).", missing)
    return sio.loads(data, trusted=[t for t in needed if t in allowed or trusted_by_default(t)])


def _read(source: str | os.PathLike[str] | bytes | IO[bytes]) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise InvalidArgumentError(f"Cannot read the model file {source}: {exc}") from None
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        return source.read()
    raise InvalidArgumentError(
        f"load_skops takes a path, bytes or a binary file, not {type(source).__name__}.")


def _label(source: Any) -> str:
    return f"The model file {source}" if isinstance(source, (str, os.PathLike)) else "The model"
