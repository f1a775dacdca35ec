"""Request bodies into model inputs, and model outputs into replies.

Two protocols reach the same :class:`Inputs`:

- MLflow's scoring protocol (``POST /invocations``): a JSON object with exactly one of
  ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (and optional
  ``params``), or CSV with a header row;
- the Open Inference Protocol v2 (``POST /v2/models/{name}/infer``): named tensors.

Both are checked against the model's signature (its columns and dtypes): missing or
unknown columns, rows of the wrong width and values that are not numbers in numeric
columns are a :class:`PayloadError` that says which column and row. Rows given as plain
lists map onto the signature's columns by position when the width matches.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["Inputs", "MAX_COLUMNS", "MAX_VALUES", "OIP_DATATYPES", "PayloadError", "Signature", "frame_inputs",
           "mlflow_inputs", "oip_datatype", "oip_inputs", "oip_outputs", "parse_json"]

MLFLOW_FIELDS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_COLUMNS = 10_000  # columns of a request without a signature to bound them
# Values in one request, counted (separators: commas and newlines) before the body is
# parsed: parsing holds Python's lock, so a body of millions of values would hold up /ping
# and every other client for a second or more.
MAX_VALUES = 2_000_000


def check_size(body: bytes) -> None:
    """Refuse (413) a body with more than ``MAX_VALUES`` values, before parsing it."""
    values = body.count(b",") + body.count(b"\n") + 1
    if values > MAX_VALUES:
        raise PayloadError(
            f"The body holds about {values:,} values; a request takes at most {MAX_VALUES:,}. "
            "Send fewer rows per request, or score a file with `cellops predict`.", 413)
_NUMERIC = ("float", "int", "uint", "bool")


class PayloadError(InvalidArgumentError):
    """A request the model cannot take: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Signature:
    """The model's input columns and their dtypes (``None`` when not recorded)."""

    columns: tuple[str, ...] | None
    dtypes: tuple[str | None, ...] | None = None
    n_features: int | None = None

    @classmethod
    def from_version(cls, signature: dict[str, Any] | None) -> Signature:
        if not signature:
            return cls(None)
        inputs = signature.get("inputs")
        if not inputs:
            return cls(None, None, signature.get("n_features"))
        return cls(tuple(str(i["name"]) for i in inputs), tuple(i.get("dtype") for i in inputs),
                   len(inputs))

    @property
    def numeric(self) -> bool:
        """Every column numeric (or of unknown dtype): inputs can be one float array."""
        return self.dtypes is None or all(d is None or d.startswith(_NUMERIC) for d in self.dtypes)

    @property
    def width(self) -> int | None:
        return len(self.columns) if self.columns is not None else self.n_features


@dataclass
class Inputs:
    """Rows for the model: ``array`` (2-D floats, columns in signature order) when every
    column is numeric, else ``frame`` (a DataFrame)."""

    columns: list[str] | None
    array: np.ndarray | None = None
    frame: Any = None  # pandas.DataFrame

    @property
    def n_rows(self) -> int:
        return int(self.array.shape[0]) if self.array is not None else len(self.frame)

    def as_frame(self) -> Any:
        import pandas as pd

        if self.frame is not None:
            return self.frame
        return pd.DataFrame(self.array, columns=self.columns, copy=False)

    def first_missing(self) -> tuple[str, int] | None:
        """(column, row) of the first null or NaN, or None."""
        if self.array is not None:
            found = np.argwhere(np.isnan(self.array))
            if not len(found):
                return None
            row, col = (int(v) for v in found[0])
            return (self.columns[col] if self.columns else str(col)), row
        mask = self.frame.isna().to_numpy()
        found = np.argwhere(mask)
        if not len(found):
            return None
        row, col = (int(v) for v in found[0])
        return str(self.frame.columns[col]), row

    def by_column(self) -> dict[str, list[Any]]:
        """Column name -> values, for the prediction log."""
        if self.array is not None:
            names = self.columns or [str(i) for i in range(self.array.shape[1])]
            return {c: self.array[:, i].tolist() for i, c in enumerate(names)}
        return {str(c): self.frame[c].tolist() for c in self.frame.columns}


# -- MLflow's protocol -----------------------------------------------------------------------

