"""Exceptions raised by cellops.

Every error cellops raises on purpose derives from :class:`CellopsError`, so
``except cellops.CellopsError`` catches them all. Messages say what happened and
what to do next. The tree::

    CellopsError
    ├── WorkspaceError            the .cellops folder cannot be found, created or opened
    ├── StoreError                the SQLite database failed (wraps sqlite3 errors)
    │   └── StoreBusyError        another process held the write lock for too long
    ├── NotFoundError (LookupError)
    │   ├── RunNotFoundError
    │   ├── ExperimentNotFoundError
    │   ├── ArtifactNotFoundError
    │   └── ModelNotFoundError    no such registered model, version, alias or request
    ├── InvalidArgumentError (ValueError)
    │   ├── ParamConflictError    a param was logged again with a different value
    │   ├── ArtifactNameError     a logical artifact name is unsafe (``..``, absolute,
    │   │                         control characters)
    │   ├── FilterSyntaxError     a search filter or order_by string cannot be parsed
    │   ├── UnknownParameterError a notebook does not declare a parameter given to it
    │   └── UntrustedTypesError   a model file needs types nobody said to trust
    ├── RunStateError             the operation needs a run in another state
    │                             (e.g. logging to a run that has ended, deleting a live run)
    ├── ModelStateError           the registry is not in a state that allows it (deleting a
    │                             version an alias points at, deciding a decided request)
    ├── GovernanceError           the acting user may not do this (approving one's own
    │                             request, approving without being an approver)
    ├── ExecutorError             where steps run cannot be reached (a Dask scheduler that
    │                             does not answer)
    └── StepError                 a notebook step did not run through (a cell raised, a
                                  timeout, a dead kernel): cell_index, ename, evalue, ...

    CellopsWarning (UserWarning)  something was not stored or not done, and the work went on
                                  (e.g. metric points of a deleted run dropped by a flush)
"""

from __future__ import annotations

__all__ = [
    "ArtifactNameError",
    "ArtifactNotFoundError",
    "CellopsError",
    "CellopsWarning",
    "ExecutorError",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "GovernanceError",
    "InvalidArgumentError",
    "ModelNotFoundError",
    "ModelStateError",
    "NotFoundError",
    "ParamConflictError",
    "RunNotFoundError",
    "RunStateError",
    "StepError",
    "StoreBusyError",
    "StoreError",
    "UnknownParameterError",
    "UntrustedTypesError",
    "WorkspaceError",
]


class CellopsError(Exception):
    """Base class of every error cellops raises on purpose."""


class WorkspaceError(CellopsError):
    """The workspace folder cannot be found, created or opened."""


class StoreError(CellopsError):
    """The workspace database failed; the original error is chained as ``__cause__``."""


class StoreBusyError(StoreError):
    """Another process kept the database write lock longer than the retry budget."""


class NotFoundError(CellopsError, LookupError):
    """Something named by the caller does not exist in the workspace."""


class RunNotFoundError(NotFoundError):
    """No run matches the given id or id prefix."""


class ExperimentNotFoundError(NotFoundError):
    """No experiment has the given name."""


class ArtifactNotFoundError(NotFoundError):
    """A run has no artifact under the given name, or its blob is missing."""


class ArtifactCorruptError(StoreError):
    """A stored blob's bytes no longer match its sha256."""


class ModelNotFoundError(NotFoundError):
    """No registered model, version, alias or promotion request matches."""


class ModelStateError(CellopsError):
    """The registry is not in a state that allows the operation."""


class GovernanceError(CellopsError):
    """The acting user may not do this; the message says who may."""


class InvalidArgumentError(CellopsError, ValueError):
    """An argument has the wrong type or value."""


class ParamConflictError(InvalidArgumentError):
    """A param was logged again with a value different from the stored one.

    Attributes ``run_id``, ``key``, ``old`` and ``new`` say which.
    """

    def __init__(self, run_id: str, key: str, old: str, new: str) -> None:
        self.run_id, self.key, self.old, self.new = run_id, key, old, new
        super().__init__(
            f"Param {key!r} of run {run_id[:8]} is already {old!r}; cannot change it to {new!r}. "
            "Params are immutable per run: log the new value under another key, "
            "or start a new run."
        )


class ArtifactNameError(InvalidArgumentError):
    """A logical artifact name would escape the run's namespace or is malformed."""


class FilterSyntaxError(InvalidArgumentError):
    """A filter or order_by string cannot be parsed.

    Attributes ``text`` (the whole string) and ``position`` (offset of the
    offending part, or ``None``) locate the problem.
    """

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.text, self.position = text, position
        if text and position is not None:
            # A window of the text around the problem, so long filters give short messages.
            start = max(0, position - 40)
            end = min(len(text), position + 40)
            excerpt = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
            # A lone surrogate cannot be printed: shown as U+FFFD, one character for one.
            excerpt = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in excerpt)
            caret = position - start + (3 if start else 0)
            message = f"{message}\n  {excerpt}\n  {' ' * caret}^"
        super().__init__(message)


class UnknownParameterError(InvalidArgumentError):
    """A notebook does not declare parameters it was given (papermill would inject them
    where nothing reads them). ``notebook``, ``unknown`` and ``known`` say which."""

    def __init__(self, message: str, *, notebook: str, unknown: list[str],
                 known: list[str]) -> None:
        self.notebook, self.unknown, self.known = notebook, list(unknown), list(known)
        super().__init__(message)


class RunStateError(CellopsError):
    """The operation needs the run to be in another state."""


class ExecutorError(CellopsError):
    """The executor that runs steps and trials cannot be reached; nothing ran on it."""


class StepError(CellopsError):
    """A notebook step (pipeline step, sweep trial, reproduction) did not run through.

    Like papermill's ``PapermillExecutionError``, it keeps what a caller needs:
    ``kind`` (``failed``: a cell raised; ``timeout``; ``dead``: the kernel died;
    ``error``: papermill itself failed; ``trials``: trials of a sweep step failed),
    ``cell_index``, ``ename``, ``evalue`` (for a cell that raised), ``output_notebook``
    (the executed notebook, failing cell marked) and ``step`` (its name, when known).
    """

    def __init__(self, message: str, *, kind: str = "failed", cell_index: int | None = None,
                 ename: str | None = None, evalue: str | None = None,
                 output_notebook: str | None = None, step: str | None = None) -> None:
        self.kind, self.cell_index, self.ename, self.evalue = kind, cell_index, ename, evalue
        self.output_notebook, self.step = output_notebook, step
        super().__init__(message)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_step_error, (str(self), self.__dict__))


def _step_error(message: str, fields: dict) -> StepError:
    return StepError(message, **fields)


class UntrustedTypesError(InvalidArgumentError):
    """A model file needs types outside the trusted list; ``types`` names them."""

    def __init__(self, message: str, types: list[str]) -> None:
        self.types = list(types)
        super().__init__(message)


class CellopsWarning(UserWarning):
    """Something was not stored or not done, and the work went on; the message says what."""
