"""Registered models and their numbered versions; ``models:/`` and ``runs:/`` URIs.

A version records where its model came from — the run (and so its params, metrics,
code, environment and datasets), the artifact and its sha256, the input signature — so
that :func:`load_model` can check the bytes it loads and a model card can tell the story.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import ArtifactNotFoundError, InvalidArgumentError, StoreError
from ..identity import current_user, require_role
from ..store.values import check_text
from ..tracking import context
from ..tracking.active import current as active_run
from ..tracking.api import get_run
from ..tracking.run import Run
from ..tracking.values import ms_to_datetime, param_text
from ..workspaces import Workspace, workspace
from .card import ModelCard, card_for

if TYPE_CHECKING:
    pass

__all__ = ["ModelVersion", "RegisteredModel", "get_model_version", "list_models", "load_model",
           "model_card", "parse_model_uri", "register_model", "run_signature", "search_model_versions",
           "set_model_tags"]

FLAVOR = "sklearn-skops"
_NAME = re.compile(r"^[^/@\s\x00-\x1f][^/@\x00-\x1f]{0,249}$")


@dataclass
class ModelVersion:
    """One registered version: where it came from, what it takes, what points at it."""

    name: str
    version: int
    run_id: str | None
    artifact_path: str | None
    sha256: str
    size: int
    flavor: str
    environment_id: str | None
    description: str | None
    created_at: datetime
    created_by: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    workspace: Workspace | None = field(default=None, repr=False, compare=False)
    # Stored JSON, decoded on first use: a search over thousands of versions need not parse
    # every signature.
    signature_json: str | None = field(default=None, repr=False)
    lineage_json: str | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def signature(self) -> dict[str, Any] | None:
        """The input signature: ``{"inputs": [{"name", "dtype"}...], "n_features"}``."""
        if "_signature" not in self.__dict__:
            self.__dict__["_signature"] = json.loads(self.signature_json) if self.signature_json else None
        return self.__dict__["_signature"]

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """The source run's datasets: name, role, fingerprint, rows, columns, source."""
        if "_lineage" not in self.__dict__:
            self.__dict__["_lineage"] = json.loads(self.lineage_json or "[]")
        return self.__dict__["_lineage"]

    def load(self, *, trusted: Iterable[str] = ()) -> Any:
        """The model, loaded safely (see :func:`load_model`)."""
        return _load_blob(self.workspace or workspace(), self.sha256, self.uri, trusted)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__
               if f not in ("workspace", "signature_json", "lineage_json")}
        return out | {"signature": self.signature, "lineage": self.lineage, "uri": self.uri}

    def _repr_html_(self) -> str:
        return card_for(self).summary_html()


@dataclass
class RegisteredModel:
    name: str
    description: str | None
    created_at: datetime
    created_by: str | None
    latest_version: int | None
    version_count: int
    aliases: dict[str, int]
    tags: dict[str, str]


def _version(ws: Workspace, row: Mapping[str, Any], tags: dict[str, str] | None = None,
             aliases: list[str] | None = None) -> ModelVersion:
    if tags is None:
        tags = ws.store.registry.tags(row["name"], row["version"])
    if aliases is None:
        aliases = [a for a, v in ws.store.registry.aliases(row["name"]).items() if v == row["version"]]
    return ModelVersion(
        row["name"], row["version"], row["run_id"], row["artifact_path"], row["sha256"], row["size"],
        row["flavor"], row["environment_id"], row["description"], ms_to_datetime(row["created_at"]),
        row["created_by"], tags, aliases, ws, row["signature"], row["lineage"])


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
        raise InvalidArgumentError(
            f"A model name must be 1 to 250 characters without '/', '@', control characters or "
            f"surrounding spaces (it goes in models:/NAME@ALIAS URIs), not {name!r}.")
    return check_text(name, "Model name")


