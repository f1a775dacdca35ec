"""search_runs: MLflow's filter grammar compiled to bound SQL."""

from __future__ import annotations


import pandas as pd
import pytest

import cellops
from engines_kit import RawDb


@pytest.fixture
def runs(ws):
    """Four finished runs in two experiments, plus one running child."""
    made = {}
    specs = [
        ("rf-small", "churn", {"model": "rf", "depth": 3, "alpha": 0.5},
         {"acc": 0.81, "f1": 0.7}, {"stage": "dev", "mlflow.source": "nb"}),
        ("rf-big", "churn", {"model": "rf", "depth": 10, "alpha": 1.5},
         {"acc": 0.93, "f1": 0.9}, {"stage": "prod"}),
        ("LogReg", "churn", {"model": "logreg", "alpha": 10},
         {"acc": 0.88}, {}),
        ("svm", "images", {"model": "svm"}, {"acc": 0.75, "loss": float("nan")},
         {"stage": "dev"}),
    ]
    for name, exp, params, metrics, tags in specs:
        with cellops.start_run(name=name, experiment=exp, params=params, tags=tags) as run:
            run.log_metrics(metrics)
            if name == "rf-big":
                import pandas as pd

                run.log_dataset(pd.DataFrame({"x": [1, 2, 3]}), "train")
        made[name] = run.id
    return made


def names(df: pd.DataFrame) -> set[str]:
    return set(df["name"])


@pytest.mark.parametrize(
    "flt, expected",
    [
        ("metrics.acc > 0.85", {"rf-big", "LogReg"}),
        ("metrics.acc >= 0.88", {"rf-big", "LogReg"}),
        ("metrics.acc < 0.8", {"svm"}),
        ("metrics.acc <= 0.81", {"rf-small", "svm"}),
        ("metrics.acc = 0.93", {"rf-big"}),
        ("metrics.acc == 0.93", {"rf-big"}),
        ("metrics.acc != 0.93", {"rf-small", "LogReg", "svm"}),
        ("metrics.f1 IS NULL", {"LogReg", "svm"}),
        ("metrics.f1 IS NOT NULL", {"rf-small", "rf-big"}),
        ("metrics.acc > 0.8 AND params.model = 'rf'", {"rf-small", "rf-big"}),
        ("metrics.acc > 0.8 and params.model = 'rf' and tags.stage = 'prod'", {"rf-big"}),
        ("params.model = \"logreg\"", {"LogReg"}),
        ("params.model != 'rf'", {"LogReg", "svm"}),
        ("params.model LIKE 'r%'", {"rf-small", "rf-big"}),
        ("params.model LIKE 'R%'", set()),
        ("params.model ILIKE 'R%'", {"rf-small", "rf-big"}),
        ("params.model NOT LIKE 'r%'", {"LogReg", "svm"}),
        ("params.model IN ('rf', 'svm')", {"rf-small", "rf-big", "svm"}),
        ("params.model NOT IN ('rf', 'svm')", {"LogReg"}),
        ("params.depth > 5", {"rf-big"}),
        ("params.alpha >= 1", {"rf-big", "LogReg"}),
        ("params.alpha IN (0.5, 10)", {"rf-small", "LogReg"}),
        ("params.depth IS NULL", {"LogReg", "svm"}),
        ("tags.stage = 'dev'", {"rf-small", "svm"}),
        ("tags.`mlflow.source` = 'nb'", {"rf-small"}),
        ("tags.\"mlflow.source\" = 'nb'", {"rf-small"}),
        ("tags.mlflow.source = 'nb'", {"rf-small"}),
        ("tags.stage IS NULL", {"LogReg"}),
        ("attributes.run_name = 'svm'", {"svm"}),
        ("attributes.status = 'FINISHED' and run_name LIKE 'rf%'", {"rf-small", "rf-big"}),
        ("run_name ILIKE 'logreg'", {"LogReg"}),
        ("attribute.experiment = 'images'", {"svm"}),
        ("attributes.start_time > 0", {"rf-small", "rf-big", "LogReg", "svm"}),
        ("attributes.end_time < '2000-01-01'", set()),
        ("datasets.name = 'train'", {"rf-big"}),
        ("datasets.context = 'input'", {"rf-big"}),
        ("metric.acc > 0.9 or params.model = 'svm'", {"rf-big", "svm"}),
        ("(params.model = 'rf' or params.model = 'svm') and metrics.acc < 0.85",
         {"rf-small", "svm"}),
        ("  ", {"rf-small", "rf-big", "LogReg", "svm"}),
    ],
)
def test_filter_grammar(runs, flt, expected):
    assert names(cellops.search_runs(filter=flt)) == expected


