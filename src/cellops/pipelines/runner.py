"""Run a pipeline: dependency order, parallel steps, caching, failure and resume.

A step is skipped (its earlier run linked) when its cache key
(:mod:`cellops.execution.cachekey`) matches a finished step run whose outputs still exist
with the same hashes. Each step that runs is a child run of the pipeline run, executed
by :mod:`cellops.execution` in a fresh kernel; its state is kept in the workspace as it
changes (``store.pipelines``), which is what ``pipeline_runs`` and the sidebar read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..display import format_number
from ..errors import InvalidArgumentError, StepError
from ..execution.cachekey import cache_key, hash_file, stale_reason
from ..execution.executors import make_executor
from ..execution.worker import Report, Task, cell_progress, execute_step, make_task
from ..tracking.api import RunPage, get_run, list_runs, start_run
from ..tracking.run import Run
from ..tracking.values import param_text
from ..workspaces import Workspace, workspace
from ..workspaces import workspace as workspace_of
from .spec import Pipeline, Step, load_pipeline, parse_assignment
from .sweep import SweepResult, expand, finish_trial, record_best


@dataclass
class StepResult:
    name: str
    status: str  # ran | cached | failed | skipped
    run_id: str | None = None
    duration: float | None = None
    error: StepError | None = None
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

    def raise_for_failure(self) -> None:
        """Raise the first failed step's :class:`~cellops.errors.StepError`, if any."""
        for step in self.steps.values():
            if step.error is not None:
                raise step.error

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={s.status}" for n, s in self.steps.items())
        return f"<PipelineResult {self.name} {self.run_id[:8]} {states}>"


@dataclass
class Job:
    """One notebook execution the scheduler waits for: a step, or one trial of a sweep step."""

    step: Step
    run: Run
    task: Task
    key: str = ""
    parts: dict[str, Any] = field(default_factory=dict)
    trial: int | None = None
    combo: dict[str, Any] | None = None


@dataclass
class SweepState:
    """A sweep step while its trials run."""

    run: Run
    key: str
    parts: dict[str, Any]
    left: int
    result: SweepResult
    started: float


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


def step_key(pipeline: Pipeline, step: Step, upstream: dict[str, Any]) -> tuple[str, dict]:
    """The cache key of a step and its parts, given what its upstream steps produced."""
    return cache_key(
        notebook=step.notebook,
        parameters={k: param_text(v) for k, v in pipeline.step_parameters(step).items()},
        inputs={p: hash_file(pipeline.root / p) for p in step.inputs},
        upstream={n: upstream.get(n, {}) for n in step.needs},
        kernel=step.kernel or pipeline.kernel,
        sweep=step.sweep.key_part() if step.sweep is not None else None,
    )


def _cached(ws: Workspace, pipeline: Pipeline, step: Step, key: str) -> dict | None:
    hit = ws.store.pipelines.get_cache(key)
    if hit is None or hit.get("status") != "FINISHED" or set(hit["outputs"]) != set(step.outputs):
        return None
    for path, sha in hit["outputs"].items():
        if hash_file(pipeline.root / path) != sha:
            return None
    return hit


def _sweep_upstream(run_id: str | None) -> dict[str, str | None]:
    """What a sweep step hands its dependents: its best trial (so a new best re-runs them)."""
    if run_id is None:
        return {}
    return {"sweep.best_run": get_run(run_id).tags.get("sweep.best_run")}


