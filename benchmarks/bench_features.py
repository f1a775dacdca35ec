"""The feature store (issue #24): point-in-time retrieval against pandas' ``merge_asof``
(the floor any user can write) and, when it installs, Feast's local offline store; online
lookups; materialization.

    python benchmarks/bench_features.py [--feast-python /path/to/feast-venv/bin/python]
                                        [--big] [--repeat 3]

Data: 10,000 entities, 5 float features, timestamps over 30 days; entity rows at random
times; TTL 7 days. Each measurement runs in a fresh process on the same Parquet files and
reports seconds (best of --repeat) and the process's peak resident memory.

- retrieval, 100,000 entity rows x 1,000,000 feature rows: cellops'
  ``get_historical_features`` (view registered before timing: registration is done once
  and sorts the view), and the anchor: ``merge_asof`` written by hand — sort both frames,
  join by key with the TTL as tolerance (it gives the same values only because the
  generated data has no timestamp ties, which merge_asof alone does not break by created
  timestamp). Goal: <= merge_asof's time; >= 20x faster than Feast.
- ``--big``: 100,000 x 10,000,000 feature rows: time and peak memory (goal: fits in 4 GB).
- online lookups: p50 of ``get_online_features`` for 1 and 100 entities (goal: <= 0.5 ms
  for 1 entity), DataFrame and ``to_dict``.
- materialize 1,000,000 rows: time and peak memory.
- a served request (one row, MLflow protocol, keep-alive) of a model whose features come
  from the store: entity key only (the server looks the features up) against the same
  model given its features; goal: <= 1 ms added at p50.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ENTITIES, FEATURES, DAYS = 10_000, 5, 30


def make(folder: Path, feature_rows: int, entity_rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pandas as pd

    feats, ents = folder / f"features-{feature_rows}.parquet", folder / f"entities-{entity_rows}.parquet"
    if not feats.exists():
        rng = np.random.default_rng(0)
        t0 = pd.Timestamp("2024-01-01").value
        span = DAYS * 86400 * 10**9
        # Distinct timestamps: merge_asof (the anchor) has no tie-break of its own.
        offsets = rng.choice(span // 10**6, feature_rows, replace=False) * 10**6
        frame = pd.DataFrame({"customer_id": rng.integers(0, ENTITIES, feature_rows),
                              "ts": pd.to_datetime(t0 + offsets)})
        for i in range(FEATURES):
            frame[f"f{i}"] = rng.normal(size=feature_rows)
        frame.to_parquet(feats, index=False)
    if not ents.exists():
        rng = np.random.default_rng(1)
        t0 = pd.Timestamp("2024-01-01").value
        pd.DataFrame({"customer_id": rng.integers(0, ENTITIES, entity_rows),
                      "event_timestamp": pd.to_datetime(
                          t0 + rng.integers(0, DAYS * 86400, entity_rows) * 10**9)}
                     ).to_parquet(ents, index=False)
    return feats, ents


def run(code: str, python: str = sys.executable, cwd: Path | None = None) -> dict:
    """Run ``code`` in a fresh process; it prints one JSON line (with its peak memory)."""
    wrapped = textwrap.dedent(code) + textwrap.dedent("""
        import resource as _r
        OUT["peak_mb"] = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + __import__("json").dumps(OUT))
    """)
    proc = subprocess.run([python, "-c", wrapped], capture_output=True, text=True, cwd=cwd,
                          timeout=3600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(lines[-1][7:])


CELLOPS_RETRIEVAL = """
    import os, time, pandas as pd, cellops
    os.chdir({ws!r}); cellops.init_workspace({ws!r})
    feats = pd.read_parquet({feats!r}); ents = pd.read_parquet({ents!r})
    t = time.perf_counter()
    cellops.register_feature_view("customer", feats, entities="customer_id", timestamp="ts", ttl="7d")
    register = time.perf_counter() - t
    del feats
    best = None
    for _ in range({repeat}):
        t = time.perf_counter()
        out = cellops.get_historical_features(ents, ["customer:*"])
        best = min(best or 1e9, time.perf_counter() - t)
    OUT = {{"seconds": best, "register_s": register, "matched": int(out["f0"].notna().sum()),
            "checksum": float(out["f0"].fillna(0).sum())}}
