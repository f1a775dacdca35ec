"""The pipeline file (``pipeline.yaml``): loading, validation, dependency order.

Schema (see docs/pipelines.md)::

    name: churn                       # required
    parameters: {seed: 0}             # shared by every step, overridable per step
    kernel: python3                   # optional; default: each notebook's own kernel
    allow_external_notebooks: false   # true lets steps run notebooks outside this folder
    allow_unknown: false              # true injects parameters a notebook does not declare
    steps:                            # required, at least one
      - name: prepare                 # required, unique: letters, digits, _ and -
        notebook: notebooks/prepare.ipynb   # required, relative to this file
        parameters: {test_size: 0.2}
        needs: [other-step]           # upstream steps
        inputs: [data/raw.csv]        # files read (their hashes are part of the cache key)
        outputs: [data/train.parquet] # files written (checked and hashed after the step)
        timeout: 600                  # seconds for any one cell
        kernel: python3
        allow_unknown: false          # as above, for this step only
        sweep:                        # optional: run the step once per combination
          parameters: {alpha: [0.1, 1.0], depth: [3, 5]}   # grid = product of the lists
          random: 3                   # optional: that many combinations, picked at random
          metric: roc_auc             # optional: the best trial's metrics go to the step run
          goal: max                   # max (default) or min

Parameters must reach the notebooks (:mod:`cellops.execution.parameters`): a step's own
parameters, its sweep's and ``-p step.key=value`` must be declared in the notebook's
``parameters`` cell; a shared parameter (top level, or ``-p key=value``) goes to the steps
whose notebooks declare it and must be declared by at least one. ``allow_unknown: true``
(or ``allow_unknown=True``, ``--allow-unknown-params``) injects them anyway; the step's
run then tags them ``params.undeclared``.

Every error names the file, the line and what was expected. The file is read with the
limits of :mod:`cellops.yamldoc` (size, depth, alias expansion, duplicate keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError, UnknownParameterError

STEP_KEYS = {"name", "notebook", "parameters", "needs", "inputs", "outputs", "timeout", "kernel",
             "sweep", "allow_unknown"}
SWEEP_KEYS = {"parameters", "random", "metric", "goal"}
TOP_KEYS = {"name", "parameters", "kernel", "steps", "allow_external_notebooks", "allow_unknown"}
UNKNOWN_HINT = "--allow-unknown-params (allow_unknown: true in the pipeline file)"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PipelineSpecError(InvalidArgumentError):
    """A pipeline file is malformed. ``path`` and ``line`` (1-based, or None) locate it."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class SweepSpec:
    """A step's sweep: its trials are the combinations of ``grid`` (or ``random`` of them)."""

    grid: dict[str, list[Any]]
    random: int | None = None
    metric: str | None = None
    goal: str = "max"

    def key_part(self) -> dict[str, Any]:
        return {"grid": {k: [repr(v) for v in vs] for k, vs in sorted(self.grid.items())},
                "random": self.random}


@dataclass
class Step:
    name: str
    notebook: Path  # absolute
    parameters: dict[str, Any] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    timeout: float | None = None
    kernel: str | None = None
    sweep: SweepSpec | None = None
    allow_unknown: bool = False
    # The names its notebook declares (None: every parameter is passed, see allow_unknown),
    # and those it is given without declaring them (only with allow_unknown).
    declared: set[str] | None = None
    undeclared: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    name: str
    path: Path  # the pipeline file, absolute
    parameters: dict[str, Any]
    steps: dict[str, Step]  # in dependency order
    kernel: str | None = None

    @property
    def root(self) -> Path:
        """Folder the pipeline's relative paths (and notebooks' cwd) refer to."""
        return self.path.parent

    def step_parameters(self, step: Step) -> dict[str, Any]:
        """What the step's notebook receives: the shared parameters it declares (all of
        them when it allows unknown ones), then its own."""
        shared = {k: v for k, v in self.parameters.items()
                  if step.declared is None or k in step.declared}
        return {**shared, **step.parameters}

    def downstream(self, names: set[str]) -> set[str]:
        """``names`` and every step that depends on them, directly or not."""
        out = set(names)
        for step in self.steps.values():  # dependency order: one pass suffices
            if any(n in out for n in step.needs):
                out.add(step.name)
        return out


