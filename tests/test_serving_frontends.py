"""Serving from its front ends: batch scoring and the CLI, %serve in a real shell, and the
REST route the sidebar polls, on a real Jupyter server."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from serving_kit import COLUMNS, Client, numeric_frame, register_numeric
from test_cli import cli
from test_magics import TestingShell, ip  # noqa: F401 - the ip fixture

import cellops
from cellops.errors import InvalidArgumentError


@pytest.fixture
def scored(ws, tmp_path):
    _, model, _ = register_numeric()
    X, _ = numeric_frame(n=1050, seed=3)
    X.insert(0, "customer", [f"c{i}" for i in range(len(X))])
    X.to_csv(tmp_path / "in.csv", index=False)
    X.to_parquet(tmp_path / "in.parquet", index=False)
    return model, X


# -- batch scoring ---------------------------------------------------------------------------

def test_a_csv_is_scored_chunk_by_chunk_and_each_chunk_logged(scored, tmp_path):
    model, X = scored
    seen = []
    result = cellops.predict_file("models:/churn@champion", tmp_path / "in.csv", tmp_path / "out.csv",
                                  chunk_rows=200, keep=["customer"], progress=seen.append)
    assert (result.rows, result.chunks, result.version, result.logged) == (1050, 6, 1, True)
    assert seen == [200, 400, 600, 800, 1000, 1050]
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["customer", "prediction"]
    assert list(out["customer"]) == list(X["customer"])
    assert out["prediction"].tolist() == model.predict(X[COLUMNS]).tolist()
    log = cellops.predictions("churn")
    assert set(log["source"]) == {"batch"} and len(log) == 1050
    assert sorted(log["request_id"].unique()) == [f"{result.batch_id}-{i:05d}" for i in range(6)]
    assert np.allclose(log[COLUMNS].to_numpy(), X[COLUMNS].to_numpy())
    assert "1,050 rows scored by churn version 1" in str(result)


def test_parquet_to_parquet_with_probabilities_and_no_log(scored, tmp_path):
    model, X = scored
    result = cellops.predict_file("models:/churn/1", tmp_path / "in.parquet", tmp_path / "p.parquet",
                                  chunk_rows=500, method="predict_proba", log=False)
    assert (result.rows, result.chunks, result.logged) == (1050, 3, False)
    out = pd.read_parquet(tmp_path / "p.parquet")
    assert list(out.columns) == ["proba_0", "proba_1"]
    assert np.allclose(out.to_numpy(), model.predict_proba(X[COLUMNS]))
    assert cellops.predictions("churn").empty


def test_a_bad_chunk_fails_with_its_rows_and_leaves_an_earlier_output_alone(scored, tmp_path):
    _, X = scored
    (tmp_path / "out.csv").write_text("prediction\nearlier\n")
    broken = X.copy()
    broken["age"] = broken["age"].astype(object)
    broken.loc[700, "age"] = "unknown"
    broken.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(InvalidArgumentError, match=r"Rows 600-799 of .*broken.csv: Column 'age' takes numbers"):
        cellops.predict_file("models:/churn/1", tmp_path / "broken.csv", tmp_path / "out.csv",
                             chunk_rows=200)
    assert (tmp_path / "out.csv").read_text() == "prediction\nearlier\n"
    assert not list(tmp_path.glob(".out.csv.*"))  # no partial file left behind


@pytest.mark.parametrize("kwargs, message", [
    ({"input": "in.txt"}, "must be a .csv or .parquet file"),
    ({"output": "out.json"}, "must be a .csv or .parquet file"),
    ({"input": "missing.csv"}, "does not exist"),
    ({"output": "in.csv"}, "must not be the input"),
    ({"chunk_rows": 0}, "positive integer"),
    ({"method": "transform"}, "has no 'transform'"),
    ({"keep": ["nope"]}, "keep names column"),
])
def test_batch_arguments_are_checked(scored, tmp_path, kwargs, message):
    (tmp_path / "in.txt").write_text("x")
    args = {"input": "in.csv", "output": "out.csv", **kwargs}
    with pytest.raises(InvalidArgumentError, match=message):
        cellops.predict_file("models:/churn/1", tmp_path / args.pop("input"),
                             tmp_path / args.pop("output"), **args)


# -- the CLI ---------------------------------------------------------------------------------

def test_cellops_predict_and_predictions_from_the_command_line(scored, tmp_path):
    res = cli("predict", "models:/churn@champion", "in.parquet", "-o", "out.parquet",
              "--chunk-rows", "400", "--keep", "customer", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "1,050 rows scored by churn version 1" in res.stdout
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 1050
    shown = cli("predictions", "churn", "-n", "1", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("batch") == 0  # columns, not source
    assert len(shown.stdout.strip().splitlines()) == 2 + 400  # header, rule, one chunk's rows
    as_json = json.loads(cli("predictions", "churn", "--json", "-n", "1", cwd=tmp_path).stdout)
    assert as_json[0]["model"] == "churn" and as_json[0]["source"] == "batch"
    exported = cli("predictions", "churn", "-o", "log.csv", cwd=tmp_path)
    assert exported.returncode == 0 and "1,050 row(s)" in exported.stdout
    assert set(COLUMNS) <= set(pd.read_csv(tmp_path / "log.csv").columns)
    assert "No predictions logged for other" in cli("predictions", "other", cwd=tmp_path).stdout
    bad = cli("predictions", "--since", "last week", cwd=tmp_path)
    assert bad.returncode != 0 and "ISO date or time" in bad.stderr
    bad = cli("predict", "models:/churn/9", "in.csv", "-o", "x.csv", cwd=tmp_path)
    assert bad.returncode != 0 and "version 9" in bad.stderr
    bad = cli("predict", "models:/churn/1", "in.csv", "-o", "x.txt", cwd=tmp_path)
    assert bad.returncode != 0 and ".csv or .parquet" in bad.stderr


def test_cellops_servers_lists_what_is_running(ws, tmp_path):
    register_numeric()
    assert "No scoring servers are running" in cli("servers", cwd=tmp_path).stdout
    server = cellops.serve("models:/churn@champion")
    try:
        listed = cli("servers", cwd=tmp_path).stdout
        assert "churn" in listed and server.url in listed
        as_json = json.loads(cli("servers", "--json", cwd=tmp_path).stdout)
        assert [(e["model"], e["version"], e["url"]) for e in as_json] == [("churn", 1, server.url)]
    finally:
        server.stop()


def test_cellops_serve_refuses_a_bad_uri_and_a_busy_port(ws, tmp_path):
    register_numeric()
    res = cli("serve", "models:/nope@x", cwd=tmp_path)
    assert res.returncode != 0 and "nope" in res.stderr
    server = cellops.serve("models:/churn/1")
    try:
        port = server.url.rsplit(":", 1)[1]
        res = cli("serve", "models:/churn/1", "--port", port, cwd=tmp_path)
        assert res.returncode != 0 and "Pick another port" in res.stderr
    finally:
        server.stop()


# -- %serve ----------------------------------------------------------------------------------

def test_serve_magic_starts_lists_and_stops_background_servers(ip, capsys):  # noqa: F811
    _, model, X = register_numeric()
    shown = []
    ip.display_pub.publish = lambda data, **kw: shown.append(data)
    server = ip.run_line_magic("serve", "models:/churn@champion --token tok")
    from cellops.magics.serving import _started

    assert _started == [server] and server.running
    assert server.url in server._repr_html_() and "Bearer tok" in server.curl()
    ip.run_cell("s = %serve --port 0 models:/churn/1")
    second = ip.user_ns["s"]
    assert second.running and second.url != server.url and len(_started) == 2
    ip.run_line_magic("serve", "--stop models:/churn/1")
    assert not second.running and _started == [server]
    reply = Client(server.url, token="tok").invocations({"instances": X.head(2).to_numpy().tolist()})
    assert reply.json == {"predictions": model.predict(X.head(2)).tolist()}
    ip.run_line_magic("serve", "--list")
    assert server.url in shown[-1]["text/html"]
    ip.run_line_magic("serve", "--stop")
    assert not server.running and "Stopped" in capsys.readouterr().out
    ip.run_line_magic("serve", "")
    assert "No server started by %serve is running" in capsys.readouterr().out
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="nope"):
        ip.run_line_magic("serve", "models:/nope/1")


def test_unloading_the_extension_stops_the_servers(ip):  # noqa: F811
    register_numeric()
    ip.display_pub.publish = lambda data, **kw: None
    ip.run_line_magic("serve", "models:/churn/1")
    from cellops.magics.serving import _started

    (server,) = _started
    ip.run_line_magic("unload_ext", "cellops")
    assert not server.running and not _started
    ip.run_line_magic("load_ext", "cellops")  # the fixture unloads it again


# -- REST ------------------------------------------------------------------------------------

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


async def test_the_serving_route_lists_running_servers_with_their_version(jp_fetch, jp_root_dir,
                                                                         monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    register_numeric()
    empty = json.loads((await jp_fetch("cellops", "api", "v1", "serving")).body)
    assert empty == {"endpoints": []}
    server = cellops.serve("models:/churn@champion")
    try:
        body = json.loads((await jp_fetch("cellops", "api", "v1", "serving")).body)
        (endpoint,) = body["endpoints"]
        assert (endpoint["model"], endpoint["version"], endpoint["url"]) == ("churn", 1, server.url)
        assert endpoint["uri"] == "models:/churn@champion" and endpoint["requests_total"] == 0
        assert isinstance(endpoint["started_at"], str) and endpoint["rate"] == 0
    finally:
        server.stop()
