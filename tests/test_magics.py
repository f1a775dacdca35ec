"""The magics in a real IPython InteractiveShell whose run_cell re-raises."""

from __future__ import annotations

import json

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient
from traitlets.config import Config

import cellops
from cellops import charts


class TestingShell(InteractiveShell):
    """run_cell raises the cell's exception instead of only printing it."""

    __test__ = False  # not a pytest test class

    def run_cell(self, raw_cell, *args, **kwargs):  # type: ignore[override]
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture
def ip(ws):
    config = Config()
    config.HistoryManager.enabled = False
    shell = TestingShell.instance(config=config)
    shell.run_line_magic("load_ext", "cellops")
    shell.run_line_magic("config", "Cellops.live_interval = 0.0")
    yield shell
    shell.run_line_magic("unload_ext", "cellops")
    TestingShell.clear_instance()


def last_run(kind: str | None = None) -> cellops.Run:
    df = cellops.search_runs(filter=f"attributes.kind = '{kind}'" if kind else None)
    return cellops.get_run(df["run_id"].iloc[0])


def test_a_tracked_cell_is_a_run_with_its_source_duration_and_last_value(ip):
    cell = "x = 21\ny = x * 2\ny"
    result = ip.run_cell(f"%%track -n answer\n{cell}")
    assert result.result == 42  # the last expression is the cell's value, as without the magic
    assert ip.user_ns["x"] == 21 and ip.user_ns["_"] == 42
    run = last_run("cell")
    assert run.name == "answer" and run.status == "FINISHED" and run.kind == "cell"
    assert run.source == f"%%track -n answer\n{cell}"
    assert run.duration is not None and run.duration >= 0


def test_a_trailing_semicolon_suppresses_the_value(ip):
    assert ip.run_cell("%%track\n1 + 1;").result is None


def test_line_magics_inside_a_tracked_cell_still_work(ip):
    ip.run_cell("%%track\n%config Cellops.show_run = True\nz = 5")
    assert ip.user_ns["z"] == 5


def test_a_failing_cell_records_the_error_and_reraises_it_unchanged(ip):
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        ip.run_cell("%%track -n boom\nbefore = 1\n1 / 0\nafter = 2")
    assert ip.user_ns["before"] == 1 and "after" not in ip.user_ns
    run = last_run("cell")
    assert run.status == "FAILED" and "ZeroDivisionError: division by zero" in run.error


def test_a_failing_cell_shows_and_stores_only_the_users_frames(ip):
    ip.run_cell("def inverse(x):\n    return 1 / x")
    with pytest.raises(ZeroDivisionError) as info:
        ip.run_cell("%%track -n boom\nbefore = 1\ninverse(0)")
    shown = "\n".join(info.value._render_traceback_())  # what IPython prints for it
    stored = last_run("cell").error
    import re

    assert re.sub(r"\x1b\[[0-9;]*m", "", shown) == stored  # the same text, without colours
    for absent in ("cellops", "run_cell_magic", "noqa", "exec(", "_execute"):
        assert absent not in stored, absent
    # Numbered as the user sees the cell: the %%track line is line 1.
    assert "----> 3 inverse(0)" in stored and "      1 %%track -n boom" in stored
    assert "in inverse(x)" in stored and stored.rstrip().endswith("ZeroDivisionError: division by zero")
    # A cell that does not compile: the line and a caret, as a plain cell shows it — not
    # the stack IPython prints for a SyntaxError raised while running code.
    with pytest.raises(Exception) as info:
        ip.run_cell("%%track -n typo\nx = (")
    assert type(info.value).__name__ == "SyntaxError"
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(info.value._render_traceback_()))
    typo = last_run("cell").error
    assert shown.strip("\n") == typo and "interactiveshell" not in typo and "ast.py" not in typo
    lines = typo.splitlines()
    assert re.fullmatch(r"Cell In\[\d+\], line 2", lines[0].strip()) and lines[-1].startswith("SyntaxError")


