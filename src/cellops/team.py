"""Moving a workspace between engines: the embedded SQLite file and a team's PostgreSQL
store with object storage, either way (``cellops migrate``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import WorkspaceError
from .workspaces import DIRNAME, ENV_STORE, Workspace, init_workspace, use_workspace, workspace

__all__ = ["migrate_workspace"]


def migrate_workspace(target: str | os.PathLike[str], *, store: str | None = None,
                      artifacts: str | None = None,
                      source: Workspace | str | os.PathLike[str] | None = None,
                      progress: Any = None) -> dict[str, Any]:
    """Copy a whole workspace into a new one: a SQLite workspace into PostgreSQL and object
    storage, or a team's workspace back into a SQLite file.

    ``target`` is the new workspace's folder (as for :func:`init_workspace`); ``store`` and
    ``artifacts`` choose where its data lives (default: the embedded SQLite file and the
    local blob folder). ``source`` defaults to the current workspace. Every row keeps its
    id, the order it was written in and its history; every blob is copied and checked
    against its sha256; the copied audit log is verified. A target store that holds any
    data is refused: a copy never merges into or overwrites another workspace.

    Returns rows copied per table, blobs and bytes copied, and the audit verification.
    """
    from .artifacts import ArtifactStore
    from .registry.audit import verify_audit
    from .store.transfer import copy_store

    src = workspace(source)
    src.flush()
    p = Path(target).expanduser().resolve()
    if p.name != DIRNAME:
        p = p / DIRNAME
    if p.absolute() == src.path.absolute():
        raise WorkspaceError(f"{p} is the workspace being copied; name a new folder.")
    if os.environ.get(ENV_STORE) and not store:
        raise WorkspaceError(
            f"{ENV_STORE} is set, so the copy would land in that store too. Give the copy's "
            f"store with --store, or unset {ENV_STORE} and name the source with -w PATH.")
    dest = init_workspace(p, store=store, artifacts=artifacts, empty=True)
    rows = copy_store(src.store, dest.store, progress=progress)
    target_blobs: ArtifactStore = dest.artifacts
    copied = skipped = size = 0
    for sha in sorted(set(src.artifacts.blobs())):
        if target_blobs.exists(sha):
            skipped += 1
            continue
        with src.artifacts.open(sha) as fh:  # read verified; put hashes again
            got, n = target_blobs.put(fh)
        if got != sha:
            raise WorkspaceError(f"Blob {sha[:12]} changed while it was copied; run the copy again.")
        copied += 1
        size += n
    with use_workspace(dest):
        report = verify_audit()
    return {"workspace": str(dest.path), "store": dest.store.where if dest.store_url
            else str(dest.db_path), "artifacts": dest.artifact_root, "rows": rows,
            "blobs_copied": copied, "blobs_present": skipped, "bytes_copied": size,
            "audit": str(report), "audit_ok": bool(report.ok)}
