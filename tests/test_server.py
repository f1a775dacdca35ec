"""The server extension's REST routes, on a real Jupyter server, against a seeded workspace."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

import cellops

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"cellops.server": True}}}


@pytest.fixture
def seeded(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A workspace in the server's root: two experiments, runs with metric histories, an artifact."""
    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    cellops.set_experiment("churn")
    ids = {}
    for i, model in enumerate(["logreg", "forest", "boosting"]):
        with cellops.start_run(name=model, params={"model": model, "depth": i + 2}) as run:
            for step in range(20):
                run.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            run.log_metric("accuracy", 0.8 + 0.05 * i)
            ids[model] = run.id
    with cellops.start_run(name="nan-run") as run:
        run.log_metric("accuracy", float("nan"))
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("print('hello')")]
        run.log_text(nbformat.writes(nb), "report.ipynb")
        run.log_text("a,b\n1,2\n", "data/table.csv")
        ids["nan-run"] = run.id
    cellops.set_experiment("other")
    with cellops.start_run(name="elsewhere") as run:
        ids["elsewhere"] = run.id
    cellops.flush()
    return ids


async def get(jp_fetch, *parts: str, **params: str) -> dict:
    response = await jp_fetch("cellops", "api", "v1", *parts, params=params)
    assert response.code == 200
    return json.loads(response.body)


async def error(jp_fetch, *parts: str, method: str = "GET", **kwargs) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("cellops", "api", "v1", *parts, method=method, **kwargs)
    body = info.value.response.body
    return info.value.code, (json.loads(body) if body else {})


async def test_the_extension_is_loaded_and_reports_its_workspace(jp_fetch, seeded, jp_root_dir):
    data = await get(jp_fetch, "workspace")
    assert data["exists"] and data["path"] == str(jp_root_dir / ".cellops")
    assert data["version"] == cellops.__version__


async def test_experiments_list_with_run_counts(jp_fetch, seeded):
    data = await get(jp_fetch, "experiments")
    counts = {e["name"]: e["run_count"] for e in data["experiments"]}
    assert counts["churn"] == 4 and counts["other"] == 1


async def test_runs_are_paginated_filtered_and_ordered(jp_fetch, seeded):
    page = await get(jp_fetch, "runs", experiment="churn", limit="2", offset="0",
                     order_by="metrics.accuracy DESC")
    assert page["total"] == 4 and page["limit"] == 2 and len(page["runs"]) == 2
    assert [r["name"] for r in page["runs"]] == ["boosting", "forest"]
    assert page["runs"][0]["params"] == {"model": "boosting", "depth": "4"}
    assert page["runs"][0]["metrics"]["accuracy"] == pytest.approx(0.9)
    rest = await get(jp_fetch, "runs", experiment="churn", limit="2", offset="2",
                     order_by="metrics.accuracy DESC")
    assert [r["name"] for r in rest["runs"]] == ["logreg", "nan-run"]  # NaN sorts last
    assert rest["runs"][1]["metrics"]["accuracy"] == "NaN"
    hits = await get(jp_fetch, "runs", filter="metrics.accuracy > 0.82 and params.model != 'forest'")
    assert [r["name"] for r in hits["runs"]] == ["boosting"] and hits["total"] == 1
    everything = await get(jp_fetch, "runs")
    assert everything["total"] == 5 and everything["runs"][0]["name"] == "elsewhere"  # newest first


async def test_ids_names_and_params_that_look_like_numbers_stay_text(jp_fetch, jp_root_dir,
                                                                     monkeypatch):
    from types import SimpleNamespace

    from cellops.tracking import api

    monkeypatch.chdir(jp_root_dir)
    cellops.init_workspace(jp_root_dir)
    ids = iter(["386e5045" + "0" * 24, "00012345" + "0" * 24])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(ids))))
        for name in ("1e10abcd", "57139781"):
            with cellops.start_run(name=name, params={"zip": "00501"}):
                pass
    page = await get(jp_fetch, "runs")
    assert sorted(r["run_id"] for r in page["runs"]) == ["00012345" + "0" * 24, "386e5045" + "0" * 24]
    assert sorted(r["name"] for r in page["runs"]) == ["1e10abcd", "57139781"]
    assert {r["params"]["zip"] for r in page["runs"]} == {"00501"}
    one = await get(jp_fetch, "runs", "00012345" + "0" * 24)
    assert one["run_id"] == "00012345" + "0" * 24 and one["name"] == "57139781"


