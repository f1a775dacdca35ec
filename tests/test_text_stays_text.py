"""Ids, names and params that look like numbers stay text everywhere a user reads them
(issue #27): a run id ``386e5045…`` was printed as ``∞`` and ``57139781…`` as
``57,139,781`` by ``cellops runs list``."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

import cellops
from cellops.display import format_number
from cellops.tracking import api

TRICKY = ["1e10abcd", "00012345", "386e5045", "57139781", "nan00000", "inf00000"]


@pytest.fixture
def tricky(ws) -> dict[str, str]:
    """Runs whose ids start with TRICKY (the rest of each id is digits too), named and
    with params that look like numbers; prefix -> full id."""
    ids = iter(prefix + "0" * 23 + str(i) for i, prefix in enumerate(TRICKY))
    cellops.set_experiment("1e3")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(ids))))
        for i, prefix in enumerate(TRICKY):
            with cellops.start_run(name=prefix, params={"code": prefix, "zip": "00501"}) as run:
                run.log_metric("acc", 0.5 + i / 100)
                out[prefix] = run.id
    cellops.flush()
    return out


@pytest.mark.parametrize("text", TRICKY + ["1e3", "00501", "NaN", "Infinity", "-1", "0x1F"])
def test_text_is_never_read_as_a_number(text):
    assert format_number(text) == text


def test_data_frames_and_records_keep_ids_names_and_params_as_text(tricky):
    df = cellops.search_runs()
    assert sorted(df["run_id"]) == sorted(tricky.values())
    assert all(isinstance(v, str) for v in df["run_id"])
    assert sorted(df["name"]) == sorted(TRICKY) and set(df["params.zip"]) == {"00501"}
    assert set(df["experiment"]) == {"1e3"}
    for prefix, run_id in tricky.items():
        run = cellops.get_run(prefix)  # an id prefix that looks like a number still finds it
        assert run.id == run_id and run.params == {"code": prefix, "zip": "00501"}
    html = cellops.get_run(tricky["386e5045"])._repr_html_()
    assert "386e5045" in html and "∞" not in html


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cellops.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_cli_prints_ids_names_and_params_as_they_are(tricky, tmp_path):
    res = cli("runs", "list", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[2:]
    assert sorted(r.split()[0] for r in rows) == sorted(TRICKY)
    assert sorted(r.split()[1] for r in rows) == sorted(TRICKY)
    assert "∞" not in res.stdout and "57,139,781" not in res.stdout and "e+" not in res.stdout
    assert {r.split()[2] for r in rows} == {"1e3"}

    listed = json.loads(cli("runs", "list", "--json", cwd=tmp_path).stdout)
    assert sorted(r["run_id"] for r in listed) == sorted(tricky.values())
    assert {r["params.zip"] for r in listed} == {"00501"}

    res = cli("runs", "show", "00012345", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"Run {tricky['00012345']}  00012345" in res.stdout
    assert "code  00012345" in res.stdout and "zip   00501" in res.stdout

    res = cli("runs", "compare", "386e5045", "57139781", "--all", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "386e5045" in res.stdout and "57139781" in res.stdout and "∞" not in res.stdout


def test_the_notebook_runs_table_shows_ids_as_text(tricky):
    from cellops.widgets.runs_table import runs_html

    html = runs_html(cellops.search_runs())
    for prefix in TRICKY:
        assert f"<code>{prefix}</code>" in html
    assert "∞" not in html and "57,139,781" not in html and ">501<" not in html