def load_pipeline(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None, *,
                  allow_unknown: bool = False) -> Pipeline:
    """Read and validate a pipeline file. ``overrides`` maps step (or ``"*"``) to parameters;
    ``allow_unknown`` lets parameters through that the notebooks do not declare."""
    from ..yamldoc import YamlError, load_yaml

    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineSpecError(path, None, "no such pipeline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineSpecError(path, None, f"cannot read it as UTF-8 text ({exc})") from None
    try:
        doc = load_yaml(text)
    except YamlError as exc:
        raise PipelineSpecError(path, exc.line, exc.message) from None
    data = doc.data

    def fail(where: tuple, message: str) -> PipelineSpecError:
        return PipelineSpecError(path, doc.line(where), message)

    if not isinstance(data, dict):
        raise fail((), "expected a mapping with 'name' and 'steps' at the top level")
    unknown = set(data) - TOP_KEYS
    if unknown:
        k = sorted(unknown)[0]
        raise fail((k, "__key__"), f"unknown key {k!r}; expected one of {', '.join(sorted(TOP_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(("name",), "'name' must be a word (letters, digits, _ . -), e.g. name: churn")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise fail(("parameters",), "'parameters' must be a mapping, e.g. parameters: {seed: 0}")
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise fail(("steps",), "'steps' must be a non-empty list of steps")
    external = data.get("allow_external_notebooks", False)
    if not isinstance(external, bool):
        raise fail(("allow_external_notebooks",), "'allow_external_notebooks' must be true or false")
    lenient = data.get("allow_unknown", False)
    if not isinstance(lenient, bool):
        raise fail(("allow_unknown",), "'allow_unknown' must be true or false")
    lenient = lenient or allow_unknown
    project = path.parent.resolve()

    steps: dict[str, Step] = {}
    for i, raw in enumerate(steps_data):
        where = ("steps", i)
        if not isinstance(raw, dict):
            raise fail(where, "each step must be a mapping with at least 'name' and 'notebook'")
        bad = set(raw) - STEP_KEYS
        if bad:
            k = sorted(bad)[0]
            raise fail(where + (k, "__key__"),
                       f"unknown step key {k!r}; expected one of {', '.join(sorted(STEP_KEYS))}")
        sname = raw.get("name")
        if not isinstance(sname, str) or not _NAME.match(sname):
            raise fail(where + ("name",), "a step needs a 'name' made of letters, digits, _ . -")
        if sname in steps:
            raise fail(where + ("name",), f"step name {sname!r} is used twice")
        nb = raw.get("notebook")
        if not isinstance(nb, str) or not nb.endswith(".ipynb"):
            raise fail(where + ("notebook",), f"step {sname!r} needs 'notebook: path/to/file.ipynb'")
        nb_path = (path.parent / nb).resolve()
        if not external and not nb_path.is_relative_to(project):
            raise fail(where + ("notebook",),
                       f"step {sname!r}: notebook {nb!r} is outside the pipeline's folder "
                       f"{project} (it resolves to {nb_path}); move it into the folder, or add "
                       "'allow_external_notebooks: true' at the top of the file if you trust it")
        if not nb_path.is_file():
            raise fail(where + ("notebook",), f"step {sname!r}: notebook {nb!r} not found "
                                              f"(looked for {nb_path})")
        sparams = raw.get("parameters") or {}
        if not isinstance(sparams, dict):
            raise fail(where + ("parameters",), f"step {sname!r}: 'parameters' must be a mapping")
        lists = {}
        for key in ("needs", "inputs", "outputs"):
            value = raw.get(key) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(where + (key,), f"step {sname!r}: '{key}' must be a list of strings")
            lists[key] = value
        timeout = raw.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or timeout <= 0):
            raise fail(where + ("timeout",), f"step {sname!r}: 'timeout' must be a positive number "
                                             "of seconds")
        kernel = raw.get("kernel")
        if kernel is not None and not isinstance(kernel, str):
            raise fail(where + ("kernel",), f"step {sname!r}: 'kernel' must be a kernel name")
        step_lenient = raw.get("allow_unknown", False)
        if not isinstance(step_lenient, bool):
            raise fail(where + ("allow_unknown",), f"step {sname!r}: 'allow_unknown' must be true "
                                                   "or false")
        sweep = _sweep(raw.get("sweep"), sname, where + ("sweep",), fail)
        if sweep is not None and lists["outputs"]:
            raise fail(where + ("outputs",), f"step {sname!r} is a sweep, so its trials would overwrite "
                                             "each other's outputs; write outputs in a later step")
        steps[sname] = Step(sname, nb_path, dict(sparams), lists["needs"], lists["inputs"],
                            lists["outputs"], float(timeout) if timeout else None, kernel, sweep,
                            lenient or step_lenient)

    for i, step in enumerate(steps.values()):
        for need in step.needs:
            if need not in steps:
                raise fail(("steps", i, "needs"), f"step {step.name!r} needs unknown step {need!r}; "
                                                  f"steps: {', '.join(steps)}")
            if need == step.name:
                raise fail(("steps", i, "needs"), f"step {step.name!r} needs itself")
    ordered = _topological(steps, fail)
    index = {name: i for i, name in enumerate(steps)}
    for key, values in (overrides or {}).items():
        if key == "*":
            params = {**params, **values}
        elif key not in ordered:
            raise PipelineSpecError(path, None, f"-p names unknown step {key!r}; steps: "
                                                f"{', '.join(ordered)}")
        else:
            ordered[key].parameters.update(values)
            if ordered[key].sweep is not None:  # a value given on the command line is not swept
                for name in values:
                    ordered[key].sweep.grid.pop(name, None)
    pipeline = Pipeline(name, path, dict(params), ordered, data.get("kernel"))
    _check_parameters(pipeline, data, index, fail)
    return pipeline


def _check_parameters(pipeline: Pipeline, data: dict, index: dict[str, int], fail: Any) -> None:
    """Refuse parameters no notebook would read (see the module docstring); note what each
    step declares and, where unknown names are allowed, what it gets without declaring."""
    from ..execution.parameters import (
        check_parameters,
        close_match,
        notebook_parameters,
    )

    steps_data = data["steps"]
    takers: dict[str, list[str]] = {}  # shared parameter -> steps that declare it
    for step in pipeline.steps.values():
        found = notebook_parameters(step.notebook)
        i = index[step.name]
        in_step = steps_data[i].get("parameters") or {}
        in_sweep = (steps_data[i].get("sweep") or {}).get("parameters") or {}
        own = list(step.parameters) + list(step.sweep.grid if step.sweep else ())
        first = next((n for n in own if n not in found.names), None)
        where = (("steps", i, "parameters", first, "__key__") if first in in_step else
                 ("steps", i, "sweep", "parameters", first, "__key__") if first in in_sweep else
                 None)  # given with -p: no line to point at
        try:
            check_parameters(step.notebook, own, allow_unknown=step.allow_unknown,
                             what=f"step {step.name!r}", hint=UNKNOWN_HINT)
        except UnknownParameterError as exc:
            located = fail(where, str(exc)) if where else PipelineSpecError(pipeline.path, None,
                                                                            str(exc))
            raise UnknownParameterError(str(located), notebook=exc.notebook, unknown=exc.unknown,
                                        known=exc.known) from None
        if step.allow_unknown or not found.inspectable:
            step.declared = None
            given = {**pipeline.step_parameters(step), **(step.sweep.grid if step.sweep else {})}
            step.undeclared = [k for k in given if found.inspectable and k not in found.names]
        else:
            step.declared = set(found.names)
        for k in pipeline.parameters:
            if step.declared is None or k in step.declared:
                takers.setdefault(k, []).append(step.name)
    orphans = [k for k in pipeline.parameters if k not in takers]
    if orphans:
        declared = {s.name: list(notebook_parameters(s.notebook).names)
                    for s in pipeline.steps.values()}
        every = [n for names in declared.values() for n in names]
        guesses = [f"{m!r} for {k!r}" for k in orphans if (m := close_match(k, every))]
        listing = "; ".join(f"{s}: {', '.join(n) or 'none'}" for s, n in declared.items())
        message = (f"shared parameter(s) {', '.join(map(repr, orphans))} are declared by no "
                   f"step's notebook, so no step would receive them."
                   + (f" Did you mean {', '.join(guesses)}?" if guesses else "")
                   + f" Steps declare: {listing}. Fix the name, declare it in a notebook's "
                   f"parameters cell, or pass {UNKNOWN_HINT}.")
        in_file = orphans[0] in (data.get("parameters") or {})
        located = (fail(("parameters", orphans[0], "__key__"), message) if in_file else
                   PipelineSpecError(pipeline.path, None, message))
        raise UnknownParameterError(str(located), notebook=str(pipeline.path), unknown=orphans,
                                    known=sorted(set(every)))


def _sweep(raw: Any, step: str, where: tuple, fail: Any) -> SweepSpec | None:
    if raw is None:
        return None
    example = "e.g. sweep: {parameters: {alpha: [0.1, 1.0]}}"
    if not isinstance(raw, dict):
        raise fail(where, f"step {step!r}: 'sweep' must be a mapping, {example}")
    bad = set(raw) - SWEEP_KEYS
    if bad:
        k = sorted(bad)[0]
        raise fail(where + (k, "__key__"), f"step {step!r}: unknown sweep key {k!r}; expected one of "
                                           f"{', '.join(sorted(SWEEP_KEYS))}")
    grid = raw.get("parameters")
    if not isinstance(grid, dict) or not grid:
        raise fail(where + ("parameters",), f"step {step!r}: the sweep needs 'parameters', a mapping "
                                            f"of names to lists of values, {example}")
    grid = {str(k): (list(v) if isinstance(v, list) else [v]) for k, v in grid.items()}
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise fail(where + ("parameters", empty[0]), f"step {step!r}: sweep parameter {empty[0]!r} "
                                                     "has no values")
    n = raw.get("random")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise fail(where + ("random",), f"step {step!r}: sweep 'random' must be a positive number "
                                        "of trials")
    metric = raw.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise fail(where + ("metric",), f"step {step!r}: sweep 'metric' must be a metric name")
    goal = raw.get("goal", "max")
    if goal not in ("max", "min"):
        raise fail(where + ("goal",), f"step {step!r}: sweep 'goal' must be max or min, not {goal!r}")
    return SweepSpec(grid, n, metric, goal)


def _topological(steps: dict[str, Step], fail: Any) -> dict[str, Step]:
    """Steps in dependency order (file order among independent ones), without recursion:
    a chain of thousands of steps is as cheap as a short one."""
    waiting = {name: len(set(step.needs)) for name, step in steps.items()}
    dependents: dict[str, list[str]] = {name: [] for name in steps}
    for name, step in steps.items():
        for need in set(step.needs):
            dependents[need].append(name)
    index = {name: i for i, name in enumerate(steps)}
    import heapq

    ready = [index[n] for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(steps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for dep in dependents[name]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                heapq.heappush(ready, index[dep])
    if len(order) < len(steps):
        cycle = _a_cycle(steps, {n for n, count in waiting.items() if count > 0})
        raise fail(("steps", index[cycle[0]], "needs"),
                   f"steps form a cycle: {' -> '.join(cycle)}; remove one of these needs")
    return {name: steps[name] for name in order}


def _a_cycle(steps: dict[str, Step], stuck: set[str]) -> list[str]:
    """One cycle among the steps that could not be ordered (each needs another stuck one)."""
    start = min(stuck, key=list(steps).index)
    trail, seen = [start], {start: 0}
    while True:
        nxt = next(n for n in steps[trail[-1]].needs if n in stuck)
        if nxt in seen:
            return trail[seen[nxt]:] + [nxt]
        seen[nxt] = len(trail)
        trail.append(nxt)


def parse_assignment(text: str) -> tuple[str | None, str, Any]:
    """``step.key=value`` or ``key=value`` -> (step or None, key, value parsed as YAML)."""
    from ..yamldoc import YamlError, load_yaml

    if "=" not in text:
        raise InvalidArgumentError(f"-p takes key=value or step.key=value, got {text!r}.")
    lhs, raw = text.split("=", 1)
    step, _, key = lhs.strip().rpartition(".")
    if not key:
        raise InvalidArgumentError(f"-p {text!r} names no parameter.")
    try:
        value = load_yaml(raw).data if raw.strip() else ""
    except YamlError as exc:
        if not exc.syntax:
            raise InvalidArgumentError(f"-p {key}: {exc.message}.") from None
        value = raw  # not YAML: the text itself
    return (step or None), key, value
