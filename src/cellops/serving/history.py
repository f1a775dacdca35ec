"""Reading the prediction log back, and joining the truth to it later.

:func:`predictions` gives one DataFrame row per predicted row: which request, when, which
model version, the input columns, the prediction, and the label when one was logged with
:func:`log_labels` — what monitoring compares.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

from ..errors import InvalidArgumentError
from ..workspaces import workspace
from .predlog import decode_inputs

__all__ = ["log_labels", "predictions"]

_BASE = ["request_id", "row", "time", "model", "version", "source", "status", "latency_ms"]


def _to_ms(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):  # "the last hour": since=timedelta(hours=1)
        return int((datetime.now(timezone.utc) - value).timestamp() * 1000)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgumentError(f"{what} {value!r} is not an ISO date or time such as "
                                       "'2026-11-23' or '2026-11-23T14:00:00Z'.") from None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{what} must be a datetime, an ISO string or a timedelta "
                                   f"(that long ago), not {type(value).__name__}.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # naive times are UTC, as the log is
    return int(value.timestamp() * 1000)


def predictions(model: str | None = None, *, version: int | None = None, since: Any = None,
                until: Any = None, include_errors: bool = False, limit: int | None = None) -> Any:
    """The prediction log as a DataFrame, one row per predicted row, oldest first.

    Columns: ``request_id, row`` (the row's position in its request), ``time`` (UTC),
    ``model, version, source`` (``http`` or ``batch``), ``status, latency_ms`` (of the
    whole request), then the input columns, ``prediction``, ``label`` and ``labeled_at``
    (missing until :func:`log_labels`). ``since`` / ``until`` take datetimes, ISO strings
    or a timedelta (``since=timedelta(hours=1)``: the last hour); ``limit`` counts
    requests. ``include_errors`` adds refused requests (one row each, with ``error``).
    """

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer, not {limit!r}.")
    store = workspace().store.predictions
    rows = store.read(model=model, version=version, since_ms=_to_ms(since, "since"),
                      until_ms=_to_ms(until, "until"), ok_only=not include_errors, limit=limit)
    labels = store.labels_for(r["request_id"] for r in rows) if rows else {}
    return log_frame(rows, labels, include_errors=include_errors)


def log_frame(rows: list[Any], labels: dict[tuple[str, int], tuple[str, int]], *,
              include_errors: bool = False) -> Any:
    """The logged requests ``rows`` (as the store reads them) with their ``labels`` as
    :func:`predictions` returns them: one row per predicted row, oldest first. Monitoring
    builds its windows with it too."""
    import pandas as pd

    base: dict[str, list[Any]] = {c: [] for c in _BASE + ["error"]}
    inputs: dict[str, list[Any]] = {}
    preds: list[Any] = []
    label_values: list[Any] = []
    label_times: list[Any] = []
    total = 0
    for r in rows:
        n = max(int(r["n_rows"]), 1 if r["status"] != 200 else 0)
        cols = decode_inputs(r["inputs"])
        outs = json.loads(r["outputs"]) if r["outputs"] else [None] * n
        when = datetime.fromtimestamp(r["at"] / 1000, timezone.utc)
        for key, value in (("request_id", r["request_id"]), ("time", when), ("model", r["model"]),
                           ("version", r["version"]), ("source", r["source"]),
                           ("status", r["status"]), ("latency_ms", r["latency_ms"]),
                           ("error", r["error"])):
            base[key].extend([value] * n)
        base["row"].extend(range(n))
        for name in cols:
            if name not in inputs:
                inputs[name] = [None] * total
        for name, values in inputs.items():
            got = cols.get(name)
            values.extend(got if got is not None and len(got) == n else [None] * n)
        preds.extend(outs if len(outs) == n else [None] * n)
        for i in range(n):
            found = labels.get((r["request_id"], i))
            label_values.append(json.loads(found[0]) if found else None)
            label_times.append(datetime.fromtimestamp(found[1] / 1000, timezone.utc) if found else None)
        total += n
    frame = pd.DataFrame({**{c: base[c] for c in _BASE}, **inputs, "prediction": preds,
                          "label": label_values, "labeled_at": label_times})
    if include_errors:
        frame["error"] = base["error"]
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["labeled_at"] = pd.to_datetime(frame["labeled_at"], utc=True)
    return frame


def log_labels(request_ids: Any, y_true: Sequence[Any] | None = None) -> int:
    """Join the truth to logged predictions; returns how many labels were stored.

    ``request_ids`` is a list of request ids (each names row 0 of its request: one-row
    requests), or a DataFrame with ``request_id`` and optionally ``row`` columns — for
    example a slice of :func:`predictions` — and ``y_true`` the labels in the same order
    (or a ``label`` column in the frame). A label logged again replaces the earlier one.
    Unknown request ids or rows are refused and nothing is stored.
    """
    import pandas as pd

    if isinstance(request_ids, pd.DataFrame):
        frame = request_ids
        if "request_id" not in frame.columns:
            raise InvalidArgumentError("The frame needs a request_id column (and optionally row), "
                                       "as cellops.predictions() returns.")
        ids = [str(v) for v in frame["request_id"]]
        rows = [int(v) for v in frame["row"]] if "row" in frame.columns else [0] * len(ids)
        if y_true is None:
            if "label" not in frame.columns:
                raise InvalidArgumentError("Give y_true, or a label column in the frame.")
            y_true = list(frame["label"])
    else:
        if isinstance(request_ids, str):
            request_ids = [request_ids]
        ids = [str(v) for v in request_ids]
        rows = [0] * len(ids)
    if y_true is None:
        raise InvalidArgumentError("log_labels needs y_true: the true labels, one per request id.")
    labels = list(y_true.tolist() if hasattr(y_true, "tolist") else y_true)
    if len(labels) != len(ids):
        raise InvalidArgumentError(f"{len(ids)} request id(s) but {len(labels)} label(s): give one "
                                   "label per id (or per row of the frame).")
    if not ids:
        return 0
    store = workspace().store.predictions
    counts = store.row_counts(ids)
    unknown = [i for i in dict.fromkeys(ids) if i not in counts]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InvalidArgumentError(f"{len(unknown)} request id(s) are not in the prediction log "
                                   f"({shown}); nothing was stored. Ids come from the X-Request-ID "
                                   "header of each reply, or from cellops.predictions().")
    beyond = [(i, r) for i, r in zip(ids, rows) if not 0 <= r < max(counts[i], 1)]
    if beyond:
        i, r = beyond[0]
        raise InvalidArgumentError(f"Request {i!r} has {counts[i]} row(s); there is no row {r}. "
                                   "Nothing was stored.")
    items = [(i, r, json.dumps(_plain(v))) for i, r, v in zip(ids, rows, labels)]
    store.set_labels(items)
    return len(items)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and value != value:
        return None
    return value
