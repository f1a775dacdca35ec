"""The workspace: a ``.cellops/`` folder holding ``cellops.db`` and ``artifacts/``.

A workspace is found like ``.git``: by walking up from the current directory to
the first folder that contains ``.cellops/``. ``CELLOPS_HOME`` overrides the
search and names the workspace folder itself (the one holding the database).
When neither finds one, first use creates ``.cellops/`` in the current directory.

Settings live in ``.cellops/config.json`` (what ``cellops init`` writes) and, for a team
that keeps them by hand or in git, ``.cellops/config.toml`` (the same names, as TOML keys);
a setting may be in either file, and one set to different values in both is an error, never
a silent choice. Two choose where a workspace keeps its data:

- ``store_url``: a ``postgresql://user@host:5432/db`` URL for a team's workspace, whose
  metadata lives in PostgreSQL instead of ``.cellops/cellops.db``
  (``CELLOPS_STORE_URL`` overrides it);
- ``artifact_root``: an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``az://…``) where
  artifact blobs go instead of ``.cellops/artifacts`` (``CELLOPS_ARTIFACTS_URL``
  overrides it).

Credentials never go in the config: PostgreSQL's come from ``PGPASSWORD``/``~/.pgpass``
(or the URL a user keeps in the environment), object storage's from each backend's own
environment and files (``AWS_*``, ``~/.aws``, ...).
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import WorkspaceError

if TYPE_CHECKING:
    from .artifacts import ArtifactStore
    from .store import Store
    from .store.batch import BatchWriter

__all__ = ["Workspace", "find_workspace", "init_workspace", "use_workspace", "workspace",
           "workspace_folder"]

DIRNAME = ".cellops"
DB_NAME = "cellops.db"
CONFIG_NAME = "config.json"
TOML_NAME = "config.toml"
ENV_HOME = "CELLOPS_HOME"
ENV_STORE = "CELLOPS_STORE_URL"
ENV_ARTIFACTS = "CELLOPS_ARTIFACTS_URL"

_lock = threading.RLock()
_open: dict[Path, Workspace] = {}
_using: ContextVar[Workspace | None] = ContextVar("cellops_workspace", default=None)


class Workspace:
    """An opened workspace. Get one with :func:`workspace`; it is cached per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db_path = path / DB_NAME
        self.config: dict[str, Any] = _read_config(path)
        self._store: Store | None = None
        self._artifacts: ArtifactStore | None = None
        self._buffer: BatchWriter | None = None
        self._lock = threading.RLock()
        # Per-process caches of things that never change once written.
        self.experiment_ids: dict[str, int] = {}
        self.known_blobs: set[str] = set()
        self.stored_environments: set[str] = set()

    def __repr__(self) -> str:
        return f"<Workspace {str(self.path)!r}>"

    @property
    def store_url(self) -> str | None:
        """The PostgreSQL URL of a team's workspace; None for the embedded SQLite file."""
        return os.environ.get(ENV_STORE) or self.config.get("store_url") or None

    @property
    def artifact_root(self) -> str:
        """Where artifact blobs live: a folder, or an fsspec URL."""
        return (os.environ.get(ENV_ARTIFACTS) or self.config.get("artifact_root")
                or str(self.path / "artifacts"))

    def shared_locations(self) -> dict[str, str | None]:
        """Where a team's workspace keeps its data, for a process that may run on another
        host (a Dask worker's kernel): ``store_url`` and ``artifacts_url``, None for the
        embedded defaults (which only this machine's folder holds)."""
        return {"store_url": self.store_url,
                "artifacts_url": os.environ.get(ENV_ARTIFACTS) or self.config.get("artifact_root")}

    @property
    def store(self) -> Store:
        """The metadata store (opened, and migrated, on first use)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from .store import Store, open_store

                    url = self.store_url
                    if url:
                        self._store = open_store(url, retry_budget_s=float(
                            self._positive("store_retry_seconds", 120.0)))
                    else:
                        self._store = Store(
                            self.db_path, synchronous=self.config.get("sqlite_synchronous", "FULL")
                        )
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed blob store."""
        if self._artifacts is None:
            with self._lock:
                if self._artifacts is None:
                    from .artifacts import ArtifactStore

                    self._artifacts = ArtifactStore(self.artifact_root)
        return self._artifacts

    @property
    def buffer(self) -> BatchWriter:
        """The process-wide writer that batches metric writes to this workspace.

        Its thresholds are the settings ``metric_flush_rows`` (default 5,000 points) and
        ``metric_flush_seconds`` (default 2 s after the oldest buffered point).
        """
        if self._buffer is None:
            with self._lock:
                if self._buffer is None:
                    self._buffer = self.store.metrics.writer(
                        max_rows=int(self._positive("metric_flush_rows", 5000)),
                        max_age_s=float(self._positive("metric_flush_seconds", 2.0)))
        return self._buffer

    def _positive(self, name: str, default: float) -> float:
        value = self.config.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise WorkspaceError(
                f"{name} in {self.setting_file(name)} must be a positive number, not {value!r}.")
        return value

    def setting_file(self, name: str) -> Path:
        """The file that holds (or would hold) the setting ``name``: ``config.toml`` when
        it sets it, else ``config.json`` — what an error about a setting names."""
        toml = self.path / TOML_NAME
        return toml if name in _read_toml(toml) else self.path / CONFIG_NAME

    def flush(self) -> None:
        """Write buffered metrics to the database."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Flush and close the database connection (it reopens on next use)."""
        self.flush()
        if self._store is not None:
            self._store.close()