def test_nan_metrics_match_no_comparison(runs):
    assert names(cellops.search_runs(filter="metrics.loss < 1e9")) == set()
    assert names(cellops.search_runs(filter="metrics.loss IS NOT NULL")) == {"svm"}


def test_result_frame_has_run_columns_and_prefixed_params_metrics_tags(runs):
    df = cellops.search_runs(experiment="churn")
    assert list(df.columns[:9]) == ["run_id", "experiment", "name", "status", "kind",
                                    "parent_run_id", "user", "start_time", "end_time"]
    assert {"params.model", "params.depth", "metrics.acc", "metrics.f1", "tags.stage",
            "tags.mlflow.source"} <= set(df.columns)
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert df["metrics.acc"].dtype == float
    row = df[df["name"] == "LogReg"].iloc[0]
    assert row["params.model"] == "logreg" and pd.isna(row["params.depth"])


def test_no_experiment_searches_every_experiment_and_a_list_several(runs):
    assert len(cellops.search_runs()) == 4
    assert names(cellops.search_runs(experiment="images")) == {"svm"}
    assert len(cellops.search_runs(experiment=["images", "churn"])) == 4


def test_an_unknown_experiment_is_named_in_the_error(runs):
    with pytest.raises(cellops.ExperimentNotFoundError, match="'churn', 'images'"):
        cellops.search_runs(experiment="nope")


def test_order_by_metric_param_and_attribute(runs):
    df = cellops.search_runs(order_by=["metrics.acc DESC"])
    assert list(df["name"]) == ["rf-big", "LogReg", "rf-small", "svm"]
    df = cellops.search_runs(order_by="metrics.f1")  # runs without f1 go last
    assert list(df["name"])[:2] == ["rf-small", "rf-big"]
    df = cellops.search_runs(order_by=["params.alpha DESC"])  # numbers sort as numbers
    assert list(df["name"])[:3] == ["LogReg", "rf-big", "rf-small"]
    df = cellops.search_runs(order_by=["attributes.run_name ASC"])
    assert list(df["name"]) == ["LogReg", "rf-big", "rf-small", "svm"]
    df = cellops.search_runs()  # newest first by default
    assert list(df["name"]) == ["svm", "LogReg", "rf-big", "rf-small"]


LISTING_FILTERS = [None, "metrics.acc > 0.8", "metrics.acc > 0.8 AND params.model = 'rf'",
                   "params.model != 'rf' and tags.stage = 'dev'", "metrics.f1 IS NULL",
                   "metrics.acc > 0.7 and attributes.status = 'FINISHED'",
                   "metric.acc > 0.9 or params.model = 'svm'", "metrics.acc > 5",
                   "attributes.status = 'FINISHED'",
                   "attributes.experiment = 'churn' or attributes.run_name = 'live'"]
LISTING_ORDERS = [None, ["metrics.acc DESC"], ["metrics.f1"], ["metrics.loss DESC"],
                  ["metrics.f1 DESC", "params.alpha"], ["params.alpha DESC"],
                  ["attributes.run_name"], ["attributes.run_name DESC"],
                  ["attributes.status"], ["attributes.start_time ASC"],
                  ["params.model"], ["params.model DESC"], ["tags.stage DESC"], ["params.depth"]]
# (walk budget, tie-group sort factor, PostgreSQL's id-set size): every plan a page can
# take. On PostgreSQL a filtered page reads the ids of the runs its metric, param and tag
# conditions hold for when they are few (the first plan), else counts and walks (the others).
PAGE_PLANS = {"collect-then-sort": (0, 1.0, 5_000), "walk-index-sort-ties": (10_000, 1e18, 0),
              "walk-index-walk-ties": (10_000, 0.0, 0)}


@pytest.mark.parametrize("plan", PAGE_PLANS)
@pytest.mark.parametrize("order", LISTING_ORDERS, ids=str)
@pytest.mark.parametrize("flt", LISTING_FILTERS, ids=str)
def test_list_runs_pages_agree_with_search_runs(runs, flt, order, plan, monkeypatch):
    """Whichever plan the store picks for a page (walking an index in order keeping the
    matches, or sorting the matches; runs sharing a value sorted or found newest first),
    pages of two put together are the full ordered result, runs without the ordering
    metric (or with NaN) last."""
    from cellops.store import search

    monkeypatch.setattr(search, "_WALK_BUDGET", PAGE_PLANS[plan][0])
    monkeypatch.setattr(search, "_GROUP_SORT_FACTOR", PAGE_PLANS[plan][1])
    monkeypatch.setattr(search, "_PLANNED_SET", PAGE_PLANS[plan][2])
    with cellops.start_run(experiment="churn") as unnamed:  # a NULL name sorts last
        unnamed.log_metrics({"acc": 0.85})
    cellops.start_run(name="live", experiment="churn", activate=False)  # RUNNING
    def ordered_names(experiment):
        df = cellops.search_runs(experiment, filter=flt, order_by=order)
        return [n if isinstance(n, str) else None for n in df["name"]]  # NaN: no name

    for experiment in (None, "churn"):
        want = ordered_names(experiment)
        got, offset = [], 0
        while True:
            page = cellops.list_runs(experiment, filter=flt, order_by=order, limit=2,
                                     offset=offset)
            assert page.total == len(want)
            got += [r["name"] for r in page.runs]
            if len(page.runs) < 2:
                break
            offset += 2
        assert got == want


