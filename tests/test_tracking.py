"""The tracking API against a real SQLite workspace."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cellops
from conftest import run_python
from engines_kit import RawDb


def test_a_run_used_as_context_manager_finishes_with_its_params_metrics_and_tags(ws):
    with cellops.start_run(name="baseline", params={"lr": 0.1, "model": "rf"},
                           tags={"team": "ml"}) as run:
        assert cellops.active_run() is run
        run.log_metric("acc", 0.9)
    assert cellops.active_run() is None
    again = cellops.get_run(run.id)
    assert again.status == "FINISHED"
    assert again.name == "baseline"
    assert again.params == {"lr": "0.1", "model": "rf"}
    assert again.metrics == {"acc": 0.9}
    assert again.tags == {"team": "ml"}
    assert again.end_time >= again.start_time
    assert again.experiment == "Default"


def test_an_exception_inside_the_block_marks_the_run_failed_and_is_reraised(ws):
    with pytest.raises(ZeroDivisionError):
        with cellops.start_run(name="boom") as run:
            cellops.log_metric("before", 1.0)
            1 / 0  # noqa: B018
    failed = cellops.get_run(run.id)
    assert failed.status == "FAILED"
    assert "ZeroDivisionError: division by zero" in failed.error
    assert "Traceback" in failed.error
    assert failed.metrics == {"before": 1.0}


def test_keyboard_interrupt_inside_the_block_marks_the_run_killed(ws):
    with pytest.raises(KeyboardInterrupt):
        with cellops.start_run() as run:
            raise KeyboardInterrupt
    assert cellops.get_run(run.id).status == "KILLED"


def test_runs_started_inside_a_run_are_its_children(ws):
    with cellops.start_run(name="parent") as parent:
        with cellops.start_run(name="child") as child:
            assert cellops.active_run() is child
        assert cellops.active_run() is parent
        other = cellops.start_run(name="explicit", parent=parent.id)
        cellops.end_run()
    assert cellops.get_run(child.id).parent_id == parent.id
    assert cellops.get_run(other.id).parent_id == parent.id
    assert [c.name for c in parent.children()] == ["child", "explicit"]


def test_end_run_ends_the_active_run_with_the_given_status(ws):
    run = cellops.start_run()
    cellops.end_run("KILLED")
    assert cellops.get_run(run.id).status == "KILLED"
    cellops.end_run()  # nothing active: no-op
    with pytest.raises(cellops.InvalidArgumentError, match="FINISHED, FAILED, KILLED"):
        cellops.start_run().end("DONE")


def test_logging_without_a_run_starts_one(ws):
    cellops.log_metric("loss", 0.5)
    run = cellops.active_run()
    assert run is not None and run.status == "RUNNING"
    cellops.end_run()
    assert cellops.get_run(run.id).metrics == {"loss": 0.5}


def test_the_same_param_value_again_is_a_noop(ws):
    with cellops.start_run() as run:
        run.log_param("alpha", 0.5)
        run.log_param("alpha", 0.5)
    assert run.params == {"alpha": "0.5"}


def test_a_different_param_value_is_an_error_naming_both_and_nothing_is_lost(ws):
    with cellops.start_run() as run:
        run.log_params({"alpha": 0.5, "depth": 3})
        with pytest.raises(cellops.ParamConflictError) as info:
            run.log_params({"beta": 1, "alpha": 0.7})
        assert "'0.5'" in str(info.value) and "'0.7'" in str(info.value)
        assert info.value.key == "alpha"
    # The batch was atomic: beta was not half-written, alpha kept its value.
    assert cellops.get_run(run.id).params == {"alpha": "0.5", "depth": "3"}


@pytest.mark.parametrize(
    "value, stored",
    [(1, "1"), (0.25, "0.25"), (True, "True"), (None, "None"), ("rf", "rf"),
     ([1, 2], "[1, 2]"), ({"a": 1}, '{"a": 1}')],
)
def test_param_values_are_stored_as_text(ws, value, stored):
    with cellops.start_run(params={"p": value}) as run:
        pass
    assert run.params["p"] == stored


def test_metrics_keep_full_history_and_steps_default_to_the_next_step(ws):
    with cellops.start_run() as run:
        for v in (0.9, 0.5, 0.3):
            run.log_metric("loss", v)
        run.log_metric("loss", 0.1, step=10)
        run.log_metric("loss", 0.05)
        run.log_metrics({"acc": 0.8, "f1": 0.7}, step=2)
    hist = run.metric_history("loss")
    assert list(hist["step"]) == [0, 1, 2, 10, 11]
    assert list(hist["value"]) == [0.9, 0.5, 0.3, 0.1, 0.05]
    assert run.metrics == {"loss": 0.05, "acc": 0.8, "f1": 0.7}
    assert set(run.metric_history()["key"]) == {"loss", "acc", "f1"}


def test_latest_metric_is_the_highest_step_not_the_last_logged(ws):
    with cellops.start_run() as run:
        run.log_metric("acc", 0.9, step=5)
        run.log_metric("acc", 0.1, step=2)
    assert run.metrics["acc"] == 0.9


def test_nan_and_infinities_round_trip(ws):
    with cellops.start_run() as run:
        run.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")})
        run.log_metric("nan", 1.0)
        run.log_metric("nan", float("nan"))
    m = cellops.get_run(run.id).metrics
    assert math.isnan(m["nan"]) and m["inf"] == math.inf and m["ninf"] == -math.inf
    hist = run.metric_history("nan")
    assert math.isnan(hist["value"][0]) and hist["value"][1] == 1.0 and math.isnan(hist["value"][2])
    df = cellops.search_runs()
    assert math.isnan(df["metrics.nan"][0]) and df["metrics.inf"][0] == math.inf


def test_numpy_scalars_are_accepted_as_metrics_and_params(ws):
    np = pytest.importorskip("numpy")
    with cellops.start_run(params={"n": np.int64(3)}) as run:
        run.log_metric("acc", np.float32(0.5))
    assert run.params == {"n": "3"} and run.metrics == {"acc": 0.5}


@pytest.mark.parametrize("bad", ["high", None, [1.0], object()])
def test_a_metric_that_is_not_a_number_is_refused_with_advice(ws, bad):
    with cellops.start_run() as run:
        with pytest.raises(cellops.InvalidArgumentError, match="must be a number"):
            run.log_metric("acc", bad)
    assert run.metrics == {}


@pytest.mark.parametrize("key", ["", "  ", "a\nb", "x" * 251, 3])
def test_bad_keys_are_refused(ws, key):
    with cellops.start_run() as run:
        with pytest.raises(cellops.InvalidArgumentError):
            run.log_param(key, 1)
        with pytest.raises(cellops.InvalidArgumentError):
            run.log_metric(key, 1)


def test_metrics_are_buffered_until_a_threshold_or_flush(ws):
    ws.buffer.max_rows = 100
    ws.buffer.max_age_s = 60
    probe = RawDb(ws)
    count = lambda: probe.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]  # noqa: E731
    with cellops.start_run() as run:
        for i in range(99):
            run.log_metric("x", i)
        assert count() == 0  # still in memory
        run.log_metric("x", 99)
        assert count() == 100  # size threshold reached
        run.log_metric("x", 100)
        cellops.flush()
        assert count() == 101
        run.log_metric("x", 101)
    assert count() == 102  # end_run writes the rest


def test_buffered_metrics_are_flushed_after_the_time_threshold(ws):
    ws.buffer.max_age_s = 0.2
    probe = RawDb(ws)
    with cellops.start_run() as run:
        run.log_metric("x", 1)
        deadline = time.time() + 5
        while probe.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0:
            assert time.time() < deadline, "metric never flushed by the timer"
            time.sleep(0.05)


def test_buffered_metrics_are_written_at_interpreter_exit(tmp_path):
    res = run_python(
        "import cellops\n"
        "run = cellops.start_run(name='script')\n"
        "for i in range(50): cellops.log_metric('x', i)\n",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    df = cellops.search_runs()
    assert df["status"][0] == "FINISHED"
    run = cellops.get_run(df["run_id"][0])
    assert len(run.metric_history("x")) == 50


def test_a_script_that_dies_with_an_exception_leaves_a_failed_run(tmp_path):
    res = run_python(
        "import cellops\ncellops.start_run(name='crash')\ncellops.log_metric('x', 1)\n"
        "raise RuntimeError('bad data')\n",
        cwd=tmp_path,
    )
    assert res.returncode == 1
    run = cellops.get_run(cellops.search_runs()["run_id"][0])
    assert run.status == "FAILED" and "RuntimeError: bad data" in run.error
    assert run.metrics == {"x": 1.0}


def test_logging_to_an_ended_run_is_refused_but_tags_may_change(ws):
    with cellops.start_run() as run:
        pass
    with pytest.raises(cellops.RunStateError, match="start_run\\(run_id="):
        run.log_metric("late", 1)
    with pytest.raises(cellops.RunStateError):
        run.log_param("late", 1)
    run.set_tag("reviewed", "yes")
    assert cellops.get_run(run.id).tags == {"reviewed": "yes"}


def test_a_run_can_be_resumed_by_id(ws):
    with cellops.start_run(name="first") as run:
        run.log_metric("loss", 1.0)
        run.log_metric("loss", 0.5)
    with cellops.start_run(run_id=run.id) as again:
        again.log_metric("loss", 0.25)
    hist = cellops.get_run(run.id).metric_history("loss")
    assert list(hist["step"]) == [0, 1, 2]
    assert cellops.get_run(run.id).status == "FINISHED"


def test_tags_are_mutable_and_deletable(ws):
    with cellops.start_run(tags={"stage": "dev"}) as run:
        run.set_tag("stage", "prod")
        run.set_tags({"owner": "ana"})
        run.delete_tag("owner")
    assert cellops.get_run(run.id).tags == {"stage": "prod"}


def test_get_run_accepts_a_unique_prefix_and_explains_ambiguity_and_absence(ws):
    with cellops.start_run() as run:
        pass
    assert cellops.get_run(run.id[:6]).id == run.id
    with pytest.raises(cellops.RunNotFoundError, match="cellops runs list"):
        cellops.get_run("ffffffffffff")
    ids = [cellops.start_run().id for _ in range(40)]
    for _ in ids:
        cellops.end_run()
    prefixes = {}
    for i in ids + [run.id]:
        prefixes.setdefault(i[:1], []).append(i)
    shared = next(p for p, v in prefixes.items() if len(v) > 1)
    with pytest.raises(cellops.RunNotFoundError):  # one char is never resolved as a prefix
        cellops.get_run(shared)


def test_experiments_are_created_on_demand_and_listed_with_counts(ws):
    cellops.set_experiment("churn")
    with cellops.start_run():
        pass
    with cellops.start_run(experiment="other"):
        pass
    with cellops.start_run():
        pass
    exps = {e.name: e.run_count for e in cellops.list_experiments()}
    assert exps == {"churn": 2, "other": 1}
    assert cellops.current_experiment() == "churn"
    with pytest.raises(cellops.InvalidArgumentError):
        cellops.set_experiment("")


def test_the_experiment_can_come_from_the_environment(ws, monkeypatch):
    monkeypatch.setenv("CELLOPS_EXPERIMENT", "from-env")
    with cellops.start_run() as run:
        pass
    assert run.experiment == "from-env"


def test_context_is_captured_once_per_process(ws):
    import getpass
    import os
    import socket

    with cellops.start_run() as a:
        pass
    with cellops.start_run() as b:
        pass
    info = a.info
    assert info["user"] == getpass.getuser()
    assert info["host"] == socket.gethostname()
    assert info["pid"] == os.getpid()
    env = a.environment
    assert env["python"].count(".") == 2 and "pytest" in env["packages"]
    assert a.info["environment_id"] == b.info["environment_id"]
    count = RawDb(ws).execute("SELECT COUNT(*) FROM environments").fetchone()[0]
    assert count == 1


def test_git_commit_dirty_flag_and_diff_are_recorded_inside_a_repository(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "train.py").write_text(
        "import cellops\nwith cellops.start_run(name='git') as r:\n    print(r.id)\n"
    )
    git("add", "train.py")
    git("commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    clean = subprocess.run(["python", "train.py"], cwd=repo, capture_output=True, text=True)
    (repo / "train.py").write_text((repo / "train.py").read_text() + "# tweak\n")
    dirty = subprocess.run(["python", "train.py"], cwd=repo, capture_output=True, text=True)
    assert clean.returncode == 0 and dirty.returncode == 0, clean.stderr + dirty.stderr
    ws = cellops.workspace(repo)
    r1 = cellops.get_run(clean.stdout.strip(), workspace=ws)
    r2 = cellops.get_run(dirty.stdout.strip(), workspace=ws)
    assert r1.info["git_commit"] == head and r1.info["git_dirty"] == 0 and r1.git_diff is None
    assert r2.info["git_dirty"] == 1 and "+# tweak" in r2.git_diff
    assert r2.info["source_name"].endswith("train.py") and "# tweak" in r2.source


def test_outside_a_repository_git_fields_are_empty(ws):
    with cellops.start_run() as run:
        pass
    assert run.info["git_commit"] is None and run.info["git_dirty"] is None


def test_delete_removes_runs_and_children_and_gc_frees_their_blobs(ws):
    with cellops.start_run() as keep:
        keep.log_artifact(b"shared", "a.txt")
    with cellops.start_run() as parent:
        parent.log_artifact(b"shared", "a.txt")
        parent.log_artifact(b"only-here", "b.txt")
        with cellops.start_run() as child:
            child.log_metric("x", 1)
    blobs_before = set(ws.artifacts.blobs())
    dry = cellops.garbage_collect(dry_run=True)
    assert dry.blobs == []
    deleted = cellops.delete_runs([parent.id])
    assert set(deleted) == {parent.id, child.id}
    with pytest.raises(cellops.RunNotFoundError):
        cellops.get_run(child.id)
    young = cellops.garbage_collect()  # inside the grace period: a write may be in progress
    assert young.blobs == [] and young.kept == 1
    report = cellops.garbage_collect(grace=0)
    assert len(report.blobs) == 1 and report.bytes == len(b"only-here")
    assert set(ws.artifacts.blobs()) == blobs_before - set(report.blobs)
    assert cellops.get_run(keep.id).read_artifact("a.txt") == b"shared"


def test_an_active_run_cannot_be_deleted(ws):
    run = cellops.start_run()
    with pytest.raises(cellops.RunStateError, match="this process"):
        cellops.delete_runs([run.id])
    cellops.end_run()
    assert cellops.get_run(run.id).status == "FINISHED"


def test_compare_runs_marks_the_differences(ws):
    with cellops.start_run(name="a", params={"lr": 0.1, "seed": 1}) as a:
        a.log_metric("acc", 0.8)
    with cellops.start_run(name="b", params={"lr": 0.2, "seed": 1}) as b:
        b.log_metric("acc", 0.9)
    df = cellops.compare_runs([a, b.id])
    assert df.loc["params.lr"].tolist()[:2] == ["0.1", "0.2"]
    assert bool(df.loc["params.lr", "differs"]) is True
    assert bool(df.loc["params.seed", "differs"]) is False
    assert df.loc["metrics.acc"].tolist()[:2] == [0.8, 0.9]
    with pytest.raises(cellops.InvalidArgumentError):
        cellops.compare_runs([a])


def test_compare_runs_compares_values_by_meaning_not_by_text(ws):
    """Issue #22: ``verbose`` 0 and False are the same setting; text stays text."""
    a = cellops.start_run(params={"verbose": 0, "tol": "1e-3", "zip": "00501", "m": "rf"})
    a.end()
    b = cellops.start_run(params={"verbose": False, "tol": 0.001, "zip": "501", "m": "RF"})
    b.end()
    differs = cellops.compare_runs([a, b])["differs"]
    assert not differs["params.verbose"] and not differs["params.tol"]
    assert differs["params.zip"] and differs["params.m"]


