"""Hostile and mistaken input, through the API, the CLI and HTTP: a clear error, quickly,
never a traceback, a hang, a 500 or a file path, and nothing already stored changes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

import cellops
from cellops.pipelines import PipelineSpecError, pipeline_status

pytest_plugins = ["pytest_jupyter.jupyter_server"]

DEEP_FILTER = "(" * 5000 + "metrics.acc > 0.5" + ")" * 5000
HUGE_FILTER = " OR ".join(f"metrics.acc > {i}" for i in range(1200))  # SQLite: tree too large
TOO_LONG_FILTER = "params.x IN (" + ",".join(f"'{i:06d}'" for i in range(20_000)) + ")"
BAD_FILTERS = [
    (DEEP_FILTER, "nest deeper than 50"),
    (HUGE_FILTER, "more than 250 conditions"),
    (TOO_LONG_FILTER, "the limit is 100,000"),
]
BIG_INT = str(2**63)


def laughs() -> str:
    text = 'name: x\nsteps: []\na0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 10):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 8) + "]\n"
    return text


def make_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def chain(n: int) -> str:
    return "name: long\nsteps:\n" + "".join(
        f"  - name: s{i}\n    notebook: nb.ipynb\n" + (f"    needs: [s{i - 1}]\n" if i else "")
        for i in range(n))


BAD_PIPELINES = [
    ("laughs", laughs(), "expands to more than 100,000 nodes"),
    ("deep", "name: x\nsteps: " + "[" * 3000 + "]" * 3000 + "\n", "nest deeper than 64 levels"),
    ("duplicate", "name: x\nsteps:\n  - name: a\n    notebook: nb.ipynb\n    notebook: nb.ipynb\n",
     "key 'notebook' appears twice in one mapping (lines 4 and 5)"),
    ("outside", "name: x\nsteps:\n  - name: a\n    notebook: ../elsewhere/nb.ipynb\n",
     "is outside the pipeline's folder"),
    ("cycle", "name: x\nsteps:\n  - {name: a, notebook: nb.ipynb, needs: [b]}\n"
              "  - {name: b, notebook: nb.ipynb, needs: [a]}\n", "steps form a cycle: a -> b -> a"),
    # three lines that grew without limit (2 GB in 8 s) before cycles were refused (#23)
    ("recursive", "name: x\nsteps: &s [*s]\n", "alias *s refers to the collection it is inside"),
    ("recursive-map", "name: x\nsteps:\n  - &a {name: a, notebook: nb.ipynb, more: [*a]}\n",
     "alias *a refers to the collection it is inside"),
]


def snapshot(db: Path) -> dict[str, list]:
    """Every row of every table: what "nothing stored changed" is checked against."""
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    out = {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}"))) for t in tables}
    con.close()
    return out


@pytest.fixture
def stored(tmp_path, monkeypatch) -> dict:
    """A project folder with a workspace holding two runs, a notebook and its snapshot."""
    monkeypatch.chdir(tmp_path)
    cellops.init_workspace(tmp_path)
    with cellops.start_run(name="a", params={"model": "rf"}) as a:
        a.log_metrics({"acc": 0.9})
        a.log_artifact(b"opens", "dir/open")
        a.log_artifact(b"ipynb bytes", "nb.ipynb")
    with cellops.start_run(name="b", params={"model": "lr"}) as b:
        b.log_metric("acc", 0.7)
    cellops.workspace().close()
    make_notebook(tmp_path / "nb.ipynb")
    make_notebook(tmp_path.parent / "elsewhere" / "nb.ipynb")
    db = tmp_path / ".cellops" / "cellops.db"
    return {"root": tmp_path, "db": db, "a": a.id, "b": b.id, "before": snapshot(db)}


def unchanged(stored: dict) -> bool:
    return snapshot(stored["db"]) == stored["before"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    res.seconds = time.monotonic() - t0  # type: ignore[attr-defined]
    assert "Traceback" not in res.stderr, res.stderr
    return res


# -- filters ------------------------------------------------------------------------------
@pytest.mark.parametrize("flt, message", BAD_FILTERS, ids=["deep", "huge", "long"])
def test_hostile_filters_are_refused_quickly_through_the_api(stored, flt, message):
    for call in (lambda: cellops.search_runs(filter=flt), lambda: cellops.list_runs(filter=flt)):
        t0 = time.monotonic()
        with pytest.raises(cellops.FilterSyntaxError, match=message) as info:
            call()
        assert time.monotonic() - t0 < 2
        assert len(str(info.value)) < 500  # a window of the text, not all of it
    assert unchanged(stored)


@pytest.mark.parametrize("flt, message", BAD_FILTERS[:2], ids=["deep", "huge"])
def test_hostile_filters_are_refused_by_the_cli(stored, flt, message):
    res = cli("runs", "list", "-f", flt, cwd=stored["root"])
    assert res.returncode == 1 and message in res.stderr
    assert unchanged(stored)


def test_a_lone_surrogate_in_a_filter_is_a_syntax_error_with_a_caret(stored):
    """Issue #23: a raw UnicodeEncodeError from search_runs and search_model_versions."""
    for call in (lambda f: cellops.search_runs(filter=f),
                 lambda f: cellops.search_model_versions(f.replace("params.model", "name")),
                 lambda f: cellops.search_runs(order_by=["params.\udc80 DESC"])):
        with pytest.raises(cellops.FilterSyntaxError, match="not valid text") as info:
            call("params.model = 'r\udc80f'")
        str(info.value).encode("utf-8")  # the message itself prints
    assert unchanged(stored)


