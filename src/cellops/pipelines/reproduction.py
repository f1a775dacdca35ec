"""Reproduce a recorded run: the same notebook, parameters and inputs, checked first.

Before anything runs, :func:`reproduce` compares what the run recorded with what is
there now:

- **inputs**: the files a pipeline step declared (their sha256 is part of its cache key)
  and the files it logged as datasets. A file whose bytes changed is restored from the
  workspace when a blob with the recorded hash is stored there (an upstream step logged
  it as an artifact, say); otherwise the reproduction is refused, or, with
  ``allow_changed``, runs on the current file and says so;
- **code**: the git commit of the project folder against the recorded one;
- **environment**: Python and package versions against the recorded ones.

It then runs in a temporary copy of the project folder: a step, trial or papermill run
from its stored notebook and parameters; a ``%%track`` cell from its recorded source,
after the cells recorded before it when its notebook ran with ``%track on``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidArgumentError, StepError
from ..execution.cachekey import hash_file
from ..execution.environment import KernelEnv
from ..execution.worker import Task, execute_step
from ..tracking import context
from ..tracking.api import get_run, start_run
from ..tracking.run import Run
from ..workspaces import workspace

_SKIP_COPY = {".cellops", "pipeline-outputs", ".git", "__pycache__", ".ipynb_checkpoints"}


@dataclass
class ReproduceResult:
    original_id: str
    run_id: str
    status: str
    metrics: list[dict[str, Any]]  # key, original, reproduced, difference
    environment_differs: bool
    error: StepError | None = None
    checks: list[dict[str, str]] = field(default_factory=list)  # what, status, detail
    changed: list[str] = field(default_factory=list)  # inputs run on their current, changed bytes


def _typed(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _project(original: Run) -> Path | None:
    """The folder the run executed in: the pipeline's, the sweep's, or the notebook's."""
    if original.parent_id:
        parent = get_run(original.parent_id)
        if parent.tags.get("pipeline.file"):
            return Path(parent.tags["pipeline.file"]).parent
        if parent.tags.get("sweep.cwd"):
            return Path(parent.tags["sweep.cwd"])
    if original.info.get("notebook_path"):
        return Path(original.info["notebook_path"]).parent
    return None


def recorded_inputs(original: Run, project: Path | None) -> dict[str, str]:
    """Relative path -> sha256 of the files the run recorded reading: a step's declared
    inputs (from its cache key) and the single files it logged as input datasets."""
    ws = original.workspace
    inputs: dict[str, str] = {}
    key = original.tags.get("cache.key")
    hit = ws.store.pipelines.get_cache(key) if key else None
    if hit is not None:
        inputs.update({p: sha for p, sha in hit["parts"].get("inputs", {}).items() if sha})
    for dataset in original.inputs:
        if not dataset.source or dataset.format in (None, "dataframe", "folder") or project is None:
            continue
        try:
            rel = Path(dataset.source).relative_to(project)
        except ValueError:
            continue  # outside the project: not part of what is copied
        inputs.setdefault(rel.as_posix(), dataset.fingerprint)
    return inputs


def _notebook_for(original: Run) -> tuple[bytes, bool]:
    """(the notebook to execute, whether it is a rebuilt %%track cell)."""
    names = [a["path"] for a in original.artifacts]
    snapshot = "notebook.ipynb" if "notebook.ipynb" in names else next(
        (n for n in names if n.endswith(".ipynb")), None)
    if snapshot is not None:
        return original.read_artifact(snapshot), False
    if original.kind == "cell" and original.source:
        return _cell_notebook(original), True
    raise InvalidArgumentError(
        f"Run {original.short_id} has no stored notebook or cell source to reproduce; pipeline "
        "steps, sweep trials, papermill notebook runs and %%track cells can be reproduced.")


def _cell_notebook(original: Run) -> bytes:
    """A notebook that replays the cells recorded before this one (``%track on``), then it."""
    import nbformat

    from ..tracking.notebook import cell_history

    started = original.info["start_time"]
    before: list[str] = []
    if original.parent_id:
        parent = get_run(original.parent_id)
        if parent.kind == "notebook":
            history = [c for c in cell_history(parent.id) if c["start_time"] <= started]
            # The cell itself is in the history (recorded when it finished), started in the
            # same millisecond as its run or just before: what came before it is what
            # precedes its last entry, in recording order — not what started strictly
            # earlier, which loses a quick cell run in the same millisecond.
            own = [i for i, c in enumerate(history) if c["source"] == original.source]
            if own:
                history = history[:own[-1]]
            before = [c["source"] for c in history if c["status"] == "ok"]
    source = original.source or ""
    cells = before + [source]
    if not any(c.lstrip().startswith("%load_ext cellops") for c in before):
        cells.insert(0, "%load_ext cellops")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb).encode("utf-8")


