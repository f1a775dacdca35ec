"""Sweeps on worker processes, reproduce and gate, with real kernels."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

import cellops
from cellops.pipelines import gate, reproduce, run_pipeline, run_sweep
from cellops.pipelines.sweep import expand, parse_grid
from test_pipelines import notebook, project  # noqa: F401 - the fixture


@pytest.fixture
def scored(tmp_path):
    notebook(tmp_path / "score.ipynb", "alpha = 1.0\ndepth = 1",
             "import cellops\ncellops.log_metric('score', alpha * depth)\n"
             "if alpha < 0:\n    raise ValueError('alpha must be >= 0')")
    return tmp_path / "score.ipynb"


def test_grids_expand_to_every_combination_or_a_random_sample():
    grid = parse_grid(["alpha=0.1,0.5,1.0", "depth=3,5", "model=rf"])
    assert grid == {"alpha": [0.1, 0.5, 1.0], "depth": [3, 5], "model": ["rf"]}
    assert len(expand(grid)) == 6
    sample = expand(grid, random_n=4)
    assert len(sample) == 4 and len({tuple(s.values()) for s in sample}) == 4
    assert expand(grid, random_n=4) == sample  # seeded: the same sample again
    with pytest.raises(cellops.InvalidArgumentError):
        parse_grid(["alpha"])


def test_a_sweep_of_4_trials_on_2_workers_records_and_ranks_them(scored):
    result = run_sweep(scored, ["alpha=0.5,2", "depth=1,3"], workers=2, progress=None)
    assert len(result.trials) == 4 and all(t["status"] == "FINISHED" for t in result.trials)
    best = result.ranked("score", "max")
    assert best[0]["params"] == {"alpha": 2, "depth": 3} and best[0]["metrics"]["score"] == 6
    assert result.ranked("score", "min")[0]["metrics"]["score"] == 0.5
    sweep = cellops.get_run(result.run_id)
    assert sweep.kind == "sweep" and sweep.status == "FINISHED"
    trials = sweep.children()
    assert len(trials) == 4 and {t.kind for t in trials} == {"trial"}
    assert all("output.ipynb" in {a["path"] for a in t.artifacts} for t in trials)
    # two workers: some trials overlapped in time
    spans = sorted((t.start_time, t.end_time) for t in trials)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(3))


def test_trials_see_the_environment_of_the_moment_their_sweep_starts(tmp_path, monkeypatch):
    """Workers are forked from a fork server started with the first pool; a variable set
    after that (a key, a path) must still reach the kernels of a later sweep."""
    notebook(tmp_path / "env.ipynb", "x = 0",
             "import os, cellops\n"
             "cellops.log_metric('seen', float(os.environ.get('CELLOPS_TEST_SEEN', '-1')))")
    monkeypatch.setenv("CELLOPS_TEST_SEEN", "1")
    first = run_sweep(tmp_path / "env.ipynb", ["x=1,2"], workers=2, progress=None)
    monkeypatch.setenv("CELLOPS_TEST_SEEN", "2")
    second = run_sweep(tmp_path / "env.ipynb", ["x=1,2"], workers=2, progress=None)
    assert [t["metrics"]["seen"] for t in first.trials] == [1.0, 1.0]
    assert [t["metrics"]["seen"] for t in second.trials] == [2.0, 2.0]


def test_the_cli_skips_the_iri_format_checkers_a_users_process_keeps():
    """The ``cellops`` process answers jsonschema's optional rfc3987_syntax import with
    ImportError (0.7 s saved on every pipeline command); importing cellops elsewhere
    leaves a user's process as it is."""
    code = ("import sys; from cellops.cli import main; main(['--help']); import nbformat; "
            "print(sys.modules.get('rfc3987_syntax', 'absent'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "None", out.stderr
    code = "import sys, cellops, nbformat; print('rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_failed_trials_fail_the_sweep_but_keep_the_others(scored):
    result = run_sweep(scored, ["alpha=-1,1"], progress=None)
    by_alpha = {t["params"]["alpha"]: t for t in result.trials}
    assert by_alpha[-1]["status"] == "FAILED" and "alpha must be >= 0" in by_alpha[-1]["error"]
    assert by_alpha[1]["status"] == "FINISHED"
    assert cellops.get_run(result.run_id).status == "FAILED"


def test_sweep_cli_prints_ranked_trials(scored):
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "sweep", str(scored), "-p",
                          "alpha=1,3", "--metric", "score", "--workers", "2"],
                         cwd=scored.parent, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    table = res.stdout.split("best score (max) first:")[1].strip().splitlines()
    assert table[2].split()[3] == "3" and table[3].split()[3] == "1"