def test_runs_are_found_by_name_in_the_current_experiment_first(ws):
    """Issue #22: %compare and `runs compare` take names as `cellops runs list` shows them."""
    cellops.set_experiment("other")
    elsewhere = cellops.start_run(name="rf")
    elsewhere.end()
    cellops.set_experiment("main")
    rf = cellops.start_run(name="rf", params={"n": 1})
    rf.end()
    lr = cellops.start_run(name="logreg", params={"n": 2})
    lr.end()
    assert cellops.resolve_runs(["rf", "logreg", lr.id[:8], elsewhere]) == [
        rf.id, lr.id, lr.id, elsewhere.id]
    assert list(cellops.compare_runs(["rf", "logreg"]).columns[:2]) == [
        f"rf ({rf.id[:8]})", f"logreg ({lr.id[:8]})"]
    again = cellops.start_run(name="rf")
    again.end()
    with pytest.raises(cellops.RunNotFoundError, match=r"2 runs are called 'rf' .*give one's id"):
        cellops.resolve_runs(["rf"])
    with pytest.raises(cellops.RunNotFoundError, match="No run with id 'nope"):
        cellops.resolve_runs(["nope-nope"])


def test_run_repr_html_shows_status_and_metrics(ws):
    with cellops.start_run(name="shown", params={"k": "<b>"}) as run:
        run.log_metric("acc", 0.5)
    html = run._repr_html_()
    assert "FINISHED" in html and "acc" in html and "&lt;b&gt;" in html and run.short_id in html