def pipeline_status(path: str | Path, parameters: Any = None, *,
                    allow_unknown: bool = False) -> list[dict[str, Any]]:
    """For every step: whether it is up to date, why not, and its cache key parts.

    A step downstream of one that will run is stale too ("upstream train will re-run"),
    even when its own inputs have not changed yet.
    """
    pipeline = load_pipeline(path, _overrides(parameters), allow_unknown=allow_unknown)
    ws = workspace()
    upstream: dict[str, dict[str, str | None]] = {}
    will_run: set[str] = set()
    out = []
    for step in pipeline.steps.values():
        key, parts = step_key(pipeline, step, upstream)
        hit = _cached(ws, pipeline, step, key)
        last = ws.store.pipelines.last_cache(pipeline.name, step.name)
        outputs = {p: hash_file(pipeline.root / p) for p in step.outputs}
        if step.sweep is not None:
            upstream[step.name] = _sweep_upstream(hit["run_id"] if hit else (last or {}).get("run_id"))
        else:
            upstream[step.name] = hit["outputs"] if hit else outputs
        rerun = [n for n in step.needs if n in will_run]
        if hit and rerun:
            reason = f"upstream {', '.join(rerun)} will re-run"
        elif hit:
            reason = "up to date"
        else:
            reason = stale_reason(parts, last)
            if reason == "up to date":
                reason = "outputs missing or changed since the last run"
            if rerun and reason in ("outputs missing or changed since the last run",):
                reason = f"upstream {', '.join(rerun)} will re-run"
        up_to_date = hit is not None and not rerun
        if not up_to_date:
            will_run.add(step.name)
        out.append({"step": step.name, "up_to_date": up_to_date, "reason": reason,
                    "key": key, "parts": parts, "run_id": hit["run_id"] if hit else None})
    return out


def pipeline_runs(limit: int = 20, offset: int = 0, *,
                  workspace: Workspace | str | Path | None = None) -> RunPage:
    """Recent pipeline runs, newest first, each with a ``steps`` list (name, status, run_id,
    duration_s, reason, error); step status is ran, cached, failed, skipped, running,
    pending, or, for a pipeline run that ended before reaching a step, ``not run``
    (``killed`` for one that was running then)."""
    page = list_runs(kinds=["pipeline"], limit=limit, offset=offset, workspace=workspace)
    if not page.runs:
        return page
    steps = workspace_of(workspace).store.pipelines.steps_of([r["run_id"] for r in page.runs])
    for run in page.runs:
        run["steps"] = steps.get(run["run_id"], [])
        if run["status"] != "RUNNING":
            for step in run["steps"]:
                if step["status"] in ("running", "pending"):
                    step["status"] = "not run" if step["status"] == "pending" else "killed"
    return page


def step_run(pipeline: str, step: str, *, workspace: Workspace | str | Path | None = None) -> str:
    """The run id of ``step`` in the newest run of the pipeline named ``pipeline`` that ran
    or reused it (what ``pipeline:NAME/STEP`` means on the command line)."""
    run_id = workspace_of(workspace).store.pipelines.latest_step_run(pipeline, step)
    if run_id is None:
        raise InvalidArgumentError(
            f"No run of step {step!r} of a pipeline named {pipeline!r} that ran or was cached; "
            f"run it with `cellops pipeline run` first.")
    return run_id


def run_pipeline(
    path: str | Path,
    parameters: dict[str, Any] | Iterable[str] | None = None,
    *,
    force: bool = False,
    only: str | Iterable[str] | None = None,
    workers: int = 1,
    executor: str | None = None,
    progress: Callable[[str], None] | None = print,
    allow_unknown: bool = False,
) -> PipelineResult:
    """Run the pipeline in ``path``; return each step's outcome.

    ``parameters`` overrides values (``["train.n_estimators=300", "seed=1"]`` or a dict
    of step -> values, ``"*"`` for every step). A parameter that a step's notebook does
    not declare in its ``parameters`` cell is refused before anything runs
    (:class:`~cellops.errors.UnknownParameterError`), unless ``allow_unknown`` (or
    ``allow_unknown: true`` in the file). Steps run in dependency order, up to
    ``workers`` at once; up-to-date steps are skipped unless ``force``. ``only`` runs
    just the named steps. A failing step's dependents are skipped; the next run
    resumes from the failed step. ``result.raise_for_failure()`` raises the first
    failure as a :class:`~cellops.errors.StepError`.
    """
    pipeline = load_pipeline(path, _overrides(parameters), allow_unknown=allow_unknown)
    only_set = {only} if isinstance(only, str) else set(only or [])
    unknown = only_set - set(pipeline.steps)
    if unknown:
        raise InvalidArgumentError(f"--only names unknown step(s) {', '.join(sorted(unknown))}; "
                                   f"steps: {', '.join(pipeline.steps)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers must be an integer of at least 1, not {workers!r}.")
    return _Scheduler(pipeline, only_set, force, workers, executor, progress).run()


