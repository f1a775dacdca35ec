"""Shared fixtures: every test gets a fresh workspace in its own temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cellops
from cellops import workspaces as workspace_mod
from cellops.tracking import api


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run each test in tmp_path with no workspace or experiment carried over."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELLOPS_HOME", raising=False)
    monkeypatch.delenv("CELLOPS_EXPERIMENT", raising=False)
    workspace_mod._reset_for_tests()
    api._reset_for_tests()
    yield
    api._reset_for_tests()
    workspace_mod._reset_for_tests()


@pytest.fixture
def ws(tmp_path: Path) -> cellops.Workspace:
    """A brand-new workspace at tmp_path/.cellops."""
    return cellops.init_workspace(tmp_path)


@pytest.fixture
def db_path(ws: cellops.Workspace) -> Path:
    return ws.db_path


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (real process boundaries, real SQLite files)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    """``cellops demo`` run once per session, as a user runs it (the installed script)."""
    where = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "CELLOPS_HOME"}
    res = subprocess.run(["cellops", "demo"], cwd=where, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return {"folder": where / "cellops-demo", "stdout": res.stdout, "stderr": res.stderr}