def test_the_public_api_is_importable_without_heavy_dependencies(tmp_path):
    res = run_python(
        "import sys, cellops\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'papermill', 'sqlite_utils', 'fsspec',"
        " 'tornado', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)\n",
        cwd=tmp_path,
    )
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_exported_members_are_complete_and_sorted():
    import types

    public = {n for n in dir(cellops)
              if not n.startswith("_") and not isinstance(getattr(cellops, n), types.ModuleType)}
    assert set(cellops.__all__) == public | {"__version__"}
    assert cellops.__all__ == sorted(cellops.__all__)
    assert Path(cellops.__file__).with_name("py.typed").exists()


def test_metric_listeners_get_points_in_batches_with_the_steps_they_are_stored_at(ws):
    """``on_metrics`` (the live chart's feed): each batch as it is logged, or with
    ``every`` the points gathered over that interval — steps left out filled in as the
    store gives them — and what is pending when it stops."""
    run = cellops.start_run()
    each, batched = [], []
    stop_each = run.on_metrics(each.append)
    stop_batched = run.on_metrics(batched.append, every=3600)
    run.log_metric("loss", 0.5)  # no step: 0
    run.log_metrics({"loss": 0.4, "acc": 0.9}, step=10)
    run.log_metric("loss", 0.3)  # no step: the one after 10
    assert [[(k, s, v) for _, k, s, v, _ in batch] for batch in each] == [
        [("loss", 0, 0.5)], [("loss", 10, 0.4), ("acc", 10, 0.9)], [("loss", 11, 0.3)]]
    assert batched == []  # its interval has not passed
    stop_batched()  # hands over what is pending
    assert [[(k, s) for _, k, s, _, _ in batch] for batch in batched] == [
        [("loss", 0), ("loss", 10), ("acc", 10), ("loss", 11)]]
    run.log_metric("loss", 0.2)
    assert len(batched) == 1 and len(each) == 4  # stopped; the other one still listens
    stop_each()
    run.end()
    assert list(run.metric_history("loss")["step"]) == [0, 10, 11, 12]  # as shown
    with pytest.raises(cellops.InvalidArgumentError, match="every must be a number"):
        run.on_metrics(each.append, every=-1)


