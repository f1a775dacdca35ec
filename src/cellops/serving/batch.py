"""Batch scoring: a CSV or Parquet file through a registered model, chunk by chunk.

Memory stays flat whatever the file's size: one chunk is read, checked against the
model's signature, predicted, written and logged before the next is read (the log waits
for the database rather than dropping, so a batch's log is complete).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import InvalidArgumentError
from ..workspaces import workspace
from .model import FEATURE_NAMES_WARNING, ServedModel, load_served
from .payloads import PayloadError, frame_inputs
from .predlog import PredictionLog

__all__ = ["BatchResult", "predict_file"]

FORMATS = (".csv", ".parquet", ".pq")


@dataclass
class BatchResult:
    """What :func:`predict_file` did."""

    output: Path
    rows: int
    chunks: int
    seconds: float
    model: str
    version: int | None
    batch_id: str  # request ids of the logged chunks are BATCH_ID-00000, -00001, ...
    logged: bool
    ignored: list[str] = field(default_factory=list)  # input columns the model does not take

    def __str__(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else float("inf")
        return (f"{self.rows:,} rows scored by {self.model} version {self.version} in "
                f"{self.seconds:.1f} s ({rate:,.0f} rows/s) -> {self.output}"
                + (f"; logged as batch {self.batch_id}" if self.logged else "")
                + (f"; columns not in the model's signature ignored: {', '.join(self.ignored)}"
                   if self.ignored else ""))


def _format(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgumentError(f"{what} {path} must be a .csv or .parquet file.")
    return "csv" if suffix == ".csv" else "parquet"


def _chunks(path: Path, kind: str, chunk_rows: int) -> tuple[Iterator[Any], int | None]:
    import pandas as pd

    if kind == "csv":
        return iter(pd.read_csv(path, chunksize=chunk_rows)), None
    import pyarrow.parquet as pq

    # A buffered stream, no pre-buffering of whole row groups: memory stays one chunk's.
    reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    batches = (b.to_pandas() for b in reader.iter_batches(batch_size=chunk_rows, use_threads=False))
    return batches, reader.metadata.num_rows


class _Output:
    """Writes to a hidden file beside ``path`` and renames it into place only when every
    chunk was written: a failed run leaves an earlier output as it was."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        self._writer: Any = None
        self._started = False

    def write(self, frame: Any) -> None:
        if self.kind == "csv":
            frame.to_csv(self.partial, mode="a" if self._started else "w",
                         header=not self._started, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.partial, table.schema)
            self._writer.write_table(table)
        self._started = True

    def close(self, ok: bool) -> None:
        if self._writer is not None:
            self._writer.close()
        if not ok:
            self.partial.unlink(missing_ok=True)
            return
        if not self._started:
            if self.kind == "csv":
                self.partial.write_text("")
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({}), self.partial)
        os.replace(self.partial, self.path)


def _prediction_columns(model: ServedModel, method: str, result: np.ndarray) -> dict[str, Any]:
    if result.ndim == 1:
        return {"prediction": result}
    classes = getattr(model.estimator, "classes_", None)
    if method in ("predict_proba", "predict_log_proba") and classes is not None \
            and len(classes) == result.shape[1]:
        names = [f"{method.split('_', 1)[1]}_{c}" for c in classes]
    else:
        names = [f"prediction_{i}" for i in range(result.shape[1])]
    return {n: result[:, i] for i, n in enumerate(names)}


def predict_file(uri: str, input: str | Path, output: str | Path, *,  # noqa: A002
                 chunk_rows: int = 100_000, method: str = "predict", keep: list[str] | None = None,
                 log: bool = True, progress: bool | Callable[[int], None] = False,
                 trusted: tuple[str, ...] = ()) -> BatchResult:
    """Score the rows of ``input`` (CSV or Parquet) with the model at ``uri`` and write the
    predictions to ``output`` (CSV or Parquet, by extension).

    The output has the ``keep`` input columns (e.g. an id), then ``prediction`` — or, for
    ``method="predict_proba"``, one ``proba_<class>`` column per class. Input columns the
    model's signature does not name are ignored (listed in the result); missing ones are
    an error naming the rows. The output appears only when every chunk was scored. Each chunk is
    logged like a request (``source = "batch"``) unless ``log=False``. ``progress``: True
    for a progress bar on stderr, or a function called with the rows done so far.
    """
    import pandas as pd

    src, dst = Path(input), Path(output)
    in_kind, out_kind = _format(src, "The input"), _format(dst, "The output")
    if not src.is_file():
        raise InvalidArgumentError(f"The input {src} does not exist.")
    if src.resolve() == dst.resolve():
        raise InvalidArgumentError("The output must not be the input file.")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidArgumentError(f"chunk_rows must be a positive integer, not {chunk_rows!r}.")
    ws = workspace()
    model = load_served(uri, trusted=trusted)
    if method not in model.methods:
        raise InvalidArgumentError(f"The model has no {method!r}; it has {', '.join(model.methods)}.")
    chunks, total = _chunks(src, in_kind, chunk_rows)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="rows", unit_scale=True, desc=f"{model.name} v{model.version}")
    plog = PredictionLog(ws, max_pending=2, block=True, flush_rows=1, flush_s=0.5) if log else None
    batch_id = uuid.uuid4().hex[:12]
    out = _Output(dst, out_kind)
    rows = n = 0
    ignored: dict[str, None] = {}
    ok = False
    started = time.perf_counter()
    try:
        for n, frame in enumerate(chunks):
            t0 = time.perf_counter()
            kept = None
            if keep:
                missing = [k for k in keep if k not in frame.columns]
                if missing:
                    raise InvalidArgumentError(f"keep names column(s) not in the input: {missing}.")
                kept = frame[keep].reset_index(drop=True)
            wanted = model.signature.columns
            if wanted is not None:
                extra = [c for c in frame.columns if str(c) not in wanted]
                if extra:  # ids, labels, ...: a file has more than the model takes
                    ignored.update(dict.fromkeys(str(c) for c in extra))
                    frame = frame.drop(columns=extra)
            try:
                inputs = frame_inputs(frame, model.signature)
                with warnings.catch_warnings():  # checked columns go in as an array
                    warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
                    result = model.predict(inputs, method)
            except PayloadError as exc:
                raise InvalidArgumentError(f"Rows {rows:,}-{rows + len(frame) - 1:,} of {src}: {exc}") from None
            columns = _prediction_columns(model, method, result)
            piece = pd.DataFrame(columns)
            if kept is not None:
                piece = pd.concat([kept, piece], axis=1)
            out.write(piece)
            if plog is not None:
                plog.record(plog.entry(request_id=f"{batch_id}-{n:05d}", model=model.name,
                                       version=model.version, source="batch", inputs=inputs,
                                       outputs=result, latency_ms=(time.perf_counter() - t0) * 1000,
                                       status=200))
            rows += len(frame)
            if bar is not None:
                bar.update(len(frame))
            elif callable(progress):
                progress(rows)
        ok = True
    finally:
        out.close(ok)
        if bar is not None:
            bar.close()
        if plog is not None:
            plog.close(timeout=600)
    return BatchResult(dst, rows, n + 1 if rows else 0, time.perf_counter() - started, model.name,
                       model.version, batch_id, log, list(ignored))
