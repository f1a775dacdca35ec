"""The data a monitor looks at: its reference (a stored frame, a file, a logged dataset, or
the dataset its model was trained on) and the complete windows of logged predictions not
evaluated yet (time windows once they ended ``grace`` ago; row windows once full)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..workspaces import workspace
from .spec import MonitorSpecError, model_name

__all__ = ["MAX_WINDOWS_PER_RUN", "load_reference", "windows"]

MAX_WINDOWS_PER_RUN = 500

_REFERENCES: dict[str, Any] = {}


def load_reference(spec: dict[str, Any]) -> Any:
    import pandas as pd

    from .drift import as_frame

    ref = spec.get("reference")
    key = json.dumps(ref, sort_keys=True)
    if ref is not None and "artifact" in ref and key in _REFERENCES:
        frame = _REFERENCES[key]
    elif ref is None:
        from ..registry.versions import get_model_version

        name, alias = model_name(spec["model"])
        version = get_model_version(name, alias or "latest")
        inputs = [d for d in version.lineage if d.get("role", "input") == "input"]
        if not inputs:
            raise MonitorSpecError(
                f"{spec['model']} (version {version.version}) has no training dataset in its "
                "lineage to use as the reference. Log it with cellops.log_dataset in the run that "
                "trained the model, or give reference=.")
        frame, _ = as_frame(inputs[0]["name"], "reference")
    elif "artifact" in ref:
        frame = pd.read_parquet(io.BytesIO(workspace().artifacts.read(ref["artifact"])))
    elif "file" in ref:
        path = Path(ref["file"])
        if not path.is_file():
            raise MonitorSpecError(f"The reference file {str(path)!r} does not exist.")
        frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
    else:
        frame, _ = as_frame(ref["dataset"], "reference")
    target = spec.get("target")
    if target and target not in frame.columns:
        raise MonitorSpecError(f"The reference has no target column {target!r}; its columns: "
                               f"{', '.join(map(str, frame.columns[:12]))}.")
    if ref is not None and "artifact" in ref:
        _REFERENCES[key] = frame  # content-addressed: the same key is always the same data
    return frame


def windows(store: Any, row: Mapping[str, Any], spec: dict[str, Any], now_ms: int) -> \
        Iterable[tuple[str, int, int, list[Any], int | None, int | None]]:
    """(key, start, end, prediction rows, new cursor_ms, new cursor_id) per complete window."""
    name, _ = model_name(spec["model"])
    win = spec["window"]
    if win["kind"] == "rows":
        cursor = int(row["cursor_id"] or 0)
        for _ in range(MAX_WINDOWS_PER_RUN):
            rows = store.predictions_after(name, cursor, win["rows"])
            if sum(r["n_rows"] for r in rows) < win["rows"]:
                return
            first, last = rows[0]["id"], rows[-1]["id"]
            yield (f"id:{first}", rows[0]["at"], rows[-1]["at"] + 1, rows, None, last)
            cursor = last
        return
    length = win["ms"]
    start = row["cursor_ms"]
    if start is None:
        first = store.first_prediction_ms(name)
        if first is None:
            return
        start = first // length * length
    for _ in range(MAX_WINDOWS_PER_RUN):
        end = start + length
        if end + spec.get("grace_ms", 0) > now_ms:
            return
        rows = store.predictions_between(name, start, end)
        yield (f"t:{start}", start, end, rows, end, None)
        start = end