@pytest.mark.parametrize("plan", PAGE_PLANS)
def test_pages_ordered_by_a_value_many_runs_share_agree_with_search_runs(ws, plan, monkeypatch):
    """Pages ordered by a param with a few values over many runs (numbers and text mixed,
    numbers first and as numbers), scoped, filtered and not: put together, the full order,
    ties newest first."""
    import random

    from cellops.store import search

    monkeypatch.setattr(search, "_WALK_BUDGET", PAGE_PLANS[plan][0])
    monkeypatch.setattr(search, "_GROUP_SORT_FACTOR", PAGE_PLANS[plan][1])
    monkeypatch.setattr(search, "_PLANNED_SET", PAGE_PLANS[plan][2])
    rng = random.Random(7)
    for i in range(60):
        params = {"g": rng.choice(["a", "b", "1", "2", "10", "2.0"]), "i": i}
        if i % 9 == 0:
            params.pop("g")  # runs without the param go last
        with cellops.start_run(name=f"r{i}", experiment=("x", "y")[i % 2], params=params) as r:
            r.log_metric("m", rng.random())
    cases = [(None, None), ("x", None), (None, "metrics.m > 0.3"), ("y", "params.i > 20")]
    for experiment, flt in cases:
        for order in (["params.g"], ["params.g DESC"]):
            want = list(cellops.search_runs(experiment, filter=flt, order_by=order)["name"])
            assert len(want) > 14  # several pages
            got, offset = [], 0
            while True:
                page = cellops.list_runs(experiment, filter=flt, order_by=order, limit=7,
                                         offset=offset)
                got += [r["name"] for r in page.runs]
                if len(page.runs) < 7:
                    break
                offset += 7
            assert got == want, (experiment, flt, order)
    values = list(cellops.search_runs(order_by=["params.g"])["params.g"].dropna())
    assert values[:values.index("a")] == sorted(values[:values.index("a")], key=float)


def test_max_results_limits_after_ordering(runs):
    df = cellops.search_runs(order_by=["metrics.acc DESC"], max_results=2)
    assert list(df["name"]) == ["rf-big", "LogReg"]
    with pytest.raises(cellops.InvalidArgumentError):
        cellops.search_runs(max_results=-1)


def test_an_empty_result_still_has_the_run_columns(ws):
    df = cellops.search_runs(filter="metrics.acc > 2")
    assert df.empty and "run_id" in df.columns


@pytest.mark.parametrize(
    "flt, message",
    [
        ("metrics.acc >", "Expected a value"),
        ("metrics.acc > 'high'", "compares with numbers"),
        ("metrics.acc ~ 1", "Unexpected character '~'"),
        ("foo.acc > 1", "Unknown entity 'foo'"),
        ("attributes.colour = 'red'", "Unknown attribute 'colour'"),
        ("params.model = 'rf' params.x = 1", "join conditions with AND or OR"),
        ("params.model LIKE 3", "LIKE needs a quoted pattern"),
        ("params.model IN 'rf'", "parenthesised list"),
        ("params.model IN ('a' 'b')", "Expected ',' or ')'"),
        ("(metrics.acc > 1", "Expected ')'"),
        ("metrics.acc LIKE '1%'", "compares with numbers"),
        ("metrics.acc NOT 1", "NOT must be followed"),
        ("datasets.size = 3", "Unknown dataset field"),
        ("attributes.start_time > 'yesterday'", "is not a time"),
        ("params. = 'x'", "Empty key after params."),
    ],
)
def test_bad_filters_name_the_offending_part(runs, flt, message):
    with pytest.raises(cellops.FilterSyntaxError) as info:
        cellops.search_runs(filter=flt)
    assert message in str(info.value)
    assert "^" in str(info.value) or info.value.position is None


@pytest.mark.parametrize("order", ["metrics.acc SIDEWAYS", "nope.acc", "datasets.name"])
def test_bad_order_by_is_refused(runs, order):
    with pytest.raises(cellops.FilterSyntaxError):
        cellops.search_runs(order_by=[order])


def test_filter_values_are_bound_not_interpolated(runs, ws):
    evil = "x'; DROP TABLE runs; --"
    df = cellops.search_runs(filter=f"params.model = \"{evil}\"")
    assert df.empty
    df = cellops.search_runs(filter="tags.`a'b` = 'c'")
    assert df.empty
    assert RawDb(ws).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4