def test_reproduce_reexecutes_a_step_and_reports_no_metric_difference(project):  # noqa: F811
    result = run_pipeline(project / "pipeline.yaml", progress=None)
    train = result.steps["train"].run_id
    again = reproduce(train, progress=None)
    assert again.status == "FINISHED" and not again.environment_differs
    assert again.metrics == [{"key": "mean", "original": pytest.approx(again.metrics[0]["reproduced"]),
                              "reproduced": again.metrics[0]["reproduced"], "difference": 0.0}]
    new = cellops.get_run(again.run_id)
    assert new.tags["reproduces"] == train and new.params == cellops.get_run(train).params
    assert not (project / "pipeline-outputs").exists()  # ran in a temporary copy


def test_reproduce_refuses_runs_without_a_notebook(ws):
    with cellops.start_run() as run:
        pass
    with pytest.raises(cellops.InvalidArgumentError, match="no stored notebook"):
        reproduce(run.id, progress=None)


def test_gate_passes_and_fails_with_a_readable_verdict_and_exit_code(ws, tmp_path):
    with cellops.start_run(params={"model": "rf"}) as run:
        run.log_metrics({"acc": 0.93, "f1": 0.7})
    ok = gate(run.id, "metrics.acc >= 0.9 and params.model = 'rf'")
    assert ok.passed and str(ok).startswith("PASS")
    bad = gate(run.id, "metrics.acc >= 0.9 and metrics.f1 >= 0.8 and metrics.auc > 0.5")
    assert not bad.passed
    assert [c["passed"] for c in bad.checks] == [True, False, False]
    assert "missing" in str(bad) and "(actual: 0.7)" in str(bad)
    cellops.workspace().close()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cellops.cli", "gate", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    assert cli(run.id[:8], "metrics.acc >= 0.9").returncode == 0
    res = cli(run.id[:8], "metrics.f1 >= 0.8")
    assert res.returncode == 1 and "FAIL" in res.stdout and "(actual: 0.7)" in res.stdout
    res = cli(run.id[:8], "metrics.f1 >=")
    assert res.returncode == 1 and "Expected a value" in res.stderr


@pytest.fixture
def swept(scored):
    root = scored.parent
    notebook(root / "pick.ipynb", "x = 0",
             "import time\ntime.sleep(1.5)  # long enough to be seen running",
             "import cellops\ncellops.log_metric('picked', 1.0)")
    (root / "p.yaml").write_text(
        "name: tune\nparameters: {depth: 1}\nsteps:\n"
        "  - name: search\n    notebook: score.ipynb\n"
        "    sweep:\n      parameters: {alpha: [0.5, 2, 1], depth: [1, 3]}\n"
        "      random: 4\n      metric: score\n      goal: max\n"
        "  - name: pick\n    notebook: pick.ipynb\n    needs: [search]\n")
    return root / "p.yaml"


def test_a_sweep_step_runs_its_trials_in_parallel_and_hands_on_the_best(swept):
    lines: list[str] = []
    result = run_pipeline(swept, workers=2, progress=lines.append)
    step = result.steps["search"]
    assert step.status == "ran" and len(step.trials) == 4
    assert all(t["status"] == "FINISHED" for t in step.trials)
    run = cellops.get_run(step.run_id)
    trials = [cellops.get_run(t["run_id"]) for t in step.trials]
    assert all(t.parent_id == run.id and t.kind == "trial" for t in trials)
    best = max(trials, key=lambda t: t.metrics["score"])
    assert run.tags["sweep.best_run"] == best.id and run.metrics["score"] == best.metrics["score"]
    assert run.tags["sweep.best.alpha"] == str(best.params["alpha"])
    overlap = any(a.start_time < b.end_time and b.start_time < a.end_time
                  for a in trials for b in trials if a is not b)
    assert overlap  # two workers: trials ran side by side
    assert result.steps["pick"].status == "ran"
    assert any("search: 4 trials" in line and "best score=" in line for line in lines)
    assert any(line.strip().startswith("pick: cell") for line in lines)  # cells as they go

    again = run_pipeline(swept, progress=None)  # same grid: nothing to do
    assert {n: s.status for n, s in again.steps.items()} == {"search": "cached", "pick": "cached"}
    assert again.steps["search"].run_id == step.run_id

    changed = run_pipeline(swept, ["search.depth=3"], progress=None)  # depth no longer swept
    assert changed.steps["search"].status == "ran"
    assert {t["params"].get("depth") for t in changed.steps["search"].trials} == {None}
    assert {cellops.get_run(t["run_id"]).params["depth"] for t in changed.steps["search"].trials} == {"3"}


