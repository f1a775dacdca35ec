"""``cellops demo``: a few real scikit-learn models tracked as runs, then compared; the
best registered with an alias; then the example pipeline; then the monitoring example
(serve -> shifted stream -> alert -> retrain -> approve).

Uses the breast-cancer dataset that ships with scikit-learn (no download). Everything
goes into one folder (``cellops-demo`` by default): its workspace, the copied examples
and what they write; a ``.gitignore`` in it keeps it out of git.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import cellops
from cellops.display import format_number

EXPERIMENT = "demo"
MODEL = "breast-cancer"


def _models() -> list[tuple[str, object, dict]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("logreg-C0.1", make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)),
         {"model": "logistic_regression", "C": 0.1}),
        ("logreg-C10", make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=1000)),
         {"model": "logistic_regression", "C": 10.0}),
        ("random-forest", RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0),
         {"model": "random_forest", "n_estimators": 100, "max_depth": 6}),
        ("gradient-boosting",
         GradientBoostingClassifier(n_estimators=60, learning_rate=0.1, max_depth=2, random_state=0),
         {"model": "gradient_boosting", "n_estimators": 60, "learning_rate": 0.1, "max_depth": 2}),
    ]


def example_folder(name: str) -> Path:
    """An example folder (``pipeline``, ``monitoring``): inside the installed package, or in
    a source checkout."""
    packaged = Path(__file__).parent / "examples" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "example_notebooks" / name


def _copy_example(name: str) -> Path:
    """Copy an example folder into the current directory once (the user may edit it)."""
    target = Path.cwd() / name
    if not target.exists():
        shutil.copytree(example_folder(name), target, ignore=shutil.ignore_patterns(
            "data", "models", ".ipynb_checkpoints", ".cellops"))
    return target


def prepare_folder(folder: Path) -> Path:
    """Create the demo folder with a ``.gitignore`` that ignores all of it."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return folder