def parse_json(body: bytes) -> Any:
    """A request body as JSON (bounded by :func:`check_size`); anything that is not (bad
    bytes, nesting deeper than Python parses, numbers of more than 4,300 digits) is a 400
    that says so."""
    check_size(body)
    try:
        return json.loads(body)
    except RecursionError:
        raise PayloadError("The body nests deeper than the server parses (JSON arrays or "
                           "objects thousands of levels deep); send a table of rows.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"The body is not valid JSON: {str(exc)[:200]}.") from None


def mlflow_inputs(body: bytes, content_type: str, sig: Signature) -> tuple[Inputs, dict[str, Any]]:
    """Parse an ``/invocations`` body; return the inputs and the ``params``."""
    media, params = _media_type(content_type)
    if media == "text/csv":
        return _csv_inputs(body, params, sig), {}
    if media != "application/json":
        raise PayloadError(
            f"Content-Type {content_type or '(none)'!r} is not supported; send application/json "
            "(dataframe_split, dataframe_records, instances or inputs) or text/csv.", 415)
    doc = parse_json(body)
    # JSON true/false become 1/0 in a float array without a trace; only a body that spells
    # one has its values checked one by one (a string "true" merely costs the check).
    exact = b"true" in body or b"false" in body
    if not isinstance(doc, dict):
        raise PayloadError(
            "The body must be a JSON object with one of dataframe_split, dataframe_records, "
            f"instances or inputs; got a {type(doc).__name__}.")
    present = [f for f in MLFLOW_FIELDS if f in doc]
    unknown = sorted(set(doc) - set(MLFLOW_FIELDS) - {"params"})
    if len(present) != 1 or unknown:
        said = f"got {', '.join(present)}" if present else "got none of them"
        extra = f"; unknown field(s) {', '.join(unknown)}" if unknown else ""
        raise PayloadError(f"The body needs exactly one of dataframe_split, dataframe_records, "
                           f"instances, inputs ({said}{extra}).")
    extra_params = doc.get("params") or {}
    if not isinstance(extra_params, dict):
        raise PayloadError("params must be a JSON object, e.g. {\"predict_method\": \"predict_proba\"}.")
    field = present[0]
    value = doc[field]
    if field == "dataframe_split":
        return _split_inputs(value, sig, exact), extra_params
    if field == "dataframe_records":
        if not isinstance(value, list):
            raise PayloadError("dataframe_records must be a list of records (JSON objects), "
                               f"not a {type(value).__name__}.")
        return _records_inputs(value, sig, exact), extra_params
    return _tensor_inputs(field, value, sig, exact), extra_params


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in (content_type or "").split(";")]
    media = parts[0].lower()
    params = {}
    for p in parts[1:]:
        if not p:
            continue
        key, _, value = p.partition("=")
        params[key.strip().lower()] = value.strip().strip('"').lower()
    allowed = {"charset"}
    if set(params) - allowed or params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise PayloadError(
            f"Content-Type {content_type!r}: only a utf-8 charset parameter is accepted "
            f"(send {media or 'application/json'} or {media or 'application/json'}; charset=utf-8).", 415)
    return media, params


def _split_inputs(value: Any, sig: Signature, exact: bool) -> Inputs:
    if not isinstance(value, dict):
        raise PayloadError("dataframe_split must be an object with columns and data, e.g. "
                           "{\"columns\": [\"a\", \"b\"], \"data\": [[1, 2]]}; got a "
                           f"{type(value).__name__}.")
    data = value.get("data")
    if not isinstance(data, list):
        raise PayloadError("dataframe_split.data must be a list of rows (lists).")
    columns = value.get("columns")
    if columns is not None and (not isinstance(columns, list)
                                or not all(isinstance(c, (str, int)) for c in columns)):
        raise PayloadError("dataframe_split.columns must be a list of column names.")
    if data and not all(isinstance(r, list) for r in data):
        raise PayloadError("dataframe_split.data must be a list of rows, each a list of values.")
    return _rows_inputs(data, [str(c) for c in columns] if columns is not None else None, sig,
                        exact)