def test_an_area_registers_its_run_kinds_without_editing_tracking(ws, store_engine):
    """Issue #23: RUN_KINDS was a closed tuple that monitoring had to edit."""
    import importlib

    from cellops.tracking import register_run_kind, run_kinds

    kind = f"explanation_{store_engine}"  # the registry is per process: one kind per engine
    with pytest.raises(cellops.InvalidArgumentError, match="register_run_kind"):
        cellops.start_run(kind=kind)
    register_run_kind(kind, "an explanation of a model, logged as a run")
    with cellops.start_run(kind=kind) as run:
        pass
    assert cellops.get_run(run.id).kind == kind
    assert run_kinds()[kind] == "an explanation of a model, logged as a run"
    importlib.import_module("cellops.monitoring")
    importlib.import_module("cellops.pipelines")
    assert {"monitor", "pipeline", "step", "trial", "sweep"} <= set(run_kinds())
    with pytest.raises(cellops.InvalidArgumentError, match="lower-case word"):
        register_run_kind("Not A Kind", "x")


def test_the_areas_run_kinds_are_known_before_their_areas_are_imported(tmp_path):
    """A run of an area's kind can be started and listed in a process that never imported
    the area (the kinds were registered on import, so this failed when pipelines was not
    loaded yet)."""
    code = (
        "import sys, cellops\n"
        "assert 'cellops.pipelines' not in sys.modules and 'cellops.monitoring' not in sys.modules\n"
        "with cellops.start_run(kind='pipeline') as run: pass\n"
        "page = cellops.list_runs(kinds=['pipeline', 'monitor'])\n"
        "print(run.kind, [r['run_id'] for r in page.runs] == [run.id])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env={**os.environ, "CELLOPS_HOME": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pipeline", "True"]


