"""What may be logged to a run, and how it is stored: keys, params, tags, metric values.

Everything a user logs is checked here when it is logged (see :mod:`cellops.store.values`
for what SQLite itself can hold), and converted the one way it is stored.
"""

from __future__ import annotations

import json
import mimetypes
import numbers
import os
import re
import time
import traceback
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from ..errors import InvalidArgumentError
from ..store.values import check_text

if TYPE_CHECKING:
    from ..workspaces import Workspace

STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
MAX_KEY_LENGTH = 250
DEFAULT_MAX_PARAM_BYTES = 64 * 1024  # workspace setting max_param_bytes
_EXTRA_TYPES = {".ipynb": "application/x-ipynb+json", ".parquet": "application/vnd.apache.parquet",
                ".skops": "application/octet-stream", ".md": "text/markdown"}


def media_type(name: str) -> str | None:
    """The media type of an artifact name (mimetypes reads system tables: done on first use)."""
    ext = os.path.splitext(name)[1].lower()
    return _EXTRA_TYPES.get(ext) or mimetypes.guess_type(name)[0]

# Keys already found valid, per kind (a training loop logs the same few over and over).
CHECKED_KEYS: dict[str, dict[str, str]] = {"metric": {}, "param": {}, "tag": {}}


def check_key(key: Any, what: str) -> str:
    """``key`` if it is a valid key of a ``what`` (metric, param, tag), else an error that
    says why. Keys found valid are remembered."""
    known = CHECKED_KEYS.get(what)
    if known is not None and type(key) is str:
        found = known.get(key)
        if found is not None:
            return found
    checked = _check_key(key, what)
    if known is not None and len(known) < 100_000:
        known[checked] = checked
    return checked


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidArgumentError(f"A {what} key must be a non-empty string, not {key!r}.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(
            f"{what.capitalize()} key {key[:40]!r}... is {len(key)} characters; "
            f"the limit is {MAX_KEY_LENGTH}."
        )
    if any(ch in key for ch in "\x00\n\r"):
        raise InvalidArgumentError(f"{what.capitalize()} key {key!r} contains a NUL or newline.")
    return check_text(key, f"{what.capitalize()} key")


def param_text(value: Any) -> str:
    """How a param value is stored: text, with containers as JSON."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item") and type(value).__module__.startswith("numpy"):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def param_values(ws: Workspace, params: Mapping[str, Any]) -> dict[str, str]:
    """Params as stored (text), checked: keys, valid text, and the size limit."""
    limit = ws.config.get("max_param_bytes", DEFAULT_MAX_PARAM_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise InvalidArgumentError(
            f"max_param_bytes in {ws.setting_file('max_param_bytes')} must be a positive "
            f"integer, not {limit!r}.")
    out = {}
    for key, value in params.items():
        key = check_key(key, "param")
        text = check_text(param_text(value), f"Param {key!r}: the value")
        size = len(text.encode("utf-8"))
        if size > limit:
            raise InvalidArgumentError(
                f"Param {key!r} is {_size(size)}; params are limited to {_size(limit)} "
                f"(setting max_param_bytes in {ws.setting_file('max_param_bytes')}) because "
                "every runs table carries them. Store large values as a file: "
                f"cellops.log_text(value, '{key}.txt') or cellops.log_artifact(path).")
        out[key] = text
    return out


def tag_values(tags: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "tag"): check_text(param_text(v), f"Tag {k!r}: the value")
            for k, v in tags.items()}


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024  # type: ignore[assignment]
    return f"{n}"


def metric_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            raise InvalidArgumentError(
                f"Metric {key!r} value {_short(value)} is too large for a 64-bit float "
                "(about 1.8e308); log it scaled, or its logarithm.") from None
    if hasattr(value, "item") and type(value).__module__.startswith(("numpy", "torch")):
        try:
            return metric_float(key, value.item())
        except (ValueError, RuntimeError):
            pass
    raise InvalidArgumentError(
        f"Metric {key!r} must be a number, got {value!r} ({type(value).__name__}). "
        "Log text as a param or tag instead."
    )


def run_values(ws: Workspace, run_ids: list[str],
               kinds: Iterable[str] = ("params", "metrics", "tags")) -> Iterator[tuple[str, str, str, Any]]:
    """(kind, run_id, key, value) for the params, latest metrics and tags of runs."""
    for kind, rows in ws.store.search.values(run_ids, tuple(kinds)).items():
        for run_id, key, value in rows:
            yield kind, run_id, key, value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


def ms_to_datetime(ms: int | None) -> datetime | None:
    """Milliseconds since the epoch (as the store keeps times) as an aware UTC datetime."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def row_duration(row: Mapping[str, Any]) -> float | None:
    """Seconds from a run row's start to its end (to now while it runs); None if it never ended."""
    end = row.get("end_time") or (time.time() * 1000 if row["status"] == "RUNNING" else None)
    return None if end is None else (end - row["start_time"]) / 1000


def format_error(exc: BaseException) -> str:
    """Type, message and traceback of an exception, as stored in ``runs.error``."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


_BOOLEANS = {"true": 1.0, "false": 0.0}
_LEADING_ZERO = re.compile(r"[+-]?0\d")


def same_value_key(value: Any) -> Any:
    """What makes two logged values one value when runs are compared: a number or a
    boolean, however it was written (``0``, ``0.0``, ``False``; ``1e3`` and ``1000``), is
    that number; other text is itself (``"rf"`` and ``"RF"`` differ, and ``"00501"`` is
    text, not 501). NaN equals NaN here, so it is not reported as a difference.
    """
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        number = float(value)
        return "nan" if number != number else number
    text = str(value).strip()
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if _LEADING_ZERO.match(text):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return "nan" if number != number else number