@pytest.mark.parametrize("params, message", [
    ({"filter": "metrics.accuracy >>> 1"}, "expected a value"),
    ({"limit": "0"}, "'limit' must be an integer from 1 to 1000"),
    ({"limit": "lots"}, "'limit' must be an integer"),
    ({"offset": "-1"}, "'offset' must be an integer"),
    ({"order_by": "colour DESC"}, "unknown attribute 'colour'"),
    ({"experiment": "nope"}, "nope"),
])
async def test_bad_parameters_get_a_4xx_that_says_what_is_wrong(jp_fetch, seeded, params, message):
    code, body = await error(jp_fetch, "runs", params=params)
    assert code in (400, 404)
    assert message.lower() in body["message"].lower()
    assert (await get(jp_fetch, "runs"))["total"] == 5  # nothing stored was touched


async def test_one_run_has_params_tags_metric_histories_artifacts_and_source(jp_fetch, seeded):
    run = await get(jp_fetch, "runs", seeded["forest"], max_points="5")
    assert run["name"] == "forest" and run["status"] == "FINISHED"
    assert run["params"]["model"] == "forest"
    loss = run["metric_history"]["loss"]
    assert 5 <= len(loss) <= 6 and loss[0]["step"] == 0 and loss[-1]["step"] == 19  # thinned, last kept
    full = await get(jp_fetch, "runs", seeded["forest"][:8])  # a short id works too
    assert len(full["metric_history"]["loss"]) == 20
    assert "source" in full and "datasets" in full and "tags" in full
    other = await get(jp_fetch, "runs", seeded["nan-run"])
    assert {a["path"] for a in other["artifacts"]} == {"report.ipynb", "data/table.csv"}


async def test_unknown_runs_and_artifacts_are_404(jp_fetch, seeded):
    code, body = await error(jp_fetch, "runs", "deadbeefdeadbeef")
    assert code == 404 and "deadbeef" in body["message"]
    code, _ = await error(jp_fetch, "runs", seeded["forest"], "artifacts", "missing.txt")
    assert code == 404


async def test_artifacts_download_with_their_bytes(jp_fetch, seeded):
    response = await jp_fetch("cellops", "api", "v1", "runs", seeded["nan-run"], "artifacts", "data",
                              "table.csv")
    assert response.body == b"a,b\n1,2\n"
    assert "table.csv" in response.headers["Content-Disposition"]


async def test_a_notebook_artifact_is_copied_under_the_root_to_open(jp_fetch, seeded, jp_root_dir):
    response = await jp_fetch("cellops", "api", "v1", "runs", seeded["nan-run"], "artifacts",
                              "report.ipynb", "open", method="POST", body=b"")
    path = json.loads(response.body)["path"]
    assert path == f"cellops-notebooks/nan-run-{seeded['nan-run'][:8]}-report.ipynb"
    assert "print('hello')" in (jp_root_dir / path).read_text()
    code, body = await error(jp_fetch, "runs", seeded["nan-run"], "artifacts", "data/table.csv",
                             "open", method="POST", body=b"")
    assert code == 400 and "Only notebooks" in body["message"]


async def test_requests_without_the_token_are_refused(jp_fetch, seeded):
    for parts in (("runs",), ("experiments",), ("pipelines",), ("workspace",),
                  ("runs", seeded["forest"]),
                  ("runs", seeded["nan-run"], "artifacts", "data", "table.csv")):
        code, _ = await error(jp_fetch, *parts, headers={"Authorization": ""})
        assert code == 403, parts
    code, _ = await error(jp_fetch, "runs", seeded["nan-run"], "artifacts", "report.ipynb", "open",
                          method="POST", body=b"", headers={"Authorization": ""})
    assert code == 403


async def test_a_folder_without_a_workspace_says_how_to_get_one(jp_fetch, jp_root_dir):
    data = await get(jp_fetch, "workspace")
    assert data["exists"] is False
    code, body = await error(jp_fetch, "runs")
    assert code == 404 and body["reason"] == "no workspace" and "cellops init" in body["message"]
    assert not (jp_root_dir / ".cellops").exists()  # looking does not create one


async def test_pipeline_runs_list_each_step_with_its_status(jp_fetch, jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    for name, code in (("ok", "x = 1"), ("bad", "raise ValueError('no good')")):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, jp_root_dir / f"{name}.ipynb")
    (jp_root_dir / "p.yaml").write_text(
        "name: demo\nsteps:\n  - name: first\n    notebook: ok.ipynb\n"
        "  - name: second\n    notebook: bad.ipynb\n    needs: [first]\n"
        "  - name: third\n    notebook: ok.ipynb\n    needs: [second]\n")
    cellops.run_pipeline(jp_root_dir / "p.yaml", progress=None)
    cellops.run_pipeline(jp_root_dir / "p.yaml", progress=None)
    data = await get(jp_fetch, "pipelines")
    assert data["total"] == 2
    newest = data["pipelines"][0]
    assert newest["status"] == "FAILED"
    assert [(s["name"], s["status"]) for s in newest["steps"]] == \
        [("first", "cached"), ("second", "failed"), ("third", "skipped")]
    failed = newest["steps"][1]
    assert "no good" in failed["error"] and failed["run_id"]
    response = await jp_fetch("cellops", "api", "v1", "runs", failed["run_id"], "artifacts",
                              "output.ipynb", "open", method="POST", body=b"")
    opened = jp_root_dir / json.loads(response.body)["path"]
    assert "ValueError" in opened.read_text()  # the executed notebook, with papermill's error



