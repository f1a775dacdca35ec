"""What SQLite can hold, checked where a value enters cellops.

A value the database cannot store must be refused when it is logged, with an error
that says what to do, never later in a background flush where it would take other
rows down with it: integers beyond 64 bits, text that is not valid UTF-8 (Python
strings with lone surrogates, e.g. ``"\\ud800"``), numbers that do not fit a double.

It is also the one place where metric values cross into and out of the database
(:func:`to_stored`, :func:`from_stored`: NaN is stored as NULL).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from ..errors import InvalidArgumentError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_int64(value: int, what: str) -> int:
    """``value`` when SQLite can store it as an INTEGER, else :class:`InvalidArgumentError`."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidArgumentError(
            f"{what} {value} is outside the 64-bit integer range SQLite stores "
            f"({INT64_MIN} to {INT64_MAX}); use a smaller number."
        )
    return value


def check_text(value: str, what: str) -> str:
    """``value`` when it encodes as UTF-8, else an error that shows where it does not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start:exc.end]
        raise InvalidArgumentError(
            f"{what} {_preview(value)} is not valid Unicode text: it holds {bad!r} at position "
            f"{exc.start} (a lone surrogate, e.g. from decoding bytes with 'surrogateescape'). "
            "Decode the text properly or drop those characters, e.g. "
            "text.encode('utf-8', 'replace').decode()."
        ) from None
    return value


def to_stored(value: float) -> float | None:
    """A metric value as stored: NaN becomes NULL (SQLite would make it NULL anyway);
    infinities are stored as they are."""
    return None if math.isnan(value) else value


def from_stored(value: float | None) -> float:
    """A stored metric value back: NULL is NaN (no other NULL is ever written there)."""
    return math.nan if value is None else float(value)


def _preview(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def ids_param(ids: Iterable[str]) -> str:
    """Bind a list of ids as one JSON parameter, read back with ``json_each``."""
    return json.dumps(list(ids))


def key_values_sql(table: str) -> str:
    """The read of (run_id, key, value) rows of ``table`` (params, tags, latest_metrics)
    for the runs of a bound JSON list (:func:`ids_param`)."""
    return f"SELECT run_id, key, value FROM {table} WHERE run_id IN (SELECT value FROM json_each(?))"