def test_a_failing_cell_in_a_real_kernel_shows_the_users_frames_only(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext cellops"),
                nbformat.v4.new_code_cell("%%track -n boom\nvalues = {}\nvalues['missing']"),
                nbformat.v4.new_code_cell("%%track -n typo\nx = (1,\ny = 2")]
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    (error,) = [o for o in nb.cells[1].outputs if o["output_type"] == "error"]
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"]))  # without colours
    assert error["ename"] == "KeyError" and "values['missing']" in text
    assert "cellops" not in text and "run_cell_magic" not in text
    # A syntax error: reported as one, shown as the line and a caret.
    (typo,) = [o for o in nb.cells[2].outputs if o["output_type"] == "error"]
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(typo["traceback"]))
    assert typo["ename"] == "SyntaxError" and typo["evalue"] == "'(' was never closed"
    assert "x = (1," in text and "^" in text and "File" not in text and "cellops" not in text


def test_keyboard_interrupt_in_a_tracked_cell_marks_it_killed(ip):
    with pytest.raises(KeyboardInterrupt):
        ip.run_cell("%%track\nraise KeyboardInterrupt")
    assert last_run("cell").status == "KILLED"


def test_api_calls_inside_the_cell_attach_to_its_run(ip):
    ip.run_cell("%%track\nimport cellops\nfor i in range(5):\n    cellops.log_metric('loss', 1 / (i + 1))\n"
                "cellops.log_param('lr', 0.1)\ncellops.log_artifact(b'x', 'x.bin')")
    run = last_run("cell")
    assert run.params == {"lr": "0.1"} and run.metrics == {"loss": 0.2}
    assert "x.bin" in [a["path"] for a in run.artifacts]
    assert cellops.active_run() is None


def test_metrics_params_and_tags_options(ip):
    ip.run_cell("%%track --metrics acc,f1 --params depth --tags team=ml,stage=dev\n"
                "acc = 0.9\nf1 = 0.8\ndepth = 4")
    run = last_run("cell")
    assert run.metrics == {"acc": 0.9, "f1": 0.8}
    assert run.params == {"depth": "4"}
    assert run.tags == {"team": "ml", "stage": "dev"}


def test_missing_option_variables_are_notes_not_failures(ip, capsys):
    ip.run_cell("%%track --metrics nope\nok = 1")
    assert last_run("cell").status == "FINISHED"


def test_bad_option_syntax_is_a_usage_error(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="key=value"):
        ip.run_cell("%%track --tags broken\nx = 1")
    assert cellops.search_runs().empty


def test_sklearn_estimators_fitted_in_the_cell_are_captured(ip):
    ip.run_cell(
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.tree import DecisionTreeRegressor\n"
        "X, y = load_diabetes(return_X_y=True, as_frame=True)\n"
        "unfitted = Ridge()\n"
    )
    ip.run_cell("%%track -n two-models\nridge = Ridge(alpha=0.5).fit(X, y)\n"
                "tree = DecisionTreeRegressor(max_depth=3).fit(X, y)")
    run = last_run("cell")
    assert run.params["ridge.alpha"] == "0.5" and run.params["tree.max_depth"] == "3"
    assert "unfitted.alpha" not in run.params
    arts = {a["path"] for a in run.artifacts}
    assert {"models/ridge.skops", "models/tree.skops", "models/ridge.signature.json"} <= arts
    sig = json.loads(run.read_artifact("models/ridge.signature.json"))
    assert sig["n_features"] == 10
    assert sig["inputs"][0] == {"name": "age", "dtype": "float64"}
    model = cellops.load_skops(run.read_artifact("models/ridge.skops"))
    assert abs(model.predict(ip.user_ns["X"].head(3)) - ip.user_ns["ridge"].predict(
        ip.user_ns["X"].head(3))).max() < 1e-9
    assert run.tags["estimator.ridge"] == "sklearn.linear_model._ridge.Ridge"
    # The params nobody set are named, so the front ends can show the set ones first.
    defaults = run.tags["cellops.default_params"].split(",")
    assert "ridge.fit_intercept" in defaults and "tree.criterion" in defaults
    assert "ridge.alpha" not in defaults and "tree.max_depth" not in defaults

    # The next cell refits only the tree: only it is logged, without prefixes.
    ip.run_cell("%%track -n refit\ntree.fit(X, y)\nscore = ridge.score(X, y)")
    run = last_run("cell")
    assert run.params["max_depth"] == "3" and "alpha" not in run.params
    assert {a["path"] for a in run.artifacts} >= {"models/tree.skops"}
    assert "models/ridge.skops" not in {a["path"] for a in run.artifacts}