def _read_config(path: Path) -> dict[str, Any]:
    """The workspace's settings: ``config.json`` and ``config.toml`` together. A setting
    both files hold with different values is refused, naming both."""
    data = _read_json(path / CONFIG_NAME)
    toml = _read_toml(path / TOML_NAME)
    for key in sorted(data.keys() & toml.keys()):
        if data[key] != toml[key]:
            raise WorkspaceError(
                f"{key} is {toml[key]!r} in {path / TOML_NAME} but {data[key]!r} in "
                f"{path / CONFIG_NAME}. Keep it in one of the two files (delete it from the "
                "other); cellops will not guess which one you meant.")
    return {**data, **toml}


def _read_json(cfg: Path) -> dict[str, Any]:
    try:
        text = cfg.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WorkspaceError(f"Cannot read {cfg}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WorkspaceError(
            f"{cfg} is not valid JSON ({exc}). Fix or delete the file; it only holds settings."
        ) from exc
    if not isinstance(data, dict):
        raise WorkspaceError(f"{cfg} must hold a JSON object of settings, not {type(data).__name__}.")
    return data


def _read_toml(cfg: Path) -> dict[str, Any]:
    try:
        raw = cfg.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WorkspaceError(f"Cannot read {cfg}: {exc}") from exc
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WorkspaceError(
            f"{cfg} is not valid TOML ({exc}). Fix or delete the file; it only holds settings "
            "(store_url = \"postgresql://...\", one `name = value` a line)."
        ) from exc


def find_workspace(start: str | os.PathLike[str] | None = None, *,
                   existing: bool = False) -> Path | None:
    """Return the workspace folder that applies to ``start`` (default: cwd), or None.

    ``CELLOPS_HOME`` wins when set; otherwise the first ``.cellops/`` found walking up.
    With ``existing``, only a folder that holds a database counts. Nothing is created.
    """
    home = os.environ.get(ENV_HOME)
    if home:
        found: Path | None = Path(home).expanduser().absolute()
    else:
        here = Path(start if start is not None else os.getcwd()).absolute()
        found = next((f / DIRNAME for f in (here, *here.parents) if (f / DIRNAME).is_dir()), None)
    if found is not None and existing and not _holds_workspace(found):
        return None
    return found


def _holds_workspace(folder: Path, *, env: bool = True) -> bool:
    """Whether ``folder`` is a workspace: it holds the SQLite database, or the settings of
    one whose store is elsewhere (``store_url``; with ``env``, ``CELLOPS_STORE_URL`` makes
    any existing folder one)."""
    if (folder / DB_NAME).is_file():
        return True
    if not folder.is_dir():
        return False
    if env and os.environ.get(ENV_STORE):
        return True
    try:
        return bool(_read_config(folder).get("store_url"))
    except WorkspaceError:
        return False


