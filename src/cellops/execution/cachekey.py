"""What a notebook step's result depends on, hashed into its cache key.

The parts are: the notebook's cells (types and sources; not outputs, execution counts
or metadata, so running or opening a notebook does not invalidate it), the parameters
(as stored text), the sha256 of each declared input, what the upstream steps produced,
the kernel name, and a sweep's grid. A step whose key matches a finished earlier run
whose outputs are still there is skipped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import InvalidArgumentError


def hash_file(path: Path) -> str | None:
    """sha256 of a file, or None when it does not exist."""
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def notebook_fingerprint(path: Path) -> tuple[str, str | None]:
    """(hash of the cells' types and sources, the notebook's kernel name).

    Read as plain JSON: importing nbformat costs seconds, and a fully cached pipeline run
    should not.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"Cannot read notebook {path}: {exc}") from exc
    cells = [[c.get("cell_type"), "".join(c.get("source", "")) if isinstance(c.get("source"), list)
              else c.get("source", "")] for c in nb.get("cells", [])]
    kernel = ((nb.get("metadata") or {}).get("kernelspec") or {}).get("name")
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest(), kernel


def cache_key(*, notebook: Path, parameters: Mapping[str, str], inputs: Mapping[str, str | None],
              upstream: Mapping[str, Any], kernel: str | None,
              sweep: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(key, parts): the sha256 of everything the step's result depends on, and the parts."""
    nb_hash, nb_kernel = notebook_fingerprint(notebook)
    parts: dict[str, Any] = {
        "notebook": nb_hash,
        "parameters": dict(sorted(parameters.items())),
        "inputs": dict(inputs),
        "upstream": dict(upstream),
        "kernel": kernel or nb_kernel or "python3",
    }
    if sweep is not None:
        parts["sweep"] = sweep
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


def stale_reason(parts: Mapping[str, Any], last: Mapping[str, Any] | None) -> str:
    """Why a step with these key parts differs from its last cached run ("up to date" when
    nothing does; the caller still checks the run's outputs)."""
    if last is None:
        return "never ran"
    old = last["parts"]
    if old.get("notebook") != parts["notebook"]:
        return "notebook changed"
    if old.get("parameters") != parts["parameters"]:
        diffs = [f"{k}: {old['parameters'].get(k)!r} -> {v!r}" for k, v in parts["parameters"].items()
                 if old["parameters"].get(k) != v]
        gone = [k for k in old["parameters"] if k not in parts["parameters"]]
        return "parameters changed (" + ", ".join(diffs + [f"{k} removed" for k in gone]) + ")"
    for path, sha in parts["inputs"].items():
        if old.get("inputs", {}).get(path) != sha:
            return f"input {path} {'is missing' if sha is None else 'changed'}"
    for name, outs in parts["upstream"].items():
        if old.get("upstream", {}).get(name) != outs:
            return f"upstream step {name} produced new outputs"
    if old.get("sweep") != parts.get("sweep"):
        return "sweep changed"
    if old.get("kernel") != parts["kernel"]:
        return f"kernel changed ({old.get('kernel')} -> {parts['kernel']})"
    if last.get("status") != "FINISHED":
        return f"last run {last['run_id'][:8]} is {last.get('status')}"
    return "up to date"
