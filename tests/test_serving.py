"""The scoring server on 127.0.0.1: MLflow's scoring protocol, the Open Inference Protocol v2,
the prediction log, labels, the token and the metrics."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from serving_kit import COLUMNS, Client, register_mixed, register_numeric

import cellops
from cellops.errors import InvalidArgumentError


@pytest.fixture
def churn(ws):
    version, model, X = register_numeric()
    server = cellops.serve("models:/churn@champion", poll_interval=0.1)
    client = Client(server.url)
    yield {"server": server, "client": client, "model": model, "X": X.head(5), "version": version}
    client.close()
    server.stop()


# -- MLflow's scoring protocol ---------------------------------------------------------------

def _forms(X):
    rows = X.to_numpy().tolist()
    return {
        "dataframe_split": {"dataframe_split": {"columns": list(X.columns), "data": rows}},
        "split, columns reordered": {"dataframe_split": {
            "columns": ["score", "age", "income"], "data": X[["score", "age", "income"]].to_numpy().tolist()}},
        "split without columns": {"dataframe_split": {"data": rows}},
        "dataframe_records": {"dataframe_records": X.to_dict(orient="records")},
        "instances as lists": {"instances": rows},
        "instances as records": {"instances": X.to_dict(orient="records")},
        "inputs as lists": {"inputs": rows},
        "inputs as columns": {"inputs": {c: X[c].tolist() for c in X.columns}},
    }


def test_every_mlflow_payload_form_gets_the_models_own_predictions(churn):
    client, X, model = churn["client"], churn["X"], churn["model"]
    expected = model.predict(X).tolist()
    for form, doc in _forms(X).items():
        reply = client.invocations(doc)
        assert reply.status == 200, (form, reply.body)
        assert reply.json == {"predictions": expected}, form
        assert reply.headers["x-model-version"] == "1"
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])
    one_flat = client.invocations({"instances": X.iloc[0].tolist()})  # one row, flat
    assert one_flat.json == {"predictions": expected[:1]}


def test_csv_charset_params_and_predict_method(churn):
    client, X, model = churn["client"], churn["X"], churn["model"]
    csv = client.request("POST", "/invocations", X.to_csv(index=False).encode(),
                         {"Content-Type": "text/csv"})
    assert csv.status == 200 and csv.json["predictions"] == model.predict(X).tolist()
    utf8 = client.invocations({"instances": X.to_numpy().tolist()},
                              content_type="application/json; charset=UTF-8")
    assert utf8.status == 200
    proba = client.invocations({"dataframe_split": {"columns": COLUMNS, "data": X.to_numpy().tolist()},
                                "params": {"predict_method": "predict_proba"}})
    assert np.allclose(proba.json["predictions"], model.predict_proba(X))
    mine = client.invocations({"instances": X.to_numpy().tolist()[:1]},
                              headers={"X-Request-ID": "order-42"})
    assert mine.headers["x-request-id"] == "order-42"


BAD_JSON = [
    ("malformed JSON", b'{"dataframe_split": ', "not valid JSON"),
    ("not an object", b"[[1, 2, 3]]", "must be a JSON object"),
    ("no input field", {}, "exactly one of dataframe_split, dataframe_records, instances, inputs "
                           "(got none of them)"),
    ("two input fields", {"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}, "(got instances, inputs)"),
    ("unknown field", {"instances": [[1, 2, 3]], "rows": 1}, "unknown field(s) rows"),
    ("split not an object", {"dataframe_split": [[1, 2, 3]]}, "dataframe_split must be an object"),
    ("split data not rows", {"dataframe_split": {"columns": COLUMNS, "data": 5}}, "must be a list of rows"),
    ("records not a list", {"dataframe_records": {"age": 1}}, "dataframe_records must be a list"),
    ("records not objects", {"dataframe_records": [[1, 2, 3]]}, "record 0 is a list"),
    ("invalid frame", {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}},
     "Row 0 has 2 value(s) for 3 column(s)"),
    ("unknown column", {"dataframe_split": {"columns": ["age", "income", "zzz"], "data": [[1, 2, 3]]}},
     "missing column(s) 'score'; unknown column(s) 'zzz'. The model takes 3 column(s)"),
    ("missing column", {"dataframe_records": [{"age": 1, "income": 2}]}, "missing column(s) 'score'"),
    ("string in a numeric column", {"dataframe_records": [{"age": 40, "income": 2, "score": "high"}]},
     "Column 'score' takes numbers; row 0 has 'high'"),
    ("NaN", b'{"instances": [[40, NaN, 0.5]]}', "Column 'income' is missing (null or NaN) in row 0"),
    ("null", {"dataframe_records": [{"age": 40, "income": 1, "score": 0.5},
                                    {"age": None, "income": 1, "score": 0.5}]},
     "Column 'age' is missing (null or NaN) in row 1"),
    ("too many columns", {"instances": [[1, 2, 3], [1, 2, 3, 4]]},
     "Row 1 has 4 value(s); the model takes 3 column(s)"),
    ("too few columns", {"inputs": [[1, 2]]}, "Row 0 has 2 value(s); the model takes 3"),
    ("no rows", {"instances": []}, "no rows"),
    ("params not an object", {"instances": [[1, 2, 3]], "params": [1]}, "params must be a JSON object"),
    ("unknown method", {"instances": [[1, 2, 3]], "params": {"predict_method": "fit"}},
     "predict_method 'fit' is not available"),
    ("CSV without a column", b"age,income\n40,50000\n", "missing column(s) 'score'"),
    # issue #23: each of these was a 500 blamed on the model, or accepted against the docs
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "nests deeper than the server parses"),
    ("a 400-digit integer", b'{"instances": [[40, 1' + b"0" * 400 + b', 0.5]]}',
     "Column 'income': row 0 has a number of 401 digits"),
    ("a number as a string", {"dataframe_records": [{"age": 40, "income": "1.5", "score": 0.5}]},
     "Column 'income' takes numbers; row 0 has '1.5' (a string)"),
    ("a boolean", {"instances": [[40, 2, True]]}, "Column 'score' takes numbers; row 0 has True"),
    ("a boolean by column", {"inputs": {"age": [40], "income": [1], "score": [False]}},
     "row 0 has False (a boolean)"),
    ("CSV of booleans", b"age,income,score\n40,50000,True\n", "Column 'score' takes numbers"),
    ("CSV header of 100,000 columns", b",".join(b"c%d" % i for i in range(100_000)) + b"\n1\n",
     "The CSV header has 100,000 columns; the model takes 3"),
]


@pytest.mark.parametrize("case, body, message", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_requests_get_mlflows_400_and_the_server_goes_on(churn, case, body, message):
    client, X = churn["client"], churn["X"]
    content_type = "text/csv" if case.startswith("CSV") else "application/json"
    reply = client.invocations(body, content_type=content_type)
    assert reply.status == 400, reply.body
    assert reply.json["error_code"] == "BAD_REQUEST"
    assert message in reply.json["message"]
    assert client.invocations({"instances": X.to_numpy().tolist()}).status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "",
                                          "application/json; boundary=x",
                                          "application/json; charset=latin-1"])
def test_other_content_types_are_415(churn, content_type):
    reply = churn["client"].invocations({"instances": [[1, 2, 3]]}, content_type=content_type)
    assert reply.status == 415
    assert "application/json" in reply.json["message"]


def test_bodies_over_the_limit_are_413_declared_or_chunked(ws):
    register_numeric()
    server = cellops.serve("models:/churn/1", max_body_mb=0.01)  # 10 KiB
    client = Client(server.url)
    try:
        rows = [[40.0, 50_000.0, 0.5]] * 2000  # about 50 KB
        declared = client.invocations({"instances": rows})
        assert declared.status == 413 and "--max-body-mb" in declared.json["message"]
        client.close()
        payload = json.dumps({"instances": rows}).encode()
        pieces = (payload[i:i + 4096] for i in range(0, len(payload), 4096))
        chunked = Client(server.url).request("POST", "/invocations", pieces,
                                             {"Content-Type": "application/json"}, chunked=True)
        assert chunked.status == 413
        small = Client(server.url).invocations({"instances": rows[:10]})
        assert small.status == 200 and len(small.json["predictions"]) == 10
    finally:
        server.stop()


def test_ping_health_and_version(churn):
    client = churn["client"]
    assert client.get("/ping").status == 200
    assert client.get("/health").status == 200
    assert client.get("/version").body.decode() == cellops.__version__
    assert client.get("/nowhere").status == 404


# -- the Open Inference Protocol v2 ----------------------------------------------------------

def test_oip_health_and_metadata_come_from_the_signature(churn):
    client = churn["client"]
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2").json["name"] == "cellops"
    meta = client.get("/v2/models/churn").json
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": c, "datatype": "FP64", "shape": [-1]} for c in COLUMNS]
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert outputs["predict"] == {"name": "predict", "datatype": "INT64", "shape": [-1]}
    assert outputs["predict_proba"]["shape"] == [-1, 2]
    assert outputs["decision_function"]["shape"] == [-1]
    assert client.get("/v2/models/churn/ready").json == {"name": "churn", "ready": True}
    assert client.get("/v2/models/churn/versions/1").json["name"] == "churn"
    for path in ("/v2/models/other", "/v2/models/other/ready", "/v2/models/churn/versions/2/ready"):
        reply = client.get(path)
        assert reply.status == 404 and "serves churn version 1" in reply.json["error"]


def test_oip_infer_takes_tensors_per_column_or_one_matrix_of_any_numeric_datatype(churn):
    client, X, model = churn["client"], churn["X"], churn["model"]
    expected = model.predict(X).tolist()
    n = len(X)
    per_column = {"id": "batch-7", "inputs": [
        {"name": "age", "shape": [n], "datatype": "INT64", "data": X["age"].astype(int).tolist()},
        {"name": "income", "shape": [n], "datatype": "FP32", "data": X["income"].tolist()},
        {"name": "score", "shape": [n, 1], "datatype": "FP64", "data": [[v] for v in X["score"]]}]}
    reply = client.post_json("/v2/models/churn/infer", per_column)
    assert reply.status == 200, reply.body
    body = reply.json
    assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "1", "batch-7")
    assert body["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [n],
                                "data": model.predict(X.assign(income=X["income"].astype("float32"))).tolist()}]
    assert reply.headers["x-request-id"] == "batch-7"
    matrix = {"inputs": [{"name": "input-0", "shape": [n, 3], "datatype": "FP64",
                          "data": X.to_numpy().tolist()}],  # nested
              "outputs": [{"name": "predict_proba"}, {"name": "predict"}]}
    body = client.post_json("/v2/models/churn/versions/1/infer", matrix).json
    proba, pred = body["outputs"]
    assert proba["name"] == "predict_proba" and proba["shape"] == [n, 2]
    assert np.allclose(np.reshape(proba["data"], (n, 2)), model.predict_proba(X))
    assert pred["data"] == expected and re.fullmatch(r"[0-9a-f]{32}", body["id"])
    flat = {"inputs": [{"name": "x", "shape": [n, 3], "datatype": "FP64",
                        "data": X.to_numpy().ravel().tolist()}]}
    assert client.post_json("/v2/models/churn/infer", flat).json["outputs"][0]["data"] == expected
    for datatype, data in [("INT8", [40, 1, 0]), ("INT16", [40, 1, 0]), ("INT32", [40, 1, 0]),
                           ("UINT8", [40, 1, 0]), ("UINT16", [40, 1, 0]), ("UINT32", [40, 1, 0]),
                           ("UINT64", [40, 1, 0]), ("FP16", [40.0, 1.0, 0.5]),
                           ("BOOL", [True, False, True])]:
        doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": datatype, "data": data}]}
        reply = client.post_json("/v2/models/churn/infer", doc)
        want = model.predict(pd.DataFrame(np.array([data], dtype=float), columns=COLUMNS))
        assert reply.status == 200 and reply.json["outputs"][0]["data"] == want.tolist(), datatype


BAD_TENSORS = [
    ("no inputs", {"id": "x"}, 400, "non-empty 'inputs' list"),
    ("not JSON", b"{inputs", 400, "not valid JSON"),
    ("data short of its shape", {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64",
                                             "data": [1, 2, 3]}]}, 400, "(6 expected)"),
    ("unknown datatype", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FLOAT",
                                      "data": [1, 2, 3]}]}, 400, "use one of BOOL, INT8"),
    ("string in FP64", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                    "data": ["a", 1, 2]}]}, 400, "'a' is not a number"),
    ("out of range", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT8",
                                  "data": [300, 1, 0]}]}, 400, "300 is out of its range"),
    ("no shape", {"inputs": [{"name": "x", "datatype": "FP64", "data": [1, 2, 3]}]}, 400,
     "needs a shape"),
    ("wrong width", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                 "data": [1, 2, 3, 4]}]}, 400, "Tensor 'x' has shape [1, 4]"),
    ("unknown column", {"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]},
                                   {"name": "zz", "shape": [1], "datatype": "FP64", "data": [1]}]},
     400, "unknown column(s) 'zz'"),
    ("unknown output", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                    "data": [1, 2, 3]}], "outputs": [{"name": "fit"}]}, 400,
     "'fit' is not available"),
    ("a tensor name twice", {"inputs": [
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [1]},
        {"name": "age", "shape": [1], "datatype": "FP64", "data": [2]},
        {"name": "score", "shape": [1], "datatype": "FP64", "data": [3]}]}, 400,
     "Two input tensors are named 'age'"),
    ("deeply nested", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400,
     "nests deeper than the server parses"),
    ("a 400-digit number", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                        "data": [1, 10**400, 2]}]}, 400, "of 401 digits"),
]


@pytest.mark.parametrize("case, doc, status, message", BAD_TENSORS, ids=[c[0] for c in BAD_TENSORS])
def test_bad_tensors_get_an_oip_error(churn, case, doc, status, message):
    reply = churn["client"].post_json("/v2/models/churn/infer", doc)
    assert reply.status == status, reply.body
    assert message in reply.json["error"]


def test_an_unknown_model_is_404_on_infer(churn):
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
    reply = churn["client"].post_json("/v2/models/fraud/infer", doc)
    assert reply.status == 404 and "not served here" in reply.json["error"]


def test_a_model_over_strings_takes_bytes_tensors_and_records(ws):
    _, model, X = register_mixed()
    server = cellops.serve("models:/shops/1")
    client = Client(server.url)
    try:
        rows = X.head(6)
        expected = model.predict(rows).tolist()
        meta = client.get("/v2/models/shops").json
        assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [("city", "BYTES"),
                                                                          ("visits", "INT64")]
        records = client.invocations({"dataframe_records": rows.to_dict(orient="records")})
        assert records.json == {"predictions": expected}
        positional = client.invocations({"instances": rows.to_numpy().tolist()})
        assert positional.json == {"predictions": expected}
        tensors = {"inputs": [
            {"name": "city", "shape": [6], "datatype": "BYTES", "data": rows["city"].tolist()},
            {"name": "visits", "shape": [6], "datatype": "INT32", "data": rows["visits"].tolist()}]}
        assert client.post_json("/v2/models/shops/infer", tensors).json["outputs"][0]["data"] == expected
        bad = client.invocations({"dataframe_records": [{"city": "Oslo", "visits": "many"}]})
        assert bad.status == 400 and "Column 'visits' takes numbers; row 0 has 'many'" in bad.json["message"]
    finally:
        server.stop()


# -- the prediction log ----------------------------------------------------------------------

def test_every_request_is_logged_with_inputs_outputs_version_and_latency(churn):
    client, X, model, server = churn["client"], churn["X"], churn["model"], churn["server"]
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    ok = client.invocations({"dataframe_split": {"columns": COLUMNS, "data": X.head(3).to_numpy().tolist()}})
    oip = client.post_json("/v2/models/churn/infer", {"id": "oip-1", "inputs": [
        {"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": X.iloc[3].tolist()}]})
    bad = client.invocations({"instances": [["old", 1, 2]]})
    assert (ok.status, oip.status, bad.status) == (200, 200, 400)
    assert server.log.flush()
    log = cellops.predictions("churn")
    assert list(log["request_id"]) == [ok.headers["x-request-id"]] * 3 + ["oip-1"]
    assert list(log["row"]) == [0, 1, 2, 0]
    assert set(log["version"]) == {1} and set(log["status"]) == {200} and set(log["source"]) == {"http"}
    assert (log["latency_ms"] > 0).all() and (log["time"] >= before).all()
    assert np.allclose(log[COLUMNS].to_numpy(), X.head(4).to_numpy())
    assert list(log["prediction"]) == model.predict(X.head(4)).tolist()
    assert log["label"].isna().all()
    everything = cellops.predictions("churn", include_errors=True)
    refused = everything[everything["status"] == 400]
    assert len(refused) == 1 and "takes numbers" in refused["error"].iloc[0]
    assert refused["request_id"].iloc[0] == bad.headers["x-request-id"]
    assert cellops.predictions("churn", since=datetime.now(timezone.utc) + timedelta(minutes=1)).empty
    assert len(cellops.predictions("churn", until=timedelta(0), limit=1)) == 3  # first request
    assert cellops.predictions("nobody").empty


def test_labels_join_by_request_id_or_by_frame_and_unknown_ids_store_nothing(churn):
    client, X, server = churn["client"], churn["X"], churn["server"]
    ids = [client.invocations({"instances": [row]}).headers["x-request-id"]
           for row in X.head(3).to_numpy().tolist()]
    many = client.invocations({"instances": X.head(2).to_numpy().tolist()}).headers["x-request-id"]
    assert server.log.flush()
    assert cellops.log_labels(ids, np.array([1, 0, 1])) == 3
    frame = cellops.predictions("churn")
    rows = frame[frame["request_id"] == many][["request_id", "row"]].assign(label=[0, 1])
    assert cellops.log_labels(rows) == 2
    with pytest.raises(InvalidArgumentError, match="not in the prediction log.*nothing was stored"):
        cellops.log_labels([ids[0], "no-such-request"], [0, 0])
    with pytest.raises(InvalidArgumentError, match="2 request id\\(s\\) but 1 label"):
        cellops.log_labels(ids[:2], [1])
    with pytest.raises(InvalidArgumentError, match="there is no row 5"):
        cellops.log_labels(rows.assign(row=[0, 5]))
    labelled = cellops.predictions("churn").set_index(["request_id", "row"])["label"]
    assert [labelled[(i, 0)] for i in ids] == [1, 0, 1]  # the refused calls changed nothing
    assert [labelled[(many, 0)], labelled[(many, 1)]] == [0, 1]
    assert cellops.log_labels([ids[1]], [1]) == 1  # a label again replaces it
    assert cellops.predictions("churn").set_index(["request_id", "row"])["label"][(ids[1], 0)] == 1


def test_no_log_keeps_no_prediction_log(ws):
    _, _, X = register_numeric()
    server = cellops.serve("models:/churn/1", log=False)
    try:
        assert Client(server.url).invocations({"instances": X.head(2).to_numpy().tolist()}).status == 200
        assert server.log is None
    finally:
        server.stop()
    assert cellops.predictions("churn").empty


def test_bad_arguments_to_the_readers_say_what_to_give(ws):
    with pytest.raises(InvalidArgumentError, match="ISO date or time"):
        cellops.predictions(since="yesterday")
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        cellops.predictions(limit=0)
    with pytest.raises(InvalidArgumentError, match="needs y_true"):
        cellops.log_labels(["a"])


# -- token, metrics, the server object ------------------------------------------------------

def test_a_token_guards_every_route_but_the_health_checks(ws):
    _, _, X = register_numeric()
    server = cellops.serve("models:/churn/1", token="s3cret")
    try:
        anon, wrong = Client(server.url), Client(server.url, token="guess")
        for path in ("/ping", "/health", "/v2/health/live", "/v2/health/ready"):
            assert anon.get(path).status == 200, path
        for client in (anon, wrong):
            reply = client.invocations({"instances": X.head(1).to_numpy().tolist()})
            assert reply.status == 401 and "Authorization: Bearer" in reply.json["message"]
            assert reply.headers["www-authenticate"] == "Bearer"
            for path in ("/metrics", "/version", "/v2/models/churn", "/v2"):
                assert client.get(path).status == 401, path
        good = Client(server.url, token="s3cret")
        assert good.invocations({"instances": X.head(1).to_numpy().tolist()}).status == 200
        assert "Bearer s3cret" in server.curl()
    finally:
        server.stop()


def test_metrics_count_requests_by_route_and_status(churn):
    client, X = churn["client"], churn["X"]
    for _ in range(3):
        client.invocations({"instances": X.to_numpy().tolist()})
    client.invocations({"instances": [[1]]})
    client.post_json("/v2/models/churn/infer", {"inputs": [
        {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]})
    reply = client.get("/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    text = reply.body.decode()
    assert 'cellops_serving_requests_total{route="/invocations",status="200"} 3.0' in text
    assert 'cellops_serving_requests_total{route="/invocations",status="400"} 1.0' in text
    assert 'cellops_serving_requests_total{route="/v2/models/{name}/infer",status="200"} 1.0' in text
    assert 'cellops_serving_request_duration_seconds_bucket{le="0.5",route="/invocations"} 4.0' in text
    assert 'cellops_serving_request_duration_seconds_count{route="/invocations"} 4.0' in text
    assert "cellops_serving_predicted_rows_total 16.0" in text  # 3 x 5 rows + 1
    assert 'cellops_serving_model_version{model="churn"} 1.0' in text
    assert "cellops_serving_prediction_log_queue_depth" in text
    assert "cellops_serving_prediction_log_dropped_total 0.0" in text
    assert "cellops_serving_model_swaps_total 0.0" in text
    assert "_created" not in text


def test_the_server_object_and_its_errors(churn, ws):
    server = churn["server"]
    assert server.running and server.url.startswith("http://127.0.0.1:")
    assert server.model.version == 1 and "models:/churn@champion" in str(server)
    assert server.curl().startswith(f"curl -s {server.url}/invocations")
    html = server._repr_html_()
    assert server.url in html and "curl" in html and "var(--jp-ui-font-family" in html
    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(InvalidArgumentError, match="Cannot listen on 127.0.0.1:.*Pick another port"):
        cellops.serve("models:/churn/1", port=port)
    with pytest.raises(InvalidArgumentError, match="block=True"):
        cellops.serve("models:/churn/1", workers=2)
    with pytest.raises(cellops.CellopsError, match="nope"):
        cellops.serve("models:/nope/1")
    with pytest.raises(InvalidArgumentError):
        cellops.serve("not-a-uri")


def test_running_servers_announce_themselves_until_they_stop(churn):
    server = churn["server"]
    found = cellops.serving_endpoints()
    assert [(e.model, e.version, e.url) for e in found] == [("churn", 1, server.url)]
    assert cellops.serving_endpoints("other") == []
    server.stop()
    assert not server.running
    assert cellops.serving_endpoints() == []


@pytest.mark.sqlite_only
def test_a_request_is_answered_quickly_while_the_database_is_locked(churn, db_path):
    """The log is off the request's critical path: a writer holding the database does not
    slow requests down; the entries arrive once it lets go."""
    import sqlite3

    X, server = churn["X"], churn["server"]
    client = Client(server.url, timeout=10)  # a request waiting on the lock would time out
    holder = sqlite3.connect(db_path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(20):
            assert client.invocations({"instances": X.to_numpy().tolist()}).status == 200
        assert server.log.depth > 0  # answered while their log entries wait for the database
    finally:
        holder.rollback()
        holder.close()
    assert server.log.flush(timeout=30)
    assert cellops.predictions("churn")["request_id"].nunique() == 20