def _records_inputs(records: list[Any], sig: Signature, exact: bool) -> Inputs:
    if not all(isinstance(r, dict) for r in records):
        bad = next(i for i, r in enumerate(records) if not isinstance(r, dict))
        raise PayloadError(f"dataframe_records must be a list of JSON objects; record {bad} is a "
                           f"{type(records[bad]).__name__}.")
    keys: dict[str, None] = {}
    for r in records:
        for k in r:
            keys.setdefault(str(k), None)
    columns = list(sig.columns) if sig.columns is not None else list(keys)
    _check_columns(list(keys), sig)
    rows = [[r.get(c) for c in columns] for r in records]
    return _rows_inputs(rows, columns, sig, exact)


def _tensor_inputs(field: str, value: Any, sig: Signature, exact: bool) -> Inputs:
    if isinstance(value, dict):  # columnar: {"a": [..], "b": [..]}
        columns = [str(k) for k in value]
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if -1 in lengths or len(lengths) > 1:
            raise PayloadError(f"{field} as an object must map each column to a list of values of "
                               "one length.")
        n = lengths.pop() if lengths else 0
        rows = [[value[c][i] for c in value] for i in range(n)]
        return _rows_inputs(rows, columns, sig, exact)
    if not isinstance(value, list):
        raise PayloadError(f"{field} must be a list of rows (lists or objects), or an object of "
                           f"columns; got a {type(value).__name__}.")
    if value and all(isinstance(r, dict) for r in value):
        return _records_inputs(value, sig, exact)
    if value and not any(isinstance(r, (list, dict)) for r in value):
        value = [value]  # one row given flat: [1.0, 2.0, ...]
    if not all(isinstance(r, list) for r in value):
        raise PayloadError(f"{field} must hold rows of one kind: all lists or all objects.")
    return _rows_inputs(value, None, sig, exact)


def _csv_inputs(body: bytes, params: dict[str, str], sig: Signature) -> Inputs:
    import csv

    import pandas as pd

    check_size(body)
    # The header is checked before the table is parsed: one line of 100,000 names would
    # otherwise cost seconds of parsing to be refused.
    head = body[:body.find(b"\n")] if b"\n" in body else body
    try:
        names = next(csv.reader([head.decode("utf-8", "replace")]), [])
    except csv.Error:
        names = []
    limit = sig.width if sig.width is not None else MAX_COLUMNS
    if len(names) > min(limit, MAX_COLUMNS):
        raise PayloadError(
            f"The CSV header has {len(names):,} columns; "
            + (f"the model takes {sig.width}" + (f": {_names(sig.columns)}" if sig.columns else "")
               if sig.width is not None else f"this server takes at most {MAX_COLUMNS:,}") + ".")
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds for a bad file
        raise PayloadError(f"The body is not a CSV table with a header row: {exc}.") from None
    return frame_inputs(frame, sig)


def frame_inputs(frame: Any, sig: Signature) -> Inputs:
    """A DataFrame's columns checked against the signature and put in its order."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    _check_columns(columns, sig)
    if sig.columns is not None:
        frame = frame[list(sig.columns)]
    if sig.numeric:
        array = _float_array(frame.to_numpy(dtype=object) if frame.dtypes.eq(object).any()
                             else frame.to_numpy(), list(frame.columns))
        return Inputs(list(frame.columns), array=array)
    return Inputs(list(frame.columns), frame=_typed_frame(frame, sig))


def _check_columns(columns: Sequence[str], sig: Signature) -> None:
    if sig.columns is None:
        return
    known = set(sig.columns)
    missing = [c for c in sig.columns if c not in set(columns)]
    unknown = [c for c in columns if c not in known]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {_names(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {_names(unknown)}")
        raise PayloadError(f"The input does not match the model's signature: {'; '.join(parts)}. "
                           f"The model takes {len(sig.columns)} column(s): {_names(sig.columns)}.")


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _rows_inputs(rows: list[list[Any]], columns: list[str] | None, sig: Signature,
                 exact: bool = False) -> Inputs:
    width = sig.width
    if columns is None:
        if rows and width is not None and any(len(r) != width for r in rows):
            bad = next(i for i, r in enumerate(rows) if len(r) != width)
            raise PayloadError(
                f"Row {bad} has {len(rows[bad])} value(s); the model takes {width} column(s)"
                + (f": {_names(sig.columns)}" if sig.columns else "") + ".")
        columns = list(sig.columns) if sig.columns is not None else None
    else:
        if any(len(r) != len(columns) for r in rows):
            bad = next(i for i, r in enumerate(rows) if len(r) != len(columns))
            raise PayloadError(f"Row {bad} has {len(rows[bad])} value(s) for {len(columns)} "
                               "column(s).")
        _check_columns(columns, sig)
        if sig.columns is not None and columns != list(sig.columns):
            order = [columns.index(c) for c in sig.columns]
            rows = [[r[i] for i in order] for r in rows]
            columns = list(sig.columns)
    if sig.numeric:
        return Inputs(columns, array=_float_array(rows, columns, sig, exact))
    import pandas as pd

    return Inputs(columns, frame=_typed_frame(pd.DataFrame(rows, columns=columns), sig))


def _float_array(rows: Any, columns: list[str] | None, sig: Signature | None = None,
                 exact: bool = False) -> np.ndarray:
    """Rows of numbers as a 2-D float array. A string (even ``"1.5"``), or true/false in a
    column whose signature is not boolean, is a :class:`PayloadError` naming the column and
    row, as MLflow's schema enforcement refuses them; so is a number beyond float64.
    ``exact``: check every value's type (the body holds true or false somewhere)."""
    try:
        probe = np.asarray(rows)
    except (ValueError, OverflowError, TypeError):
        probe = None
    if probe is not None and not exact and probe.dtype.kind in "iuf":
        array = probe.astype(np.float64, copy=False)
    else:
        _check_numbers(rows, columns, sig)
        try:
            array = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise PayloadError("The input must be a table of numbers: a list of rows of equal "
                               "length.") from None
    if array.ndim != 2:
        if array.size == 0:
            return array.reshape(0, len(columns) if columns else 0)
        raise PayloadError("The input must be a table: a list of rows of values.")
    return array


