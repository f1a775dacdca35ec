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
from .online import get_online_features
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
    """Fills a request's feature columns from the online store, by its entity columns."""

    def __init__(self, spec: dict[str, Any], model_columns: Sequence[str] | None) -> None:
        from ..workspaces import workspace

        self.workspace = workspace()  # the model's: requests are answered on other threads
        self.refs = list(spec["features"])
        self.entity_columns = list(spec["entity_columns"])
        plan = resolve(self.refs)
        names = output_names(plan, self.entity_columns, False)
        self.feature_columns = list(names.values())
        self.key_types = {k: t for view, _ in plan for k, t in view.key_types.items()}
        cols = list(model_columns or [])
        self.request_columns = self.entity_columns + [
            c for c in cols if c not in self.feature_columns and c not in self.entity_columns]

    def __call__(self, frame: Any) -> Any:
        """``frame`` (entity and request-time columns) with the feature columns added."""
        from ..workspaces import use_workspace

        rows = frame[self.entity_columns].to_dict("records")
        with use_workspace(self.workspace):
            found = get_online_features(self.refs, rows, to_dict=True)
        out = frame.copy()
        for column in self.feature_columns:
            out[column] = found[column]
        return out


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