def workspace_folder(path: str | os.PathLike[str]) -> Path | None:
    """The existing workspace ``path`` names: ``path`` itself when it holds a database, or
    the ``.cellops`` folder inside it; None otherwise. No search, no environment: what a
    user names on purpose (``cellops -w PATH``)."""
    here = Path(path).expanduser().absolute()
    for candidate in (here, here / DIRNAME):
        if _holds_workspace(candidate, env=False):
            return candidate
    if os.environ.get(ENV_STORE):  # the store is elsewhere: a .cellops folder is enough
        for candidate in (here, here / DIRNAME):
            if candidate.name == DIRNAME and candidate.is_dir():
                return candidate
    return None


def _create(path: Path) -> None:
    try:
        (path / "artifacts").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(
            f"Cannot create the workspace folder {path}: {exc}. "
            f"Set {ENV_HOME} to a writable folder or run 'cellops init' somewhere writable."
        ) from exc
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} exists and is not a folder; remove it or set {ENV_HOME}.")


def _get(path: Path) -> Workspace:
    path = path.absolute()
    with _lock:
        ws = _open.get(path)
        if ws is None:
            ws = _open[path] = Workspace(path)
        return ws


_found: dict[tuple[str, str | None], tuple[Path, str]] = {}  # (cwd, home) -> folder, db


def workspace(path: Workspace | str | os.PathLike[str] | None = None) -> Workspace:
    """Return the workspace to use, creating it on first use.

    ``path`` names a workspace folder (the ``.cellops`` folder itself) or a project
    folder that contains one (a :class:`Workspace` is returned as it is). Without it, :func:`find_workspace` decides, and a
    ``.cellops/`` is created in the current directory when none is found.
    """
    if isinstance(path, Workspace):
        return path
    if path is None and _using.get() is not None:
        return _using.get()  # type: ignore[return-value]
    if path is not None:
        p = Path(path).expanduser().absolute()
        if p.name != DIRNAME and (p / DIRNAME).is_dir():
            p = p / DIRNAME
    else:
        # A folder that nothing nearer can hide (CELLOPS_HOME, or the one in this
        # directory) is remembered: a run started in a loop looks for it once, not once a
        # run. One stat confirms the database is still there.
        cwd, home = os.getcwd(), os.environ.get(ENV_HOME)
        known = _found.get((cwd, home))
        if known is not None and (os.path.exists(known[1]) or _holds_workspace(known[0])):
            return _get(known[0])
        found = find_workspace()
        p = found if found is not None else Path(cwd).absolute() / DIRNAME
        if home or p.parent == Path(cwd).absolute():
            _found[(cwd, home)] = (p, str(p / DB_NAME))
    if not _holds_workspace(p):
        _create(p)
    return _get(p)


@contextmanager
def use_workspace(path: Workspace | str | os.PathLike[str]) -> Iterator[Workspace]:
    """Make ``path`` the workspace every cellops call in this block (and this thread or
    task) uses, whatever the current directory or ``CELLOPS_HOME`` say — what the Jupyter
    server does for each request."""
    ws = workspace(path)
    token = _using.set(ws)
    try:
        yield ws
    finally:
        _using.reset(token)


