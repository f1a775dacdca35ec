"""Features at serving time: a model version that names its features (given to
``register_model(..., features=[...], entity_columns=[...])``, or recorded from the
retrieval of the run that trained it) is served from requests that carry only the entity
keys and any request-time columns; the server fills in the features from the online
store before predicting.

The version keeps what it needs in its tag ``cellops.features``: the feature references
and the entity columns.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from ..errors import InvalidArgumentError
from .online import _as_key, entity_key
from .retrieval import output_names, resolve

TAG = "cellops.features"


def feature_spec(run: Any, model_columns: Sequence[str] | None,
                 features: Iterable[str] | None = None,
                 entity_columns: Iterable[str] | None = None) -> dict[str, Any] | None:
    """The ``cellops.features`` tag of a model version: ``features`` as given, or, when
    none are, the features the run retrieved that are among the model's input columns.
    None when the model uses no feature view."""
    if features is None:
        if entity_columns is not None:
            raise InvalidArgumentError("entity_columns goes with features=[...]: name the features "
                                       "the model takes from the feature store.")
        if run is None:
            return None
        refs = []
        for d in run.inputs:
            if d.format == "feature_view" and d.name.startswith("features:"):
                view = d.name[len("features:"):].rpartition("@v")[0]
                refs += [f"{view}:{c['name']}" for c in d.schema
                         if model_columns is None or c["name"] in model_columns]
        if not refs:
            return None
    else:
        refs = [features] if isinstance(features, str) else list(features)
    plan = resolve(refs)  # the views and features exist
    if len({view.name for view, _ in plan}) != len(plan):
        raise InvalidArgumentError("A model is served from one version of each feature view.")
    keys: list[str] = []
    for view, _ in plan:
        keys += [k for k in view.entities if k not in keys]
    if entity_columns is not None:
        given = [entity_columns] if isinstance(entity_columns, str) else list(entity_columns)
        missing = [k for k in keys if k not in given]
        if missing:
            raise InvalidArgumentError(f"entity_columns lacks {', '.join(missing)}, a key of the "
                                       "model's feature views.")
        keys = given
    names = output_names(plan, keys, False)
    if model_columns is not None:
        absent = [c for c in names.values() if c not in model_columns]
        if absent:
            raise InvalidArgumentError(
                f"The model takes no column {', '.join(map(repr, absent))}: features=[...] names "
                f"the model's input columns that come from the feature store.")
    unpinned = [f"{view.name}:{f}" for view, wanted in plan for f in wanted]
    return {"features": unpinned, "entity_columns": keys}


class Enricher:
    """Fills a request's feature columns from the online store, by its entity columns.

    Made once per loaded model version: the views are resolved then, and a request costs
    one primary-key query per view (no pandas on this path: it is most of a served
    request's time)."""

    def __init__(self, spec: dict[str, Any], model_columns: Sequence[str] | None) -> None:
        from ..workspaces import workspace

        self.store = workspace().store.features  # the model's workspace, on any thread
        self.refs = list(spec["features"])
        self.entity_columns = list(spec["entity_columns"])
        plan = resolve(self.refs)
        names = output_names(plan, self.entity_columns, False)
        self.feature_columns = list(names.values())
        self.key_types = {k: t for view, _ in plan for k, t in view.key_types.items()}
        # view name, its key columns and their types, (stored feature, output column)
        self.views = [(view.name, list(view.entities), [view.key_types.get(k, "") for k in view.entities],
                       [(f, names[(view.name, f)]) for f in wanted]) for view, wanted in plan]
        cols = list(model_columns or [])
        self.request_columns = self.entity_columns + [
            c for c in cols if c not in self.feature_columns and c not in self.entity_columns]

    def lookup(self, columns: dict[str, list[Any]], n_rows: int) -> dict[str, list[Any]]:
        """The feature columns (``None`` where the store holds no value) for ``n_rows`` rows
        whose entity columns are in ``columns``."""
        out: dict[str, list[Any]] = {}
        for view, keys, types, features in self.views:
            ids = [entity_key([_as_key(_whole(columns[k][i]), t, k) for k, t in zip(keys, types)])
                   for i in range(n_rows)]
            found = self.store.online_get(view, ids)
            decoded = {key: json.loads(row[1]) for key, row in found.items()}
            for stored, column in features:
                out[column] = [decoded[i].get(stored) if i in decoded else None for i in ids]
        return out


def _whole(value: Any) -> Any:
    """A key read from a float array (a numeric request) back as the integer it was."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def enricher_for(tags: dict[str, str], model_columns: Sequence[str] | None) -> Enricher | None:
    """The enricher of a model version with the ``cellops.features`` tag, else None."""
    text = tags.get(TAG)
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError:
        raise InvalidArgumentError(f"The model version's {TAG} tag is not JSON: {text[:80]!r}.") from None
    return Enricher(spec, model_columns)