def test_autolog_can_be_switched_off(ip):
    ip.run_cell("from sklearn.linear_model import Ridge\nimport numpy as np")
    ip.run_line_magic("config", "Cellops.autolog = False")
    ip.run_cell("%%track\nm = Ridge().fit(np.eye(3), [1, 2, 3])")
    assert last_run("cell").params == {}
    ip.run_line_magic("config", "Cellops.autolog = True")
    ip.run_cell("%%track --no-autolog\nm = Ridge().fit(np.eye(3), [1, 2, 3])")
    assert last_run("cell").params == {}


def test_figures_and_stdout_are_kept_as_artifacts(ip, capsys):
    import matplotlib

    matplotlib.use("Agg")
    ip.run_cell("import matplotlib.pyplot as plt")
    ip.run_cell("%%track\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\nprint('epoch 1 done')")
    run = last_run("cell")
    assert run.read_artifact("figures/figure-1.png").startswith(b"\x89PNG")
    assert run.read_artifact("stdout.txt") == b"epoch 1 done\n"
    assert "epoch 1 done" in capsys.readouterr().out  # still shown
    ip.run_cell("plt.close('all')")


def test_a_tracked_cell_keeps_a_chart_of_its_metrics(ip):
    """Without a front end (a terminal shell) there is no live widget; the record of the
    metrics — a plotly figure and its SVG copy — is shown when the cell ends."""
    published = []
    real = ip.display_pub.publish
    ip.display_pub.publish = lambda data, *a, **k: (published.append((data, k)), real(data, *a, **k))
    try:
        ip.run_cell("%%track\nimport cellops\nfor i in range(30):\n"
                    "    cellops.log_metrics({'train_loss': 1 / (i + 1), 'val_loss': 1.2 / (i + 1),"
                    " 'lr': 0.1}, step=i)")
    finally:
        ip.display_pub.publish = real
    (record,) = [d for d, _ in published if charts.PLOTLY_MIME in d]
    figure = record[charts.PLOTLY_MIME]
    names = [(t["name"], t["yaxis"]) for t in figure["data"]]
    # train_ and val_ loss share one chart; lr has its own.
    assert names == [("train_loss", "y"), ("val_loss", "y"), ("lr", "y2")]
    assert figure["data"][0]["x"] == list(range(30))
    menus = {m["name"]: [b["label"] for b in m["buttons"]] for m in figure["layout"]["updatemenus"]}
    assert menus == {"scale": ["linear", "log"], "smoothing": ["raw", "smooth", "smoother"]}
    log = figure["layout"]["updatemenus"][0]["buttons"][1]["args"][0]
    assert log == {"yaxis.type": "log", "yaxis.tickformat": ".2~g",  # values, not digits
                   "yaxis2.type": "log", "yaxis2.tickformat": ".2~g"}
    assert "<polyline" in record["text/html"] and "train_loss" in record["text/html"]


def test_figures_hold_six_significant_digits_that_print_short():
    """A figure saved in a notebook holds values rounded to what a chart can show, as the
    floats that print short: the record of a 10,000-step cell is about half the size."""
    import json

    values = [2 / 3, 0.1 + 0.2, -3.14159265, 123456789.123, 1e-12 / 3, 0.0, 5.0]
    assert charts.short(values) == [0.666667, 0.3, -3.14159, 123457000.0, 3.33333e-13, 0.0, 5.0]
    assert json.dumps(charts.short([0.9720279720279721])) == "[0.972028]"
    assert charts.short([]) == []
    figure = charts.line_figure({"loss": {"loss": [(i, 1 / (i + 1)) for i in range(50)]}})
    assert figure["data"][0]["y"][2] == 0.333333
    smooth = figure["layout"]["updatemenus"][1]["buttons"][1]["args"][0]["y"][0]
    assert all(len(repr(v)) <= 12 for v in smooth)


def test_a_chart_that_cannot_be_drawn_never_fails_the_cell(ip, monkeypatch, capsys):
    from cellops.widgets import live

    def broken(*_: object) -> None:
        raise RuntimeError("no renderer")

    monkeypatch.setattr(live, "record", broken)
    ip.run_cell("%%track -n sturdy\nimport cellops\nfor i in range(5):\n"
                "    cellops.log_metric('loss', 1 / (i + 1))")
    run = last_run("cell")
    assert run.status == "FINISHED" and len(run.metric_history("loss")) == 5
    assert "the metrics chart could not be drawn" in capsys.readouterr().err


