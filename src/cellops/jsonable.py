"""Plain JSON for what the API returns: one convention for the CLI's ``--json`` and the REST API.

NaN and infinities become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
(JSON has no such numbers, and a metric that is NaN is not the same as a missing one);
datetimes become ISO 8601 strings; numpy scalars become Python numbers.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with every part made JSON-safe (see the module docstring)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if type(value).__module__ == "numpy":
        return to_jsonable(value.item())
    pd = sys.modules.get("pandas")  # only pandas values need pandas, and then it is loaded
    if pd is not None:
        if value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
