"""Datasets: whole-data fingerprints, schema, profile and run lineage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cellops


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 90, 5000),
        "income": rng.normal(50_000, 10_000, 5000),
        "city": rng.choice(["paris", "oslo", "lima"], 5000),
        "flag": rng.random(5000) > 0.5,
    })


def test_a_dataframe_input_records_schema_counts_and_profile(ws, frame):
    with cellops.start_run() as run:
        ds = run.log_dataset(frame, "customers")
    assert ds.num_rows == 5000 and ds.num_columns == 4
    assert [c["name"] for c in ds.schema] == ["age", "income", "city", "flag"]
    prof = ds.profile["columns"]
    assert prof["income"]["kind"] == "numeric" and len(prof["income"]["percentiles"]) == 101
    assert abs(prof["income"]["mean"] - frame["income"].mean()) < 1e-6
    assert sum(prof["age"]["histogram"]["counts"]) == 5000
    assert prof["city"]["kind"] == "categorical" and set(prof["city"]["top"]) == {"paris", "oslo", "lima"}
    [stored] = cellops.get_run(run.id).inputs
    assert stored.fingerprint == ds.fingerprint and stored.role == "input"


def test_the_fingerprint_covers_every_row(ws, frame):
    from cellops.datasets import describe

    base = describe(frame, "d")["fingerprint"]
    changed = frame.copy()
    changed.loc[4321, "income"] += 0.01  # deep inside, far from any sample
    assert describe(changed, "d")["fingerprint"] != base
    assert describe(frame.copy(), "d")["fingerprint"] == base
    renamed = frame.rename(columns={"age": "years"})
    assert describe(renamed, "d")["fingerprint"] != base


def test_the_same_dataset_is_stored_once_and_linked_to_each_run(ws, frame):
    with cellops.start_run() as a:
        a.log_dataset(frame, "customers")
    with cellops.start_run() as b:
        b.log_dataset(frame, "customers")
        b.log_dataset(frame.head(10), "predictions", role="output")
    import sqlite3

    con = sqlite3.connect(ws.db_path)
    assert con.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM run_datasets").fetchone()[0] == 3
    assert [d.name for d in cellops.get_run(b.id).outputs] == ["predictions"]


def test_a_file_path_is_fingerprinted_by_its_bytes_and_profiled(ws, frame, tmp_path):
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    with cellops.start_run() as run:
        ds = run.log_dataset(path)
    import hashlib

    assert ds.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.name == "customers.csv" and ds.num_rows == 5000 and ds.format == "csv"
    assert ds.source == str(path)


def test_arrays_and_series_are_accepted(ws):
    with cellops.start_run() as run:
        a = run.log_dataset(np.arange(12).reshape(4, 3), "matrix")
        s = run.log_dataset(pd.Series([1.0, 2.0], name="y"), "target")
    assert (a.num_rows, a.num_columns) == (4, 3)
    assert s.schema == [{"name": "y", "dtype": "float64"}]


def test_bad_dataset_inputs_get_advice(ws, tmp_path):
    with cellops.start_run() as run:
        with pytest.raises(cellops.InvalidArgumentError, match="needs a name"):
            run.log_dataset(pd.DataFrame({"a": [1]}))
        with pytest.raises(cellops.InvalidArgumentError, match="No file or folder"):
            run.log_dataset(tmp_path / "missing.csv")
        with pytest.raises(cellops.InvalidArgumentError, match="DataFrame"):
            run.log_dataset({"a": 1}, "dict")
        with pytest.raises(cellops.InvalidArgumentError, match="'input' or 'output'"):
            run.log_dataset(pd.DataFrame({"a": [1]}), "x", role="training")
    assert run.inputs == []
