"""Content-addressed blob storage over fsspec.

A blob is stored once under ``ROOT/ab/abcdef…`` (its sha256), whatever logical
names runs give it. Writes go to ``ROOT/.tmp/<random>`` first and are renamed into
place (on object storage: copied to the final key, then the temp key deleted), so a
reader never sees half a blob and a crash leaves only a temp file, which
:meth:`ArtifactStore.gc` removes. Reads check the bytes against the name: a blob
altered or truncated in storage raises :class:`~cellops.errors.ArtifactCorruptError`
instead of handing back wrong bytes. ``ROOT`` is any fsspec URL: a local folder
(the default, ``.cellops/artifacts``), ``memory://…``, ``s3://bucket/prefix``,
``gs://…``, ``az://…``; credentials come from each backend's environment and config
files, never from the workspace.

Logical artifact names (what a run calls the file) are checked by
:func:`validate_name`: relative, ``/``-separated, no ``..``, no control characters.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from .errors import ArtifactCorruptError, ArtifactNameError, ArtifactNotFoundError

__all__ = ["ArtifactStore", "validate_name"]

_CHUNK = 1 << 20
_SHA = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME_LENGTH = 1024
TMP_GRACE_S = 3600.0  # gc leaves younger temp files and unreferenced blobs alone


def validate_name(name: str) -> str:
    """Return the normalised logical name, or raise :class:`ArtifactNameError`."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactNameError(
            f"An artifact name must be a non-empty string, not {name!r}: pass name='model.skops'."
        )
    bad = _CONTROL.search(name)
    if bad:
        raise ArtifactNameError(
            f"Artifact name {name!r} contains the control character {bad.group()!r} at "
            f"position {bad.start()}; names are shown in tables and sent as file names, so use "
            "printable characters only, e.g. 'plots/roc.png'."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ArtifactNameError(
            f"Artifact name {name[:40]!r}... is {len(name)} characters; the limit is "
            f"{MAX_NAME_LENGTH}."
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ArtifactNameError(
            f"Artifact name {name!r} is not valid Unicode text (it holds a lone surrogate); "
            "decode the name properly first."
        ) from None
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


# fsspec schemes whose backend is an optional extra of cellops (pyproject.toml).
BACKEND_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure",
                  "abfs": "azure", "abfss": "azure"}

# Where each object store's fsspec backend finds credentials (what to check when a write fails).
_CREDENTIALS = {
    "s3": "the bucket and AWS credentials (AWS_* variables or ~/.aws; AWS_ENDPOINT_URL for "
          "MinIO and other S3-compatible servers)",
    "gcs": "the bucket and Google credentials (GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth "
           "application-default login`; STORAGE_EMULATOR_HOST for an emulator)",
    "azure": "the container and Azure credentials (AZURE_STORAGE_CONNECTION_STRING, or "
             "AZURE_STORAGE_ACCOUNT_NAME with a key, SAS token or service principal)",
}


class ArtifactStore:
    """Blobs keyed by sha256 under one fsspec root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        import fsspec

        from .errors import WorkspaceError

        self.url = str(root)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except ImportError as exc:  # the backend's package is not installed
            scheme = self.url.split("://", 1)[0]
            extra = BACKEND_EXTRAS.get(scheme)
            hint = (f'pip install "cellops[{extra}]"' if extra else
                    "install the fsspec backend for it")
            raise WorkspaceError(
                f"The artifact root {self.url!r} needs a package that is not installed ({exc}); "
                f"{hint}.") from None
        except ValueError as exc:
            raise WorkspaceError(f"The artifact root {self.url!r} is not a URL fsspec knows "
                                 f"({exc}); use a folder or s3://, gs://, az://... .") from None
        self.root = self.root.rstrip("/")
        self._local = getattr(self.fs, "protocol", None) in ("file", ("file", "local"))
        # Folders only where there are folders: on object storage a "makedirs" of the root
        # would create a bucket, which is the administrator's decision, not cellops's.
        self._folders = self.url.split("://", 1)[0] not in BACKEND_EXTRAS
        if self._folders:
            self.fs.makedirs(self.root, exist_ok=True)

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
        if self._folders:
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
                if self._local:  # fresh again: gc's grace period keeps it while it is linked
                    os.utime(final)
            else:
                if self._folders:
                    self.fs.makedirs(f"{self.root}/{sha[:2]}", exist_ok=True)
                if self._local:
                    os.replace(tmp, final)  # atomic on one filesystem
                else:
                    # A server-side copy, then the temp key goes: what every object store
                    # offers (a backend's own "move" call may not be; an emulator may lack it).
                    self.fs.copy(tmp, final)
                    self.fs.rm(tmp)
        except BaseException:
            try:
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
            raise
        return sha, size

    def check_writable(self) -> None:
        """Write, read back and delete a probe blob: a wrong bucket or missing credentials
        fail here, with the backend's reason, rather than at the first logged artifact."""
        from .errors import WorkspaceError

        try:
            probe = f"cellops probe {uuid.uuid4().hex}\n".encode()  # unique: never a real blob
            sha, _ = self.put(probe)
            self.read(sha)
            self.delete(sha)
        except Exception as exc:  # noqa: BLE001 - any backend error means "not usable"
            scheme = self.url.split("://", 1)[0] if "://" in self.url else "file"
            where = _CREDENTIALS.get(BACKEND_EXTRAS.get(scheme, ""),
                                     "that the folder exists and this user may write to it")
            raise WorkspaceError(
                f"Cannot write to the artifact root {self.url}: {type(exc).__name__}: {exc}. "
                f"Check {where}."
            ) from None

    def open(self, sha256: str, *, verify: bool = True) -> IO[bytes]:
        """The blob for reading; its bytes are checked against ``sha256`` as they are read
        (at the end of the stream) unless ``verify`` is False (a caller that checks them
        itself)."""
        path = self.path(sha256)
        try:
            fh = self.fs.open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"Blob {sha256[:12]} is missing from {self.url}; it was deleted outside cellops. "
                "Re-log the artifact."
            ) from None
        return _Verified(fh, sha256, self.url) if verify else fh  # type: ignore[return-value]

    def read(self, sha256: str, *, verify: bool = True) -> bytes:
        with self.open(sha256, verify=verify) as fh:
            return fh.read()

    def copy_to(self, sha256: str, dest: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Copy a blob to the local file ``dest``; return the path written.

        With ``overwrite=False`` an existing file is never replaced: one with the same bytes
        is reused as it is, and a different one makes the copy go to ``name-1.ext``,
        ``name-2.ext``, ... (claimed atomically, so concurrent copies never clobber).
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with self.open(sha256) as src, open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
            if overwrite:
                os.replace(tmp, dest)
                return dest
            for n in range(10_000):
                target = dest if n == 0 else dest.with_name(f"{dest.stem}-{n}{dest.suffix}")
                if target.exists() and _file_sha256(target) == sha256:
                    return target
                try:
                    os.link(tmp, target)  # fails when the name exists: no overwrite, ever
                    return target
                except FileExistsError:
                    continue
            raise ArtifactNotFoundError(f"No free name for {dest} after 10,000 tries; clean the folder.")
        finally:
            tmp.unlink(missing_ok=True)

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

    def gc(self, referenced: Callable[[], set[str]], *, dry_run: bool = False,
           grace_s: float = TMP_GRACE_S) -> GcResult:
        """Delete blobs not in ``referenced()`` and temp files of interrupted writes.

        Only what is older than ``grace_s`` goes: a write in progress (a temp file, or a
        blob stored a moment before its row) is left alone. Blobs are listed before the
        references are read, so a blob linked meanwhile is seen as referenced.
        """
        result = GcResult()
        candidates = list(self.blobs())
        keep = referenced()
        cutoff = time.time() - grace_s
        for sha in candidates:
            if sha in keep:
                continue
            path = self.path(sha)
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                continue
            if _mtime(info) > cutoff:
                result.young += 1
                continue
            size = int(info.get("size") or 0)
            if not dry_run:
                size = self.delete(sha)
            result.blobs.append(sha)
            result.blob_bytes += size
        tmp_dir = f"{self.root}/.tmp"
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if _mtime(entry) > cutoff:
                result.young += 1
                continue
            size = int(entry.get("size") or 0)
            if not dry_run:
                try:
                    self.fs.rm(entry["name"])
                except FileNotFoundError:
                    continue
            result.temp_files.append(entry["name"].rstrip("/").rsplit("/", 1)[-1])
            result.temp_bytes += size
        return result


class _Verified(io.RawIOBase):
    """A blob being read: hashes what passes and, at the end, raises
    :class:`ArtifactCorruptError` when the bytes are not the ones named."""

    def __init__(self, fh: IO[bytes], sha256: str, where: str) -> None:
        self._fh, self._sha, self._where = fh, sha256, where
        self._digest = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read() if size is None or size < 0 else self._fh.read(size)
        if data:
            self._digest.update(data)
        if (not data or size is None or size < 0) and not self._checked:
            self._checked = True
            if self._digest.hexdigest() != self._sha:
                raise ArtifactCorruptError(
                    f"Blob {self._sha[:12]} in {self._where} does not match its sha256 (it was "
                    "changed or truncated in storage). Restore it from a backup or re-log the "
                    "artifact; cellops will not hand back altered bytes.")
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._fh.close()
        finally:
            super().close()


@dataclass
class GcResult:
    blobs: list[str] = field(default_factory=list)
    blob_bytes: int = 0
    temp_files: list[str] = field(default_factory=list)
    temp_bytes: int = 0
    young: int = 0  # unreferenced blobs and temp files left for being within the grace period


def _mtime(info: dict) -> float:
    stamp = info.get("mtime") or info.get("created") or info.get("LastModified")
    if hasattr(stamp, "timestamp"):
        return float(stamp.timestamp())
    return float(stamp) if stamp is not None else 0.0


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