async def test_a_cookie_session_must_send_the_xsrf_token_to_post(jp_fetch, seeded, jp_auth_header):
    """The browser's path: a login cookie, not a token header. Jupyter's XSRF check guards
    the one POST route; a request with the matching _xsrf cookie and header goes through."""
    token = jp_auth_header["Authorization"].split()[-1]
    login = await jp_fetch("cellops", "api", "v1", "workspace", params={"token": token},
                           headers={"Authorization": ""})
    cookies = [c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")]
    session = "; ".join(c for c in cookies if c.startswith("username-"))
    assert session, login.headers
    runs = await jp_fetch("cellops", "api", "v1", "runs", headers={"Authorization": "",
                                                                   "Cookie": session})
    assert json.loads(runs.body)["total"] == 5  # GETs with the cookie alone are fine
    route = ("runs", seeded["nan-run"], "artifacts", "report.ipynb", "open")
    code, _ = await error(jp_fetch, *route, method="POST", body=b"",
                          headers={"Authorization": "", "Cookie": session})
    assert code == 403
    response = await jp_fetch("cellops", "api", "v1", *route, method="POST", body=b"",
                              headers={"Authorization": "", "Cookie": f"{session}; _xsrf=k3y",
                                       "X-XSRFToken": "k3y"})
    assert json.loads(response.body)["path"].endswith("report.ipynb")


async def test_cellops_home_names_the_workspace_the_server_shows(jp_fetch, jp_root_dir, tmp_path,
                                                                  monkeypatch):
    home = tmp_path / "shared-workspace"
    monkeypatch.setenv("CELLOPS_HOME", str(home))  # the workspace folder itself
    cellops.init_workspace()
    with cellops.start_run(name="from-home", experiment="shared"):
        pass
    data = await get(jp_fetch, "workspace")
    assert data["exists"] and data["path"] == str(home)
    page = await get(jp_fetch, "runs")
    assert [r["name"] for r in page["runs"]] == ["from-home"]
    assert not (jp_root_dir / ".cellops").exists()


async def test_saving_a_notebook_drops_the_png_copies_of_cellops_charts(jp_fetch, jp_root_dir):
    """plotly's JupyterLab renderer adds a PNG of every figure it draws to the output; on
    save, the server drops it from cellops charts (their static copy is the SVG beside
    it) and leaves other outputs, and a chart the user asked a PNG of, as they are."""
    import base64

    from IPython.core.formatters import DisplayFormatter

    from cellops import charts

    chart = charts.line_chart({"loss": {"a": [(0, 1.0), (1, 0.5), (2, 0.25)]}})
    bundle, metadata = DisplayFormatter().format(chart)
    assert metadata == {"cellops": {"chart": chart.title}}
    picture = base64.b64encode(b"\x89PNG" + b"\0" * 60_000).decode()

    def output(data: dict, meta: dict) -> dict:
        return nbformat.v4.new_output("display_data", data={**data, "image/png": picture},
                                      metadata=meta)

    theirs = {"application/vnd.plotly.v1+json": {"data": [], "layout": {}}, "text/plain": "x"}
    asked = {"cellops": {"chart": "loss", "png": True}}
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("chart", outputs=[output(bundle, metadata)]),
                nbformat.v4.new_code_cell("fig", outputs=[output(theirs, {})]),
                nbformat.v4.new_code_cell("kept", outputs=[output(bundle, asked)])]
    body = json.dumps({"type": "notebook", "format": "json", "content": nb})
    response = await jp_fetch("api", "contents", "charts.ipynb", method="PUT", body=body)
    assert response.code in (200, 201)
    saved = nbformat.read(jp_root_dir / "charts.ipynb", as_version=4)
    mine, other, kept = (c.outputs[0] for c in saved.cells)
    assert "image/png" not in mine.data
    assert mine.data["text/html"] == chart.svg and charts.PLOTLY_MIME in mine.data
    assert other.data["image/png"] == picture  # not ours: untouched
    assert kept.data["image/png"] == picture  # CELLOPS_CHART_PNG=1 in the kernel