class _Scheduler:
    """The state of one pipeline run while its steps are scheduled, run and recorded."""

    def __init__(self, pipeline: Pipeline, only: set[str], force: bool, workers: int,
                 executor: str | None, progress: Callable[[str], None] | None) -> None:
        self.pipeline, self.only, self.force = pipeline, only, force
        self.workers, self.executor = workers, executor
        self.progress = progress
        self.say = progress or (lambda _msg: None)
        self.ws = workspace()
        self.pending = [s for s in pipeline.steps.values() if not only or s.name in only]
        self.order = [s.name for s in self.pending]
        self.queue: list[Job] = []  # waiting for a free worker
        self.running: dict[Any, Job] = {}  # executor handle -> job
        self.sweeps: dict[str, SweepState] = {}
        self.upstream: dict[str, dict[str, str | None]] = {}  # what each step produced
        self.active: dict[str, str] = {}  # step -> its run id, while it runs
        self.cells_shown: dict[str, tuple[int, int]] = {}
        self.published: list[dict[str, Any]] | None = None
        self.inline = workers == 1 and (executor or "local") == "local"
        # A local pool starts when a step first needs it (a cached run starts none); a
        # cluster is reached now, so that one that does not answer fails before any run.
        self.pool: Any = None if (executor or "local") == "local" else make_executor(executor,
                                                                                    workers)
        self.prun = start_run(name=pipeline.name, kind="pipeline", params=pipeline.parameters,
                              tags={"pipeline.file": str(pipeline.path)}, activate=False,
                              source=pipeline.path)
        self.result = PipelineResult(self.prun.id, pipeline.name)
        self.out_dir = self.ws.path / "pipeline-outputs" / self.prun.id
        self.out_dir.mkdir(parents=True, exist_ok=True)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> PipelineResult:
        self.say(f"pipeline {self.pipeline.name}: run {self.prun.short_id}, "
                 f"{len(self.pending)} step(s)")
        self.publish()
        try:
            while self.pending or self.queue or self.running:
                self.schedule()
                self.publish()
                self.submit()
                if not self.running:
                    if self.pending and not self.queue:  # cannot happen with a valid DAG
                        raise RuntimeError(f"steps {', '.join(s.name for s in self.pending)} "
                                           "cannot be scheduled")
                    continue
                self.collect()
                self.publish()
        except BaseException as exc:
            self.interrupt(exc)
            raise
        finally:
            if self.pool is not None:
                self.pool.close()
        self.publish()
        failed = [s for s in self.result.steps.values() if s.status == "failed"]
        self.prun.end("FINISHED" if not failed else "FAILED",
                      error="; ".join(f"{s.name}: {s.error}" for s in failed) or None)
        return self.result

    def schedule(self) -> None:
        """Decide what each ready step does: skipped, cached, or a job (or a sweep's jobs)."""
        for step in list(self.pending):
            needs = [n for n in step.needs if not self.only or n in self.only]
            states = [self.result.steps[n].status if n in self.result.steps else None
                      for n in needs]
            bad = next((n for n, s in zip(needs, states) if s in ("failed", "skipped")), None)
            if bad is not None:
                self.pending.remove(step)
                self.result.steps[step.name] = StepResult(
                    step.name, "skipped", reason=f"upstream step {bad} did not finish")
                self.say(f"  {step.name}: SKIPPED (upstream {bad} did not finish)")
                continue
            if any(s is None for s in states) or len(self.running) + len(self.queue) >= self.workers:
                continue
            self.pending.remove(step)
            self.start(step)

    def start(self, step: Step) -> None:
        pipeline, ws = self.pipeline, self.ws
        key, parts = step_key(pipeline, step, self.upstream)
        hit = None if self.force else _cached(ws, pipeline, step, key)
        if hit is not None:
            self.upstream[step.name] = _sweep_upstream(hit["run_id"]) if step.sweep else hit["outputs"]
            self.result.steps[step.name] = StepResult(step.name, "cached", hit["run_id"], 0.0,
                                                      reason="up to date")
            self.say(f"  {step.name}: cached (run {hit['run_id'][:8]})")
            return
        last = ws.store.pipelines.last_cache(pipeline.name, step.name)
        reason = "forced" if self.force else stale_reason(parts, last)
        if reason == "up to date":
            reason = "outputs missing or changed since the last run"
        params = pipeline.step_parameters(step)
        undeclared = {"params.undeclared": ", ".join(step.undeclared)} if step.undeclared else {}
        srun = start_run(name=step.name, kind="step", parent=self.prun, activate=False,
                         params=params, tags={"pipeline.step": step.name, "cache.key": key,
                                              **undeclared}, source=step.notebook)
        srun.attach(step.notebook.read_bytes(), "notebook.ipynb")
        self.active[step.name] = srun.id
        common = {"kernel": parts["kernel"], "cwd": str(pipeline.root), "timeout": step.timeout,
                  "workspace_path": ws.path, **ws.shared_locations(),
                  "progress_bar": self.inline and self.progress is not None}
        if step.sweep is None:
            task = make_task(step.notebook, self.out_dir / f"{step.name}.ipynb",
                             parameters=params, run_id=srun.id, **common)
            self.queue.append(Job(step, srun, task, key, parts))
            self.say(f"  {step.name}: running ({reason})")
            return
        combos = expand(step.sweep.grid, step.sweep.random)
        self.sweeps[step.name] = SweepState(srun, key, parts, len(combos), SweepResult(srun.id),
                                            time.time())
        srun.set_tags({"sweep.trials": len(combos)})
        self.say(f"  {step.name}: sweeping {len(combos)} trial(s) ({reason})")
        for i, combo in enumerate(combos):
            trial = start_run(name=f"trial-{i}", kind="trial", parent=srun, activate=False,
                              params={**params, **combo}, tags=undeclared, source=step.notebook)
            task = make_task(step.notebook, self.out_dir / f"{step.name}-trial-{i}.ipynb",
                             parameters={**params, **combo}, run_id=trial.id, **common)
            self.queue.append(Job(step, trial, task, trial=i, combo=combo))

    def submit(self) -> None:
        while self.queue and len(self.running) < self.workers:
            job = self.queue.pop(0)
            if self.pool is None:
                self.pool = make_executor(self.executor, self.workers)
            self.running[self.pool.submit(execute_step, job.task)] = job

    def collect(self) -> None:
        """Wait for jobs to finish (up to a second while progress is shown) and record them."""
        done = self.pool.wait_any(list(self.running),
                                  timeout=None if self.progress is None else 1.0)
        show_cells = self.progress is not None and not self.inline
        for handle in done:
            job = self.running.pop(handle)
            if show_cells:  # its last cells, however fast it ran
                self.show_cells([job])
            report: Report = self.pool.result(handle)
            if job.trial is None:
                self.result.steps[job.step.name] = self.finish_step(job, report)
            else:
                self.finish_trial(job, report)
            if job.step.name in self.result.steps:
                self.active.pop(job.step.name, None)
        if show_cells:
            self.show_cells(list(self.running.values()))

    # -- recording ---------------------------------------------------------------------
    def finish_step(self, job: Job, report: Report) -> StepResult:
        step, srun = job.step, job.run
        if report.output:
            srun.attach(Path(report.output), "output.ipynb")
        res = StepResult(step.name, "ran", srun.id, report.duration, output_notebook=report.output)
        error = report.error(step.name)
        if error is None:
            outputs = {p: hash_file(self.pipeline.root / p) for p in step.outputs}
            missing = [p for p, sha in outputs.items() if sha is None]
            if not missing:
                self.upstream[step.name] = outputs
                self.ws.store.pipelines.put_cache(job.key, self.pipeline.name, step.name, srun.id,
                                                  job.parts, outputs)
                srun.end("FINISHED")
                self.say(f"  {step.name}: ran in {report.duration:.1f} s")
                return res
            error = StepError(f"declared output(s) not written: {', '.join(missing)}",
                              kind="outputs", output_notebook=report.output, step=step.name)
        res.status, res.error = "failed", error
        srun.set_tags({"pipeline.failure": error.kind})
        srun.end("FAILED", error=str(error))
        self.say(f"  {step.name}: FAILED ({error.kind}): {error}\n    see {res.output_notebook}")
        return res

    def finish_trial(self, job: Job, report: Report) -> None:
        """Record one finished trial of a sweep step; finish the step after its last trial."""
        step = job.step
        state = self.sweeps[step.name]
        record = finish_trial(job.run, job.trial, job.combo or {}, report)
        state.result.trials.append(record)
        state.left -= 1
        self.say(f"    {step.name} trial-{job.trial} {job.combo}: "
                 + ("ok" if record["status"] == "FINISHED" else f"FAILED: {record['error']}"))
        if state.left:
            return
        srun, trials = state.run, state.result.trials
        trials.sort(key=lambda t: t["trial"])
        best = record_best(srun, state.result, step.sweep.metric, step.sweep.goal)
        failed = [t for t in trials if t["status"] != "FINISHED"]
        res = StepResult(step.name, "ran", srun.id, time.time() - state.started, trials=trials)
        if failed:
            first = failed[0]
            res.status = "failed"
            res.output_notebook = str(self.out_dir / f"{step.name}-trial-{first['trial']}.ipynb")
            res.error = StepError(f"{len(failed)} of {len(trials)} trials failed (first: "
                                  f"trial-{first['trial']}: {first['error']})", kind="trials",
                                  output_notebook=res.output_notebook, step=step.name)
            srun.set_tags({"pipeline.failure": "trials"})
            srun.end("FAILED", error=str(res.error))
            self.say(f"  {step.name}: FAILED: {res.error}\n    see {res.output_notebook}")
            self.result.steps[step.name] = res
            return
        self.ws.store.pipelines.put_cache(state.key, self.pipeline.name, step.name, srun.id,
                                          state.parts, {})
        srun.end("FINISHED")
        self.upstream[step.name] = _sweep_upstream(srun.id)
        best_text = (f", best {step.sweep.metric}={format_number(best['metrics'][step.sweep.metric])} "
                     f"({best['params']})") if best else ""
        self.say(f"  {step.name}: {len(trials)} trials in {res.duration:.1f} s{best_text}")
        self.result.steps[step.name] = res

    def show_cells(self, jobs: list[Job]) -> None:
        """Report each step's cell progress when it moved (read from its output notebook)."""
        for job in jobs:
            if job.trial is not None:
                continue
            prog = cell_progress(job.task.output)
            if prog and prog[0] and prog != self.cells_shown.get(job.step.name):
                self.cells_shown[job.step.name] = prog
                self.say(f"    {job.step.name}: cell {prog[0]}/{prog[1]}")

    def publish(self) -> None:
        """Write the steps' state to the workspace when it changed (the sidebar reads it)."""
        steps = []
        for name in self.order:
            r = self.result.steps.get(name)
            if r is not None:
                steps.append({"name": name, "status": r.status, "run_id": r.run_id,
                              "duration_s": r.duration, "reason": r.reason,
                              "error": str(r.error)[:500] if r.error else None})
            else:
                steps.append({"name": name, "status": "running" if name in self.active else "pending",
                              "run_id": self.active.get(name), "duration_s": None, "reason": None,
                              "error": None})
        if steps != self.published:
            self.ws.store.pipelines.set_steps(self.prun.id, steps)
            self.published = steps

    def interrupt(self, exc: BaseException) -> None:
        """The pipeline itself was interrupted or broke: end what it started, say so."""
        for job in self.running.values():
            job.run.end("KILLED", error=f"pipeline interrupted: {type(exc).__name__}")
        for state in self.sweeps.values():
            if state.left:
                state.run.end("KILLED", error=f"pipeline interrupted: {type(exc).__name__}")
        for job in self.queue:
            job.run.end("KILLED", error="pipeline interrupted before it started")
        self.publish()  # running ones read as killed once the pipeline run has ended
        self.prun.fail(exc)