def test_the_run_summary_is_displayed_after_the_cell(ip):
    published = []
    real = ip.display_pub.publish
    ip.display_pub.publish = lambda data, *a, **k: (published.append(data), real(data, *a, **k))
    try:
        ip.run_cell("%%track -n shown --metrics acc\nacc = 0.5")
    finally:
        ip.display_pub.publish = real
    html = published[-1]["text/html"]
    assert "FINISHED" in html and "shown" in html and "acc=0.5" in html


def test_params_cell_logs_simple_values_to_the_notebook_run(ip):
    ip.run_cell("%%params\nalpha = 0.5\nmodel = 'rf'\nlayers = [64, 32]\nopts = {'a': 1}\n"
                "fn = len\nimport math")
    assert ip.user_ns["alpha"] == 0.5
    run = last_run("notebook")
    assert run.params == {"alpha": "0.5", "model": "rf", "layers": "[64, 32]", "opts": '{"a": 1}'}
    ip.run_cell("%%track\nimport cellops\ncellops.log_metric('acc', 0.7)")
    assert last_run("cell").parent_id == run.id  # cell runs nest under the notebook run
    ip.run_cell("import cellops\ncellops.log_metric('plain', 1.0)")
    assert cellops.get_run(run.id).metrics == {"plain": 1.0}


def test_changing_a_param_starts_a_new_notebook_run(ip, capsys):
    ip.run_cell("%%params\nalpha = 0.5\nseed = 1")
    first = last_run("notebook")
    ip.run_cell("%%params\nalpha = 0.9")
    assert "started a new notebook run" in capsys.readouterr().out
    second = last_run("notebook")
    assert second.id != first.id
    assert cellops.get_run(first.id).status == "FINISHED"
    assert cellops.get_run(first.id).params == {"alpha": "0.5", "seed": "1"}
    assert second.params == {"alpha": "0.9", "seed": "1"}


def test_experiment_magic_sets_the_experiment(ip, capsys):
    ip.run_line_magic("experiment", "churn model")
    assert "Experiment: churn model" in capsys.readouterr().out
    ip.run_cell("%%track\nx = 1")
    assert last_run().experiment == "churn model"
    ip.run_line_magic("experiment", "")
    assert "Current experiment: churn model" in capsys.readouterr().out


def test_track_on_records_cells_in_execution_order_and_exports_a_notebook(ip, tmp_path, capsys):
    ip.run_line_magic("track", "on")
    assert "Recording every cell" in capsys.readouterr().out
    ip.run_cell("a = 1")
    ip.run_cell("b = a + 1")
    with pytest.raises(NameError):
        ip.run_cell("c = missing")
    ip.run_cell("a = 10")  # out of order: redefines a after b used it
    ip.run_line_magic("track", "status")
    assert "4 cells so far" in capsys.readouterr().out
    ip.run_line_magic("track", "off")
    ip.run_cell("not_recorded = 1")
    run = last_run("notebook")
    cells = cellops.cell_history(run.id)
    assert [c["source"] for c in cells] == ["a = 1", "b = a + 1", "c = missing", "a = 10"]
    assert [c["status"] for c in cells] == ["ok", "ok", "error", "ok"]
    assert "NameError" in cells[2]["error"]
    assert [c["seq"] for c in cells] == [0, 1, 2, 3]

    out = cellops.export_history(run.id, tmp_path / "replay.ipynb")
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and "%%expect_error" in nb.cells[0].source
    assert nb.cells[1].source == "%load_ext cellops"  # %%expect_error is cellops'
    assert nb.cells[4].source == "%%expect_error NameError\nc = missing"
    assert nb.cells[4].metadata["cellops"]["status"] == "error"
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()  # replays to the end
    assert nb.cells[3].source == "b = a + 1"
    shown = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "NameError" in shown and "missing" in shown
    assert not any(o.output_type == "error" for c in nb.cells for o in c.get("outputs", []))


