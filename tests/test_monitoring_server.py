"""The monitoring REST routes in a real Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

import cellops
from serving_kit import numeric_frame, register_numeric

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


@pytest.fixture
def alerting(jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    register_numeric()
    X, y = numeric_frame(1000, seed=3)
    cellops.create_monitor("churn-drift", "churn@champion", X.assign(target=y), target="target",
                           window="500 rows")
    cur = numeric_frame(500, seed=4)[0]
    cur["income"] *= 2
    cur["score"] = cur["score"] ** 3
    cur.to_csv(jp_root_dir / "cur.csv", index=False)
    cellops.predict_file("models:/churn@champion", jp_root_dir / "cur.csv", jp_root_dir / "o.csv")
    cellops.flush()
    (result,) = cellops.run_monitors()
    return result


async def api(jp_fetch, *parts, method="GET", body=None):
    kw = {"method": method}
    if method == "POST":
        kw["body"] = json.dumps(body or {})
    response = await jp_fetch("cellops", "api", "v1", *parts, **kw)
    return json.loads(response.body)


async def test_overview_monitor_and_alert_routes(jp_fetch, alerting):
    data = await api(jp_fetch, "monitoring")
    (monitor,) = data["monitors"]
    assert (monitor["name"], monitor["state"], monitor["window"]) == ("churn-drift", "alerting",
                                                                      "500 rows")
    (window,) = monitor["results"]
    assert window["status"] == "failing" and window["drift_share"] >= 0.5
    assert isinstance(window["window_end"], int)
    (alert,) = data["alerts"]
    assert (alert["check"], alert["state"]) == ("drift", "open")
    one = await api(jp_fetch, "monitoring", "monitors", "churn-drift")
    assert one["spec"]["window"]["rows"] == 500 and len(one["alerts"]) == 1
    acked = await api(jp_fetch, "monitoring", "alerts", str(alert["id"]), "ack", method="POST",
                      body={"comment": "on it"})
    assert acked["state"] == "acknowledged" and acked["comment"] == "on it"
    assert acked["acknowledged_by"]
    with pytest.raises(HTTPClientError) as again:
        await api(jp_fetch, "monitoring", "alerts", str(alert["id"]), "ack", method="POST")
    assert again.value.code == 409
    with pytest.raises(HTTPClientError) as missing:
        await api(jp_fetch, "monitoring", "monitors", "nope")
    assert missing.value.code == 404
    with pytest.raises(HTTPClientError) as huge:  # issue #23: an OverflowError, a 500
        await api(jp_fetch, "monitoring", "alerts", str(10**23), "ack", method="POST")
    assert huge.value.code == 404 and "No alert #" in huge.value.response.body.decode()
    resolved = await api(jp_fetch, "monitoring", "alerts", str(alert["id"]), "resolve",
                         method="POST")
    assert resolved["state"] == "resolved"
    assert (await api(jp_fetch, "monitoring"))["alerts"] == []