def test_invalid_bytes_on_the_command_line_are_one_line(stored):
    """Issue #23: `cellops runs list -f` printed a traceback for bytes that are not UTF-8."""
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    res = subprocess.run([sys.executable.encode(), b"-m", b"cellops.cli", b"runs", b"list", b"-f",
                          b"params.model = '\xff'"], cwd=stored["root"], env=env,
                         capture_output=True, timeout=60)
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 1 and "Traceback" not in err and "not valid text" in err
    assert unchanged(stored)


def test_backticked_entities_are_accepted_as_mlflow_does(stored):
    found = cellops.search_runs(filter="`params`.model = 'rf' and `metric`.acc >= 0.8")
    assert list(found["run_id"]) == [stored["a"]]
    assert list(cellops.search_runs(filter="`attributes`.run_name = 'b'")["run_id"]) == [stored["b"]]


# -- integers out of range ---------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["runs", "list", "-n", BIG_INT], "is not in the range 0<=x<=9223372036854775807"),
    (["runs", "list", "-n", "-1"], "is not in the range"),
    (["gc", "--grace", "1e400"], "is not in the range"),
    (["pipeline", "run", "p.yaml", "--workers", "10000000000000000000000"], "is not in the range"),
    (["sweep", "nb.ipynb", "-p", "x=1", "--random", BIG_INT], "is not in the range"),
    (["sweep", "nb.ipynb", "-p", "x=1", "--timeout", "nan"], "is not in the range"),
])
def test_out_of_range_numbers_on_the_command_line_are_usage_errors(stored, args, message):
    res = cli(*args, cwd=stored["root"])
    assert res.returncode == 2 and message in res.stderr
    assert unchanged(stored)


def test_out_of_range_numbers_in_the_api_are_refused(stored):
    with pytest.raises(cellops.InvalidArgumentError, match="max_results must be an integer from 0"):
        cellops.search_runs(max_results=2**63)
    with pytest.raises(cellops.InvalidArgumentError, match="offset must be an integer from 0"):
        cellops.list_runs(offset=2**63)
    assert cellops.list_runs(offset=2**63 - 1).runs == []
    with pytest.raises(cellops.InvalidArgumentError, match="grace"):
        cellops.garbage_collect(grace=float("nan"))
    assert unchanged(stored)


# -- pipeline files -------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, message", BAD_PIPELINES, ids=[b[0] for b in BAD_PIPELINES])
def test_hostile_pipeline_files_are_refused_quickly(stored, name, text, message):
    path = stored["root"] / f"{name}.yaml"
    path.write_text(text)
    t0 = time.monotonic()
    with pytest.raises(PipelineSpecError, match=re.escape(message)):
        pipeline_status(path)
    assert time.monotonic() - t0 < 2
    res = cli("pipeline", "run", path.name, cwd=stored["root"])
    assert res.returncode == 1 and message in res.stderr and res.seconds < 20
    assert unchanged(stored)


def test_a_recursive_monitor_file_is_refused_quickly(stored):
    path = stored["root"] / "monitors.yaml"
    path.write_text("monitors: &m\n  - name: x\n    model: m@a\n    checks: *m\n")
    res = cli("monitor", "apply", path.name, cwd=stored["root"])
    assert res.returncode == 1 and "alias *m refers to the collection it is inside" in res.stderr
    assert res.seconds < 20 and unchanged(stored)