def test_history_cli_writes_the_notebook(ip, tmp_path):
    import subprocess
    import sys

    ip.run_line_magic("track", "on")
    ip.run_cell("v = 3")
    run = last_run("notebook")
    cellops.workspace().flush()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "history", run.id[:8]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "v = 3" in res.stdout
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "history", run.id, "--to",
                          "notebook", "replay.ipynb"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert nbformat.read(tmp_path / "replay.ipynb", as_version=4).cells[0].source == "v = 3"


def test_a_run_without_history_says_how_to_record_it(ws):
    with cellops.start_run() as run:
        pass
    with pytest.raises(cellops.InvalidArgumentError, match="%track on"):
        cellops.export_history(run.id, "x.ipynb")


def test_runs_widget_filters_sorts_and_compares(ip):
    for lr in (0.1, 0.2, 0.3):
        ip.run_cell(f"%%track -n lr{lr} --params lr --metrics acc\nlr = {lr}\nacc = {lr} * 2")
    runs = ip.run_line_magic("runs", "")
    widget = runs.widget
    bundle = runs._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # live, with a kernel
    assert bundle["application/vnd.cellops.runs+json"] == {"experiment": "Default", "filter": None}
    assert bundle["text/html"].count("<tr>") == 4 and "lr0.1" in bundle["text/html"]  # static
    table = widget.children[2]
    assert table.value.count("<tr>") == 4  # header + 3 runs
    box = widget.children[0].children[0]
    box.value = "metrics.acc > 0.3"
    assert table.value.count("<tr>") == 3
    box.value = "metrics.acc >"
    assert "Expected a value" in widget.children[1].value
    box.value = ""
    # Sorting (front ends without the grid): readable column names, the order's label and
    # the header arrow follow the order.
    sort_by, order = widget.children[0].children[1:]
    assert ("acc (metric)", "metrics.acc") in sort_by.options
    assert ("lr (param)", "params.lr") in sort_by.options
    sort_by.value = "metrics.acc"
    assert "acc ▼" in table.value and table.value.index("lr0.3") < table.value.index("lr0.1")
    order.value = False
    assert order.description == "▲ ascending" and "acc ▲" in table.value
    assert table.value.index("lr0.1") < table.value.index("lr0.3")
    select = widget.children[3].children[0]
    select.value = tuple(v for _, v in select.options[:2])
    widget.children[3].children[1].click()
    comparison = widget.children[4].value
    assert "Params" in comparison and "class='differs'" in comparison


def test_a_bad_filter_on_the_runs_magic_is_the_clis_error_not_an_empty_table(ip, tmp_path):
    """Issue #27: `%runs metrics.acc >` showed "0 runs matching"; the CLI says what is
    wrong, with a caret."""
    import subprocess
    import sys

    from IPython.core.error import UsageError

    ip.run_cell("%%track -n one --metrics acc\nacc = 0.5")
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("runs", "metrics.acc >")
    cellops.flush()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "runs", "list", "-f", "metrics.acc >"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert str(info.value) in res.stderr and "^" in str(info.value)  # the same text, caret included
    assert "Expected a value" in str(info.value)


def test_compare_takes_names_and_folds_the_defaults_nobody_set(ip):
    """Issue #22: autologged estimator defaults no longer swamp %compare: the params the
    user set and the params that differ are shown, the rest are under "Show all"; metric
    headers align with their values; the parallel axes leave out params nobody set."""
    for name, c in (("small", 0.1), ("big", 10.0), ("mid", 1.0)):
        ip.run_cell(f"%%track -n {name}\nfrom sklearn.linear_model import LogisticRegression\n"
                    f"import cellops\nm = LogisticRegression(C={c}, verbose=False).fit([[0], [1]], [0, 1])\n"
                    f"cellops.log_metric('acc', {c} / 10)")
    html = ip.run_line_magic("compare", "small big mid -m acc").html()
    shown, _, folded = html.partition("<details")
    assert ">C<" in shown and ">tol<" not in shown and ">tol<" in folded
    assert "Show all:" in folded
    assert "text-align:right" in html.split("Metrics (latest)")[1].split("</tr>")[0]
    axes = html.split("cellops-parallel")[1].split("</svg>")[0]
    assert ">C<" in axes and ">tol<" not in axes and ">verbose<" not in axes


