"""The feature store's front ends (issue #24): the CLI, %features and the REST routes on a
real Jupyter server, over a real workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tornado.httpclient import HTTPClientError

import cellops

pytest_plugins = ["pytest_jupyter.jupyter_server"]
T0 = pd.Timestamp("2024-01-01")


def seed(root: Path) -> None:
    cellops.init_workspace(root)
    frame = pd.DataFrame({"customer_id": [1, 2, 1, 3], "ts": [T0, T0, T0 + pd.Timedelta("1h"), T0],
                          "spend": [10.0, 20.0, 11.0, None], "visits": [1, 2, 3, 4]})
    cellops.register_feature_view("customer", frame, entities="customer_id", timestamp="ts",
                                  ttl="2d", description="What customers spend")
    cellops.materialize("customer", end=T0 + pd.Timedelta("2h"))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cellops", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_cli_lists_shows_materializes_and_gets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seed(tmp_path)
    listed = cli("features", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "customer" in listed.stdout and "2d" in listed.stdout
    as_json = json.loads(cli("features", "list", "--json", cwd=tmp_path).stdout)
    assert as_json[0]["name"] == "customer" and as_json[0]["features"] == {"spend": "float64",
                                                                         "visits": "int64"}
    shown = cli("features", "show", "customer", cwd=tmp_path)
    assert "What customers spend" in shown.stdout and "Online: 3 entities" in shown.stdout
    assert "spend" in shown.stdout and "2024-01-01 01:00 UTC" in shown.stdout  # freshness
    done = json.loads(cli("features", "materialize", "--end", "2024-01-02", "--json",
                          cwd=tmp_path).stdout)
    assert done[0]["incremental"] and done[0]["end"].startswith("2024-01-02")
    got = json.loads(cli("features", "get", "customer:*", "--entity", "customer_id=1",
                         "--entity", "customer_id=9", "--json", cwd=tmp_path).stdout)
    assert got == {"customer_id": ["1", "9"], "spend": [11.0, None], "visits": [3, None]}
    table = cli("features", "get", "customer:spend", "--entity", "customer_id=2", cwd=tmp_path)
    assert "20" in table.stdout
    # Errors: one line, what to do next, exit 1 (2 for usage); nothing changed.
    for args, message in ((["show", "nope"], "No feature view 'nope'. Registered views: customer."),
                          (["get", "customer:nope", "--entity", "customer_id=1"], "has no feature 'nope'"),
                          (["get", "customer:spend", "--entity", "customer_id=x"], "integer key"),
                          (["materialize", "--end", "soon"], "end is a time")):
        res = cli("features", *args, cwd=tmp_path)
        assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert cli("features", "get", "customer:spend", "--entity", "customer_id",
               cwd=tmp_path).returncode == 2
    assert [v.version for v in cellops.feature_view_versions("customer")] == [1]


@pytest.fixture
def shell(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.chdir(tmp_path)
    config = Config()
    config.HistoryManager.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "cellops")
    yield ip
    ip.run_line_magic("unload_ext", "cellops")
    InteractiveShell.clear_instance()  # other test files make their own shells


def test_the_features_magic_lists_and_shows_a_view(tmp_path, shell):
    from IPython.core.error import UsageError

    empty = shell.run_line_magic("features", "")
    assert "No feature views yet" in empty._repr_html_()
    seed(tmp_path)
    listed = shell.run_line_magic("features", "")._repr_html_()
    assert "customer" in listed and "spend, visits" in listed
    shown = shell.run_line_magic("features", "customer --sample 2")
    page = shown._repr_html_()
    assert "What customers spend" in page and "Online: 3 entities" in page
    assert "Latest 2 rows" in page and "2024-01-01 01:00 UTC" in page
    with pytest.raises(UsageError, match="No feature view 'nope'"):
        shell.run_line_magic("features", "nope")


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


async def test_the_rest_routes_serve_views_and_materialize(jp_fetch, jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    seed(jp_root_dir)
    overview = json.loads((await jp_fetch("cellops", "api", "v1", "features")).body)
    (view,) = overview["views"]
    assert view["name"] == "customer" and view["online"]["entities"] == 3 and view["versions"] == 1
    one = json.loads((await jp_fetch("cellops", "api", "v1", "features", "customer",
                                     params={"sample": "2"})).body)
    assert one["sample"]["columns"][:2] == ["customer_id", "ts"] and len(one["sample"]["rows"]) == 2
    assert one["freshness"]["spend"].startswith("2024-01-01T01:00")
    done = json.loads((await jp_fetch("cellops", "api", "v1", "features", "customer", "materialize",
                                      method="POST", body=json.dumps({"end": "2024-01-05"}))).body)
    assert done["incremental"] and done["rows_expired"] == 3  # older than the 2-day TTL
    for parts, code in ((("features", "nope"), 404), (("features", "bad:name"), 404)):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("cellops", "api", "v1", *parts)
        assert info.value.code == code
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("cellops", "api", "v1", "features", "customer", "materialize",
                       method="POST", body="not json")
    assert info.value.code == 400