# -- registering -------------------------------------------------------------------------
def _check_fitted(estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise InvalidArgumentError(
            f"The {type(estimator).__name__} is not fitted: call .fit(X, y) before registering "
            "it.") from None
    except TypeError:  # not a scikit-learn estimator: skops decides whether it can be saved
        pass


def _model_artifact(run: Run, path: str | None) -> dict[str, Any]:
    """The model file of a run: ``path``, else the one ``%%track`` captured, else its only
    ``.skops`` file."""
    arts = {a["path"]: a for a in run.artifacts}
    if path is not None:
        if path not in arts:
            raise ArtifactNotFoundError(
                f"Run {run.short_id} has no artifact {path!r}; its model files: "
                + (", ".join(repr(p) for p in arts if p.endswith(".skops")) or "none") + ".")
        return arts[path]
    models = [p for p in arts if p.endswith(".skops")]
    captured = [p for p in models if p.startswith("models/")]
    choice = captured if captured else models
    if len(choice) == 1:
        return arts[choice[0]]
    if not choice:
        raise ArtifactNotFoundError(
            f"Run {run.short_id} has no model file (.skops) to register. Fit a scikit-learn model "
            "in a %%track cell (it is captured), log one with run.log_artifact(cellops.dump_skops("
            "model), 'model.skops'), or register the estimator itself.")
    raise InvalidArgumentError(
        f"Run {run.short_id} has several model files ({', '.join(choice)}); say which: "
        f"register_model('runs:/{run.id}/{choice[0]}', name).")


def run_signature(run: Run, path: str) -> dict[str, Any] | None:
    """The input signature logged beside a run's model file (``NAME.signature.json``)."""
    sig_path = path[: -len(".skops")] + ".signature.json" if path.endswith(".skops") else None
    if sig_path and any(a["path"] == sig_path for a in run.artifacts):
        return json.loads(run.read_artifact(sig_path))
    return None


def _lineage(run: Run | None) -> list[dict[str, Any]]:
    if run is None:
        return []
    return [{"name": d.name, "role": d.role, "fingerprint": d.fingerprint, "rows": d.num_rows,
             "columns": d.num_columns, "source": d.source, "format": d.format,
             "schema": d.schema} for d in run.inputs + run.outputs]


def register_model(source: Run | str | Any, name: str, *, tags: Mapping[str, Any] | None = None,
                   description: str | None = None, X_sample: Any = None,
                   artifact: str | None = None, features: Any = None,
                   entity_columns: Any = None) -> ModelVersion:
    """Register a model as the next version of ``name`` (1, 2, ...; the model is created on
    its first version).

    ``source`` is a run (or its id): its model file — the one ``%%track`` captured, or its
    only ``.skops`` file, or ``artifact``; a ``runs:/RUN_ID/PATH`` URI; or a fitted
    estimator, saved with skops (its signature from ``X_sample`` when given) and logged to
    the active run when there is one. The version records the run, the file's sha256, the
    signature, the environment and the run's datasets.

    ``features`` (``["view:feature", ...]``) names the model's input columns that come from
    the feature store, and ``entity_columns`` the keys a request carries instead (default:
    the views' keys); without them, the features the run retrieved
    (``cellops.get_historical_features``) that are model inputs are recorded. A scoring
    server then fills them in from the online store (see docs/features.md).
    """
    from ..skops_io import dump_skops
    from ..tracking.autolog import signature as estimator_signature

    name = _check_name(name)
    tag_values = {str(k): check_text(param_text(v), f"Tag {k!r}") for k, v in (tags or {}).items()}
    if description is not None:
        description = check_text(str(description), "Description")
    ws = workspace()
    run: Run | None = None
    if isinstance(source, str) and source.startswith("runs:/"):
        run_id, _, artifact = source[len("runs:/"):].partition("/")
        if not artifact:
            raise InvalidArgumentError(f"{source!r} names no artifact: runs:/RUN_ID/PATH.")
        run = get_run(run_id)
    elif isinstance(source, (str, Run)):
        run = source if isinstance(source, Run) else get_run(source)
    elif hasattr(source, "fit") and hasattr(source, "predict"):
        _check_fitted(source)
        data = dump_skops(source)
        sha, size = ws.artifacts.put(data)
        signature = estimator_signature(source, {} if X_sample is None else {"X": X_sample})
        run = active_run()
        path = run.log_model(source, name, X_sample=X_sample) if run is not None else None
        if run is not None:
            environment_id = run.info.get("environment_id")
        else:  # no run to take it from: this process's environment
            env = context.environment()
            ws.store.environments.ensure(env)
            environment_id = env["id"]
        tag_values.update(_feature_tag(run, signature, features, entity_columns))
        row = {"run_id": run.id if run else None, "artifact_path": path, "sha256": sha,
               "size": size, "flavor": FLAVOR, "signature": json.dumps(signature),
               "environment_id": environment_id,
               "lineage": json.dumps(_lineage(run))}
        require_role("editor", "registering a model")
        version = ws.store.registry.create_version(name, row, current_user(),
                                                   description=description, tags=tag_values)
        return get_model_version(name, version)
    else:
        raise InvalidArgumentError(
            f"register_model takes a run, a run id, a runs:/RUN_ID/PATH URI or a fitted estimator, "
            f"not {type(source).__name__}.")
    art = _model_artifact(run, artifact)
    signature = run_signature(run, art["path"])
    tag_values.update(_feature_tag(run, signature, features, entity_columns))
    row = {"run_id": run.id, "artifact_path": art["path"], "sha256": art["sha256"],
           "size": art["size"], "flavor": FLAVOR,
           "signature": json.dumps(signature),
           "environment_id": run.info.get("environment_id"), "lineage": json.dumps(_lineage(run))}
    require_role("editor", "registering a model")
    version = ws.store.registry.create_version(name, row, current_user(), description=description,
                                               tags=tag_values)
    return get_model_version(name, version)


def _feature_tag(run: Run | None, signature: Mapping[str, Any] | None, features: Any,
                 entity_columns: Any) -> dict[str, str]:
    """The ``cellops.features`` tag (the features a server fills in), when the model has any."""
    if features is None and entity_columns is None and (
            run is None or not any(d.format == "feature_view" for d in run.inputs)):
        return {}  # the common case: nothing of the feature store is imported
    from ..features.serving import TAG, feature_spec

    columns = [str(i["name"]) for i in (signature or {}).get("inputs") or []] or None
    spec = feature_spec(run, columns, features, entity_columns)
    return {TAG: json.dumps(spec)} if spec else {}


# -- reading ---------------------------------------------------------------------------------
def model_card(name: str, version_or_alias: int | str = "latest") -> ModelCard:
    """The card of a version (number, alias or ``"latest"``), as Markdown: written from its
    lineage, run, metrics, environment and governance history."""
    return card_for(get_model_version(name, version_or_alias))


def get_model_version(name: str, version_or_alias: int | str = "latest") -> ModelVersion:
    """A version by number, alias or ``"latest"``."""
    ws = workspace()
    number = ws.store.registry.resolve(name, version_or_alias)
    return _version(ws, ws.store.registry.version(name, number))


def list_models() -> list[RegisteredModel]:
    """Every registered model, with its latest version, version count, aliases and tags."""
    ws = workspace()
    aliases = ws.store.registry.aliases()
    out = []
    for m in ws.store.registry.models():
        out.append(RegisteredModel(
            m["name"], m["description"], ms_to_datetime(m["created_at"]), m["created_by"],
            m["latest_version"], m["version_count"],
            {k.split("@", 1)[1]: v for k, v in aliases.items() if k.split("@", 1)[0] == m["name"]},
            ws.store.registry.tags(m["name"], 0)))
    return out


def search_model_versions(filter: str | None = None,  # noqa: A002 - MLflow's name for it
                          order_by: list[str] | str | None = None,
                          max_results: int | None = 1000) -> list[ModelVersion]:
    """Versions matching a filter in the search grammar: ``name``, ``version``, ``alias``,
    ``run_id``, ``created_by``, ``created_at``, ``tags.KEY`` (the version's), and
    ``metrics.KEY`` / ``params.KEY`` of its source run. Newest first unless ``order_by``."""
    from ..store.filter import MODEL_VERSIONS, parse_filter, parse_order_by
    from ..store.registry import compile_version_filter, order_versions
    from ..store.values import INT64_MAX

    if max_results is not None and (isinstance(max_results, bool) or not isinstance(max_results, int)
                                    or not 0 <= max_results <= INT64_MAX):
        raise InvalidArgumentError(f"max_results must be an integer from 0, not {max_results!r}.")
    node = parse_filter(filter, MODEL_VERSIONS)
    order = order_versions(parse_order_by(order_by, MODEL_VERSIONS))
    ws = workspace()
    args: list[Any] = []
    where = compile_version_filter(node, args)
    rows = ws.store.registry.versions(where=where, args=args, order=order, limit=max_results)
    tags = ws.store.registry.tags_of((r["name"], r["version"]) for r in rows)
    aliases = ws.store.registry.aliases()
    by_version: dict[tuple[str, int], list[str]] = {}
    for key, v in aliases.items():
        model, alias = key.split("@", 1)
        by_version.setdefault((model, v), []).append(alias)
    return [_version(ws, r, tags.get((r["name"], r["version"]), {}),
                     by_version.get((r["name"], r["version"]), [])) for r in rows]


def set_model_tags(name: str, tags: Mapping[str, Any], version: int | str | None = None) -> None:
    """Set tags of a version (``version``: number, alias or ``latest``) or of the model."""
    ws = workspace()
    values = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not k.strip() or len(k) > 250:
            raise InvalidArgumentError(f"A tag key must be a non-empty string of up to 250 "
                                       f"characters, not {k!r}.")
        values[check_text(k, "Tag key")] = check_text(param_text(v), f"Tag {k!r}")
    number = 0 if version is None else ws.store.registry.resolve(name, version)
    if number == 0:
        ws.store.registry.model(name)
    require_role("editor", "tagging a model")
    ws.store.registry.set_tags(name, number, values, current_user())


# -- loading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelURI:
    kind: str  # "models" | "runs"
    name: str  # model name or run id
    ref: str  # version, alias, "latest" (models) or artifact path (runs)


def parse_model_uri(uri: str) -> ModelURI:
    """``models:/NAME/VERSION``, ``models:/NAME/latest``, ``models:/NAME@ALIAS``,
    ``runs:/RUN_ID/PATH``."""
    if not isinstance(uri, str):
        raise InvalidArgumentError(f"A model URI must be a string, not {type(uri).__name__}.")
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):]
        if "@" in rest:
            name, _, alias = rest.rpartition("@")
            if name and alias and "/" not in alias:
                return ModelURI("models", name, alias)
        else:
            name, _, version = rest.rpartition("/")
            if name and version:
                return ModelURI("models", name, version)
    elif uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/"):].partition("/")
        if run_id and path:
            return ModelURI("runs", run_id, path)
    raise InvalidArgumentError(
        f"{uri!r} is not a model URI; use models:/NAME/VERSION, models:/NAME@ALIAS, "
        "models:/NAME/latest or runs:/RUN_ID/PATH.")