def test_compare_shows_differences_charts_and_source_diff(ip):
    ip.run_cell("%%track -n a\nimport cellops\nfor i in range(3): cellops.log_metric('loss', 1 / (i + 1))\n"
                "cellops.log_param('lr', 0.1)")
    a = last_run("cell")
    ip.run_cell("%%track -n b\nimport cellops\nfor i in range(3): cellops.log_metric('loss', 2 / (i + 1))\n"
                "cellops.log_param('lr', 0.2)")
    b = last_run("cell")
    report = ip.run_line_magic("compare", f"{a.short_id} {b.short_id}")
    html = report.html()  # the static copy: what nbviewer and GitHub show
    assert "class='differs'" in html and "lr" in html
    assert "<polyline" in html and "<title>" in html and ">step</text>" in html  # axes, hovers
    # The interactive chart: loss of both runs overlaid, one line per run, with a legend.
    (history,) = [p for p in report.parts if isinstance(p, charts.Chart)]
    lines = history.figure["data"]
    assert [t["name"] for t in lines] == [f"a ({a.short_id})", f"b ({b.short_id})"]
    assert lines[1]["y"] == [2.0, 1.0, 0.666667]  # six significant digits in a figure
    assert all(t["showlegend"] for t in lines)
    bundle, metadata = history._repr_mimebundle_()
    assert bundle[charts.PLOTLY_MIME] is history.figure
    assert metadata == {"cellops": {"chart": history.title}}  # its PNG is dropped on save
    import re

    text = re.sub(r"<[^>]+>", "", html)
    assert "-%%track -n a" in text and "+%%track -n b" in text  # source diff
    assert "var(--jp-mirror-editor-keyword-color" in html  # syntax colours of the editor
    # Colours are theme variables (or tints of them), never a fixed pale background.
    assert not re.search(r"background:\s*#", html)
    # A run without params: its cells show a dash, and no row is highlighted for it.
    ip.run_cell("%%track -n c\nimport cellops\ncellops.log_metric('loss', 0.5)")
    c = last_run("cell")
    both = ip.run_line_magic("compare", f"{a.short_id} {c.short_id}").html()
    assert "class='missing'" in both and "class='differs'" not in both.split("<h4>Metrics")[0]
    assert "cellops-parallel" not in both  # two runs: no sweep view
    # Three runs: the params that vary against a metric, one line per run, as parallel axes.
    ip.run_cell("%%track -n d\nimport cellops\ncellops.log_metric('loss', 0.2)\n"
                "cellops.log_param('lr', 0.4)")
    d = last_run("cell")
    sweep_report = ip.run_line_magic("compare", f"{a.short_id} {b.short_id} {d.short_id} -m loss")
    sweep = sweep_report.html()
    assert "Params vs loss" in sweep and sweep.count("<polyline fill='none' stroke='color-mix") == 3
    assert "lr=0.4, loss=0.2" in sweep  # the hover of d's line
    parcoords = sweep_report.parts[2].figure["data"][0]
    assert parcoords["type"] == "parcoords"
    assert [d["label"] for d in parcoords["dimensions"]] == ["run", "lr", "loss"]
    assert parcoords["dimensions"][1]["values"] == [0.1, 0.2, 0.4]
    assert parcoords["line"]["color"] == [1 / 3, 2 / 3, 0.2]  # coloured by the latest loss
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="has a metric 'nope'"):
        ip.run_line_magic("compare", f"{a.short_id} {b.short_id} {d.short_id} -m nope")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_line_magic("compare", a.short_id)


def test_every_magic_has_argument_help(ip):
    from cellops.magics.tracking import Cellops

    for name in ("experiment", "track", "params", "runs", "compare"):
        doc = getattr(Cellops, name).__doc__
        assert doc and "usage:" in doc.lower() or "%" in doc
    assert "--metrics" in Cellops.track.__doc__ and "on = record" in Cellops.track.__doc__