def test_a_dead_processes_running_run_is_reported_killed_by_search(ws, tmp_path):
    import subprocess
    import sys

    code = ("import cellops, os\nr = cellops.start_run(name='orphan')\ncellops.log_metric('x', 1)\n"
            "cellops.flush()\nprint(r.id, flush=True)\nos._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    run_id = out.stdout.strip()
    df = cellops.search_runs(filter="attributes.run_name = 'orphan'")
    assert df["status"].tolist() == ["KILLED"]
    assert "ended without ending it" in cellops.get_run(run_id).error


# -- lineage is searchable (issue #27) ---------------------------------------------------
@pytest.fixture
def lineage(ws):
    from sklearn.linear_model import LinearRegression

    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    other = pd.DataFrame({"x": [5.0, 6.0], "y": [1.0, 0.0]})
    made = {}
    for name, frame in (("on-train", train), ("on-other", other), ("no-model", train)):
        with cellops.start_run(name=name) as run:
            run.log_dataset(frame, "train" if frame is train else "other")
            if name != "no-model":
                run.log_model(LinearRegression().fit(frame[["x"]], frame.y))
        made[name] = run
    cellops.register_model(made["on-train"], "lin")
    cellops.register_model(made["on-other"], "lin")
    cellops.set_alias("lin", "champion", 2)
    return made, cellops.get_run(made["on-train"].id).inputs[0].digest


def test_a_dataset_digest_as_shown_or_any_prefix_finds_its_runs(lineage):
    made, digest = lineage
    assert len(digest) == 12
    for text in (digest, digest[:6], cellops.get_run(made["on-train"].id).inputs[0].fingerprint):
        found = cellops.search_runs(filter=f"datasets.digest = '{text}'")
        assert set(found["name"]) == {"on-train", "no-model"}, text
    assert set(cellops.search_runs(filter=f"datasets.fingerprint != '{digest}'")["name"]) == {"on-other"}


def test_runs_are_searchable_by_the_models_made_from_them(lineage):
    def names(f):
        return set(cellops.search_runs(filter=f)["name"])

    assert names("models.name = 'lin'") == {"on-train", "on-other"}
    assert names("models.name = 'lin' and models.version = 2") == {"on-other"}
    assert names("models.alias = 'champion'") == {"on-other"}
    assert names("models.name IS NULL") == {"no-model"}
    with pytest.raises(cellops.FilterSyntaxError, match="Unknown model field 'size'"):
        cellops.search_runs(filter="models.size = 1")


def test_model_versions_are_searchable_by_their_data_lineage(lineage, tmp_path):
    import subprocess
    import sys

    made, digest = lineage

    def versions(f):
        return [v.version for v in cellops.search_model_versions(f)]

    assert versions("datasets.name = 'train'") == [1]
    assert versions(f"datasets.digest = '{digest[:8]}'") == [1]
    assert versions("datasets.context = 'input' and alias = 'champion'") == [2]
    assert versions("datasets.name = 'nothing'") == []
    cellops.flush()
    res = subprocess.run([sys.executable, "-m", "cellops.cli", "models", "versions", "-f",
                          "datasets.name = 'train'"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[2:]
    assert len(rows) == 1 and rows[0].split()[:2] == ["lin", "1"]


def test_independent_reads_run_side_by_side_and_come_back_in_order(ws, store_engine):
    """A page's count and rows are read side by side: on PostgreSQL on two pooled
    connections (two server processes), in one unit of work on its one connection; each
    result comes back in its place, and a read that fails raises its own error once any
    read under way beside it has finished."""
    import threading

    db = ws.store.search.db
    if store_engine == "postgresql":
        who = "SELECT pg_backend_pid(), pg_sleep(0.2)"  # long enough for both to overlap
        pids = db.side_by_side([lambda: db.query(who)[0][0], lambda: db.query(who)[0][0]])
        assert pids[0] != pids[1]
        with db.bound():
            inside = db.side_by_side([lambda: db.query(who)[0][0], lambda: db.query(who)[0][0]])
        assert inside[0] == inside[1]
    assert db.side_by_side([lambda: db.query("SELECT 1")[0][0], lambda: "two"]) == [1, "two"]
    finished = threading.Event()

    def slow_read() -> int:
        db.query("SELECT count(*) FROM runs")
        finished.set()
        return 0

    def failing_read() -> int:
        raise ValueError("this read failed")

    with pytest.raises(ValueError, match="this read failed"):
        db.side_by_side([failing_read, slow_read])
    # On PostgreSQL the other read was under way in a reader thread, and has finished:
    # nothing is left reading behind the error. (SQLite runs them in turn and stops.)
    assert finished.is_set() == (store_engine == "postgresql")