def test_a_console_script_launcher_is_not_a_runs_source(ws, tmp_path):
    """Issue #22: runs started under `cellops ...` showed pip's launcher script as their
    source. A script of one's own is still recorded."""
    import subprocess
    import sys

    launcher = tmp_path / "tool"
    launcher.write_text("#!/usr/bin/env python\nimport re\nimport sys\nfrom runner import main\n"
                        "if __name__ == '__main__':\n"
                        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                        "    sys.exit(main())\n")
    (tmp_path / "runner.py").write_text(
        "import cellops\ndef main():\n    with cellops.start_run(name='from-launcher'):\n"
        "        pass\n    return 0\n")
    own = tmp_path / "train.py"
    own.write_text("import cellops\nwith cellops.start_run(name='from-script'):\n    pass\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    for script in (launcher, own):
        subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True)
    runs = cellops.search_runs(experiment=None)
    by_name = dict(zip(runs["name"], runs["run_id"]))
    assert cellops.get_run(by_name["from-launcher"]).info.get("source_name") is None
    assert cellops.get_run(by_name["from-script"]).info.get("source_name") == str(own)


def test_a_flush_of_thousands_of_points_numbers_every_step_once(ws):
    with cellops.start_run() as run:
        for i in range(4500):  # more than one statement's worth on PostgreSQL
            run.log_metric("loss", i / 4500)
        run.log_metric("acc", 0.5, step=7)
        cellops.flush()
        for i in range(3):
            run.log_metric("loss", 2.0 + i)
    hist = run.metric_history("loss")
    assert list(hist["step"]) == list(range(4503))
    assert list(hist["value"][:2]) == [0.0, 1 / 4500] and list(hist["value"][-3:]) == [2.0, 3.0, 4.0]
    assert run.metrics == {"loss": 4.0, "acc": 0.5}
    assert list(run.metric_history("acc")["step"]) == [7]