def test_the_live_view_smooths_noisy_lines_only():
    """While the cell runs no button can work (the kernel is busy), so the live view smooths
    by itself: a noisy line is drawn faint under its moving average, a steady one as is."""
    import numpy as np

    from cellops.widgets import live

    rng = np.random.default_rng(0)
    steady = [(i, 1 / (i + 1)) for i in range(200)]
    jumpy = [(i, 1 / (i + 1) + rng.normal(0, 0.05)) for i in range(200)]
    assert not live.noisy(np.array([y for _, y in steady]))
    assert live.noisy(np.array([y for _, y in jumpy]))
    assert not live.noisy(np.array([1.0] * 50))  # flat: no range
    view = live.LiveView()
    view.update({"loss": {"train_loss": jumpy, "val_loss": steady}})
    (fig, fig_log) = (row.children[0].children[0] for row in view.rows)
    assert fig.title == fig_log.title == "loss (smoothed)"
    chart = view._used["loss"]
    line, dots, smooth = chart.used["train_loss"].marks[0]
    assert smooth.visible and line.opacities == [0.3] and len(smooth.y) == len(line.y)
    assert np.abs(np.diff(smooth.y)).sum() < np.abs(np.diff(line.y)).sum() / 4
    assert len(dots.x) <= live.HOVER_POINTS + 1  # hover values stay on the raw points
    assert list(dots.opacities) == [0.3]
    # One chart, one look: the steady line in it is smoothed too. The legend is under the
    # plot, never over a line: bqplot's own (drawn inside the plot area) is off.
    line, _, smooth = chart.used["val_loss"].marks[0]
    assert smooth.visible and line.opacities == [0.3]
    assert not any(m.display_legend for f in chart.figures for m in f.marks)
    assert chart.boxes[0].children == (fig, chart.legend)
    assert "train_loss" in chart.legend.value and "val_loss" in chart.legend.value
    assert chart.legend.value.index("train_loss") < chart.legend.value.index("val_loss")
    # The noise settles (a longer run of steady points): the plain line comes back.
    view.update({"loss": {"train_loss": steady, "val_loss": steady}})
    line, _, smooth = chart.used["train_loss"].marks[0]
    assert fig.title == "loss" and not smooth.visible and line.opacities == [1.0]
    # A steady chart has no smoothed lines at all (no widgets to create and send).
    view.update({"lr": {"lr": steady}})
    assert view._used["lr"].used["lr"].marks[0][2] is None
    view.release()
    assert len(line.x) == 0 and len(smooth.y) == 0  # emptied for the next cell


def test_the_live_view_has_a_log_scale_that_works_while_the_kernel_is_busy():
    """The toggle switches, in the browser alone, between the linear and the log figures
    (linked with jslink); the log figures leave gaps where a value is not positive."""
    import ipywidgets as w
    import numpy as np

    from cellops.widgets import live

    view = live.LiveView()
    view.update({"loss": {"loss": [(0, 2.0), (1, 0.0), (2, -1.0), (3, 0.5)]}})
    toggle, stack = view.box.children
    assert toggle.options == ("linear", "log") and stack.children == view.rows
    link = view._link
    assert isinstance(link, w.widgets.widget_link.Link)  # runs in the front end
    assert (link.source, link.target) == ((toggle, "index"), (stack, "selected_index"))
    (fig,), (fig_log,) = ([box.children[0] for box in row.children] for row in view.rows)
    assert type(fig.axes[1].scale).__name__ == "LinearScale"
    assert type(fig_log.axes[1].scale).__name__ == "LogScale"
    assert fig.axes[0].scale is fig_log.axes[0].scale  # one step axis
    line, dots, _ = view._used["loss"].used["loss"].marks[0]
    log_line, log_dots, _ = view._used["loss"].used["loss"].marks[1]
    assert list(line.y) == [2.0, 0.0, -1.0, 0.5]
    assert np.isnan(log_line.y[1:3]).all() and list(log_line.y[[0, 3]]) == [2.0, 0.5]
    assert list(log_dots.y) == [2.0, 0.5] and list(log_dots.x) == [0.0, 3.0]
    assert list(fig_log.axes[1].tick_values) == [0.5, 1.0, 2.0]
    view.release()


