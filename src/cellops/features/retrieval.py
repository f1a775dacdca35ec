"""Point-in-time correct training sets: for each entity row, each feature's value as it
was known at that row's time, never a later one.

The engine is pandas' ``merge_asof`` (a sorted, by-key backward search): the view's rows
are stored sorted by timestamp and tie-broken at registration (:mod:`.views`), so a
retrieval sorts only the entity rows. A TTL is the join's tolerance (inclusive: a value
exactly ``ttl`` old still counts). docs/architecture.md says why this engine.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from ..errors import InvalidArgumentError
from .views import TS, FeatureView, _frame_of, get_feature_view, to_utc

_REF = re.compile(r"^(?P<view>[A-Za-z_][A-Za-z0-9_.-]*?)(?:@v?(?P<version>\d+))?:(?P<feature>.+)$")
ROW = "__cellops_row"
KEY = "__cellops_key"


def parse_features(features: str | Iterable[str]) -> list[tuple[str, int | None, str]]:
    """``"view:feature"``, ``"view:*"``, ``"view@2:feature"`` as ``(view, version, feature)``."""
    refs = [features] if isinstance(features, str) else list(features)
    if not refs:
        raise InvalidArgumentError("features names at least one 'view:feature' (or 'view:*').")
    out = []
    for ref in refs:
        m = _REF.match(ref) if isinstance(ref, str) else None
        if m is None:
            raise InvalidArgumentError(
                f"{ref!r} is not a feature reference: write 'view:feature', 'view:*' for every "
                "feature of a view, or 'view@2:feature' for a version.")
        out.append((m["view"], int(m["version"]) if m["version"] else None, m["feature"]))
    return out


def resolve(features: str | Iterable[str]) -> list[tuple[FeatureView, list[str]]]:
    """The views (one version each) and their features that ``features`` names, in order."""
    plan: dict[tuple[str, int], tuple[FeatureView, list[str]]] = {}
    pinned: dict[str, int] = {}
    for name, version, feature in parse_features(features):
        view = get_feature_view(name, version)
        if pinned.setdefault(name, view.version) != view.version:
            raise InvalidArgumentError(f"Feature view {name!r} is asked for at two versions "
                                       f"({pinned[name]} and {view.version}): use one.")
        _, names = plan.setdefault((name, view.version), (view, []))
        wanted = list(view.features) if feature == "*" else [feature]
        for f in wanted:
            if f not in view.features:
                raise InvalidArgumentError(
                    f"Feature view {view.ref} has no feature {f!r}; it has "
                    f"{', '.join(list(view.features)[:20])}.")
            if f not in names:
                names.append(f)
    return list(plan.values())


def output_names(plan: list[tuple[FeatureView, list[str]]], taken: Iterable[str],
                 full_feature_names: bool) -> dict[tuple[str, str], str]:
    """The column each (view, feature) gets: the feature's name, or ``view__feature`` with
    ``full_feature_names``. Two that would share a column are a clear error."""
    out: dict[tuple[str, str], str] = {}
    seen: dict[str, str] = {str(c): "the entity rows" for c in taken}
    for view, names in plan:
        for f in names:
            column = f"{view.name}__{f}" if full_feature_names else f
            if column in seen:
                raise InvalidArgumentError(
                    f"Two columns would be named {column!r} ({seen[column]} and {view.name}:{f}): "
                    "pass full_feature_names=True to name features 'view__feature'.")
            seen[column] = f"{view.name}:{f}"
            out[(view.name, f)] = column
    return out


def get_historical_features(entity_df: Any, features: str | Iterable[str], *,
                            timestamp: str = "event_timestamp",
                            full_feature_names: bool = False) -> Any:
    """The rows of ``entity_df`` (same order, duplicates kept, its index) with one column per
    feature: for each row and view, the value of the latest feature row with the same
    entity key and a timestamp at or before the row's ``timestamp`` — and, when the view
    has a TTL, at most that old. Ties on the timestamp go to the latest created timestamp,
    then to the later row of the view's source. No match is a missing value, never a
    value from the future.

    ``features``: ``"view:feature"``, ``"view:*"`` or ``"view@2:feature"``. Times: aware
    ones are converted to UTC, naive ones read as UTC (on both sides). The entity key
    columns must have the view's key type (integers, or text). The retrieval is recorded
    on the active run as an input (``features:view@vN``), so a model registered from the
    run lists its feature views in its lineage and model card.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(entity_df, pd.DataFrame):
        raise InvalidArgumentError(f"entity_df is a DataFrame of entity keys and a "
                                   f"{timestamp!r} column, not {type(entity_df).__name__}.")
    if timestamp not in entity_df.columns:
        raise InvalidArgumentError(
            f"entity_df has no {timestamp!r} column: say which column holds each row's time "
            f"with timestamp='...' (its columns: {', '.join(map(str, entity_df.columns[:20]))}).")
    plan = resolve(features)
    names = output_names(plan, entity_df.columns, full_feature_names)
    times = to_utc(entity_df[timestamp], timestamp).to_numpy()
    n = len(entity_df)
    result = entity_df.copy()
    for view, wanted in plan:
        values = _join(view, wanted, entity_df, times, np, pd)
        for f in wanted:
            result[names[(view.name, f)]] = values[f]
    _record(plan)
    assert len(result) == n
    return result


