"""Run a pipeline: dependency order, parallel steps, caching, failure and resume.

A step is skipped (its earlier run linked) when its cache key — the notebook's
cells without outputs or metadata, its parameters, the hashes of its declared
inputs and of its upstream steps' outputs, the kernel name — matches a finished
step run whose outputs still exist with the same hashes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import InvalidArgumentError
from ..tracking.api import RunPage, start_run
from ..tracking.run import Run, param_text
from ..workspaces import Workspace, workspace
from .executors import make_executor
from .spec import Pipeline, Step, load_pipeline, parse_assignment
from .sweep import SweepResult, expand, finish_trial, record_best
from .worker import cell_progress, execute_step, make_task


@dataclass
class StepResult:
    name: str
    status: str  # ran | cached | failed | skipped
    run_id: str | None = None
    duration: float | None = None
    error: str | None = None
    output_notebook: str | None = None
    reason: str | None = None  # why it ran (or why it was skipped)
    trials: list[dict[str, Any]] | None = None  # a sweep step's trials (params, run_id, metrics)


@dataclass
class PipelineResult:
    run_id: str
    name: str
    steps: dict[str, StepResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.status in ("ran", "cached") for s in self.steps.values())

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={s.status}" for n, s in self.steps.items())
        return f"<PipelineResult {self.name} {self.run_id[:8]} {states}>"


def hash_file(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def notebook_fingerprint(path: Path) -> tuple[str, str | None]:
    """(hash of the cells' types and sources, the notebook's kernel name).

    Outputs, execution counts and metadata are left out, so running a notebook (or
    opening it in Jupyter) does not invalidate the cache. Read as plain JSON: importing
    nbformat costs seconds, and a fully cached pipeline run should not.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"Cannot read notebook {path}: {exc}") from exc
    cells = [[c.get("cell_type"), "".join(c.get("source", "")) if isinstance(c.get("source"), list)
              else c.get("source", "")] for c in nb.get("cells", [])]
    kernel = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name")
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest(), kernel


