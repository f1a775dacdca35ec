"""Content-addressed blob storage over fsspec.

A blob is stored once under ``ROOT/ab/abcdef…`` (its sha256), whatever logical
names runs give it. Writes go to ``ROOT/.tmp/<random>`` first and are renamed into
place, so a reader never sees half a blob and a crash leaves only a temp file,
which :meth:`ArtifactStore.gc` removes. ``ROOT`` is any fsspec URL: a local folder
(the default, ``.cellops/artifacts``), ``memory://…``, ``s3://bucket/prefix``, ….

Logical artifact names (what a run calls the file) are checked by
:func:`validate_name`: relative, ``/``-separated, no ``..``, no NUL.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from pathlib import Path
from typing import IO, Iterator

from .errors import ArtifactNameError, ArtifactNotFoundError

__all__ = ["ArtifactStore", "validate_name"]

_CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")


def validate_name(name: str) -> str:
    """Return the normalised logical name, or raise :class:`ArtifactNameError`."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactNameError(
            f"An artifact name must be a non-empty string, not {name!r}: pass name='model.skops'."
        )
    if "\x00" in name:
        raise ArtifactNameError(f"Artifact name {name!r} contains a NUL character; remove it.")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise ArtifactNameError(
            f"Artifact name {name!r} is absolute. Use a relative name such as 'plots/roc.png'; "
            "the file's location on disk is given separately."
        )
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactNameError(
            f"Artifact name {name!r} contains '..'. Names stay inside the run: use e.g. "
            "'data/train.csv'."
        )
    if not parts:
        raise ArtifactNameError(f"Artifact name {name!r} names no file.")
    return "/".join(parts)


class ArtifactStore:
    """Blobs keyed by sha256 under one fsspec root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        import fsspec

        self.url = str(root)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)
        self._local = getattr(self.fs, "protocol", None) in ("file", ("file", "local"))

    def __repr__(self) -> str:
        return f"<ArtifactStore {self.url!r}>"

    def path(self, sha256: str) -> str:
        if not _SHA.match(sha256 or ""):
            raise ArtifactNotFoundError(f"{sha256!r} is not a sha256 blob name.")
        return f"{self.root}/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.path(sha256)))

    def put(self, data: bytes | str | os.PathLike[str] | IO[bytes]) -> tuple[str, int]:
        """Store bytes, a local file path, or a binary file object; return (sha256, size)."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._put_stream(io.BytesIO(bytes(data)))
        if isinstance(data, (str, os.PathLike)):
            with open(data, "rb") as fh:
                return self._put_stream(fh)
        return self._put_stream(data)

    def _put_stream(self, stream: IO[bytes]) -> tuple[str, int]:
        tmp_dir = f"{self.root}/.tmp"
        self.fs.makedirs(tmp_dir, exist_ok=True)
        tmp = f"{tmp_dir}/{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            final = self.path(sha)
            if self.fs.exists(final):
                self.fs.rm(tmp)
            else:
                self.fs.makedirs(f"{self.root}/{sha[:2]}", exist_ok=True)
                if self._local:
                    os.replace(tmp, final)  # atomic on one filesystem
                else:
                    self.fs.mv(tmp, final)
        except BaseException:
            try:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        return sha, size

    def open(self, sha256: str) -> IO[bytes]:
        path = self.path(sha256)
        try:
            return self.fs.open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"Blob {sha256[:12]} is missing from {self.url}; it was deleted outside cellops. "
                "Re-log the artifact."
            ) from None

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as fh:
            return fh.read()

    def copy_to(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        with self.open(sha256) as src, open(tmp, "wb") as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
        os.replace(tmp, dest)
        return dest

    def blobs(self) -> Iterator[str]:
        """Every blob hash present under the root."""
        try:
            paths = self.fs.find(self.root)
        except FileNotFoundError:
            return
        for p in paths:
            name = p.rstrip("/").rsplit("/", 1)[-1]
            if "/.tmp/" not in p and _SHA.match(name):
                yield name

    def delete(self, sha256: str) -> int:
        path = self.path(sha256)
        try:
            size = int(self.fs.size(path) or 0)
            self.fs.rm(path)
        except FileNotFoundError:
            return 0
        return size

    def gc(self, referenced: set[str], *, dry_run: bool = False,
           tmp_age_s: float = 3600.0) -> tuple[list[str], int]:
        """Delete blobs not in ``referenced`` and stale temp files; return (hashes, bytes)."""
        removed, freed = [], 0
        for sha in list(self.blobs()):
            if sha in referenced:
                continue
            removed.append(sha)
            freed += int(self.fs.size(self.path(sha)) or 0) if dry_run else self.delete(sha)
        if not dry_run:
            self._clean_tmp(tmp_age_s)
        return removed, freed

    def _clean_tmp(self, age_s: float) -> None:
        tmp_dir = f"{self.root}/.tmp"
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            return
        cutoff = time.time() - age_s
        for entry in entries:
            mtime = entry.get("mtime") or entry.get("created")
            stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else mtime
            if stamp is None or float(stamp) < cutoff:
                try:
                    self.fs.rm(entry["name"])
                except FileNotFoundError:
                    pass