def test_axis_ticks_are_few_round_values_told_apart():
    from cellops.charts import log_ticks, nice_ticks
    from cellops.widgets.live import tick_format

    assert nice_ticks(0.122, 1.41) == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4]
    assert nice_ticks(-3.2, 7.9) == [-2.0, 0.0, 2.0, 4.0, 6.0]
    assert nice_ticks(1.0, 1.0) == []  # a flat line: the axis picks its own
    close = nice_ticks(0.971, 0.984)
    assert close == [0.972, 0.974, 0.976, 0.978, 0.98, 0.982, 0.984]
    assert tick_format(close) == ".4~r" and tick_format([0.2, 0.4]) == ".3~r"
    assert tick_format(nice_ticks(1200, 98000)) == "~s"  # 20k, not 2e+4

    assert log_ticks(0.09, 1.4) == [0.1, 0.2, 0.5, 1.0]
    assert log_ticks(1e-5, 3.0) == [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0]  # decades only
    assert log_ticks(0.31, 0.78) == [0.4, 0.5, 0.6, 0.7]  # narrow: every digit, exact
    assert log_ticks(0.31, 0.38) == [] and log_ticks(2.0, 2.0) == []  # the axis decides


def test_the_static_charts_have_at_least_three_y_ticks():
    """The SVG copy of a chart (what nbviewer and GitHub show) labels at least three
    round values on its y axis, whatever the range: a loss between 0.21 and 0.42 gets
    0.25, 0.3, 0.35, 0.4, not 0.3 and 0.4 alone."""
    import random
    import re

    from cellops import charts

    def y_labels(svg: str) -> list[str]:  # the labels left of the plot, right-aligned
        return re.findall(r"<text x='44' y='[0-9.]+' text-anchor='end'[^>]*>([^<]+)</text>", svg)

    assert y_labels(charts.lines("loss", {"loss": [(0, 0.42), (1, 0.3), (2, 0.21)]})) == [
        "0.2", "0.3", "0.4"]
    assert y_labels(charts.lines("loss", {"loss": [(0, 0.4155), (1, 0.2345)]})) == [
        "0.25", "0.30", "0.35", "0.40"]  # was 0.3 and 0.4 alone
    rng = random.Random(3)
    for _ in range(3000):
        lo = rng.uniform(-5, 5)
        hi = lo + 10 ** rng.uniform(-4, 4)
        assert len(y_labels(charts.lines("m", {"m": [(0, lo), (1, hi)]}))) >= 3, (lo, hi)


def test_a_live_chart_that_fails_stops_and_its_view_is_not_reused(monkeypatch, capsys):
    from cellops.widgets import live

    live.LiveView._idle.clear()
    run = cellops.start_run()
    chart = live.LiveChart(run, interval=0)
    chart._live = True  # as in a kernel with a front end

    def broken(self: live.LiveView, groups: dict) -> None:
        raise RuntimeError("comm closed")

    monkeypatch.setattr(live.LiveView, "update", broken)
    with chart:
        for i in range(5):
            run.log_metric("loss", 1 / (i + 1))
    run.end()
    assert capsys.readouterr().err.count("the live chart stopped (RuntimeError('comm closed'))") == 1
    assert not live.LiveView._idle  # a view that failed is not kept for the next cell
    assert [s for s, _ in chart.series["loss"]] == [0, 1, 2, 3, 4]  # all kept for the record
    assert len(run.metric_history("loss")) == 5


def test_the_next_cell_reuses_the_live_widgets():
    """The widgets are made once per kernel: a cell's live view is emptied when it ends and
    taken again by the next tracked cell, with that cell's charts, names and lines only."""
    from cellops.widgets import live

    live.LiveView._idle.clear()
    first = live.LiveView.take()
    first.update({"loss": {"train_loss": [(0, 1.0), (1, 0.5)], "val_loss": [(0, 1.2), (1, 0.7)]},
                  "lr": {"lr": [(0, 0.1), (1, 0.05)]}})
    (loss_box, lr_box) = first.rows[0].children
    loss_fig = loss_box.children[0]
    first.release()
    second = live.LiveView.take()
    assert second is first and not live.LiveView._idle
    second.update({"acc": {"acc": [(0, 0.5), (1, 0.9)]}})
    assert second.rows[0].children == (loss_box,) and loss_fig.title == "acc"
    assert "val_loss" not in loss_box.children[1].value and ">acc<" in loss_box.children[1].value
    (line, dots, _) = second._used["acc"].used["acc"].marks[0]
    assert line.labels == ["acc"] and list(line.y) == [0.5, 0.9]
    assert loss_fig.marks == [line, dots]  # val_loss's marks are off the figure
    assert loss_fig.axes[1].label == ""  # one metric: its name is the title
    second.release()
    assert live.LiveView.take() is second