def _check_numbers(rows: Any, columns: list[str] | None, sig: Signature | None) -> None:
    """Raise a :class:`PayloadError` at the first value a numeric column cannot take."""
    booleans = {i for i, d in enumerate((sig.dtypes if sig is not None else None) or ())
                if d is not None and d.startswith("bool")}
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple, np.ndarray)):
            return  # not a table: the caller says so
        for j, value in enumerate(row):
            name = columns[j] if columns and j < len(columns) else str(j)
            if value is None or isinstance(value, (float, np.floating)):
                continue
            if isinstance(value, (bool, np.bool_)):
                if j in booleans:
                    continue
                raise PayloadError(f"Column {name!r} takes numbers; row {i} has {value!r} (a "
                                   "boolean). Send 1 or 0 if that is what you mean.")
            if isinstance(value, (int, np.integer)):
                if abs(int(value)) > 1.7976931348623157e308:
                    raise PayloadError(f"Column {name!r}: row {i} has a number of "
                                       f"{len(str(abs(int(value))))} digits, beyond what a "
                                       "float can hold.")
                continue
            raise PayloadError(f"Column {name!r} takes numbers; row {i} has {value!r}"
                               + (" (a string)" if isinstance(value, str) else "")
                               + ". Send numbers (null for a missing value).")


def _typed_frame(frame: Any, sig: Signature) -> Any:
    """Numeric signature columns checked and converted (a string or, in a column that is
    not boolean, true/false, is a PayloadError), the others left as given."""
    import pandas as pd

    if sig.dtypes is None or sig.columns is None:
        return frame
    numeric = [(name, dtype) for name, dtype in zip(sig.columns, sig.dtypes)
               if dtype and dtype.startswith(_NUMERIC)]
    for name, dtype in numeric:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) and dtype.startswith("bool"):
            continue
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            continue
        _check_numbers([[v] for v in column.tolist()], [name],
                       Signature((name,), (dtype,), 1))
        frame[name] = pd.to_numeric(column)
    return frame


# -- the Open Inference Protocol v2 -----------------------------------------------------------

OIP_DATATYPES = {
    "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": object,
}


