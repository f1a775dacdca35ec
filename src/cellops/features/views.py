"""Feature views: a table of feature values per entity key and timestamp, registered
once and reused for training (point-in-time retrieval) and serving (the online store).

A registration stores the view's rows as a Parquet artifact, sorted the way every
retrieval needs them — by timestamp, then created timestamp, then the source's own row
order — so a retrieval only sorts the entity rows. Each registration of changed data or
definition is a new version; registering the same thing again is a no-op.

Timestamps: a time-zone-aware column is converted to UTC; a naive one is read as UTC
(the same rule on both sides of a retrieval, so naive and aware data mix consistently).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from ..errors import InvalidArgumentError, NotFoundError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_TTL_UNITS = {"ms": 1e-3, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
TS = "__cellops_ts"  # the normalized timestamp column (UTC, naive datetime64[ns])
CREATED = "__cellops_created"


@dataclass(frozen=True)
class FeatureView:
    """One version of a feature view."""

    name: str
    version: int
    entities: list[str]
    timestamp: str
    features: dict[str, str]  # name -> dtype
    key_types: dict[str, str] = field(default_factory=dict)  # entity column -> dtype
    ttl: timedelta | None = None
    created_timestamp: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    fingerprint: str = ""
    num_rows: int = 0
    min_time: datetime | None = None
    max_time: datetime | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    artifact: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FeatureView:
        def when(ns: Any) -> datetime | None:
            return None if ns is None else datetime.fromtimestamp(ns / 1e9, timezone.utc)

        keys = json.loads(row["entities"])  # {column: dtype}, in key order
        return cls(name=row["name"], version=int(row["version"]),
                   entities=list(keys), key_types=dict(keys), timestamp=row["timestamp"],
                   features=json.loads(row["features"]),
                   ttl=None if row.get("ttl_ms") is None else timedelta(milliseconds=row["ttl_ms"]),
                   created_timestamp=row.get("created_timestamp"),
                   description=row.get("description") or "",
                   tags=json.loads(row.get("tags") or "{}"), source=row.get("source"),
                   fingerprint=row["fingerprint"], num_rows=int(row["num_rows"]),
                   min_time=when(row.get("min_ts")), max_time=when(row.get("max_ts")),
                   created_at=datetime.fromtimestamp(row["created_at"] / 1000, timezone.utc),
                   created_by=row.get("created_by"), artifact=row["artifact"])

    @property
    def ref(self) -> str:
        """``name@version``, as a feature reference pins it."""
        return f"{self.name}@{self.version}"

    def to_frame(self) -> Any:
        """The view's rows as registered (entities, timestamp, created timestamp, features),
        sorted by timestamp; timestamps in UTC."""
        frame = _frame_of(self)
        return frame.drop(columns=[c for c in (TS, CREATED) if c in frame.columns])

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (times as ISO 8601 UTC)."""
        return {"name": self.name, "version": self.version, "entities": self.entities,
                "timestamp": self.timestamp, "created_timestamp": self.created_timestamp,
                "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
                "features": self.features, "description": self.description, "tags": self.tags,
                "source": self.source, "fingerprint": self.fingerprint,
                "num_rows": self.num_rows,
                "min_time": self.min_time.isoformat() if self.min_time else None,
                "max_time": self.max_time.isoformat() if self.max_time else None,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "created_by": self.created_by}

    def __repr__(self) -> str:
        ttl = f", ttl={format_ttl(self.ttl)}" if self.ttl else ""
        return (f"<FeatureView {self.name} v{self.version}: {len(self.features)} feature(s) by "
                f"{', '.join(self.entities)}, {self.num_rows:,} rows{ttl}>")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in self.features.items())
        span = (f"{self.min_time:%Y-%m-%d %H:%M} to {self.max_time:%Y-%m-%d %H:%M} UTC"
                if self.min_time and self.max_time else "no rows")
        return (f"<div><b>{html.escape(self.name)}</b> v{self.version} · entities "
                f"<code>{html.escape(', '.join(self.entities))}</code> · "
                f"{self.num_rows:,} rows, {span}"
                f"{' · TTL ' + format_ttl(self.ttl) if self.ttl else ''}"
                f"<table><thead><tr><th>feature</th><th>dtype</th></tr></thead>"
                f"<tbody>{rows}</tbody></table></div>")