def test_a_failing_trial_fails_its_sweep_step_and_skips_dependents(swept):
    swept.write_text(swept.read_text().replace("[0.5, 2, 1]", "[0.5, -1]").replace("      random: 4\n", ""))
    result = run_pipeline(swept, workers=2, progress=None)
    step = result.steps["search"]
    assert step.status == "failed" and step.error.kind == "trials"
    assert "2 of 4 trials failed" in str(step.error) and "alpha must be >= 0" in str(step.error)
    assert step.output_notebook.endswith(".ipynb") and step.error.output_notebook == step.output_notebook
    assert result.steps["pick"].status == "skipped"
    assert cellops.get_run(step.run_id).status == "FAILED"


@pytest.mark.parametrize("sweep, message", [
    ("    sweep: [1, 2]\n", "'sweep' must be a mapping"),
    ("    sweep: {random: 2}\n", "the sweep needs 'parameters'"),
    ("    sweep: {parameters: {alpha: []}}\n", "sweep parameter 'alpha' has no values"),
    ("    sweep: {parameters: {alpha: [1]}, goal: up}\n", "sweep 'goal' must be max or min"),
    ("    sweep: {parameters: {alpha: [1]}, randm: 2}\n", "unknown sweep key 'randm'"),
    ("    sweep: {parameters: {alpha: [1]}}\n    outputs: [m.txt]\n", "trials would overwrite"),
])
def test_invalid_sweep_steps_get_a_clear_message(scored, sweep, message):
    path = scored.parent / "p.yaml"
    path.write_text("name: t\nsteps:\n  - name: s\n    notebook: score.ipynb\n" + sweep)
    with pytest.raises(cellops.InvalidArgumentError) as info:
        run_pipeline(path, progress=None)
    assert "p.yaml:" in str(info.value) and message in str(info.value)
    assert cellops.search_runs().empty


def test_a_sweep_over_a_parameter_the_notebook_lacks_is_refused_not_recorded(scored):
    """The trials used to run with the notebook's default and be recorded with alpha=1
    and alpha=2 (issue #27)."""
    with pytest.raises(cellops.UnknownParameterError) as info:
        run_sweep(scored, ["alpah=1,2"], progress=None)
    assert "Did you mean 'alpha' for 'alpah'?" in str(info.value)
    assert cellops.search_runs().empty
    untagged = scored.parent / "untagged.ipynb"
    notebook(untagged, "alpha = 0.5", "import cellops\ncellops.log_metric('used', alpha)")
    nb = nbformat.read(untagged, as_version=4)
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, untagged)
    with pytest.raises(cellops.UnknownParameterError, match="no cell tagged 'parameters'"):
        run_sweep(untagged, ["alpha=1,2"], progress=None)
    # opted in: it runs, and the record says the names were not declared
    result = run_sweep(untagged, ["alpha=1,2"], progress=None, allow_unknown=True)
    trials = [cellops.get_run(t["run_id"]) for t in result.trials]
    assert {t.metrics["used"] for t in trials} == {0.5}  # what papermill really does
    assert {t.tags["params.undeclared"] for t in trials} == {"alpha"}


def test_sweep_cli_refuses_an_unknown_parameter_with_one_line(scored):
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "sweep", str(scored), "-p",
                          "alpah=1,3"], cwd=scored.parent, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "has no parameter 'alpah'" in res.stderr and "--allow-unknown-params" in res.stderr
