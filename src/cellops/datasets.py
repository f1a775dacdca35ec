"""Datasets: fingerprint, schema and profile of the data a run read or wrote.

The fingerprint covers the whole data, not a sample: for a DataFrame it hashes
pandas' per-row hashes (values and index) plus column names and dtypes; for a
file it is the sha256 of its bytes (of every file, for a folder). The profile holds
per-column statistics (percentiles and a histogram for numbers, frequencies for
categories), kept as the reference for drift checks (:mod:`cellops.monitoring`).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["Dataset", "describe", "read_table_file"]

_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".feather": "feather"}
MAX_PROFILE_BYTES = 2 * 1024**3
TOP_CATEGORIES = 50


@dataclass
class Dataset:
    """A dataset as stored in the workspace (``run.inputs`` / ``run.outputs``)."""

    id: int | None
    name: str
    fingerprint: str
    source: str | None = None
    format: str | None = None
    schema: list[dict[str, str]] = field(default_factory=list)
    num_rows: int | None = None
    num_columns: int | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    role: str | None = None

    @property
    def digest(self) -> str:
        return self.fingerprint[:12]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Dataset:
        return cls(
            id=row.get("id"), name=row["name"], fingerprint=row["fingerprint"],
            source=row.get("source"), format=row.get("format"),
            schema=json.loads(row.get("schema") or "[]"),
            num_rows=row.get("num_rows"), num_columns=row.get("num_columns"),
            profile=json.loads(row.get("profile") or "{}"), role=row.get("role"),
        )

    def __repr__(self) -> str:
        shape = f"{self.num_rows}x{self.num_columns}" if self.num_rows is not None else "?"
        return f"<Dataset {self.name!r} {self.digest} {shape}{' ' + self.role if self.role else ''}>"

    def _repr_html_(self) -> str:
        cols = "".join(
            f"<tr><td>{html.escape(c['name'])}</td><td>{html.escape(c['dtype'])}</td></tr>"
            for c in self.schema[:30]
        )
        more = f"<tr><td colspan=2>… {len(self.schema) - 30} more</td></tr>" if len(self.schema) > 30 else ""
        return (
            f"<div><b>Dataset {html.escape(self.name)}</b> <code>{self.digest}</code> "
            f"{self.num_rows} rows × {self.num_columns} columns"
            f"{' · ' + html.escape(self.source) if self.source else ''}"
            f"<table><tr><th>column</th><th>dtype</th></tr>{cols}{more}</table></div>"
        )


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _frame_fingerprint(df: Any) -> str:
    import pandas as pd

    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    try:
        hashes = pd.util.hash_pandas_object(df, index=True)
    except TypeError:  # unhashable cells (lists, dicts): hash their text form instead
        hashes = pd.util.hash_pandas_object(df.astype(str), index=True)
    h.update(hashes.to_numpy().tobytes())
    return h.hexdigest()


def profile_frame(df: Any) -> dict[str, Any]:
    """Per-column statistics used as a drift reference."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    n = len(df)
    for name in df.columns:
        col = df[name]
        missing = int(col.isna().sum())
        entry: dict[str, Any] = {"dtype": str(col.dtype), "count": n - missing, "missing": missing}
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.dropna().to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            entry["kind"] = "numeric"
            if values.size:
                entry.update(
                    mean=float(values.mean()), std=float(values.std()),
                    min=float(values.min()), max=float(values.max()),
                    # 101 percentiles approximate the distribution for KS / Wasserstein / PSI.
                    percentiles=[float(v) for v in np.percentile(values, np.arange(101))],
                )
                counts, edges = np.histogram(values, bins=20)
                entry["histogram"] = {"edges": [float(e) for e in edges],
                                      "counts": [int(c) for c in counts]}
                entry["unique"] = int(min(np.unique(values).size, 10**9))
        elif pd.api.types.is_datetime64_any_dtype(col):
            entry["kind"] = "datetime"
            valid = col.dropna()
            if len(valid):
                entry.update(min=str(valid.min()), max=str(valid.max()))
        else:
            entry["kind"] = "categorical"
            counts = col.dropna().astype(str).value_counts()
            top = counts.head(TOP_CATEGORIES)
            entry["unique"] = int(counts.size)
            entry["top"] = {str(k): int(v) for k, v in top.items()}
            entry["other"] = int(counts.iloc[TOP_CATEGORIES:].sum()) if counts.size > TOP_CATEGORIES else 0
        out[str(name)] = entry
    return out


def _as_frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else "value")
    mod = type(data).__module__
    if mod.startswith("numpy"):
        import numpy as np

        arr = np.asarray(data)
        if arr.ndim == 1:
            return pd.DataFrame({"value": arr})
        if arr.ndim == 2:
            return pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
        raise InvalidArgumentError(
            f"log_dataset takes 1- or 2-dimensional arrays; this one has {arr.ndim} dimensions. "
            "Reshape it or log it as an artifact."
        )
    if hasattr(data, "to_pandas"):  # polars, pyarrow tables
        return data.to_pandas()
    return None


def _hash_path(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    total = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                total += len(chunk)
    return h.hexdigest(), total


def read_table_file(path: Path, fmt: str) -> Any:
    """The table in ``path`` (a format :func:`describe` names: csv, tsv, parquet, ...)."""
    import pandas as pd

    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "tsv":
        return pd.read_csv(path, sep="\t")
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "json":
        return pd.read_json(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    if fmt == "feather":
        return pd.read_feather(path)
    return None


def describe(data: Any, name: str | None = None) -> dict[str, Any]:
    """Fingerprint, schema and profile of a DataFrame, array or file/folder path.

    Returns the row stored in the ``datasets`` table (JSON fields as text).
    """
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise InvalidArgumentError(
                f"No file or folder at {str(path)!r} to log as a dataset. "
                "Pass an existing path, or the DataFrame itself."
            )
        fingerprint, size = _hash_path(path)
        fmt = _READERS.get(path.suffix.lower()) if path.is_file() else "folder"
        row: dict[str, Any] = {
            "name": name or path.name, "fingerprint": fingerprint,
            "source": str(path.absolute()), "format": fmt or path.suffix.lstrip(".") or None,
            "schema": "[]", "num_rows": None, "num_columns": None,
            "profile": json.dumps({"bytes": size}),
        }
        frame = None
        if fmt and fmt != "folder" and size <= MAX_PROFILE_BYTES:
            try:
                frame = read_table_file(path, fmt)
            except Exception:  # noqa: BLE001 - unreadable data is still fingerprinted
                frame = None
        if frame is not None:
            row.update(_frame_summary(frame))
            profile = json.loads(row["profile"])
            profile["bytes"] = size
            row["profile"] = json.dumps(profile)
        return row
    frame = _as_frame(data)
    if frame is None:
        raise InvalidArgumentError(
            f"log_dataset takes a pandas DataFrame or Series, a numpy array, or a file path; "
            f"got {type(data).__name__}."
        )
    if not name:
        raise InvalidArgumentError("log_dataset needs a name for in-memory data: name='train'.")
    row = {"name": name, "fingerprint": _frame_fingerprint(frame), "source": None,
           "format": "dataframe"}
    row.update(_frame_summary(frame))
    return row


def _frame_summary(frame: Any) -> dict[str, Any]:
    schema = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
    return {
        "schema": json.dumps(schema),
        "num_rows": int(len(frame)),
        "num_columns": int(frame.shape[1]),
        "profile": json.dumps({"columns": profile_frame(frame)}, default=_num),
    }
