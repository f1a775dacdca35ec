"""Explanations and fairness (issue #25): values equal to scikit-learn's and fairlearn's,
logged to the run, on the model card, and fairness as a promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cellops
from cellops.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def _ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cellops.init_workspace(tmp_path)


def people(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"income": rng.normal(50, 15, n), "age": rng.integers(18, 80, n),
                      "sex": rng.choice(["f", "m"], n), "region": rng.choice(["n", "s", "e"], n)})
    logit = (X["income"] - 50) / 10 + (X["sex"] == "m") * 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


@pytest.mark.parametrize("sensitive", [["sex"], ["sex", "region"]])
def test_fairness_equals_fairlearn(sensitive):
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        selection_rate,
        true_positive_rate,
    )

    X, y = people()
    rng = np.random.default_rng(1)
    pred = np.where(rng.random(len(y)) < 0.8, y, 1 - y)
    report = cellops.fairness(pred, X, y, sensitive_features=sensitive)
    sf = X[sensitive]
    assert report.gaps["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=sf), abs=1e-12)
    assert report.gaps["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=sf), abs=1e-12)
    assert report.gaps["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=sf), abs=1e-12)
    assert report.gaps["equalized_odds_ratio"] == pytest.approx(
        equalized_odds_ratio(y, pred, sensitive_features=sf), abs=1e-12)
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate},
                        y_true=y, y_pred=pred, sensitive_features=sf).by_group
    for key, row in frame.iterrows():
        mine = report.by_group.loc[key]
        assert mine["selection_rate"] == pytest.approx(row["selection_rate"])
        assert mine["true_positive_rate"] == pytest.approx(row["tpr"])
    assert report.by_group["count"].sum() == len(y)


def test_a_model_is_predicted_without_the_sensitive_columns_it_never_saw():
    from sklearn.linear_model import LogisticRegression

    X, y = people()
    model = LogisticRegression().fit(X[["income", "age"]], y)
    report = cellops.fairness(model, X, y, sensitive_features="sex")
    assert set(report.by_group.index) == {"f", "m"} and report.task == "classification"
    assert 0 <= report.gaps["demographic_parity_difference"] <= 1


def test_regression_fairness_is_the_error_by_group():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"g": rng.choice(["a", "b"], 1000)})
    y = rng.normal(100, 20, 1000)
    pred = y + np.where(X["g"] == "a", 1.0, 5.0)
    report = cellops.fairness(pred, X, y, sensitive_features="g")
    assert report.task == "regression"
    assert report.by_group.loc["a", "mae"] == pytest.approx(1.0)
    assert report.gaps["mae_difference"] == pytest.approx(4.0) and report.gaps["mae_ratio"] == pytest.approx(0.2)


def test_fairness_is_logged_on_the_card_and_gates_a_protected_alias():
    from sklearn.linear_model import LogisticRegression

    X, y = people()
    with cellops.start_run(name="biased") as run:
        model = LogisticRegression().fit(X[["income", "age"]].assign(m=(X.sex == "m") * 5.0), y)
        pred = model.predict(X[["income", "age"]].assign(m=(X.sex == "m") * 5.0))
        report = cellops.fairness(pred, X, y, sensitive_features="sex")
        version = cellops.register_model(model, "loans", X_sample=X[["income", "age"]].assign(m=0.0))
    assert report.run_id == run.id
    gap = cellops.get_run(run.id).metrics["fairness.demographic_parity_difference"]
    assert gap == pytest.approx(report.gaps["demographic_parity_difference"]) and gap > 0.1
    card = cellops.model_card("loans", version.version).markdown
    assert "## Fairness" in card and "demographic_parity_difference" in card and "sex=f" in card
    cellops.protect_alias("loans", "prod", approvers=["alice"],
                          gate="metrics.fairness.demographic_parity_difference < 0.1")
    request = cellops.set_alias("loans", "prod", version.version)
    assert request.gate_passed is False  # the model that fails a group cannot be approved
    with cellops.acting_as("alice"), pytest.raises(cellops.ModelStateError, match="failed its gate"):
        cellops.approve(request.id)
    # An approver may still promote it, saying why: the override is recorded.
    with cellops.acting_as("alice"), pytest.raises(InvalidArgumentError, match="needs a comment"):
        cellops.approve(request.id, override_gate=True)
    assert cellops.get_model_version("loans", "latest").aliases == []  # nothing moved
    with cellops.acting_as("alice"):
        done = cellops.approve(request.id, comment="legal reviewed the gap", override_gate=True)
    assert done.status == "APPROVED" and cellops.get_model_version("loans", "prod").version == version.version
    assert done.approvals[0]["comment"].startswith(
        "gate override (metrics.fairness.demographic_parity_difference < 0.1): legal reviewed")
    assert any("gate override" in str(e.details) for e in cellops.audit_log(10))
    assert cellops.verify_audit().ok


def test_explain_equals_scikit_learn_and_is_on_the_card():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import partial_dependence, permutation_importance

    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    with cellops.start_run(name="forest") as run:
        model = RandomForestRegressor(n_estimators=30, random_state=0).fit(X, y)
        report = cellops.explain(model, X, y, n_repeats=3, random_state=0)
        version = cellops.register_model(model, "diabetes", X_sample=X)
    direct = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    by_feature = dict(zip(X.columns, direct.importances_mean))
    for row in report.importances.itertuples():
        assert row.importance == pytest.approx(by_feature[row.feature])
    assert report.top(1)[0] == max(by_feature, key=by_feature.get)
    first = report.top(1)[0]
    pd_direct = partial_dependence(model, X, [first], kind="average", grid_resolution=20)
    assert report.partial_dependence[first]["average"] == pytest.approx(pd_direct["average"][0].tolist())
    assert len(report.partial_dependence) == 3
    assert report.run_id == run.id
    card = cellops.model_card("diabetes", version.version).markdown
    assert "## Explanations" in card and first in card
    html = report._repr_html_()
    assert "<svg" in html and first in html  # reads without a kernel


def test_shap_values_are_on_the_probability_and_equal_shaps_tree_explainer():
    """A classifier's SHAP values are on P(positive class), not on its 0/1 label; a tree
    model's equal SHAP's own tree explainer on the same background and rows."""
    import shap
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)
    with cellops.start_run(name="forest") as run:
        report = cellops.explain(model, X, method="shap", random_state=0, top=1)
        version = cellops.register_model(model, "cancer", X_sample=X)
    assert report.output == "P(class=1)" and report.rows == 500 and report.run_id == run.id
    assert report.notes[0] == "SHAP values on 500 rows sampled from 569, against 100 background rows."
    direct = shap.TreeExplainer(model, X.sample(100, random_state=0), model_output="probability")
    values = np.abs(np.asarray(direct.shap_values(X.sample(500, random_state=0)))[..., 1]).mean(axis=0)
    by_feature = dict(zip(X.columns, values))
    for row in report.importances.itertuples():
        assert row.importance == pytest.approx(by_feature[row.feature])
    assert report.importances["importance"].max() < 0.5  # a share of a probability
    card = cellops.model_card("cancer", version.version).markdown
    assert "mean absolute SHAP value on P(class=1)" in card and report.top(1)[0] in card
    assert "on P(class=1)" in report._repr_html_()

    X, y = load_iris(return_X_y=True, as_frame=True)
    multi = cellops.explain(RandomForestClassifier(20, random_state=0).fit(X, y), X, method="shap", log=False)
    assert multi.output.startswith("the probability of each of 3 classes") and multi.notes == []
    assert multi.top(2)[0].startswith("petal")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    reg = cellops.explain(GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y), X,
                          method="shap", log=False)
    assert reg.output == "the prediction" and reg.importances["importance"].max() > 5  # in y's units


def test_shap_explains_a_pipeline_with_a_text_column_quietly(capfd):
    """Any other model (a pipeline with a one-hot text column) goes through SHAP's
    model-agnostic explainers: the text column reaches the model as text, a column the
    model ignores gets nothing, and no progress bar is printed into the notebook."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x0": rng.normal(size=300), "city": rng.choice(["a", "b", "c"], 300),
                      "noise": rng.normal(size=300)})
    y = ((X["x0"] + (X["city"] == "a") * 1.5) > 0.5).astype(int)
    model = make_pipeline(make_column_transformer((OneHotEncoder(), ["city"]), ("passthrough", ["x0"])),
                          LogisticRegression()).fit(X, y)
    report = cellops.explain(model, X, method="shap", log=False, top=0)
    importance = dict(zip(report.importances["feature"], report.importances["importance"]))
    assert report.output == "P(class=1)" and report.rows == 200
    assert importance["x0"] > 0.1 and importance["city"] > 0.1 and importance["noise"] == pytest.approx(0, abs=1e-9)
    assert "Explainer" not in capfd.readouterr().err


