"""Reproduce a recorded run, and gate on a run's metrics (for CI)."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidArgumentError
from ..store.filter import Comparison, Field, Logical, parse_filter
from ..tracking import context
from ..tracking.api import get_run, start_run
from ..workspaces import workspace
from .worker import execute_step

_SKIP_COPY = {".cellops", "pipeline-outputs", ".git", "__pycache__", ".ipynb_checkpoints"}


@dataclass
class GateResult:
    run_id: str
    expression: str
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)  # condition, value, passed

    def __str__(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'}: run {self.run_id[:8]} "
                 f"{'meets' if self.passed else 'does not meet'} {self.expression!r}"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c['passed'] else 'x '}] {c['condition']}   "
                         f"(actual: {c['value']})")
        return "\n".join(lines)


def _leaves(node: Any) -> list[Comparison]:
    if isinstance(node, Logical):
        return [leaf for item in node.items for leaf in _leaves(item)]
    return [node]


def _describe(c: Comparison) -> str:
    value = "(" + ", ".join(map(repr, c.value)) + ")" if isinstance(c.value, tuple) else \
        ("" if c.value is None else repr(c.value))
    return f"{c.field} {c.op} {value}".rstrip()


def gate(run_id: str, expression: str) -> GateResult:
    """Whether a run's metrics/params/tags satisfy ``expression`` (the search grammar)."""
    node = parse_filter(expression)
    if node is None:
        raise InvalidArgumentError("gate needs a condition such as \"metrics.acc >= 0.9\".")
    run = get_run(run_id)
    store = run.workspace.store
    this = Comparison(Field("attributes", "run_id"), "=", run.id)

    def holds(n: Any) -> bool:
        return bool(store.search_run_rows(None, Logical("AND", (this, n)), [], 1))

    values = {"metrics": run.metrics, "params": run.params, "tags": run.tags}
    checks = []
    for leaf in _leaves(node):
        actual = values.get(leaf.field.entity, {}).get(leaf.field.key, run.info.get(leaf.field.key))
        if isinstance(actual, float) and math.isnan(actual):
            actual = "NaN"
        checks.append({"condition": _describe(leaf), "value": "missing" if actual is None else actual,
                       "passed": holds(leaf)})
    return GateResult(run.id, expression, holds(node), checks)


@dataclass
class ReproduceResult:
    original_id: str
    run_id: str
    status: str
    metrics: list[dict[str, Any]]  # key, original, reproduced, difference
    environment_differs: bool
    error: str | None = None


def _typed(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def reproduce(run_id: str, progress: Callable[[str], None] | None = print) -> ReproduceResult:
    """Re-execute a notebook or step run from its stored notebook and params, in a temporary
    copy of its project folder, and compare the metrics with the original's."""
    say = progress or (lambda _m: None)
    original = get_run(run_id)
    names = [a["path"] for a in original.artifacts]
    snapshot = "notebook.ipynb" if "notebook.ipynb" in names else next(
        (n for n in names if n.endswith(".ipynb")), None)
    if snapshot is None:
        raise InvalidArgumentError(
            f"Run {original.short_id} has no stored notebook to reproduce; only pipeline steps, "
            "sweep trials and papermill notebook runs can be reproduced.")
    project = None
    if original.parent_id:
        parent = get_run(original.parent_id)
        if parent.tags.get("pipeline.file"):
            project = Path(parent.tags["pipeline.file"]).parent
        elif parent.tags.get("sweep.cwd"):
            project = Path(parent.tags["sweep.cwd"])
    if project is None and original.info.get("notebook_path"):
        project = Path(original.info["notebook_path"]).parent
    ws = workspace()
    env_differs = original.info.get("environment_id") != context.environment()["id"]
    if env_differs:
        say("warning: the environment differs from the original run's (Python or package "
            "versions); compare `cellops runs show --json` environment ids.")
    with tempfile.TemporaryDirectory(prefix="cellops-reproduce-") as tmp:
        work = Path(tmp) / "project"
        if project is not None and project.is_dir():
            shutil.copytree(project, work, ignore=shutil.ignore_patterns(*_SKIP_COPY))
        else:
            work.mkdir()
        nb_path = work / f"_reproduce_{original.short_id}.ipynb"
        nb_path.write_bytes(original.read_artifact(snapshot))
        params = {k: _typed(v) for k, v in original.params.items()}
        new = start_run(name=f"reproduce-{original.name or original.short_id}", kind=original.kind,
                        params=original.params, tags={"reproduces": original.id}, activate=False)
        say(f"reproducing {original.short_id} as {new.short_id} in {work}")
        report = execute_step({
            "notebook": str(nb_path), "output": str(Path(tmp) / "output.ipynb"),
            "parameters": params, "cwd": str(work), "kernel": None,
            "env": {"CELLOPS_HOME": str(ws.path), "CELLOPS_RUN_ID": new.id},
        })
        out = Path(tmp) / "output.ipynb"
        if out.is_file():
            new._put(out.read_bytes(), "output.ipynb")
    ok = report["status"] == "ok"
    new.end("FINISHED" if ok else "FAILED", error=None if ok else report.get("error"))
    before, after = original.metrics, get_run(new.id).metrics
    rows = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        diff = None if a is None or b is None else b - a
        rows.append({"key": key, "original": a, "reproduced": b, "difference": diff})
    return ReproduceResult(original.id, new.id, "FINISHED" if ok else "FAILED", rows, env_differs,
                           report.get("error"))