"""

CELLOPS_COLD = """
    import os, time, pandas as pd, cellops
    os.chdir({ws!r})
    ents = pd.read_parquet({ents!r})
    t = time.perf_counter()
    out = cellops.get_historical_features(ents, ["customer:*"])
    OUT = {{"seconds": time.perf_counter() - t, "matched": int(out["f0"].notna().sum())}}
"""

ANCHOR_RETRIEVAL = """
    import time, pandas as pd
    feats = pd.read_parquet({feats!r}); ents = pd.read_parquet({ents!r})
    best = None
    for _ in range({repeat}):
        t = time.perf_counter()
        left = ents.reset_index().sort_values("event_timestamp")
        right = feats.sort_values("ts")
        out = pd.merge_asof(left, right, left_on="event_timestamp", right_on="ts",
                            by="customer_id", direction="backward",
                            tolerance=pd.Timedelta("7d")).sort_values("index")
        best = min(best or 1e9, time.perf_counter() - t)
    OUT = {{"seconds": best, "matched": int(out["f0"].notna().sum()),
            "checksum": float(out["f0"].fillna(0).sum())}}
"""

DUCKDB_RETRIEVAL = """
    import time, duckdb, pandas as pd
    feats = pd.read_parquet({feats!r}); ents = pd.read_parquet({ents!r}).reset_index()
    con = duckdb.connect()
    best = None
    for _ in range({repeat}):
        t = time.perf_counter()
        # ASOF JOIN takes one inequality: the TTL is applied to what it found.
        keep = "f.ts >= e.event_timestamp - INTERVAL 7 DAY"
        out = con.execute(
            "SELECT e.index, " + ", ".join(f"CASE WHEN {{keep}} THEN f.f{{i}} END AS f{{i}}" for i in range(5))
            + " FROM ents e ASOF LEFT JOIN feats f ON e.customer_id = f.customer_id"
            " AND e.event_timestamp >= f.ts ORDER BY e.index").df()
        best = min(best or 1e9, time.perf_counter() - t)
    OUT = {{"seconds": best, "matched": int(out["f0"].notna().sum()),
            "checksum": float(out["f0"].fillna(0).sum())}}