def test_bad_input_is_a_clear_error():
    X, y = people(200)
    with pytest.raises(InvalidArgumentError, match="no column 'gender'"):
        cellops.fairness(y, X, y, sensitive_features="gender")
    with pytest.raises(InvalidArgumentError, match="same length"):
        cellops.fairness(y[:10], X, y, sensitive_features="sex")
    with pytest.raises(InvalidArgumentError, match="No fairness metric 'nope'"):
        cellops.fairness(y, X, y, sensitive_features="sex", metrics=["nope"])
    with pytest.raises(InvalidArgumentError, match="missing \\(NaN\\)"):
        cellops.fairness(y, X.assign(sex=None), y, sensitive_features="sex")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X[["income"]], y)
    with pytest.raises(InvalidArgumentError, match="needs y"):
        cellops.explain(model, X[["income"]])
    with pytest.raises(InvalidArgumentError, match="method is one of"):
        cellops.explain(model, X[["income"]], y, method="lime")
    with pytest.raises(InvalidArgumentError, match="no column 'x'"):
        cellops.explain(model, X[["income"]], y, features=["x"])


def test_a_fairness_monitor_alerts_when_one_group_is_selected_more():
    """A monitoring check over the prediction log, by a logged column: demographic parity
    from the predictions alone, equalized odds once labels arrive."""
    from serving_kit import register_mixed

    version, model, X = register_mixed("shops")
    cellops.set_alias("shops", "champion", version.version)
    rng = np.random.default_rng(4)
    batch = pd.DataFrame({"city": rng.choice(["Lyon", "Oslo", "Pune"], 600),
                          "visits": rng.integers(0, 10, 600)})
    batch.to_csv("batch.csv", index=False)
    cellops.predict_file("models:/shops@champion", "batch.csv", "out.csv", chunk_rows=300)
    cellops.flush()
    cellops.create_monitor("shops-fair", "shops@champion", X.assign(target=0), target="target",
                           window="300 rows",
                           checks=[{"type": "fairness", "sensitive": "city"},
                                   {"type": "fairness", "sensitive": "city",
                                    "metric": "equalized_odds_difference", "max": 0.5}])
    results = cellops.run_monitors()
    assert [r.status for r in results] == ["failing", "failing"]  # Oslo is selected far more often
    first = {c["name"]: c for c in results[0].checks}
    parity = first["fairness:city"]
    assert parity["passed"] is False and parity["value"] > 0.1
    assert {g["group"]["city"] for g in parity["details"]["groups"]} == {"Lyon", "Oslo", "Pune"}
    odds = first["fairness:city:equalized_odds_difference"]
    assert odds["passed"] is None and "no labels" in odds["message"]  # none logged yet
    (alert,) = [a for a in cellops.alerts() if a.check == "fairness:city"]
    assert alert.windows == 2 and "demographic_parity_difference" in alert.message
    from cellops.monitoring.spec import MonitorSpecError

    with pytest.raises(MonitorSpecError, match="needs sensitive"):
        cellops.create_monitor("bad", "shops@champion", X, checks=[{"type": "fairness"}])
    with pytest.raises(MonitorSpecError, match="metric is one of"):
        cellops.create_monitor("bad", "shops@champion", X,
                               checks=[{"type": "fairness", "sensitive": "city", "metric": "x"}])