# -- registration ----------------------------------------------------------------------------
def register_feature_view(name: str, source: Any, *, entities: str | Iterable[str],
                          timestamp: str, ttl: timedelta | str | None = None,
                          created_timestamp: str | None = None,
                          features: Iterable[str] | None = None, description: str = "",
                          tags: dict[str, Any] | None = None) -> FeatureView:
    """Register (a new version of) the feature view ``name`` from ``source``: a pandas
    DataFrame, or the path or URL of a Parquet or CSV file (local or any fsspec URL).

    ``entities`` is the key column, or a list of them (a composite key); ``timestamp`` the
    column saying when each value became true; ``created_timestamp`` (optional) breaks ties
    between rows of one key and timestamp (the latest created wins; then the later row of
    the source). ``ttl`` (a ``timedelta`` or ``"7d"``, ``"12h"``, ``"30m"``) makes a value
    older than that, at the time asked for, missing. ``features`` defaults to every other
    column. Registering the same data and definition again returns the existing version.
    """
    import pandas as pd

    from ..identity import current_user, require_role
    from ..workspaces import workspace

    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidArgumentError(
            f"A feature view name is letters, digits, '_', '.' or '-', starting with a letter "
            f"or '_' (it is used in references like 'name:feature'); got {name!r}.")
    keys = [entities] if isinstance(entities, str) else list(entities)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidArgumentError("entities names the key column, or a list of key columns.")
    ttl_delta = parse_ttl(ttl)
    frame, where = _load_source(source)
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise InvalidArgumentError(f"The source has duplicate column names: {', '.join(dup)}.")
    needed = keys + [timestamp] + ([created_timestamp] if created_timestamp else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise InvalidArgumentError(
            f"The source has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(columns[:20])}{' …' if len(columns) > 20 else ''}.")
    if len(set(needed)) != len(needed):
        raise InvalidArgumentError("The entity, timestamp and created-timestamp columns must differ.")
    if features is None:
        chosen = [c for c in columns if c not in needed]
    else:
        chosen = [features] if isinstance(features, str) else list(features)
        unknown = [f for f in chosen if f not in columns]
        if unknown:
            raise InvalidArgumentError(f"The source has no column {', '.join(map(repr, unknown))} "
                                       "to use as a feature.")
        clash = [f for f in chosen if f in needed]
        if clash:
            raise InvalidArgumentError(f"{', '.join(clash)} is a key or timestamp column, not a feature.")
    if not chosen:
        raise InvalidArgumentError("The view has no feature columns: the source holds only its "
                                   "keys and timestamps.")
    if len(set(chosen)) != len(chosen):
        raise InvalidArgumentError("A feature is named twice.")
    frame = frame[needed + chosen].copy()
    for key in keys:
        nulls = int(frame[key].isna().sum())
        if nulls:
            raise InvalidArgumentError(f"{nulls} row(s) have no {key!r} (an entity key): drop or "
                                       "fill them before registering.")
        if frame[key].dtype.kind not in "iubOSU" and str(frame[key].dtype) not in ("string", "category"):
            raise InvalidArgumentError(
                f"The entity key {key!r} is {frame[key].dtype}: keys are integers or text "
                "(cast it, e.g. .astype('int64') or .astype(str)).")
        if str(frame[key].dtype) == "category":
            frame[key] = frame[key].astype(str)
    frame[TS] = to_utc(frame[timestamp], timestamp)
    if created_timestamp:
        frame[CREATED] = to_utc(frame[created_timestamp], created_timestamp)
    # The order every point-in-time join relies on: by timestamp, ties by created
    # timestamp, then the source's row order (a stable sort keeps it).
    order = [TS] + ([CREATED] if created_timestamp else [])
    frame = frame.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)
    definition = {"entities": {k: str(frame[k].dtype) for k in keys}, "timestamp": timestamp, "created_timestamp": created_timestamp,
                  "ttl_ms": None if ttl_delta is None else int(ttl_delta / timedelta(milliseconds=1)),
                  "features": {f: str(frame[f].dtype) for f in chosen}}
    fingerprint = _fingerprint(definition, frame)
    ws = workspace()
    existing = ws.store.features.get(name)
    if existing is not None and existing["fingerprint"] == fingerprint:
        row, _ = ws.store.features.add_version({**existing, "description": description,
                                                "tags": json.dumps(_tags(tags))})
        return FeatureView.from_row(row)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "view.parquet"
        frame.to_parquet(path, index=False)
        sha, _ = ws.artifacts.put(path)
    ts = frame[TS]
    row = {"name": name, "fingerprint": fingerprint,
           "entities": json.dumps({k: str(frame[k].dtype) for k in keys}),
           "timestamp": timestamp, "created_timestamp": created_timestamp,
           "ttl_ms": definition["ttl_ms"], "features": json.dumps(definition["features"]),
           "description": description, "tags": json.dumps(_tags(tags)), "source": where,
           "artifact": sha, "num_rows": int(len(frame)),
           "min_ts": int(ts.iloc[0].value) if len(frame) else None,
           "max_ts": int(ts.max().value) if len(frame) else None,
           "created_by": current_user()}
    require_role("editor", "registering a feature view", workspace=ws)
    stored, _ = ws.store.features.add_version(row)
    view = FeatureView.from_row(stored)
    _FRAMES[view.artifact] = frame
    return view