def _overrides(parameters: dict[str, Any] | Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """``["train.n=3", "seed=1"]`` or ``{"train": {"n": 3}, "*": {...}}`` -> per-step dicts."""
    if parameters is None:
        return {}
    if isinstance(parameters, dict):
        return {k: dict(v) for k, v in parameters.items()}
    out: dict[str, dict[str, Any]] = {}
    for text in parameters:
        step, key, value = parse_assignment(text)
        out.setdefault(step or "*", {})[key] = value
    return out


def step_key(pipeline: Pipeline, step: Step, upstream: dict[str, dict[str, str | None]]) -> tuple[str, dict]:
    nb_hash, nb_kernel = notebook_fingerprint(step.notebook)
    parts = {
        "notebook": nb_hash,
        "parameters": {k: param_text(v) for k, v in sorted(pipeline.step_parameters(step).items())},
        "inputs": {p: hash_file(pipeline.root / p) for p in step.inputs},
        "upstream": {n: upstream.get(n, {}) for n in step.needs},
        "kernel": step.kernel or pipeline.kernel or nb_kernel or "python3",
    }
    if step.sweep is not None:
        parts["sweep"] = step.sweep.key_part()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


def _why(parts: dict, last: dict | None, outputs_ok: bool) -> str:
    if last is None:
        return "never ran"
    old = last["parts"]
    if old.get("notebook") != parts["notebook"]:
        return "notebook changed"
    if old.get("parameters") != parts["parameters"]:
        diffs = [f"{k}: {old['parameters'].get(k)!r} -> {v!r}" for k, v in parts["parameters"].items()
                 if old["parameters"].get(k) != v]
        gone = [k for k in old["parameters"] if k not in parts["parameters"]]
        return "parameters changed (" + ", ".join(diffs + [f"{k} removed" for k in gone]) + ")"
    for path, sha in parts["inputs"].items():
        if old.get("inputs", {}).get(path) != sha:
            return f"input {path} {'is missing' if sha is None else 'changed'}"
    for name, outs in parts["upstream"].items():
        if old.get("upstream", {}).get(name) != outs:
            return f"upstream step {name} produced new outputs"
    if old.get("sweep") != parts.get("sweep"):
        return "sweep changed"
    if old.get("kernel") != parts["kernel"]:
        return f"kernel changed ({old.get('kernel')} -> {parts['kernel']})"
    if last.get("status") != "FINISHED":
        return f"last run {last['run_id'][:8]} is {last.get('status')}"
    if not outputs_ok:
        return "outputs missing or changed since the last run"
    return "up to date"


def _cached(ws: Workspace, pipeline: Pipeline, step: Step, key: str) -> dict | None:
    hit = ws.store.get_step_cache(key)
    if hit is None or hit.get("status") != "FINISHED" or set(hit["outputs"]) != set(step.outputs):
        return None
    for path, sha in hit["outputs"].items():
        if hash_file(pipeline.root / path) != sha:
            return None
    return hit


def pipeline_status(path: str | Path, parameters: Any = None) -> list[dict[str, Any]]:
    """For every step: whether it is up to date, why not, and its cache key parts."""
    pipeline = load_pipeline(path, _overrides(parameters))
    ws = workspace()
    upstream: dict[str, dict[str, str | None]] = {}
    out = []
    for step in pipeline.steps.values():
        key, parts = step_key(pipeline, step, upstream)
        hit = _cached(ws, pipeline, step, key)
        last = ws.store.last_step_cache(pipeline.name, step.name)
        outputs = {p: hash_file(pipeline.root / p) for p in step.outputs}
        if step.sweep is not None:
            upstream[step.name] = _sweep_upstream(hit["run_id"] if hit else (last or {}).get("run_id"))
        else:
            upstream[step.name] = hit["outputs"] if hit else outputs
        reason = "up to date" if hit else _why(parts, last, outputs_ok=False)
        if not hit and reason == "up to date":
            reason = "outputs missing or changed since the last run"
        out.append({"step": step.name, "up_to_date": hit is not None, "reason": reason,
                    "key": key, "parts": parts, "run_id": hit["run_id"] if hit else None})
    return out


def run_pipeline(
    path: str | Path,
    parameters: dict[str, Any] | Iterable[str] | None = None,
    *,
    force: bool = False,
    only: str | Iterable[str] | None = None,
    workers: int = 1,
    executor: str | None = None,
    progress: Callable[[str], None] | None = print,
) -> PipelineResult:
    """Run the pipeline in ``path``; return each step's outcome.

    ``parameters`` overrides values (``["train.n_estimators=300", "seed=1"]`` or a dict
    of step -> values, ``"*"`` for every step). Steps run in dependency order, up to
    ``workers`` at once; up-to-date steps are skipped unless ``force``. ``only`` runs
    just the named steps. A failing step's dependents are skipped; the next run
    resumes from the failed step.
    """
    pipeline = load_pipeline(path, _overrides(parameters))
    say = progress or (lambda _msg: None)
    only_set = {only} if isinstance(only, str) else set(only or [])
    unknown = only_set - set(pipeline.steps)
    if unknown:
        raise InvalidArgumentError(f"--only names unknown step(s) {', '.join(sorted(unknown))}; "
                                   f"steps: {', '.join(pipeline.steps)}")
    if workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, not {workers}.")
    ws = workspace()
    prun = start_run(name=pipeline.name, kind="pipeline", params=pipeline.parameters,
                     tags={"pipeline.file": str(pipeline.path)}, activate=False)
    result = PipelineResult(prun.id, pipeline.name)
    out_dir = ws.path / "pipeline-outputs" / prun.id
    out_dir.mkdir(parents=True, exist_ok=True)
    upstream: dict[str, dict[str, str | None]] = {}
    pending = [s for s in pipeline.steps.values() if not only_set or s.name in only_set]
    queue: list[tuple[dict, tuple]] = []  # (task, what it is) waiting for a free worker
    running: dict[Any, tuple] = {}  # handle -> ("step", step, run, key, parts) | ("trial", ...)
    sweeps: dict[str, dict[str, Any]] = {}  # sweep step -> its run, key, trials left and done
    cells: dict[str, tuple[int, int]] = {}  # step -> last cell progress shown
    pool = None
    inline = workers == 1 and (executor or "local") == "local"
    order = [s.name for s in pending]
    active: dict[str, str] = {}  # step -> its run id, while it runs
    published: list[str] = []
    say(f"pipeline {pipeline.name}: run {prun.short_id}, {len(pending)} step(s)")
    _publish(prun, order, result, active, published)
    try:
        while pending or queue or running:
            for step in list(pending):
                needs = [n for n in step.needs if not only_set or n in only_set]
                states = [result.steps[n].status if n in result.steps else None for n in needs]
                if any(s in ("failed", "skipped") for s in states):
                    pending.remove(step)
                    bad = next(n for n, s in zip(needs, states) if s in ("failed", "skipped"))
                    result.steps[step.name] = StepResult(step.name, "skipped",
                                                         reason=f"upstream step {bad} did not finish")
                    say(f"  {step.name}: SKIPPED (upstream {bad} did not finish)")
                    continue
                if any(s is None for s in states) or len(running) + len(queue) >= workers:
                    continue
                pending.remove(step)
                key, parts = step_key(pipeline, step, upstream)
                hit = None if force else _cached(ws, pipeline, step, key)
                if hit is not None:
                    upstream[step.name] = _sweep_upstream(hit["run_id"]) if step.sweep else hit["outputs"]
                    result.steps[step.name] = StepResult(step.name, "cached", hit["run_id"], 0.0,
                                                         reason="up to date")
                    say(f"  {step.name}: cached (run {hit['run_id'][:8]})")
                    continue
                last = ws.store.last_step_cache(pipeline.name, step.name)
                reason = "forced" if force else _why(parts, last, outputs_ok=False)
                params = pipeline.step_parameters(step)
                srun = start_run(name=step.name, kind="step", parent=prun, activate=False,
                                 params=params, tags={"pipeline.step": step.name, "cache.key": key})
                srun._put(step.notebook.read_bytes(), "notebook.ipynb")
                active[step.name] = srun.id
                common = {"kernel": parts["kernel"], "cwd": str(pipeline.root),
                          "timeout": step.timeout, "workspace_path": ws.path,
                          "progress_bar": inline and progress is not None}
                if step.sweep is None:
                    output = out_dir / f"{step.name}.ipynb"
                    task = make_task(step.notebook, output, parameters=params, run_id=srun.id, **common)
                    queue.append((task, ("step", step, srun, key, parts, output)))
                    say(f"  {step.name}: running ({reason})")
                    continue
                combos = expand(step.sweep.grid, step.sweep.random)
                sweeps[step.name] = {"run": srun, "key": key, "parts": parts, "left": len(combos),
                                     "result": SweepResult(srun.id), "t0": time.time()}
                srun.set_tags({"sweep.trials": len(combos)})
                say(f"  {step.name}: sweeping {len(combos)} trial(s) ({reason})")
                for i, combo in enumerate(combos):
                    trial = start_run(name=f"trial-{i}", kind="trial", parent=srun, activate=False,
                                      params={**params, **combo})
                    output = out_dir / f"{step.name}-trial-{i}.ipynb"
                    task = make_task(step.notebook, output, parameters={**params, **combo},
                                     run_id=trial.id, **common)
                    queue.append((task, ("trial", step, trial, i, combo, output)))
            _publish(prun, order, result, active, published)
            while queue and len(running) < workers:
                task, what = queue.pop(0)
                if pool is None:
                    pool = make_executor(executor, workers)
                running[pool.submit(execute_step, task)] = what
            if not running:
                if pending and not queue:  # cannot happen with a valid DAG
                    raise RuntimeError(f"steps {', '.join(s.name for s in pending)} cannot be scheduled")
                continue
            done = pool.wait_any(list(running), timeout=None if progress is None else 1.0)
            for handle in done:
                what = running.pop(handle)
                if progress is not None and not inline:  # its last cells, however fast it ran
                    _show_cells({handle: what}, cells, say)
                report = pool.result(handle)
                if what[0] == "step":
                    _, step, srun, key, parts, _ = what
                    result.steps[step.name] = _finish(ws, pipeline, step, srun, key, parts,
                                                      report, upstream, say)
                else:
                    _trial_done(ws, pipeline, what, report, sweeps, result, upstream, say)
                if what[1].name in result.steps:
                    active.pop(what[1].name, None)
            _publish(prun, order, result, active, published)
            if progress is not None and not inline:
                _show_cells(running, cells, say)
    except BaseException as exc:
        for what in running.values():
            what[2].end("KILLED", error=f"pipeline interrupted: {type(exc).__name__}")
        for entry in sweeps.values():
            if entry["left"]:
                entry["run"].end("KILLED", error=f"pipeline interrupted: {type(exc).__name__}")
        for _, what in queue:
            what[2].end("KILLED", error="pipeline interrupted before it started")
        prun.set_tags({f"step.{n}": s.status for n, s in result.steps.items()})
        _publish(prun, order, result, active, published)  # running ones read as killed
        prun.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                 error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if pool is not None:
            pool.close()
    prun.set_tags({f"step.{n}": s.status for n, s in result.steps.items()})
    _publish(prun, order, result, active, published)
    failed = [s for s in result.steps.values() if s.status == "failed"]
    prun.end("FINISHED" if not failed else "FAILED",
             error="; ".join(f"{s.name}: {s.error}" for s in failed) or None)
    return result


def _publish(prun: Run, order: list[str], result: PipelineResult, active: dict[str, str],
             last: list[str]) -> None:
    """Keep the pipeline run's ``pipeline.steps`` tag (what the sidebar shows) up to date."""
    steps = []
    for name in order:
        r = result.steps.get(name)
        if r is not None:
            steps.append({"name": name, "status": r.status, "run_id": r.run_id,
                          "duration_s": r.duration, "reason": r.reason,
                          "error": (r.error or "")[:500] or None})
        else:
            steps.append({"name": name, "status": "running" if name in active else "pending",
                          "run_id": active.get(name), "duration_s": None, "reason": None,
                          "error": None})
    text = json.dumps(steps)
    if not last or last[0] != text:
        prun.set_tags({"pipeline.steps": text})
        last[:] = [text]


def pipeline_runs(limit: int = 20, offset: int = 0, *,
                  workspace: Workspace | str | Path | None = None) -> RunPage:
    """Recent pipeline runs, newest first, each with a ``steps`` list (name, status, run_id,
    duration_s, reason, error); step status is ran, cached, failed, skipped, running,
    pending, or ``not run`` when the pipeline ended before reaching it."""
    from ..tracking.api import list_runs

    page = list_runs(kinds=["pipeline"], limit=limit, offset=offset, workspace=workspace)
    for run in page.runs:
        try:
            steps = json.loads(run["tags"].get("pipeline.steps") or "[]")
        except ValueError:
            steps = []
        if not steps:  # recorded before the tag existed: the step.<name> tags
            steps = [{"name": k[5:], "status": v, "run_id": None, "duration_s": None,
                      "reason": None, "error": None}
                     for k, v in run["tags"].items() if k.startswith("step.")]
        if run["status"] != "RUNNING":
            for step in steps:
                if step["status"] in ("running", "pending"):
                    step["status"] = "not run" if step["status"] == "pending" else "killed"
        run["steps"] = steps
    return page


def _show_cells(running: dict[Any, tuple], shown: dict[str, tuple[int, int]],
                say: Callable[[str], None]) -> None:
    """Report each running step's cell progress when it moved (read from its output notebook)."""
    for what in running.values():
        if what[0] != "step":
            continue
        step, output = what[1], what[5]
        prog = cell_progress(output)
        if prog and prog[0] and prog != shown.get(step.name):
            shown[step.name] = prog
            say(f"    {step.name}: cell {prog[0]}/{prog[1]}")


def _trial_done(ws: Workspace, pipeline: Pipeline, what: tuple, report: dict,
                sweeps: dict[str, dict[str, Any]], result: PipelineResult,
                upstream: dict[str, dict[str, str | None]], say: Callable[[str], None]) -> None:
    """Record one finished trial of a sweep step; finish the step after its last trial."""
    _, step, trial, i, combo, output = what
    entry = sweeps[step.name]
    record = finish_trial(trial, i, combo, report, output)
    entry["result"].trials.append(record)
    entry["left"] -= 1
    say(f"    {step.name} trial-{i} {combo}: "
        + ("ok" if record["status"] == "FINISHED" else f"FAILED: {record['error']}"))
    if entry["left"]:
        return
    srun, sweep_result = entry["run"], entry["result"]
    sweep_result.trials.sort(key=lambda t: t["trial"])
    best = record_best(srun, sweep_result, step.sweep.metric, step.sweep.goal)
    failed = [t for t in sweep_result.trials if t["status"] != "FINISHED"]
    res = StepResult(step.name, "ran", srun.id, time.time() - entry["t0"],
                     trials=sweep_result.trials)
    if failed:
        res.status = "failed"
        res.error = f"{len(failed)} of {len(sweep_result.trials)} trials failed (first: " \
                    f"trial-{failed[0]['trial']}: {failed[0]['error']})"
        res.output_notebook = str(output.with_name(f"{step.name}-trial-{failed[0]['trial']}.ipynb"))
        srun.set_tags({"pipeline.failure": "trials"})
        srun.end("FAILED", error=res.error)
        say(f"  {step.name}: FAILED: {res.error}\n    see {res.output_notebook}")
        result.steps[step.name] = res
        return
    ws.store.put_step_cache(entry["key"], pipeline.name, step.name, srun.id, entry["parts"], {})
    srun.end("FINISHED")
    upstream[step.name] = _sweep_upstream(srun.id)
    best_text = (f", best {step.sweep.metric}={best['metrics'][step.sweep.metric]:.4g} "
                 f"({best['params']})") if best else ""
    say(f"  {step.name}: {len(sweep_result.trials)} trials in {res.duration:.1f} s{best_text}")
    result.steps[step.name] = res


def _sweep_upstream(run_id: str | None) -> dict[str, str | None]:
    """What a sweep step hands its dependents: its best trial (so a new best re-runs them)."""
    if run_id is None:
        return {}
    from ..tracking.api import get_run

    return {"sweep.best_run": get_run(run_id).tags.get("sweep.best_run")}


def _finish(ws: Workspace, pipeline: Pipeline, step: Step, srun: Run, key: str, parts: dict,
            report: dict, upstream: dict, say: Callable[[str], None]) -> StepResult:
    output = Path(ws.path / "pipeline-outputs" / srun.parent_id / f"{step.name}.ipynb") \
        if srun.parent_id else None
    if output is not None and output.is_file():
        srun._put(output.read_bytes(), "output.ipynb")
    res = StepResult(step.name, "ran", srun.id, report.get("duration"),
                     output_notebook=str(output) if output else None)
    if report["status"] == "ok":
        outputs = {p: hash_file(pipeline.root / p) for p in step.outputs}
        missing = [p for p, sha in outputs.items() if sha is None]
        if missing:
            report = {**report, "status": "failed",
                      "error": f"declared output(s) not written: {', '.join(missing)}"}
        else:
            upstream[step.name] = outputs
            ws.store.put_step_cache(key, pipeline.name, step.name, srun.id, parts, outputs)
            srun.end("FINISHED")
            say(f"  {step.name}: ran in {report.get('duration', 0):.1f} s")
            return res
    res.status, res.error = "failed", report.get("error")
    srun.set_tags({"pipeline.failure": report["status"]})
    srun.end("FAILED", error=report.get("error"))
    say(f"  {step.name}: FAILED ({report['status']}): {report.get('error')}\n"
        f"    see {res.output_notebook}")
    return res