def _join(view: FeatureView, wanted: list[str], entity_df: Any, times: Any, np: Any,
          pd: Any) -> dict[str, Any]:
    """The values of ``wanted`` for every entity row (positions 0..n-1)."""
    frame = _frame_of(view)
    keys = view.entities
    missing = [k for k in keys if k not in entity_df.columns]
    if missing:
        raise InvalidArgumentError(
            f"entity_df has no {', '.join(map(repr, missing))} column: feature view "
            f"{view.name!r} is keyed by {', '.join(keys)}.")
    n = len(entity_df)
    left = pd.DataFrame({k: _key_values(entity_df[k], frame[k], k, view) for k in keys})
    left[TS] = times
    left[ROW] = np.arange(n)
    left = left[left[keys].notna().all(axis=1)]
    right = frame[keys + [TS] + wanted]
    by: str | list[str] = keys[0]
    if len(keys) > 1:  # one integer code per composite key: merge_asof's fast path
        both = pd.concat([left[keys], right[keys]], ignore_index=True)
        codes = both.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
        left = left.drop(columns=keys).assign(**{KEY: codes[:len(left)]})
        right = right.drop(columns=keys).assign(**{KEY: codes[len(left):]})
        by = KEY
    else:
        left[by] = left[by].astype(right[by].dtype) if right[by].dtype.kind in "iu" else left[by]
    left = left.sort_values(TS, kind="stable")
    tolerance = pd.Timedelta(view.ttl) if view.ttl is not None else None
    merged = pd.merge_asof(left, right, on=TS, by=by, direction="backward",
                           allow_exact_matches=True, tolerance=tolerance)
    rows = merged[ROW].to_numpy()
    index = np.arange(n)
    # Rows without a match (or without a key) are missing: integers become floats for the
    # NaN, as pandas does.
    return {f: pd.Series(merged[f].to_numpy(), index=rows).reindex(index).to_numpy()
            for f in wanted}


def _key_values(values: Any, stored: Any, key: str, view: FeatureView) -> Any:
    """The entity rows' key column in the view's key type, or a clear error."""
    import numpy as np

    kind, want = values.dtype.kind, stored.dtype.kind
    if want in "iu":
        if kind in "iu":
            return values.to_numpy()
        if kind == "f":
            valid = values.dropna()
            if (valid == np.floor(valid)).all():  # integers that NaN made floats
                return values.astype("Int64").astype(object).where(values.notna(), None).to_numpy()
    elif want in "OSU" or str(stored.dtype) == "string":
        if kind in "OSU" or str(values.dtype) in ("string", "category"):
            return values.astype(object).where(values.notna(), None).to_numpy()
    raise InvalidArgumentError(
        f"entity_df[{key!r}] is {values.dtype} but feature view {view.name!r} keys {key!r} are "
        f"{'integers' if want in 'iu' else 'text'} ({stored.dtype}): convert it, e.g. "
        f"entity_df[{key!r}].astype({'int' if want in 'iu' else 'str'!r}).")


def _record(plan: list[tuple[FeatureView, list[str]]]) -> None:
    """Link each view version to the active run as an input (its lineage)."""
    from ..tracking import active_run

    run = active_run()
    if run is None:
        return
    for view, wanted in plan:
        row = {"name": f"features:{view.name}@v{view.version}", "fingerprint": view.fingerprint,
               "source": f"feature view {view.name} version {view.version}",
               "format": "feature_view",
               "schema": json.dumps([{"name": f, "dtype": view.features[f]} for f in wanted]),
               "num_rows": view.num_rows, "num_columns": len(wanted),
               "profile": json.dumps({"features": wanted})}
        run.workspace.store.datasets.link(run.id, row, "input")