def init_workspace(path: str | os.PathLike[str] | None = None, *, store: str | None = None,
                   artifacts: str | None = None, empty: bool = False) -> Workspace:
    """Create (or open) a workspace and its database.

    ``path`` is a project folder (``.cellops/`` is created inside it) or a folder
    named ``.cellops``; default: ``CELLOPS_HOME`` or the current directory.

    ``store`` (a ``postgresql://user@host:5432/db`` URL) keeps the metadata in PostgreSQL
    and ``artifacts`` (an fsspec URL such as ``s3://bucket/prefix``) the blobs in object
    storage: a team's workspace. Both are checked (connected to, migrated, written to)
    before they are saved in ``config.json``; a URL holding a password is refused (use
    ``PGPASSWORD`` or ``~/.pgpass``: credentials never go in the workspace).

    With ``empty``, a store that already holds data is refused before anything is created
    (what a copy into a new workspace needs).
    """
    if path is None:
        home = os.environ.get(ENV_HOME)
        p = Path(home).expanduser().absolute() if home else Path(os.getcwd()).absolute() / DIRNAME
    else:
        p = Path(path).expanduser().absolute()
        if p.name != DIRNAME:
            p = p / DIRNAME
    # Refused before anything is connected to or created.
    _refuse_toml_clash(p, {k: v for k, v in (("store_url", store), ("artifact_root", artifacts))
                           if v})
    settings = _checked_settings(store, artifacts) if store or artifacts else None
    if empty:
        _refuse_data(store, p)
    _create(p)
    if settings:
        _save_settings(p, settings)
    _found.clear()  # a workspace nearer than one found before now wins
    ws = _get(p)
    ws.store.open()  # creates and migrates the database now, not at the first write
    return ws


def _checked_settings(store: str | None, artifacts: str | None) -> dict[str, str]:
    """``store`` and ``artifacts`` as config settings, once each was used for real."""
    from urllib.parse import urlsplit

    settings: dict[str, str] = {}
    if store:
        parts = urlsplit(store)
        if parts.scheme not in ("postgresql", "postgres"):
            raise WorkspaceError(
                f"--store {store!r} is not a PostgreSQL URL; use "
                "postgresql://user@host:5432/dbname (leave it out for the embedded SQLite file).")
        if parts.password:
            raise WorkspaceError(
                "The store URL holds a password, and the workspace config is no place for one. "
                "Give the URL without it and put the password in PGPASSWORD or ~/.pgpass.")
        from .store import open_store

        probe = open_store(store, retry_budget_s=5.0)
        try:
            probe.open()  # connects and migrates: a wrong URL fails here, not at first use
        finally:
            probe.close()
        settings["store_url"] = store
    if artifacts:
        from .artifacts import ArtifactStore

        ArtifactStore(artifacts).check_writable()
        settings["artifact_root"] = artifacts
    return settings


def _refuse_data(store: str | None, folder: Path) -> None:
    """Raise unless the store ``store`` (or the SQLite file in ``folder``) holds no data."""
    from .store import open_store
    from .store.transfer import is_empty

    if not store and not (folder / DB_NAME).exists():
        return
    probe = open_store(store or folder / DB_NAME)
    try:
        empty = is_empty(probe)
    finally:
        probe.close()
    if not empty:
        raise WorkspaceError(
            f"The target store {probe.where if store else folder / DB_NAME} already holds a "
            "workspace's data; use an empty database or a new folder (a copy never merges "
            "or overwrites).")


def _forget(path: Path) -> None:
    """Close and forget the opened workspace at ``path`` (its settings changed)."""
    with _lock:
        old = _open.pop(path.absolute(), None)
    if old is not None:
        old.close()


def _save_settings(path: Path, settings: dict[str, str]) -> None:
    """Merge ``settings`` into ``path``'s config.json (written whole, then renamed). A
    setting that config.toml holds with another value is refused: that file is the
    team's to edit, and cellops never rewrites it."""
    toml = _refuse_toml_clash(path, settings)
    current = _read_json(path / CONFIG_NAME)
    current.update((k, v) for k, v in settings.items() if k not in toml)
    cfg = path / CONFIG_NAME
    tmp = cfg.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, cfg)
    _forget(path)


def _refuse_toml_clash(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Raise if config.toml in ``path`` sets one of ``settings`` to another value; return
    what config.toml holds."""
    toml = _read_toml(path / TOML_NAME)
    for key, value in settings.items():
        if key in toml and toml[key] != value:
            raise WorkspaceError(
                f"{key} is {toml[key]!r} in {path / TOML_NAME}; cellops does not rewrite that "
                f"file. Change it there to {value!r}, or delete it there and run this again.")
    return toml


def _reset_for_tests() -> None:
    """Close and forget every opened workspace (used by the test suite)."""
    _found.clear()
    with _lock:
        for ws in _open.values():
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - best effort on teardown
                pass
        _open.clear()

