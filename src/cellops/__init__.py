"""cellops: notebook-native MLOps on an embedded SQLite workspace.

The public Python API. Magics, the CLI and the Jupyter server extension are thin
front ends over these names. Importing cellops is cheap: pandas, scikit-learn and
papermill are imported only by the functions that need them.
"""

from .datasets import Dataset
from .errors import (
    ArtifactNameError,
    ArtifactCorruptError,
    ArtifactNotFoundError,
    CellopsError,
    CellopsWarning,
    ExecutorError,
    ExperimentNotFoundError,
    FilterSyntaxError,
    GovernanceError,
    InvalidArgumentError,
    ModelNotFoundError,
    ModelStateError,
    NotFoundError,
    ParamConflictError,
    RunNotFoundError,
    RunStateError,
    StepError,
    StoreBusyError,
    StoreError,
    UnknownParameterError,
    UntrustedTypesError,
    WorkspaceError,
)
from .skops_io import dump_skops, load_skops
from .tracking import (
    Experiment,
    GarbageReport,
    Run,
    RunPage,
    active_run,
    cell_history,
    compare_runs,
    current_experiment,
    delete_runs,
    end_run,
    export_history,
    flush,
    garbage_collect,
    get_run,
    last_active_run,
    list_experiments,
    list_runs,
    log_artifact,
    log_dataset,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    log_text,
    resolve_runs,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)
from .tracking import api as _tracking_api
from .workspaces import (
    Workspace,
    find_workspace,
    init_workspace,
    use_workspace,
    workspace,
    workspace_folder,
)

# The areas' checks on deleting runs, by name: nothing is imported until runs are deleted.
_tracking_api.register_deletion_guard("cellops.registry.governance:check_run_deletion")

# The kinds of runs the areas make, registered here rather than when an area is imported:
# a run of any kind can be started, listed or filtered before its area is loaded.
for _kind, _what in (("pipeline", "a pipeline run (cellops pipeline run)"),
                     ("step", "one step of a pipeline, run in its own kernel"),
                     ("trial", "one combination of a sweep"),
                     ("sweep", "a sweep over a grid of parameters (cellops sweep)"),
                     ("monitor", "a drift report or monitor window logged as a run"),
                 ("automl", "an AutoML search (its trials are its children)")):
    _tracking_api.register_run_kind(_kind, _what)

# Pipelines and the registry are imported on first use.
_LAZY = {name: "pipelines" for name in (
    "GateResult", "PipelineResult", "PipelineSpecError", "ReproduceResult", "SweepResult",
    "gate", "pipeline_runs", "pipeline_status", "reproduce", "run_pipeline", "run_sweep")}
_LAZY.update({name: "registry" for name in (
    "AuditEntry", "AuditReport", "ModelCard", "ModelVersion", "PromotionRequest",
    "RegisteredModel", "acting_as", "alias_protection", "alias_protections", "approve",
    "audit_head", "audit_log", "current_user", "delete_alias", "delete_model_version",
    "get_model_version", "list_models", "load_model", "model_card", "promotion_requests",
    "protect_alias", "register_model", "reject", "search_model_versions", "set_alias",
    "set_model_tags", "unprotect_alias", "verify_audit")})
_LAZY.update({name: "serving" for name in (
    "log_labels", "predict_file", "predictions", "serving_endpoints")})
_LAZY.update({name: "serving.http" for name in ("Server", "serve")})
_LAZY.update({name: "features" for name in (
    "FeatureView", "Materialization", "feature_view_versions", "get_feature_view",
    "get_historical_features", "get_online_features", "list_feature_views", "materialize",
    "register_feature_view")})
_LAZY.update({name: "modelsearch" for name in ("AutoMLResult", "automl")})
_LAZY["migrate_workspace"] = "team"
_LAZY.update({name: "identity" for name in (
    "grant_role", "revoke_role", "role_of", "workspace_roles")})
_LAZY.update({name: "insight" for name in ("Explanation", "FairnessReport", "explain", "fairness")})
_LAZY.update({name: "monitoring" for name in (
    "Alert", "DriftReport", "Monitor", "MonitorResult", "MonitorSpecError", "ack_alert", "alerts",
    "apply_monitors", "create_monitor", "delete_monitor", "drift", "get_alert", "get_monitor",
    "monitor_history", "monitors", "performance", "resolve_alert", "run_monitors")})


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cellops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext cellops``: register the cellops magics in this IPython session."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%unload_ext cellops``: stop the session's cell hooks."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)


__version__ = "0.1.0"

__all__ = [
    "Alert",
    "ArtifactCorruptError",
    "ArtifactNameError",
    "ArtifactNotFoundError",
    "AuditEntry",
    "AuditReport",
    "AutoMLResult",
    "CellopsError",
    "CellopsWarning",
    "Dataset",
    "DriftReport",
    "ExecutorError",
    "Experiment",
    "ExperimentNotFoundError",
    "Explanation",
    "FairnessReport",
    "FeatureView",
    "FilterSyntaxError",
    "GarbageReport",
    "GateResult",
    "GovernanceError",
    "InvalidArgumentError",
    "Materialization",
    "ModelCard",
    "ModelNotFoundError",
    "ModelStateError",
    "ModelVersion",
    "Monitor",
    "MonitorResult",
    "MonitorSpecError",
    "NotFoundError",
    "ParamConflictError",
    "PipelineResult",
    "PipelineSpecError",
    "PromotionRequest",
    "RegisteredModel",
    "ReproduceResult",
    "Run",
    "RunNotFoundError",
    "RunPage",
    "RunStateError",
    "Server",
    "StepError",
    "StoreBusyError",
    "StoreError",
    "SweepResult",
    "UnknownParameterError",
    "UntrustedTypesError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "ack_alert",
    "acting_as",
    "active_run",
    "alerts",
    "alias_protection",
    "alias_protections",
    "apply_monitors",
    "approve",
    "audit_head",
    "audit_log",
    "automl",
    "cell_history",
    "compare_runs",
    "create_monitor",
    "current_experiment",
    "current_user",
    "delete_alias",
    "delete_model_version",
    "delete_monitor",
    "delete_runs",
    "drift",
    "dump_skops",
    "end_run",
    "explain",
    "export_history",
    "fairness",
    "feature_view_versions",
    "find_workspace",
    "flush",
    "garbage_collect",
    "gate",
    "get_alert",
    "get_feature_view",
    "get_historical_features",
    "get_model_version",
    "get_monitor",
    "get_online_features",
    "get_run",
    "grant_role",
    "init_workspace",
    "last_active_run",
    "list_experiments",
    "list_feature_views",
    "list_models",
    "list_runs",
    "load_ipython_extension",
    "load_model",
    "load_skops",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_labels",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "materialize",
    "migrate_workspace",
    "model_card",
    "monitor_history",
    "monitors",
    "performance",
    "pipeline_runs",
    "pipeline_status",
    "predict_file",
    "predictions",
    "promotion_requests",
    "protect_alias",
    "register_feature_view",
    "register_model",
    "reject",
    "reproduce",
    "resolve_alert",
    "resolve_runs",
    "revoke_role",
    "role_of",
    "run_monitors",
    "run_pipeline",
    "run_sweep",
    "search_model_versions",
    "search_runs",
    "serve",
    "serving_endpoints",
    "set_alias",
    "set_experiment",
    "set_model_tags",
    "set_tag",
    "set_tags",
    "start_run",
    "unload_ipython_extension",
    "unprotect_alias",
    "use_workspace",
    "verify_audit",
    "workspace",
    "workspace_folder",
    "workspace_roles",
]