def _tags(tags: dict[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidArgumentError("tags is a dict of names to values.")
    return {str(k): str(v) for k, v in tags.items()}


def _load_source(source: Any) -> tuple[Any, str | None]:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source, None
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        lower = where.lower().split("?")[0]
        local = "://" not in where
        if local and not Path(where).exists():
            raise InvalidArgumentError(f"No file at {where!r}: pass a DataFrame, or the path or "
                                       "URL of a Parquet or CSV file.")
        try:
            if lower.endswith((".parquet", ".pq")) or (local and Path(where).is_dir()):
                return pd.read_parquet(where), where
            if lower.endswith((".csv", ".csv.gz", ".tsv")):
                return pd.read_csv(where, sep="\t" if lower.endswith(".tsv") else ","), where
        except (OSError, ValueError, ImportError) as exc:
            raise InvalidArgumentError(f"Cannot read {where!r}: {exc}") from None
        raise InvalidArgumentError(f"{where!r} is not a .parquet or .csv file.")
    raise InvalidArgumentError(f"source is a DataFrame or a path or URL, not {type(source).__name__}.")


def to_utc(values: Any, column: str) -> Any:
    """``values`` as naive UTC ``datetime64[ns]``: aware times converted to UTC, naive ones
    read as UTC, text parsed. A value that is not a time is a clear error."""
    import pandas as pd

    series = values
    try:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif series.dtype.kind == "M":
            out = series
        elif series.dtype.kind in "iuf":
            raise InvalidArgumentError(
                f"The timestamp column {column!r} holds numbers: convert it, e.g. "
                f"pd.to_datetime(df[{column!r}], unit='s').")
        else:
            out = pd.to_datetime(series, utc=True, format="mixed").dt.tz_localize(None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"The column {column!r} does not hold times: {exc}") from None
    out = out.astype("datetime64[ns]")
    if out.isna().any():
        raise InvalidArgumentError(f"{int(out.isna().sum())} row(s) have no {column!r}: every row "
                                   "needs a time.")
    return out


def parse_ttl(ttl: timedelta | str | None) -> timedelta | None:
    """A TTL from a ``timedelta`` or text like ``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``."""
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        value = ttl
    elif isinstance(ttl, str) and (m := _TTL.match(ttl.lower())):
        value = timedelta(seconds=float(m.group(1)) * _TTL_UNITS[m.group(2)])
    else:
        raise InvalidArgumentError(f"ttl is a timedelta or text like '7d', '12h', '30m', '90s'; "
                                   f"got {ttl!r}.")
    if value <= timedelta(0):
        raise InvalidArgumentError(f"ttl must be positive; got {ttl!r}.")
    return value


def format_ttl(ttl: timedelta | None) -> str:
    if ttl is None:
        return "none"
    seconds = ttl.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _fingerprint(definition: dict[str, Any], frame: Any) -> str:
    import pandas as pd

    h = hashlib.sha256(json.dumps(definition, sort_keys=True).encode())
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable cells: their text
        hashes = pd.util.hash_pandas_object(frame.astype(str), index=False)
    h.update(hashes.to_numpy().tobytes())
    return h.hexdigest()


# -- reading back ----------------------------------------------------------------------------
_FRAMES: dict[str, Any] = {}  # artifact -> the view's sorted rows, for this process
_MAX_CACHED = 8


def _frame_of(view: FeatureView) -> Any:
    """The view's rows (sorted, with the normalized timestamps), read once per process."""
    import pandas as pd

    from ..workspaces import workspace

    frame = _FRAMES.get(view.artifact)
    if frame is None:
        ws = workspace()
        if not ws.artifacts.exists(view.artifact):
            raise NotFoundError(f"The data of feature view {view.ref} is missing from the "
                                "artifact store; register the view again.")
        frame = pd.read_parquet(ws.artifacts.path(view.artifact))
        while len(_FRAMES) >= _MAX_CACHED:
            _FRAMES.pop(next(iter(_FRAMES)))
        _FRAMES[view.artifact] = frame
    return frame


def get_feature_view(name: str, version: int | None = None) -> FeatureView:
    """The view ``name`` (its latest version, or ``version``)."""
    from ..workspaces import workspace

    row = workspace().store.features.get(name, version)
    if row is None:
        known = workspace().store.features.names()
        hint = (f"Registered views: {', '.join(known[:20])}." if known else
                "No feature view is registered yet: cellops.register_feature_view(...).")
        what = f"{name!r}" if version is None else f"{name!r} version {version}"
        raise NotFoundError(f"No feature view {what}. {hint}")
    return FeatureView.from_row(row)


def list_feature_views() -> list[FeatureView]:
    """The latest version of every feature view, by name."""
    from ..workspaces import workspace

    return [FeatureView.from_row(r) for r in workspace().store.features.latest_all()]


def feature_view_versions(name: str) -> list[FeatureView]:
    """Every version of the view ``name``, newest first."""
    from ..workspaces import workspace

    get_feature_view(name)  # a clear error for an unknown name
    return [FeatureView.from_row(r) for r in workspace().store.features.versions(name)]