def test_a_notebook_outside_the_folder_runs_only_when_the_file_opts_in(stored):
    path = stored["root"] / "outside.yaml"
    path.write_text("name: x\nallow_external_notebooks: true\n"
                    "steps:\n  - name: a\n    notebook: ../elsewhere/nb.ipynb\n")
    [row] = pipeline_status(path)
    assert row["step"] == "a" and not row["up_to_date"]
    path.write_text("name: x\nallow_external_notebooks: yes please\n"
                    "steps:\n  - name: a\n    notebook: nb.ipynb\n")
    with pytest.raises(PipelineSpecError, match="must be true or false"):
        pipeline_status(path)


def test_fifteen_hundred_chained_steps_are_ordered_without_recursion(stored):
    path = stored["root"] / "long.yaml"
    path.write_text(chain(1500))
    t0 = time.monotonic()
    rows = pipeline_status(path)
    assert [r["step"] for r in rows] == [f"s{i}" for i in range(1500)]
    assert time.monotonic() - t0 < 10
    res = cli("pipeline", "status", "long.yaml", cwd=stored["root"])
    assert res.returncode == 0 and "s1499" in res.stdout
    assert unchanged(stored)


def test_hostile_parameter_overrides_are_refused(stored):
    res = cli("pipeline", "status", "p.yaml", "-p", "x=" + "[" * 200 + "]" * 200,
              cwd=stored["root"])
    assert res.returncode == 1 and "nest deeper than 64" in res.stderr


# -- artifacts ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a\nb.txt", "tab\tname", "bell\x07", "del\x7f", "x\ud800"])
def test_artifact_names_that_cannot_be_shown_or_sent_are_refused_at_log_time(stored, name):
    with cellops.start_run(run_id=stored["a"]) as run:
        before = len(run.artifacts)
        with pytest.raises(cellops.ArtifactNameError):
            run.log_artifact(b"data", name)
        assert len(run.artifacts) == before


# -- run ids -------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix, message", [
    ("____", "No run with id '____'"),
    ("....", "No run with id '....'"),
    ("%%%%", "No run with id '%%%%'"),
    ("\\\\\\\\", "No run with id"),
    ("7ac", "too short: give at least 4 characters"),
    ("", "non-empty"),
])
def test_run_id_prefixes_match_literally_and_short_ones_say_the_minimum(stored, prefix, message):
    with pytest.raises(cellops.RunNotFoundError, match=message.replace("\\", "\\\\")):
        cellops.get_run(prefix)
    if prefix:
        res = cli("runs", "show", prefix, cwd=stored["root"])
        assert res.returncode == 1 and message in res.stderr
    assert unchanged(stored)


def test_a_real_prefix_still_finds_its_run(stored):
    assert cellops.get_run(stored["a"][:4]).id == stored["a"] or \
        stored["a"][:4] == stored["b"][:4]
    assert cellops.get_run(stored["b"][:8]).id == stored["b"]


# -- params ----------------------------------------------------------------------------------
def test_a_param_over_the_size_limit_points_to_log_text(stored):
    huge = "x" * (64 * 1024 + 1)
    with pytest.raises(cellops.InvalidArgumentError, match=r"64 KiB.*log_text") as info:
        cellops.start_run(params={"blob": huge})
    assert len(str(info.value)) < 500
    with cellops.start_run(run_id=stored["b"]) as run:
        with pytest.raises(cellops.InvalidArgumentError, match="max_param_bytes"):
            run.log_param("blob", huge)
        run.log_param("fits", "y" * (64 * 1024))
    del run
    (stored["root"] / "pipeline.yaml").write_text(
        "name: p\nsteps:\n  - name: a\n    notebook: nb.ipynb\n")
    res = cli("pipeline", "run", "pipeline.yaml", "-p", "big=" + "z" * 70_000, cwd=stored["root"])
    assert res.returncode == 1 and "shared parameter(s) 'big'" in res.stderr  # nb.ipynb lacks it
    assert len(res.stderr) < 1000
    res = cli("pipeline", "run", "pipeline.yaml", "-p", "big=" + "z" * 70_000,
              "--allow-unknown-params", cwd=stored["root"])
    assert res.returncode == 1 and "log_text" in res.stderr
    assert len(cellops.search_runs()) == 2  # no run was started


def test_the_param_limit_is_a_workspace_setting(stored):
    config = stored["root"] / ".cellops" / "config.json"
    config.write_text(json.dumps({"max_param_bytes": 1_000_000}))
    from cellops import workspaces

    workspaces._reset_for_tests()
    with cellops.start_run(params={"blob": "x" * 100_000}) as run:
        pass
    assert len(run.params["blob"]) == 100_000
    config.write_text(json.dumps({"max_param_bytes": "lots"}))
    workspaces._reset_for_tests()
    with pytest.raises(cellops.InvalidArgumentError, match="max_param_bytes .* positive integer"):
        cellops.start_run(params={"a": 1})


