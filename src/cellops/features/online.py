"""The online store: the latest value of each entity's features, in the workspace's
database, for serving.

:func:`materialize` writes, per view, the latest row of each entity key at or before
``end`` — and, when the view has a TTL, not older than ``end - ttl``: the value a
point-in-time retrieval at ``end`` gives (an entity whose value expired is removed). A
later call with the same view version reads only the rows after the previous ``end``
and writes only newer values; a new version of the view is written afresh.
:func:`get_online_features` reads them back by key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from ..errors import InvalidArgumentError
from .retrieval import output_names, parse_features
from .views import TS, FeatureView, _frame_of, get_feature_view, list_feature_views


@dataclass(frozen=True)
class Materialization:
    """What one view's materialization did."""

    view: str
    version: int
    end: datetime
    rows_written: int
    rows_expired: int
    incremental: bool

    def __repr__(self) -> str:
        how = "incremental" if self.incremental else "full"
        return (f"<Materialization {self.view} v{self.version} to {self.end:%Y-%m-%d %H:%M:%S} "
                f"UTC ({how}): {self.rows_written} written, {self.rows_expired} expired>")


def entity_key(values: Sequence[Any]) -> str:
    """The online store's key for one entity: its key values as compact JSON."""
    return json.dumps([v.item() if hasattr(v, "item") else v for v in values],
                      separators=(",", ":"))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _end_ns(end: Any) -> int:
    import pandas as pd

    if end is None:
        return pd.Timestamp.now(tz="UTC").value
    try:
        stamp = pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"end is a time (a datetime or ISO text); got {end!r}: {exc}") from None
    if stamp is pd.NaT:
        raise InvalidArgumentError("end is a time, not NaT.")
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")).value


def materialize(view: str | Iterable[str] | None = None, *, end: Any = None) -> list[Materialization]:
    """Write the latest value per entity of ``view`` (a name, names, or every view) as of
    ``end`` (default: now; naive times are UTC) to the online store. Returns what each
    view's materialization did."""
    from ..workspaces import workspace

    from ..identity import require_role

    require_role("editor", "materializing features")
    store = workspace().store.features
    if view is None:
        views = list_feature_views()
    else:
        views = [get_feature_view(v) for v in ([view] if isinstance(view, str) else view)]
    end_ns = _end_ns(end)
    out = []
    for v in views:
        before = store.materialization(v.name)
        incremental = (before is not None and before["version"] == v.version
                       and before["end_ns"] <= end_ns)
        since = before["end_ns"] if incremental else None
        expire = None if v.ttl is None else end_ns - int(v.ttl.total_seconds() * 1e9)
        rows = _latest_rows(v, since, end_ns, expire)
        written, expired = store.materialize(v.name, v.version, rows, end_ns=end_ns,
                                             expire_before_ns=expire, full=not incremental)
        out.append(Materialization(v.name, v.version,
                                   datetime.fromtimestamp(end_ns / 1e9, timezone.utc),
                                   written, expired, incremental))
    return out


def _latest_rows(view: FeatureView, since_ns: int | None, end_ns: int,
                 expire_ns: int | None) -> list[tuple[str, int, str]]:
    """``(entity_key, ts, values_json)`` of each key's latest row in ``(since, end]``."""
    import numpy as np

    frame = _frame_of(view)
    ts = frame[TS].to_numpy().astype("datetime64[ns]").view("int64")
    lo = 0 if since_ns is None else int(np.searchsorted(ts, since_ns, side="right"))
    if expire_ns is not None:
        lo = max(lo, int(np.searchsorted(ts, expire_ns, side="left")))
    hi = int(np.searchsorted(ts, end_ns, side="right"))
    if hi <= lo:
        return []
    window = frame.iloc[lo:hi]
    # Sorted by time with ties broken: the last row of each key is its value.
    latest = window.drop_duplicates(view.entities, keep="last")
    features = list(view.features)
    keys = [[_as_key(v, view.key_types.get(k, ""), k) for k, v in zip(view.entities, row)]
            for row in latest[view.entities].to_numpy(dtype=object)]
    values = latest[features].to_numpy(dtype=object)
    stamps = latest[TS].to_numpy().astype("datetime64[ns]").view("int64")
    return [(entity_key(k), int(t), json.dumps(dict(zip(features, map(_plain, v))),
                                             separators=(",", ":")))
            for k, t, v in zip(keys, stamps, values)]


