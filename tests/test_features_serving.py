"""Serving with features (issue #24): a model trained on retrieved features is served from
requests that carry only the entity keys; the server fills the features in from the
online store, and the prediction log keeps the features it used. A real scoring server
on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import cellops
from cellops.errors import InvalidArgumentError

T0 = pd.Timestamp("2024-01-01")


@pytest.fixture
def trained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cellops.init_workspace(tmp_path)
    feats = pd.DataFrame({"cid": [1, 2, 3, 4, 2], "ts": [T0] * 4 + [T0 + pd.Timedelta("3h")],
                          "spend": [0.1, 0.9, 0.2, 0.8, 0.05], "visits": [1, 5, 2, 6, 1]})
    cellops.register_feature_view("cust", feats, entities="cid", timestamp="ts")
    labels = pd.DataFrame({"cid": [1, 2, 3, 4], "event_timestamp": [T0 + pd.Timedelta("1h")] * 4,
                           "age": [30, 40, 50, 60], "churned": [0, 1, 0, 1]})
    with cellops.start_run(name="train"):
        train = cellops.get_historical_features(labels, ["cust:*"])
        X = train[["spend", "visits", "age"]]
        model = LogisticRegression().fit(X, train["churned"])
        version = cellops.register_model(model, "churn", X_sample=X)
    return version, model


def post(url: str, doc: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/invocations", data=json.dumps(doc).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_request_with_only_the_entity_key_is_answered_with_online_features(trained):
    version, model = trained
    assert json.loads(version.tags["cellops.features"]) == {
        "features": ["cust:spend", "cust:visits"], "entity_columns": ["cid"]}  # from the run
    cellops.materialize(end=T0 + pd.Timedelta("4h"))  # cid 2's newer value (0.05, 1)
    server = cellops.serve("models:/churn/1", port=0)
    try:
        status, body = post(server.url, {"dataframe_records": [{"cid": 2, "age": 40},
                                                               {"cid": 1, "age": 30}]})
        assert status == 200
        expected = model.predict(pd.DataFrame({"spend": [0.05, 0.1], "visits": [1, 1],
                                               "age": [40, 30]})).tolist()
        assert body["predictions"] == expected
        # The same model also takes every column, features given.
        status, given = post(server.url, {"dataframe_records": [{"spend": 0.9, "visits": 5, "age": 40}]})
        assert status == 200 and given["predictions"] == model.predict(
            pd.DataFrame({"spend": [0.9], "visits": [5], "age": [40]})).tolist()
        # A request with neither says what the model takes.
        status, error = post(server.url, {"dataframe_records": [{"cid": 2}]})
        assert status == 400 and "'age'" in error["message"]
        # OIP v2 too.
        doc = {"inputs": [{"name": "cid", "datatype": "INT64", "shape": [1], "data": [2]},
                          {"name": "age", "datatype": "INT64", "shape": [1], "data": [40]}]}
        req = urllib.request.Request(server.url + "/v2/models/churn/infer", data=json.dumps(doc).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as res:
            assert json.loads(res.read())["outputs"][0]["data"] == expected[:1]
    finally:
        server.stop()
    cellops.flush()
    log = cellops.predictions("churn")
    first = log[log["row"] == 0].iloc[0]
    assert (first["spend"], first["visits"], first["age"]) == (0.05, 1, 40)  # the features used


def test_features_can_be_named_at_registration_and_bad_names_are_refused(trained):
    version, model = trained
    X = pd.DataFrame({"spend": [0.1, 0.9], "visits": [1, 5], "age": [30, 40]})
    named = cellops.register_model(model, "named", X_sample=X, features=["cust:spend", "cust:visits"],
                                   entity_columns=["cid"])
    assert json.loads(named.tags["cellops.features"])["features"] == ["cust:spend", "cust:visits"]
    with pytest.raises(InvalidArgumentError, match="takes no column 'other'"):
        cellops.register_feature_view("o", pd.DataFrame({"cid": [1], "ts": [T0], "other": [1.0]}),
                                      entities="cid", timestamp="ts")
        cellops.register_model(model, "bad", X_sample=X, features=["o:other"])
    with pytest.raises(InvalidArgumentError, match="entity_columns goes with features"):
        cellops.register_model(model, "bad", X_sample=X, entity_columns=["cid"])
    with pytest.raises(InvalidArgumentError, match="lacks cid"):
        cellops.register_model(model, "bad", X_sample=X, features=["cust:spend"], entity_columns=["x"])
    assert [m.name for m in cellops.list_models()] == ["churn", "named"]  # nothing else stored