def resolve_model_uri(uri: str) -> tuple[str, str]:
    """(sha256 of the model file, a label) for a URI, resolved once."""
    parsed = parse_model_uri(uri)
    ws = workspace()
    if parsed.kind == "models":
        number = ws.store.registry.resolve(parsed.name, parsed.ref)
        row = ws.store.registry.version(parsed.name, number)
        return row["sha256"], f"models:/{parsed.name}/{number}"
    run = get_run(parsed.name)
    art = ws.store.artifacts.get(run.id, parsed.ref)
    return art["sha256"], f"runs:/{run.id}/{parsed.ref}"


def load_model(uri: str, *, trusted: Iterable[str] = ()) -> Any:
    """The estimator a ``models:/`` or ``runs:/`` URI names, loaded with the trusted-types
    loader (:func:`cellops.load_skops`, never pickle). The URI is resolved once; the bytes
    are checked against the recorded sha256 before anything is loaded."""
    sha, label = resolve_model_uri(uri)
    return _load_blob(workspace(), sha, label, trusted)


def _load_blob(ws: Workspace, sha: str, label: str, trusted: Iterable[str]) -> Any:
    from ..skops_io import load_skops

    data = ws.artifacts.read(sha, verify=False)  # checked here, with the model's own words
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise StoreError(
            f"The file of {label} changed after it was registered (sha256 {actual[:12]}, "
            f"recorded {sha[:12]}): it was modified outside cellops. Nothing was loaded; "
            "re-register the model from its run.")
    return load_skops(data, trusted=trusted)