def _git_check(recorded: str | None, project: Path | None) -> list[dict[str, str]]:
    """The code check: the recorded commit against the project folder's HEAD now. A folder
    outside any git repository says so: it is no evidence that the code changed."""
    now = context.git_info(str(project)) if project is not None and project.is_dir() else None
    if now is None:
        if not recorded:
            return []
        where = f"{project} is" if project is not None else "the run's folder is unknown, so it is"
        return [{"what": "git commit", "status": "not in a git repository",
                 "detail": f"recorded {recorded[:12]}; {where} not in a git repository, so "
                           "the code cannot be compared"}]
    current = now.get("commit")
    dirty = " (uncommitted changes)" if now.get("dirty") else ""
    if not recorded:
        return [{"what": "git commit", "status": "not recorded",
                 "detail": f"the run recorded no commit; now {(current or 'none')[:12]}{dirty}"}]
    return [{"what": "git commit", "status": "same" if recorded == current else "changed",
             "detail": f"recorded {recorded[:12]}, now {(current or 'none')[:12]}{dirty}"}]


def reproduce(run_id: str, *, allow_changed: bool = False,
              progress: Callable[[str], None] | None = print) -> ReproduceResult:
    """Re-execute a recorded step, trial, notebook or ``%%track`` cell run in a temporary
    copy of its project folder, after checking its inputs, code and environment (see the
    module docstring); compare the metrics with the original's.

    A changed input that cannot be restored refuses the reproduction with an
    :class:`~cellops.errors.InvalidArgumentError` naming it, unless ``allow_changed``.
    """
    say = progress or (lambda _m: None)
    original = get_run(run_id)
    notebook, is_cell = _notebook_for(original)
    project = _project(original)
    ws = workspace()
    checks: list[dict[str, str]] = []
    changed: list[str] = []
    env_differs = original.info.get("environment_id") != context.environment()["id"]
    checks.append({"what": "environment", "status": "changed" if env_differs else "same",
                   "detail": "Python or package versions differ from the run's" if env_differs
                   else "same Python and packages"})
    checks += _git_check(original.info.get("git_commit"), project)
    with tempfile.TemporaryDirectory(prefix="cellops-reproduce-") as tmp:
        work = Path(tmp) / "project"
        if project is not None and project.is_dir():
            shutil.copytree(project, work, ignore=shutil.ignore_patterns(*_SKIP_COPY))
        else:
            work.mkdir()
        for rel, sha in sorted(recorded_inputs(original, project).items()):
            target = work / rel
            if hash_file(target) == sha:
                checks.append({"what": f"input {rel}", "status": "same", "detail": sha[:12]})
            elif ws.artifacts.exists(sha):
                ws.artifacts.copy_to(sha, target)
                checks.append({"what": f"input {rel}", "status": "restored",
                               "detail": f"the recorded bytes ({sha[:12]}) from the workspace"})
            else:
                state = "missing" if not target.exists() else "changed"
                checks.append({"what": f"input {rel}", "status": state,
                               "detail": f"recorded {sha[:12]}; not stored in the workspace"})
                changed.append(rel)
        for c in checks:
            say(f"  {c['what']}: {c['status']} ({c['detail']})")
        if changed and not allow_changed:
            raise InvalidArgumentError(
                f"Run {original.short_id} read {', '.join(changed)}, which changed since and is "
                "not stored in the workspace, so the result would not be a reproduction. Restore "
                "the file, or run it anyway with allow_changed=True (`cellops reproduce "
                f"{original.short_id} --allow-changed`); the verdict then lists it.")
        nb_path = work / f"_reproduce_{original.short_id}.ipynb"
        nb_path.write_bytes(notebook)
        params = {} if is_cell else {k: _typed(v) for k, v in original.params.items()}
        new = start_run(name=f"reproduce-{original.name or original.short_id}",
                        experiment=original.experiment,
                        kind="notebook" if is_cell else original.kind,
                        params={} if is_cell else original.params,
                        tags={"reproduces": original.id, **({"reproduce.changed_inputs":
                                                             ", ".join(changed)} if changed else {})},
                        activate=False)
        say(f"reproducing {original.short_id} as {new.short_id} in {work}")
        report = execute_step(Task(str(nb_path), str(Path(tmp) / "output.ipynb"), params,
                                   None, str(work), None,
                                   KernelEnv(workspace=str(ws.path), run_id=new.id,
                                             notebook_path=str(nb_path),
                                             experiment=original.experiment,
                                             **ws.shared_locations())))
        if report.output:
            new.attach(Path(report.output), "output.ipynb")
    error = report.error()
    new.end("FINISHED" if error is None else "FAILED", error=str(error) if error else None)
    result_run = new
    if is_cell:  # the %%track cell ran as a cell run under the reproduction
        cells = [c for c in new.children() if c.kind == "cell"]
        if cells:
            result_run = cells[-1]
            result_run.set_tags({"reproduces": original.id})
    before, after = original.metrics, get_run(result_run.id).metrics
    rows = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        diff = None if a is None or b is None else b - a
        rows.append({"key": key, "original": a, "reproduced": b, "difference": diff})
    status = result_run.status if is_cell and result_run is not new else new.status
    if error is None and status != "FINISHED" and result_run.error:
        error = StepError(result_run.error.strip().splitlines()[-1], kind="failed")
    return ReproduceResult(original.id, result_run.id, status if error is None else "FAILED", rows,
                           env_differs, error, checks, changed)