def get_online_features(features: str | Iterable[str], entity_rows: Sequence[dict[str, Any]], *,
                        to_dict: bool = False, full_feature_names: bool = False) -> Any:
    """The features of each entity in ``entity_rows`` (dicts of key columns, e.g.
    ``[{"customer_id": 1001}]``) from the online store: a DataFrame with the key columns
    and one column per feature, a row per entity in order (``to_dict=True``: a dict of
    column lists). An entity the store does not hold — never materialized, or its value
    expired — has missing values. Values are those of the last :func:`materialize`."""
    from ..workspaces import workspace

    if isinstance(entity_rows, dict):
        entity_rows = [entity_rows]
    if not isinstance(entity_rows, (list, tuple)) or not all(isinstance(r, dict) for r in entity_rows):
        raise InvalidArgumentError("entity_rows is a list of dicts of entity keys, e.g. "
                                   "[{'customer_id': 1001}].")
    store = workspace().store.features
    plan: dict[str, tuple[FeatureView, list[str]]] = {}
    for name, version, feature in parse_features(features):
        view = get_feature_view(name)
        if version is not None and version != view.version:
            raise InvalidArgumentError(
                f"The online store serves the latest version of {name!r} (v{view.version}); "
                f"{name}@{version} is only in historical retrieval.")
        _, names = plan.setdefault(name, (view, []))
        for f in (list(view.features) if feature == "*" else [feature]):
            if f not in view.features:
                raise InvalidArgumentError(f"Feature view {view.ref} has no feature {f!r}; it has "
                                           f"{', '.join(list(view.features)[:20])}.")
            if f not in names:
                names.append(f)
    key_columns: list[str] = []
    for view, _ in plan.values():
        key_columns += [k for k in view.entities if k not in key_columns]
    columns = output_names(list(plan.values()), key_columns, full_feature_names)
    out: dict[str, list[Any]] = {k: [row.get(k) for row in entity_rows] for k in key_columns}
    for view, names in plan.values():
        keys = []
        for i, row in enumerate(entity_rows):
            try:
                keys.append(entity_key([_as_key(row[k], view.key_types.get(k, ""), k)
                                        for k in view.entities]))
            except KeyError as exc:
                raise InvalidArgumentError(f"entity_rows[{i}] has no {exc.args[0]!r}: feature view "
                                           f"{view.name!r} is keyed by {', '.join(view.entities)}.") from None
        found = store.online_get(view.name, keys)
        decoded = {k: json.loads(v[1]) for k, v in found.items()}
        for f in names:
            out[columns[(view.name, f)]] = [decoded[k].get(f) if k in decoded else None
                                            for k in keys]
    if to_dict:
        return out
    import pandas as pd

    return pd.DataFrame(out)


def _as_key(value: Any, dtype: str, column: str) -> Any:
    """A requested key as the view stores it: an integer key from an integral number or
    digits (a JSON request may send "1001"), a text key as text."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None:
        return None
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        try:
            number = int(value) if not isinstance(value, float) else value
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{column!r} is an integer key; got {value!r}.") from None
        if isinstance(number, float):
            if not number.is_integer():
                raise InvalidArgumentError(f"{column!r} is an integer key; got {value!r}.")
            number = int(number)
        return number
    return str(value)


_FRESHNESS: dict[str, dict[str, str | None]] = {}  # artifact -> feature -> newest value time


def feature_view_status(name: str) -> dict[str, Any]:
    """What the front ends show of a view: its latest version's definition, every version,
    per-feature freshness (the newest time each feature has a value), the online store's
    state (entities held, materialized up to when, from which version) and the registered
    models whose runs retrieved it. Times are ISO 8601 UTC."""
    import numpy as np

    from ..workspaces import workspace

    view = get_feature_view(name)
    store = workspace().store.features

    def iso_ns(ns: Any) -> str | None:
        return None if ns is None else datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat()

    freshness = _FRESHNESS.get(view.artifact)
    if freshness is None:  # a version's rows never change: computed once per process
        frame = _frame_of(view)
        stamps = frame[TS].to_numpy()
        freshness = {}
        for f in view.features:
            has = frame[f].notna().to_numpy()
            freshness[f] = (iso_ns(int(stamps[has].max().astype("datetime64[ns]").astype(np.int64)))
                            if has.any() else None)
        _FRESHNESS[view.artifact] = freshness
    done = store.materialization(name)
    stats = store.online_stats(name)
    online = {"entities": int(stats["entities"] or 0), "newest": iso_ns(stats["newest"]),
              "oldest": iso_ns(stats["oldest"]), "materialized_to": None,
              "materialized_version": None, "materialized_at": None, "behind": False}
    if done is not None:
        online.update(materialized_to=iso_ns(done["end_ns"]), materialized_version=done["version"],
                      materialized_at=datetime.fromtimestamp(done["materialized_at"] / 1000,
                                                             timezone.utc).isoformat(),
                      behind=done["version"] != view.version)
    return {"view": view.to_dict(), "key_types": view.key_types,
            "versions": [{"version": r["version"], "fingerprint": r["fingerprint"],
                          "num_rows": r["num_rows"], "created_at": datetime.fromtimestamp(
                              r["created_at"] / 1000, timezone.utc).isoformat(),
                          "created_by": r["created_by"]} for r in store.versions(name)],
            "freshness": dict(freshness), "online": online, "models": store.models_using(name)}
