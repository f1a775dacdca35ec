"""The model a scoring server answers with, and how it follows an alias.

:func:`load_served` loads any :func:`~cellops.load_model` URI with its signature. When
every input column is numeric, the model is probed once: if it gives the same answers
for a float array (columns in signature order) as for a DataFrame, requests skip building
a DataFrame — scikit-learn's per-call DataFrame checks cost more than the prediction.

:class:`ModelHolder` keeps the current :class:`ServedModel`. For a URI with an alias (or
``latest``) it watches the registry from a background thread; when the alias moves, the
new version is loaded there and swapped in with one assignment. A request reads
``holder.current`` once, so it is answered by exactly one version, and none waits for
or fails because of a swap.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..registry.versions import (
    get_model_version,
    load_model,
    parse_model_uri,
    run_signature,
)
from ..tracking.api import get_run
from ..workspaces import Workspace, use_workspace, workspace
from .payloads import Inputs, PayloadError, Signature

__all__ = ["ModelHolder", "PREDICT_METHODS", "ServedModel", "load_served", "quiet_feature_names"]

PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
_log = logging.getLogger("cellops.serving")
FEATURE_NAMES_WARNING = "X does not have valid feature names"


def quiet_feature_names() -> None:
    """Silence scikit-learn's warning about arrays without feature names: the server checks
    the columns itself and passes the validated rows as an array in signature order."""
    warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING, category=UserWarning)


@dataclass
class ServedModel:
    """A loaded model with what the server needs to answer for it."""

    name: str
    version: int | None
    uri: str  # what the server was asked to serve
    estimator: Any
    signature: Signature
    array_ok: bool = False
    loaded_at: float = field(default_factory=time.time)
    # A version that names its features (the feature store): requests may carry its entity
    # keys instead, and ``enrich`` (a cellops.features Enricher) fills them in (see :meth:`parse`).
    enrich: Any = None
    request_signature: Signature | None = None

    @property
    def methods(self) -> list[str]:
        return [m for m in PREDICT_METHODS if callable(getattr(self.estimator, m, None))]

    def predict(self, inputs: Inputs, method: str = "predict") -> np.ndarray:
        """The model's answer; a model that refuses the input (a ValueError, say NaN in a
        column it cannot take) is a PayloadError with its message."""
        if method not in PREDICT_METHODS or method not in self.methods:
            raise PayloadError(f"predict_method {method!r} is not available for this model; it "
                               f"has {', '.join(self.methods)}.")
        if inputs.n_rows == 0:
            raise PayloadError("The request has no rows: send at least one.")
        fn = getattr(self.estimator, method)
        X = inputs.array if inputs.array is not None and self.array_ok else inputs.as_frame()
        try:
            return np.asarray(fn(X))
        except (ValueError, TypeError) as exc:
            raise PayloadError(_explain(exc, inputs)) from None

    def parse(self, parse: Callable[..., Any], *args: Any) -> Any:
        """``parse(*args, signature)`` (a payload parser) for this model. A model served with
        features parses a request of its entity keys (and request-time columns) and fills
        the features in from the online store; a request that carries every model column
        is taken as it is."""
        if self.enrich is None or self.request_signature is None:
            return parse(*args, self.signature)
        try:
            parsed = parse(*args, self.request_signature)
        except PayloadError as keys_error:
            try:
                return parse(*args, self.signature)
            except PayloadError:
                raise keys_error from None
        inputs, rest = parsed if isinstance(parsed, tuple) else (parsed, None)
        given = inputs.by_column()
        found = self.enrich.lookup(given, inputs.n_rows)
        columns = list(self.signature.columns or ())
        data = {c: found[c] if c in found else given[c] for c in columns}
        if self.signature.numeric:  # one float array, in signature order (None is NaN)
            full = Inputs(columns, array=np.array([data[c] for c in columns], dtype=float).T.copy())
        else:
            import pandas as pd

            from .payloads import frame_inputs

            full = frame_inputs(pd.DataFrame(data), self.signature)
        return (full, rest) if isinstance(parsed, tuple) else full

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "uri": self.uri,
                "type": f"{type(self.estimator).__module__}.{type(self.estimator).__qualname__}",
                "columns": list(self.signature.columns or []), "methods": self.methods}


def _explain(exc: Exception, inputs: Inputs) -> str:
    text = str(exc)
    missing = inputs.first_missing() if "nan" in text.lower() else None
    if missing is not None:
        column, row = missing
        return (f"Column {column!r} is missing (null or NaN) in row {row}, and this model does "
                "not accept missing values: send a number.")
    return f"The model could not predict from this input: {text.splitlines()[0] if text else exc!r}"


def load_served(uri: str, *, trusted: tuple[str, ...] = ()) -> ServedModel:
    """Load the model at ``uri`` (``models:/NAME/N``, ``models:/NAME@ALIAS``,
    ``models:/NAME/latest``, ``runs:/ID/PATH``) for serving."""
    parsed = parse_model_uri(uri)
    if parsed.kind == "models":
        ref: int | str = int(parsed.ref) if parsed.ref.isascii() and parsed.ref.isdigit() \
            else parsed.ref
        v = get_model_version(parsed.name, ref)
        served = ServedModel(v.name, v.version, uri, v.load(trusted=trusted),
                             Signature.from_version(v.signature))
        if "cellops.features" in v.tags:
            from ..features.serving import enricher_for

            enrich = enricher_for(v.tags, served.signature.columns)
            if enrich is not None:
                dtypes = dict(zip(served.signature.columns or (), served.signature.dtypes or ()))
                served.enrich = enrich
                served.request_signature = Signature(
                    tuple(enrich.request_columns),
                    tuple(enrich.key_types.get(c) or dtypes.get(c) for c in enrich.request_columns),
                    len(enrich.request_columns))
    else:
        run = get_run(parsed.name)
        served = ServedModel(f"run-{run.short_id}", None, uri, load_model(uri, trusted=trusted),
                             Signature.from_version(run_signature(run, parsed.ref)))
    served.array_ok = _takes_arrays(served)
    return served


def _takes_arrays(m: ServedModel) -> bool:
    """Does the model answer a float array exactly as it answers the same DataFrame?"""
    sig = m.signature
    if not sig.numeric or sig.width is None:
        return False
    if sig.columns is None:
        return True  # fitted without column names: arrays are what it knows
    import pandas as pd

    probe = np.zeros((2, sig.width))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.asarray(m.estimator.predict(probe))
            b = np.asarray(m.estimator.predict(pd.DataFrame(probe, columns=list(sig.columns))))
    except Exception:  # noqa: BLE001 - a model that needs its frame gets its frame
        return False
    return a.shape == b.shape and bool(np.all(a == b))


class ModelHolder:
    """The current model of a server; follows an alias (or ``latest``) when told to."""

    def __init__(self, uri: str, *, poll_s: float = 2.0, trusted: tuple[str, ...] = (),
                 on_swap: Callable[[ServedModel, ServedModel], None] | None = None) -> None:
        self.uri = uri
        self.poll_s = poll_s
        self.trusted = trusted
        self.on_swap = on_swap
        self.workspace: Workspace = workspace()
        self.current: ServedModel = load_served(uri, trusted=trusted)
        parsed = parse_model_uri(uri)
        self.follows: str | None = None
        if parsed.kind == "models" and not (parsed.ref.isascii() and parsed.ref.isdigit()):
            self.follows = parsed.ref  # an alias, or "latest"
        self.swaps = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.follows is not None and self._thread is None:
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name="cellops-alias-watch")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def check_now(self) -> bool:
        """Look at the registry once; swap when the alias moved. True when it swapped."""
        name, ref = self.current.name, self.follows
        if ref is None:
            return False
        with use_workspace(self.workspace):
            version = get_model_version(name, ref).version
            if version == self.current.version:
                return False
            fresh = load_served(f"models:/{name}/{version}", trusted=self.trusted)
        fresh.uri = self.uri
        old, self.current = self.current, fresh
        self.swaps += 1
        _log.info("cellops: %s moved from version %s to %s; now serving version %s",
                  self.uri, old.version, version, version)
        if self.on_swap is not None:
            self.on_swap(old, fresh)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check_now()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep serving the version we have
                if str(exc) != self.last_error:
                    _log.warning("cellops: could not follow %s (%s); still serving version %s",
                                 self.uri, exc, self.current.version)
                self.last_error = str(exc)
