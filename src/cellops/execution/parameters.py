"""What parameters a notebook takes, and whether the ones given to it will reach it.

papermill injects parameters in a new cell after the cell tagged ``parameters``. A name
the notebook does not declare there is still injected, but nothing reads it (a typo, or a
parameter of another notebook); a notebook with no ``parameters`` cell gets the injected
cell at its top, where the notebook's own assignments overwrite it. Either way the run
would use the notebook's defaults while its record says otherwise, so pipelines, sweeps
and monitors check the names first (:func:`check_parameters`) and refuse what would be
ignored, unless the caller opts in (``allow_unknown``).

Declared names come from papermill's own inspection of the ``parameters`` cell
(:func:`papermill.inspect_notebook`), so they are the names papermill sees.
"""

from __future__ import annotations

import ast
import difflib
import logging
import os
from dataclasses import dataclass
from typing import Iterable

from ..errors import InvalidArgumentError, UnknownParameterError

__all__ = ["NotebookParameters", "assigned_names", "check_parameters", "notebook_parameters"]


@dataclass(frozen=True)
class NotebookParameters:
    """A notebook's ``parameters`` cell as papermill reads it.

    ``names``: the declared names in order, with their default source text; ``tagged``:
    whether a cell is tagged ``parameters``; ``inspectable``: False when papermill cannot
    read the kernel's language (then no name can be checked); ``untagged_params_cell``:
    the notebook has a ``%%params`` cell that is not tagged (a common slip).
    """

    path: str
    names: dict[str, str]
    tagged: bool
    inspectable: bool = True
    untagged_params_cell: bool = False


_cache: dict[tuple[str, float, int], NotebookParameters] = {}


def notebook_parameters(path: str | os.PathLike[str]) -> NotebookParameters:
    """The parameters ``path`` declares (read once per file version)."""
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime, st.st_size)
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = _inspect(path)
    return found


def _inspect(path: str) -> NotebookParameters:
    import nbformat
    from papermill.translators import papermill_translators
    from papermill.utils import nb_kernel_name, nb_language

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - JSON, schema and I/O errors alike
        raise InvalidArgumentError(f"Cannot read notebook {path}: {exc}. Is it a Jupyter "
                                   "notebook (.ipynb) saved by Jupyter?") from None
    index = next((i for i, c in enumerate(nb.cells)
                  if "parameters" in (c.get("metadata", {}).get("tags") or ())), -1)
    if index < 0:
        untagged = any(c.get("cell_type") == "code" and c.get("source", "").lstrip()
                       .startswith("%%params") for c in nb.cells)
        return NotebookParameters(path, {}, False, True, untagged)
    cell = nb.cells[index]
    language = nb_language(nb)
    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns of each line it cannot parse: see below
    try:
        translator = papermill_translators.find_translator(nb_kernel_name(nb), language)
        names = {p.name: p.default for p in translator.inspect(cell)}
    except (NotImplementedError, ValueError):  # a language papermill cannot read
        names = None
    finally:
        quiet.setLevel(level)
    if language == "python":
        # papermill reads Python line by line and skips lines it cannot parse (a comment
        # holding '=' after a value); the syntax tree misses nothing the cell assigns.
        code = "\n".join(line for line in cell.source.splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        found = names or {}
        names = {n: found.get(n, "") for n in assigned_names(code)}
        names.update({n: d for n, d in found.items() if n not in names})
    if names is None:
        return NotebookParameters(path, {}, True, inspectable=False)
    return NotebookParameters(path, names, True)


def assigned_names(source: str) -> list[str]:
    """Names bound at the top level of ``source`` by assignments, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []

    def add(target: ast.AST) -> None:
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                add(elt)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            add(node.target)
    return names


def check_parameters(notebook: str | os.PathLike[str], given: Iterable[str], *,
                     allow_unknown: bool = False, what: str | None = None,
                     hint: str = "allow_unknown=True") -> list[str]:
    """The names in ``given`` that ``notebook`` does not declare.

    Unless ``allow_unknown``, any such name raises :class:`~cellops.errors.UnknownParameterError`
    naming the notebook, the unknown names (with a "did you mean"), the declared ones and,
    in ``hint``, how to opt in. ``what`` prefixes the message (``"step 'train'"``).
    """
    given = list(given)
    if not given:
        return []
    params = notebook_parameters(notebook)
    if not params.inspectable:
        return []
    unknown = [n for n in given if n not in params.names]
    if unknown and not allow_unknown:
        raise UnknownParameterError(unknown_message(params, unknown, what, hint),
                                    notebook=params.path, unknown=unknown,
                                    known=list(params.names))
    return unknown


def unknown_message(params: NotebookParameters, unknown: list[str], what: str | None,
                    hint: str) -> str:
    """Why the names in ``unknown`` would not reach the notebook, and what to do."""
    where = f"{what}: " if what else ""
    nb = os.path.basename(params.path)
    names = ", ".join(repr(n) for n in unknown)
    opt_in = f"or pass {hint} to inject them anyway"
    if not params.tagged:
        extra = (" Its %%params cell is not tagged 'parameters': tag it (JupyterLab: the "
                 "property inspector, Cell Tags)" if params.untagged_params_cell else
                 " Tag the cell that assigns the defaults 'parameters' (JupyterLab: the "
                 "property inspector, Cell Tags)")
        return (f"{where}notebook {nb} has no cell tagged 'parameters', so {names} would be "
                f"injected above its first cell, where its own assignments overwrite them and "
                f"the run would use its defaults.{extra}, {opt_in}.")
    guesses = [f"{match!r} for {name!r}" for name in unknown
               if (match := close_match(name, params.names)) is not None]
    did_you_mean = f" Did you mean {', '.join(guesses)}?" if guesses else ""
    declared = ", ".join(params.names) or "none"
    return (f"{where}notebook {nb} has no parameter {names}, so it would run with its own "
            f"defaults.{did_you_mean} Its parameters cell declares: {declared}. Fix the name, "
            f"add it to that cell, {opt_in}.")


def close_match(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a mistyped ``name`` most likely meant, if any."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None