"""

FEAST_RETRIEVAL = """
    import os, time, pandas as pd
    from datetime import timedelta
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64
    repo = {ws!r}; os.makedirs(repo, exist_ok=True)
    config = RepoConfig(project="bench", provider="local", registry=os.path.join(repo, "registry.db"),
                        online_store={{"type": "sqlite", "path": os.path.join(repo, "online.db")}},
                        offline_store={{"type": "file"}}, entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    customer = Entity(name="customer", join_keys=["customer_id"])
    source = FileSource(path={feats!r}, timestamp_field="ts")
    view = FeatureView(name="customer", entities=[customer], ttl=timedelta(days=7),
                       schema=[Field(name=f"f{{i}}", dtype=Float64) for i in range(5)], source=source)
    store.apply([customer, view])
    ents = pd.read_parquet({ents!r})
    t = time.perf_counter()
    out = store.get_historical_features(entity_df=ents, features=[f"customer:f{{i}}" for i in range(5)]).to_df()
    OUT = {{"seconds": time.perf_counter() - t, "matched": int(out["f0"].notna().sum()),
            "checksum": float(out["f0"].fillna(0).sum())}}
"""

ONLINE = """
    import os, time, statistics, numpy as np, pandas as pd, cellops
    os.chdir({ws!r}); cellops.init_workspace({ws!r})
    feats = pd.read_parquet({feats!r})
    cellops.register_feature_view("customer", feats, entities="customer_id", timestamp="ts", ttl="7d")
    del feats
    t = time.perf_counter()
    (done,) = cellops.materialize("customer", end="2024-01-31")
    materialize = time.perf_counter() - t
    rng = np.random.default_rng(2)
    out = {{"materialize_s": materialize, "written": done.rows_written}}
    for n in (1, 100):
        for as_dict in (False, True):
            rows = [[{{"customer_id": int(k)}} for k in rng.integers(0, {entities}, n)] for _ in range(300)]
            times = []
            for r in rows:
                t = time.perf_counter()
                cellops.get_online_features(["customer:*"], r, to_dict=as_dict)
                times.append(time.perf_counter() - t)
            out[f"p50_{{n}}_{{'dict' if as_dict else 'frame'}}_ms"] = statistics.median(times[20:]) * 1e3
    OUT = out
"""


SERVED = """
    import os, time, json, statistics, http.client, urllib.parse
    import numpy as np, pandas as pd, cellops
    from sklearn.linear_model import LogisticRegression
    os.chdir({ws!r}); cellops.init_workspace({ws!r})
    feats = pd.read_parquet({feats!r})
    cellops.register_feature_view("customer", feats, entities="customer_id", timestamp="ts", ttl="7d")
    rng = np.random.default_rng(3)
    labels = pd.DataFrame({{"customer_id": rng.integers(0, {entities}, 2000),
                           "event_timestamp": pd.Timestamp("2024-01-20"),
                           "tenure": rng.integers(1, 60, 2000)}})
    with cellops.start_run(name="train"):
        train = cellops.get_historical_features(labels, ["customer:*"]).fillna(0)
        X = train[[f"f{{i}}" for i in range(5)] + ["tenure"]]
        y = (X["f0"] > 0).astype(int)
        model = LogisticRegression().fit(X, y)
        cellops.register_model(model, "enriched", X_sample=X)
    cellops.register_model(model, "plain", X_sample=X)  # no run: takes its features given
    cellops.materialize(end="2024-01-31")
    out = {{}}
    for name, body in (("plain", {{"dataframe_records": [dict(X.iloc[0])]}}),
                       ("enriched", {{"dataframe_records": [{{"customer_id": int(labels.customer_id[0]),
                                                              "tenure": int(labels.tenure[0])}}]}})):
        import socket, subprocess, sys
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0)); port = free.getsockname()[1]
        # Its own process, as `cellops serve` runs (a server thread here would share the GIL).
        server = subprocess.Popen([sys.executable, "-m", "cellops", "serve", f"models:/{{name}}/1",
                                   "--port", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        data = json.dumps(body, default=float).encode()
        times = []
        for i in range(600):
            t = time.perf_counter()
            conn.request("POST", "/invocations", data, {{"content-type": "application/json"}})
            res = conn.getresponse(); res.read()
            assert res.status == 200, res.status
            times.append(time.perf_counter() - t)
        server.terminate(); server.wait()
        out[name] = statistics.median(times[100:]) * 1e3
    OUT = out
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feast-python", default=os.environ.get("BENCH_FEAST_PYTHON"),
                    help="A Python with feast installed (its own venv).")
    ap.add_argument("--duckdb-python", default=os.environ.get("BENCH_DUCKDB_PYTHON"),
                    help="A Python with duckdb installed, to time DuckDB's ASOF JOIN on the same data.")
    ap.add_argument("--big", action="store_true", help="Also 10,000,000 feature rows.")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "cellops-bench-features"))
    args = ap.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [(1_000_000, 100_000)] + ([(10_000_000, 100_000)] if args.big else [])
    print(f"{'measure':<44} {'cellops':>12} {'merge_asof':>12} {'Feast':>10}  ratios")
    for feature_rows, entity_rows in sizes:
        feats, ents = make(data, feature_rows, entity_rows)
        with tempfile.TemporaryDirectory() as tmp:
            mine = run(CELLOPS_RETRIEVAL.format(ws=tmp, feats=str(feats), ents=str(ents),
                                                repeat=args.repeat))
            cold = run(CELLOPS_COLD.format(ws=tmp, ents=str(ents)))
        anchor = run(ANCHOR_RETRIEVAL.format(feats=str(feats), ents=str(ents), repeat=args.repeat))
        assert mine["matched"] == anchor["matched"], (mine, anchor)
        assert abs(mine["checksum"] - anchor["checksum"]) < 1e-6 * max(1, abs(anchor["checksum"]))
        duck = None
        if args.duckdb_python:
            try:
                duck = run(DUCKDB_RETRIEVAL.format(feats=str(feats), ents=str(ents), repeat=args.repeat),
                           python=args.duckdb_python)
            except RuntimeError as exc:
                print(f"DuckDB failed: {str(exc)[-400:]}", file=sys.stderr)
        feast = None
        if args.feast_python and feature_rows <= 1_000_000:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    feast = run(FEAST_RETRIEVAL.format(ws=tmp, feats=str(feats), ents=str(ents)),
                                python=args.feast_python)
                except RuntimeError as exc:
                    print(f"Feast failed: {str(exc)[-400:]}", file=sys.stderr)
        label = f"retrieval {entity_rows:,} x {feature_rows:,} (s)"
        ratio = f"{anchor['seconds'] / mine['seconds']:.2f}x merge_asof"
        if feast:
            ratio += f", {feast['seconds'] / mine['seconds']:.0f}x Feast"
        print(f"{label:<44} {mine['seconds']:>12.3f} {anchor['seconds']:>12.3f} "
              f"{feast['seconds'] if feast else float('nan'):>10.2f}  {ratio}")
        print(f"{'  peak memory (MB)':<44} {mine['peak_mb']:>12.0f} {anchor['peak_mb']:>12.0f} "
              f"{feast['peak_mb'] if feast else float('nan'):>10.0f}")
        print(f"{'  first retrieval of a new process (s)':<44} {cold['seconds']:>12.3f}"
              f"   (reads the view's Parquet; peak {cold['peak_mb']:.0f} MB)")
        if duck:
            same = "same values" if duck["matched"] == mine["matched"] else \
                f"matched {duck['matched']:,} rows, cellops {mine['matched']:,}"
            print(f"{'  DuckDB ASOF JOIN (engine alternative) (s)':<44} {duck['seconds']:>12.3f}"
                  f"   ({mine['seconds'] and duck['seconds'] / mine['seconds']:.1f}x cellops; "
                  f"peak {duck['peak_mb']:.0f} MB; {same})")
        print(f"{'  registration, once (s)':<44} {mine['register_s']:>12.3f}")
        if feast and feast["matched"] != mine["matched"]:
            print(f"  (Feast matched {feast['matched']:,} rows, cellops {mine['matched']:,})")
    feats, _ = make(data, 1_000_000, 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        online = run(ONLINE.format(ws=tmp, feats=str(feats), entities=ENTITIES))
    print(f"{'materialize 1,000,000 rows (s)':<44} {online['materialize_s']:>12.3f}"
          f"   ({online['written']:,} entities written, peak {online['peak_mb']:.0f} MB)")
    for n in (1, 100):
        print(f"{f'online lookup, {n} entit' + ('y' if n == 1 else 'ies') + ', p50 (ms)':<44} "
              f"{online[f'p50_{n}_frame_ms']:>12.3f}   (to_dict: {online[f'p50_{n}_dict_ms']:.3f} ms)")
    with tempfile.TemporaryDirectory() as tmp:
        served = run(SERVED.format(ws=tmp, feats=str(feats), entities=ENTITIES))
    print(f"{'served request, features given, p50 (ms)':<44} {served['plain']:>12.3f}")
    print(f"{'served request, entity key only, p50 (ms)':<44} {served['enriched']:>12.3f}"
          f"   (+{served['enriched'] - served['plain']:.3f} ms for the lookup)")


if __name__ == "__main__":
    main()
