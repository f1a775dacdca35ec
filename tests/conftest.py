"""Shared fixtures: every test gets a fresh workspace in its own temporary folder.

The modules in ``BOTH_ENGINES`` (and any test that names the ``store_engine`` fixture) run
every test twice: on the embedded SQLite file and on a team's PostgreSQL store (a fresh database of a throwaway cluster started once per session,
see ``engines_kit``), chosen the way a user chooses it, by ``CELLOPS_STORE_URL``, so the
code under test and any process it starts use it. A test that is about SQLite itself (its
file, its locks) is marked ``sqlite_only``.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cellops
from cellops import workspaces as workspace_mod
from cellops.tracking import api


BOTH_ENGINES = {"test_tracking", "test_search", "test_registry", "test_governance",
                "test_monitors", "test_serving", "test_features", "test_pipelines", "test_sweeps",
                "test_server", "test_registry_server", "test_monitoring_server", "test_sidebar_e2e"}
BOTH_ENGINES |= set(filter(None, os.environ.get("CELLOPS_TEST_BOTH_ENGINES", "").split(",")))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a test of the embedded SQLite file itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    named = "store_engine" in inspect.signature(metafunc.function).parameters
    if (module in BOTH_ENGINES or named) and "store_engine" in metafunc.fixturenames:
        metafunc.parametrize("store_engine", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's PostgreSQL server (started on first use) and a migrated template."""
    from engines_kit import PgCluster, temp_base

    cluster = PgCluster(temp_base())
    url = cluster.new_database()
    from cellops.store import open_store

    store = open_store(url)
    store.open()
    store.close()
    template = url.rsplit("/", 1)[1]
    cluster.psql(f"ALTER DATABASE {template} WITH IS_TEMPLATE true")
    cluster.template = template
    yield cluster
    cluster.destroy("immediate")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server for the session."""
    from engines_kit import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server():
    """Azurite's Blob service (Azure Storage's emulator) for the session."""
    from engines_kit import AzuriteServer

    server = AzuriteServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator (Google Cloud Storage's JSON API, in memory) for the session."""
    from engines_kit import GcsServer

    server = GcsServer()
    yield server
    server.stop()


@pytest.fixture
def store_engine(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, store_engine: str) -> str | None:
    """A fresh PostgreSQL database for this test when it runs on PostgreSQL, else None."""
    if store_engine != "postgresql":
        return None
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("a test of the embedded SQLite file")
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.new_database(template=cluster.template)
    yield url
    workspace_mod._reset_for_tests()
    try:
        cluster.psql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    except Exception:  # noqa: BLE001 - the cluster may be down in a fault test
        pass


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
              store_engine: str):
    """Run each test in tmp_path with no workspace or experiment carried over (on the
    store_engine of this parameter: see the module docstring)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CELLOPS_HOME", raising=False)
    monkeypatch.delenv("CELLOPS_EXPERIMENT", raising=False)
    monkeypatch.delenv("CELLOPS_STORE_URL", raising=False)
    monkeypatch.delenv("CELLOPS_ARTIFACTS_URL", raising=False)
    if store_engine == "postgresql":
        monkeypatch.setenv("CELLOPS_STORE_URL", request.getfixturevalue("pg_url"))
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
