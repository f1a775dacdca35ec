"""Context captured for every run: who, where, which code, which environment.

Everything that cannot change within a process (user, host, pid, Python and
package versions) is computed once. Git state can change while a notebook is open,
so it is cached for a few seconds only. Nothing here imports anything heavy.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_process: dict[str, Any] | None = None
_environment: dict[str, Any] | None = None
_git_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
_source_cache: dict[tuple[str, int, int], tuple[str, str]] = {}

GIT_TTL_S = 5.0
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_DIFF_BYTES = 5 * 1024 * 1024


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (Linux), or None where there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat[stat.rfind(")") + 2:].split()


def proc_start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), telling a reused pid apart."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_alive(pid: int | None, proc_start: str | None) -> bool:
    """Whether the process that started a run still runs (on this host)."""
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):  # a zombie has finished running
        return False
    if proc_start is not None:
        current = proc_start_ticks(pid)
        if current is not None and current != proc_start:
            return False  # the pid was reused by another process
    return True


def process_info() -> dict[str, Any]:
    """user, host, pid, proc_start of this process (recomputed after fork)."""
    global _process
    pid = os.getpid()
    if _process is None or _process["pid"] != pid:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no passwd entry in some containers
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        _process = {"user": user, "host": socket.gethostname(), "pid": pid,
                    "proc_start": proc_start_ticks(pid)}
    return _process


def environment() -> dict[str, Any]:
    """Python, platform and installed packages, with a stable id (computed once)."""
    global _environment
    if _environment is None:
        with _lock:
            if _environment is None:
                from importlib import metadata

                packages: dict[str, str] = {}
                for dist in metadata.distributions():
                    name, version = _name_and_version(dist)
                    if name:
                        packages[name.lower().replace("_", "-")] = version
                packages = dict(sorted(packages.items()))
                env = {
                    "python": platform.python_version(),
                    "implementation": platform.python_implementation(),
                    "platform": platform.platform(),
                    "packages": packages,
                }
                blob = json.dumps(env, sort_keys=True).encode()
                env["id"] = hashlib.sha256(blob).hexdigest()[:32]
                _environment = env
    return _environment


def _name_and_version(dist: Any) -> tuple[str | None, str]:
    """A distribution's Name and Version from its metadata's header lines.

    ``dist.metadata`` runs the whole file (often a long README) through the email
    parser, about 1 ms a package; the two fields are in the first lines.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name, version = None, ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, _, value = line.partition(":")
        if key == "Name" and name is None:
            name = value.strip()
        elif key == "Version" and not version:
            version = value.strip()
        if name is not None and version:
            break
    return name, version


def _git(cwd: str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "replace")


def git_info(path: str | None = None) -> dict[str, Any] | None:
    """commit, branch, dirty flag and diff of tracked files, or None outside a repository."""
    cwd = os.path.abspath(path or os.getcwd())
    now = time.monotonic()
    cached = _git_cache.get(cwd)
    if cached is not None and now - cached[0] < GIT_TTL_S:
        return cached[1]
    info: dict[str, Any] | None = None
    head = _git(cwd, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    if head is not None:
        lines = head.split()
        commit = lines[0] if lines else None
        branch = lines[1] if len(lines) > 1 and lines[1] != "HEAD" else None
        status = _git(cwd, "status", "--porcelain", "--untracked-files=no") or ""
        dirty = bool(status.strip())
        diff = None
        if dirty:
            diff = _git(cwd, "diff", "HEAD", "--no-color", "--no-ext-diff")
            if diff is not None and len(diff) > MAX_DIFF_BYTES:
                diff = diff[:MAX_DIFF_BYTES] + "\n# cellops: diff truncated\n"
        info = {"commit": commit, "branch": branch, "dirty": dirty, "diff": diff}
    elif _git(cwd, "rev-parse", "--git-dir") is not None:
        info = {"commit": None, "branch": None, "dirty": True, "diff": None}  # no commit yet
    _git_cache[cwd] = (now, info)
    return info


def ipython_info() -> dict[str, Any] | None:
    """Notebook path (when known) and the source of the executing cell, inside IPython."""
    ip_mod = sys.modules.get("IPython")
    if ip_mod is None:
        return None
    try:
        ip = ip_mod.get_ipython()
    except Exception:  # noqa: BLE001
        return None
    if ip is None:
        return None
    ns = getattr(ip, "user_ns", {}) or {}
    notebook = (
        os.environ.get("CELLOPS_NOTEBOOK_PATH")
        or ns.get("__vsc_ipynb_file__")
        or ns.get("__session__")
        or os.environ.get("JPY_SESSION_NAME")
    )
    source = None
    try:
        # The ExecutionResult of the running cell holds its raw source (IPython >= 7);
        # the input history is the fallback (it is empty when history is disabled).
        result = getattr(ip.displayhook, "exec_result", None)
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", None)
        if not source:
            history = ip.history_manager.input_hist_raw
            source = history[-1] if history else None
    except Exception:  # noqa: BLE001
        pass
    return {"notebook_path": str(notebook) if notebook else None, "source": source}


# pip's (and uv's) console-script launcher: a few lines that import an entry point and call it.
_LAUNCHER = re.compile(r"^\s*sys\.argv\[0\]\s*=\s*re\.sub\(.*^\s*sys\.exit\(\w+\(\)\)", re.M | re.S)


def script_source() -> tuple[str, str] | None:
    """(path, text) of the running script, when there is one and it is small. A console
    script's launcher (``bin/cellops``: an import and a call) is not the code that ran, so
    it is no source: the caller names the real one (``start_run(source=...)``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size > MAX_SOURCE_BYTES:
        return None
    key = (path, int(st.st_mtime_ns), st.st_size)
    cached = _source_cache.get(key)
    if cached is None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        cached = _source_cache[key] = (os.path.abspath(path), text)
    if len(cached[1]) < 2000 and _LAUNCHER.search(cached[1]):
        return None
    return cached


def _reset_after_fork() -> None:
    global _process
    _process = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