# -- the workspace option --------------------------------------------------------------------
def test_a_workspace_option_naming_nothing_is_an_error_that_creates_nothing(stored, tmp_path):
    missing = tmp_path / "typo"
    res = cli("-w", str(missing), "runs", "list", cwd=stored["root"])
    assert res.returncode == 2 and f"no cellops workspace at {missing}" in res.stderr
    assert "cellops init" in res.stderr and not missing.exists()
    res = cli("-w", str(missing), "init", cwd=stored["root"])
    assert res.returncode == 0 and (missing / "cellops.db").exists()
    res = cli("-w", str(stored["root"]), "runs", "list", "--json", cwd=tmp_path.parent)
    assert res.returncode == 0 and len(json.loads(res.stdout)) == 2  # a project folder works too
    assert unchanged(stored)


# -- over HTTP -------------------------------------------------------------------------------
@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


@pytest.fixture
def served(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    with cellops.start_run(name="a") as run:
        run.log_metric("acc", 0.9)
        run.log_artifact(b"opens", "dir/open")
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("print(1)")]
        run.log_text(nbformat.writes(nb), "report.ipynb")
    db = jp_root_dir / ".cellops" / "cellops.db"
    # An artifact name from before names were checked: it must still download.
    con = sqlite3.connect(db)
    sha = run.artifacts[0]["sha256"]
    con.execute("INSERT INTO artifacts (run_id, path, sha256, size, media_type, created_at)"
                " VALUES (?, ?, ?, 5, NULL, 0)", (run.id, "old\nname.txt", sha))
    con.commit()
    con.close()
    cellops.workspace().close()
    return {"id": run.id, "db": db, "root": jp_root_dir, "before": snapshot(db)}


async def http_error(jp_fetch, *parts, method="GET", **kwargs) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("cellops", "api", "v1", *parts, method=method, **kwargs)
    return info.value.code, info.value.response.body.decode()


@pytest.mark.parametrize("params, message", [
    ({"filter": DEEP_FILTER}, "nest deeper than 50"),
    ({"filter": HUGE_FILTER}, "more than 250 conditions"),
    ({"offset": BIG_INT}, "'offset' must be an integer"),
    ({"limit": BIG_INT}, "'limit' must be an integer"),
    ({"order_by": "params." + "k" * 1000}, "too long"),
])
async def test_bad_queries_over_http_are_400_with_the_message_and_no_path(jp_fetch, served,
                                                                          params, message):
    code, body = await http_error(jp_fetch, "runs", params=params)
    assert code == 400 and message.lower() in body.lower()
    assert str(served["root"]) not in body and "Traceback" not in body
    assert snapshot(served["db"]) == served["before"]


@pytest.mark.parametrize("run_id, message", [("7ac", "too short"), ("____", "No run with id"),
                                             ("%%%%", "No run with id")])
async def test_bad_run_ids_over_http_are_404_with_the_message(jp_fetch, served, run_id, message):
    code, body = await http_error(jp_fetch, "runs", run_id)
    assert code == 404 and message in body and "Traceback" not in body
    code, _ = await http_error(jp_fetch, "runs", "x" * 200)
    assert code == 404


async def test_artifact_names_ending_in_a_route_word_or_holding_control_characters_download(
        jp_fetch, served):
    response = await jp_fetch("cellops", "api", "v1", "runs", served["id"], "artifacts", "dir",
                              "open")
    assert response.body == b"opens"
    response = await jp_fetch("cellops", "api", "v1", "runs", served["id"], "artifacts",
                              "old\nname.txt")
    assert response.code == 200 and response.body == b"opens"
    disposition = response.headers["Content-Disposition"]
    assert "\n" not in disposition and "filename*=UTF-8''old%0Aname.txt" in disposition


async def test_opening_a_notebook_never_overwrites_the_users_copy(jp_fetch, served):
    async def open_() -> Path:
        response = await jp_fetch("cellops", "api", "v1", "runs", served["id"], "artifacts",
                                  "report.ipynb", "open", method="POST", body=b"")
        return served["root"] / json.loads(response.body)["path"]

    first = await open_()
    assert await open_() == first  # an untouched copy is reused
    edited = first.read_text().replace("print(1)", "print('my edit')")
    first.write_text(edited)
    second = await open_()
    assert second != first and second.name == first.stem + "-1.ipynb"
    assert first.read_text() == edited  # the user's edit is still there
    assert "print(1)" in second.read_text()
    assert await open_() == second
    code, _ = await http_error(jp_fetch, "runs", served["id"], "artifacts", "dir", "open",
                               "open", method="POST", body=b"")
    assert code == 400