def run_demo(echo: Callable[[str], None] = print, pipeline: bool = True,
             monitoring: bool = True) -> list[str]:
    """Train, log and compare models in the current workspace, run the example pipeline in
    ``./pipeline``, then the monitoring loop of ``./monitoring``; return the run ids."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from cellops.tracking.autolog import signature

    ws = cellops.workspace()
    echo(f"Workspace: {ws.path}")
    cellops.set_experiment(EXPERIMENT)
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
    )
    train = X_train.assign(target=y_train)
    test = X_test.assign(target=y_test)

    run_ids = []
    for name, model, params in _models():
        with cellops.start_run(name=name, params={**params, "test_size": 0.25},
                               tags={"source": "cellops demo"},
                               source=__file__) as run:  # the code that trains, not the launcher
            run.log_dataset(train, "breast_cancer_train")
            run.log_dataset(test, "breast_cancer_test")
            t0 = time.perf_counter()
            model.fit(X_train, y_train)
            run.log_metric("fit_seconds", time.perf_counter() - t0)
            if hasattr(model, "staged_predict"):
                # Learning curve: test accuracy after each boosting stage.
                for step, pred in enumerate(model.staged_predict(X_test)):
                    run.log_metric("stage_accuracy", accuracy_score(y_test, pred), step=step)
            # The fitted model and its input signature, as a %%track cell would keep them.
            run.log_artifact(cellops.dump_skops(model), "models/model.skops")
            run.log_dict(signature(model, {"X_train": X_train}), "models/model.signature.json")
            pred = model.predict(X_test)
            proba = model.predict_proba(X_test)[:, 1]
            run.log_metrics({
                "accuracy": accuracy_score(y_test, pred),
                "f1": f1_score(y_test, pred),
                "roc_auc": roc_auc_score(y_test, proba),
            })
            run_ids.append(run.id)
            echo(f"  logged run {run.short_id}  {name}")

    df = cellops.search_runs(
        experiment=EXPERIMENT,
        filter="tags.source = 'cellops demo'",
        order_by=["metrics.roc_auc DESC"],
        max_results=len(run_ids),
    )
    df = df[df["run_id"].isin(run_ids)]
    table = df[["run_id", "name", "metrics.accuracy", "metrics.f1", "metrics.roc_auc",
                "metrics.fit_seconds"]].copy()
    table["run_id"] = table["run_id"].str[:8]
    table.columns = ["run", "name", "accuracy", "f1", "roc_auc", "fit_s"]
    echo("")
    echo(f"Runs in experiment {EXPERIMENT!r}, best ROC AUC first:")
    echo(table.to_string(index=False, float_format=format_number))
    echo("")
    echo("Next: `cellops runs list`, `cellops runs show <run>`, "
         f"`cellops runs compare {table['run'].iloc[0]} {table['run'].iloc[-1]}` "
         "(in the demo folder)")
    best = df["run_id"].iloc[0]
    version = cellops.register_model(
        best, MODEL, description="Demo: flags malignant breast-cancer biopsies from 30 "
                                 "measurements of the cell nuclei (scikit-learn's dataset).")
    cellops.set_alias(MODEL, "champion", version.version)
    echo("")
    echo(f"Registered the best run's model as {MODEL} version {version.version} and pointed "
         f"@champion at it: cellops.load_model(\"models:/{MODEL}@champion\").")
    echo(f"Next: `cellops models show {MODEL}@champion`, "
         f"`cellops models card {MODEL}@champion`, `cellops audit`")
    if pipeline:
        run_ids.append(_demo_pipeline(echo))
    if monitoring:
        _demo_monitoring(echo)
    return run_ids


def _demo_pipeline(echo: Callable[[str], None]) -> str:
    """Copy the example pipeline here (once) and run it: prepare -> train -> evaluate."""
    from cellops.pipelines import run_pipeline

    target = _copy_example("pipeline")
    echo("")
    echo(f"Pipeline {target / 'pipeline.yaml'} (papermill runs each notebook in a fresh kernel):")
    result = run_pipeline(target / "pipeline.yaml", progress=lambda m: echo("  " + m))
    rows = []
    for name, step in result.steps.items():
        run = cellops.get_run(step.run_id) if step.run_id else None
        metrics = ", ".join(f"{k}={format_number(v)}" for k, v in sorted(run.metrics.items())) \
            if run else ""
        rows.append(f"  {name:<10} {step.status:<8} {(step.run_id or '')[:8]}  {metrics}")
    echo(f"Pipeline run {result.run_id[:8]}:")
    for row in rows:
        echo(row)
    echo("Run it again and every step is cached: "
         f"`cellops pipeline run {target.name}/pipeline.yaml`")
    return result.run_id


MONITORING_NOTEBOOK = "monitor-and-retrain.ipynb"
MONITOR = "screening"


def _demo_monitoring(echo: Callable[[str], None]) -> None:
    """Run the monitoring example notebook here (papermill, a fresh kernel): serve a model,
    send it a shifted stream, watch the monitor open an alert and retrain, approve version 2.
    The executed notebook stays in ``./monitoring`` with its outputs."""
    import papermill

    from .execution import kernel_manager_class
    from .monitoring import get_monitor, monitor_history

    echo("")
    if MONITOR in {m.name for m in cellops.monitors()}:
        echo(f"Monitoring: the loop already ran in this workspace (monitor {MONITOR!r}); "
             f"see `cellops monitor history {MONITOR}` and `cellops alerts list --state all`.")
        return
    target = _copy_example("monitoring")
    notebook = target / MONITORING_NOTEBOOK
    echo(f"Monitoring {notebook} (serve -> shifted stream -> alert -> retrain -> approve):")
    try:
        papermill.execute_notebook(str(notebook), str(notebook), cwd=str(target),
                                   kernel_name="python3", progress_bar=False,
                                   kernel_manager_class=kernel_manager_class())
    except papermill.PapermillExecutionError as exc:
        raise cellops.CellopsError(
            f"The monitoring example failed at cell {exc.cell_index} ({exc.ename}: {exc.evalue}); "
            f"the executed notebook with the error is {notebook}.") from None
    history = monitor_history(MONITOR)
    for _, row in history.iterrows():
        failed = [c for c in get_monitor(MONITOR).spec["checks"]
                  if row.get(f"{c['name']}.passed") is False]
        versions = ", ".join(f"v{v}" for v in row["versions"])
        echo(f"  window of {row['rows']} rows ({versions}): {row['status'].upper()}"
             + (f" ({', '.join(c['name'] for c in failed)})" if failed else ""))
    for alert in sorted(cellops.alerts(monitor=MONITOR), key=lambda a: a.id):
        echo(f"  {alert}")
    action = next((a for alert in cellops.alerts(monitor=MONITOR) for a in alert.actions
                   if a.get("kind") == "retrain"), None)
    if action:
        echo(f"  retraining: pipeline run {str(action.get('pipeline_run'))[:8]} -> "
             f"{action.get('model')} version {action.get('version')}, promotion request "
             f"#{action.get('request')} ({action.get('status')})")
    champion = cellops.get_model_version("cancer-screening", "champion")
    echo(f"  cancer-screening@champion is version {champion.version} now.")
    echo(f"Next: open monitoring/{MONITORING_NOTEBOOK} (executed, with its outputs), "
         f"`cellops monitor history {MONITOR}`, `cellops alerts list --state all`, and the sidebar's "
         "Monitoring tab.")