def oip_inputs(doc: Any, sig: Signature) -> Inputs:
    """The ``inputs`` of an OIP infer request: one tensor of shape [rows, columns], or one
    tensor per column (shape [rows] or [rows, 1]) named as the signature's columns."""
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise PayloadError("An infer request is a JSON object with a non-empty 'inputs' list of "
                           "tensors ({name, shape, datatype, data}).")
    tensors = [_tensor(t, i) for i, t in enumerate(doc["inputs"])]
    seen: set[str] = set()
    for name, _, _ in tensors:
        if name in seen:
            raise PayloadError(f"Two input tensors are named {name!r}; name each column once.")
        seen.add(name)
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and (
            sig.width is None or tensors[0][1][1] == sig.width) and (
            sig.columns is None or tensors[0][0] not in sig.columns or sig.width == 1):
        name, shape, values = tensors[0]
        rows = [values[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]
        return _rows_inputs(rows, None, sig)
    if len(tensors) == 1 and len(tensors[0][1]) == 1 and sig.width not in (None, 1) and (
            tensors[0][1][0] == sig.width and tensors[0][0] not in (sig.columns or ())):
        return _rows_inputs([tensors[0][2]], None, sig)  # one row sent as a flat tensor
    columns, data, n_rows = [], [], None
    for name, shape, values in tensors:
        if len(shape) == 2 and shape[1] != 1 or len(shape) > 2:
            raise PayloadError(
                f"Tensor {name!r} has shape {shape}: send one tensor per column with shape [rows] "
                f"or [rows, 1], or a single tensor of shape [rows, {sig.width or 'columns'}].")
        if n_rows is None:
            n_rows = shape[0]
        elif shape[0] != n_rows:
            raise PayloadError(f"Tensor {name!r} has {shape[0]} rows; the others have {n_rows}.")
        columns.append(name)
        data.append(values)
    rows = [list(r) for r in zip(*data)] if data else []
    return _rows_inputs(rows, columns, sig)


def _tensor(t: Any, i: int) -> tuple[str, list[int], list[Any]]:
    if not isinstance(t, dict):
        raise PayloadError(f"inputs[{i}] must be a tensor object {{name, shape, datatype, data}}.")
    name, shape, datatype, data = t.get("name"), t.get("shape"), t.get("datatype"), t.get("data")
    if not isinstance(name, str) or not name:
        raise PayloadError(f"inputs[{i}] needs a name.")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise PayloadError(f"Tensor {name!r} needs a shape: a list of non-negative integers.")
    if datatype not in OIP_DATATYPES:
        raise PayloadError(f"Tensor {name!r} has datatype {datatype!r}; use one of "
                           f"{', '.join(OIP_DATATYPES)}.")
    if not isinstance(data, list):
        raise PayloadError(f"Tensor {name!r} needs data: a list (flat or nested).")
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise PayloadError(f"Tensor {name!r} has {len(flat)} value(s) for shape {shape} "
                           f"({math.prod(shape)} expected).")
    return name, shape, _convert(name, datatype, flat)


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _convert(name: str, datatype: str, values: list[Any]) -> list[Any]:
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in values):
            raise PayloadError(f"Tensor {name!r} is BYTES: its data must be strings.")
        return values
    kind = OIP_DATATYPES[datatype]
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in values):
            raise PayloadError(f"Tensor {name!r} is BOOL: its data must be true or false.")
        return [int(v) for v in values]  # a typed tensor: the client asked for 1 and 0
    integer = datatype.startswith(("INT", "UINT"))
    for v in values:
        ok = isinstance(v, int) and not isinstance(v, bool) if integer else (
            isinstance(v, (int, float)) and not isinstance(v, bool) or v is None)
        if not ok:
            raise PayloadError(f"Tensor {name!r} is {datatype}: {v!r} is not "
                               f"{'an integer' if integer else 'a number'}.")
    if integer:
        info = np.iinfo(kind)
        bad = next((v for v in values if not info.min <= v <= info.max), None)
        if bad is not None:
            raise PayloadError(f"Tensor {name!r} is {datatype}: {bad} is out of its range.")
    return values


def oip_datatype(array: np.ndarray) -> str:
    kind = array.dtype
    if kind == np.bool_:
        return "BOOL"
    if np.issubdtype(kind, np.integer):
        return f"{'U' if np.issubdtype(kind, np.unsignedinteger) else ''}INT{kind.itemsize * 8}"
    if np.issubdtype(kind, np.floating):
        return f"FP{kind.itemsize * 8}"
    return "BYTES"


def oip_outputs(name: str, result: np.ndarray) -> dict[str, Any]:
    """One OIP output tensor from a prediction array."""
    array = np.asarray(result)
    datatype = oip_datatype(array)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [str(v) for v in data]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}
