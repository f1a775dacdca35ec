"""The feature store (issue #24): point-in-time retrieval checked against a brute-force
oracle, no leakage, online values equal to historical ones, versions, lineage, errors."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import cellops
from cellops.errors import InvalidArgumentError, NotFoundError

T0 = pd.Timestamp("2024-01-01")


@pytest.fixture(autouse=True)
def _ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cellops.init_workspace(tmp_path)
    yield


def oracle(entity_df: pd.DataFrame, feats: pd.DataFrame, keys: list[str], ts: str, features: list[str],
           ttl: timedelta | None, created: str | None, event: str = "event_timestamp") -> pd.DataFrame:
    """What point-in-time retrieval must give, row by row, the slow and obvious way."""
    out = {f: [] for f in features}
    feats = feats.reset_index(drop=True)
    for _, row in entity_df.iterrows():
        when = row[event]
        same = np.ones(len(feats), dtype=bool)
        for k in keys:
            same &= (feats[k] == row[k]).to_numpy()
        ok = same & (feats[ts] <= when).to_numpy()
        if ttl is not None:
            ok &= (feats[ts] >= when - ttl).to_numpy()
        cand = feats[ok]
        if cand.empty:
            for f in features:
                out[f].append(np.nan)
            continue
        order = [ts] + ([created] if created else [])
        best = cand.assign(_pos=cand.index).sort_values(order + ["_pos"], kind="stable").iloc[-1]
        for f in features:
            out[f].append(best[f])
    return pd.DataFrame(out, index=entity_df.index)


def random_case(rng: np.random.Generator, composite: bool, with_created: bool):
    n_feat, n_ent, n_keys = int(rng.integers(1, 120)), int(rng.integers(1, 80)), int(rng.integers(1, 8))
    hours = lambda n: T0 + pd.to_timedelta(rng.integers(0, 48, n), unit="h")  # noqa: E731 - many ties
    feats = pd.DataFrame({"cid": rng.integers(0, n_keys, n_feat), "ts": hours(n_feat),
                          "x": rng.normal(size=n_feat).round(3), "y": rng.integers(0, 100, n_feat)})
    if composite:
        feats["region"] = rng.choice(["eu", "us"], n_feat)
    if with_created:
        feats["created"] = T0 + pd.to_timedelta(rng.integers(0, 3, n_feat), unit="D")
    feats = feats.sample(frac=1, random_state=int(rng.integers(0, 1000)))  # unsorted input
    ents = pd.DataFrame({"cid": rng.integers(0, n_keys + 2, n_ent),  # some with no history
                         "event_timestamp": hours(n_ent)})
    if composite:
        ents["region"] = rng.choice(["eu", "us"], n_ent)
    return feats, ents


@pytest.mark.parametrize("composite, with_created, ttl", [
    (False, False, None), (False, True, None), (False, False, timedelta(hours=6)),
    (True, True, timedelta(hours=3)), (True, False, None), (False, True, timedelta(hours=1))])
def test_point_in_time_retrieval_equals_a_brute_force_oracle(composite, with_created, ttl):
    rng = np.random.default_rng(hash((composite, with_created, str(ttl))) % 2**32)
    keys = ["cid", "region"] if composite else ["cid"]
    for case in range(25):
        feats, ents = random_case(rng, composite, with_created)
        name = f"v{case}"
        cellops.register_feature_view(name, feats, entities=keys, timestamp="ts", ttl=ttl,
                                      created_timestamp="created" if with_created else None,
                                      features=["x", "y"])
        got = cellops.get_historical_features(ents, [f"{name}:x", f"{name}:y"])
        want = oracle(ents, feats, keys, "ts", ["x", "y"], ttl, "created" if with_created else None)
        assert list(got.index) == list(ents.index)  # the rows, in their order
        pd.testing.assert_frame_equal(got[["x", "y"]].astype(float), want.astype(float),
                                      check_names=False)


def test_a_ttl_boundary_is_inclusive_and_ties_go_to_the_latest_created_then_the_later_row():
    feats = pd.DataFrame({"cid": [1, 1, 1, 1], "ts": [T0, T0, T0, T0 + pd.Timedelta("1h")],
                          "created": [T0, T0 + pd.Timedelta("1m"), T0 + pd.Timedelta("1m"), T0],
                          "x": [1.0, 2.0, 3.0, 4.0]})
    cellops.register_feature_view("t", feats, entities="cid", timestamp="ts",
                                  created_timestamp="created", ttl="2h")
    ents = pd.DataFrame({"cid": [1, 1, 1, 1],
                         "event_timestamp": [T0, T0 + pd.Timedelta("2h"),
                                             T0 + pd.Timedelta("3h"),
                                             T0 + pd.Timedelta("3h") + pd.Timedelta("1ns")]})
    got = cellops.get_historical_features(ents, ["t:x"])["x"].tolist()
    # At T0: rows 2 and 3 tie on created; the later row wins. At T0+2h the T0 rows are
    # exactly 2h old (kept) but the 1h row is newer. At T0+3h the 1h row is exactly 2h old;
    # a nanosecond later it has expired.
    assert got[0] == 3.0 and got[1] == 4.0 and got[2] == 4.0 and np.isnan(got[3])


def test_no_value_ever_comes_from_the_future():
    rng = np.random.default_rng(7)
    feats = pd.DataFrame({"cid": rng.integers(0, 50, 5000),
                          "ts": T0 + pd.to_timedelta(rng.integers(0, 10**6, 5000), unit="s")})
    feats["seen"] = feats["ts"].astype("int64")  # the feature is its own timestamp
    cellops.register_feature_view("leak", feats, entities="cid", timestamp="ts")
    ents = pd.DataFrame({"cid": rng.integers(0, 60, 3000),
                         "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 10**6, 3000), unit="s")})
    got = cellops.get_historical_features(ents, ["leak:seen"])
    matched = got["seen"].notna()
    assert matched.sum() > 2000
    assert (got.loc[matched, "seen"] <= got.loc[matched, "event_timestamp"].astype("int64")).all()


def test_entity_rows_keep_their_order_duplicates_index_and_columns():
    feats = pd.DataFrame({"cid": [1, 2], "ts": [T0, T0], "x": [10.0, 20.0]})
    cellops.register_feature_view("keep", feats, entities="cid", timestamp="ts")
    ents = pd.DataFrame({"cid": [2, 1, 2, 3], "event_timestamp": [T0] * 4, "label": list("abcd")},
                        index=[40, 10, 30, 20])
    got = cellops.get_historical_features(ents, "keep:x")
    assert list(got.index) == [40, 10, 30, 20] and got["label"].tolist() == list("abcd")
    assert got["x"].tolist()[:3] == [20.0, 10.0, 20.0] and np.isnan(got["x"].iloc[3])
    assert "x" not in ents.columns  # the caller's frame is not changed


def test_time_zones_naive_is_utc_and_aware_is_converted():
    feats = pd.DataFrame({"cid": [1, 1], "ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 12:00"]),
                          "x": [1.0, 2.0]})
    cellops.register_feature_view("tz", feats, entities="cid", timestamp="ts")
    # 12:30 in Paris is 11:30 UTC: only the 10:00 UTC value is known then.
    ents = pd.DataFrame({"cid": [1, 1], "event_timestamp": pd.to_datetime(
        ["2024-01-01 12:30", "2024-01-01 13:30"]).tz_localize("Europe/Paris")})
    assert cellops.get_historical_features(ents, "tz:x")["x"].tolist() == [1.0, 2.0]
    text = pd.DataFrame({"cid": [1], "event_timestamp": ["2024-01-01T11:59:00Z"]})
    assert cellops.get_historical_features(text, "tz:x")["x"].tolist() == [1.0]


def test_versions_by_content_and_pinned_references():
    feats = pd.DataFrame({"cid": [1], "ts": [T0], "x": [1.0]})
    v1 = cellops.register_feature_view("ver", feats, entities="cid", timestamp="ts")
    again = cellops.register_feature_view("ver", feats.copy(), entities="cid", timestamp="ts",
                                          description="same data")
    assert again.version == 1 and again.description == "same data"
    v2 = cellops.register_feature_view("ver", feats.assign(x=2.0), entities="cid", timestamp="ts")
    v3 = cellops.register_feature_view("ver", feats.assign(x=2.0), entities="cid", timestamp="ts",
                                       ttl="1d")  # the definition changed
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert [v.version for v in cellops.feature_view_versions("ver")] == [3, 2, 1]
    assert cellops.get_feature_view("ver").version == 3
    assert cellops.get_feature_view("ver", 1).fingerprint == v1.fingerprint
    ents = pd.DataFrame({"cid": [1], "event_timestamp": [T0]})
    assert cellops.get_historical_features(ents, "ver@1:x")["x"].tolist() == [1.0]
    assert cellops.get_historical_features(ents, "ver:x")["x"].tolist() == [2.0]
    assert [v.name for v in cellops.list_feature_views()] == ["ver"]
    assert cellops.get_feature_view("ver", 1).to_frame()["x"].tolist() == [1.0]


def test_the_online_store_equals_historical_retrieval_at_end():
    rng = np.random.default_rng(3)
    feats = pd.DataFrame({"cid": rng.integers(0, 40, 600),
                          "ts": T0 + pd.to_timedelta(rng.integers(0, 72, 600), unit="h"),
                          "x": rng.normal(size=600), "y": rng.integers(0, 9, 600)})
    cellops.register_feature_view("on", feats, entities="cid", timestamp="ts", ttl="12h")
    everyone = [{"cid": int(c)} for c in range(45)]
    for end in (T0 + pd.Timedelta("24h"), T0 + pd.Timedelta("50h"), T0 + pd.Timedelta("100h")):
        (done,) = cellops.materialize("on", end=end)
        online = cellops.get_online_features(["on:x", "on:y"], everyone)
        ents = pd.DataFrame({"cid": range(45), "event_timestamp": [end] * 45})
        offline = cellops.get_historical_features(ents, ["on:x", "on:y"])
        pd.testing.assert_frame_equal(online[["x", "y"]].astype(float),
                                      offline[["x", "y"]].reset_index(drop=True).astype(float))
    assert done.incremental and done.rows_expired > 0  # at +100h every value is stale
    assert cellops.get_online_features("on:x", [{"cid": 1}], to_dict=True) == {"cid": [1], "x": [None]}


def test_incremental_materialization_writes_only_newer_rows():
    feats = pd.DataFrame({"cid": [1, 2, 1], "ts": [T0, T0, T0 + pd.Timedelta("2h")], "x": [1.0, 2.0, 3.0]})
    cellops.register_feature_view("inc", feats, entities="cid", timestamp="ts")
    (first,) = cellops.materialize("inc", end=T0 + pd.Timedelta("1h"))
    assert (first.rows_written, first.incremental) == (2, False)
    (second,) = cellops.materialize("inc", end=T0 + pd.Timedelta("3h"))
    assert (second.rows_written, second.incremental) == (1, True)  # only cid 1 moved
    got = cellops.get_online_features("inc:x", [{"cid": 1}, {"cid": "2"}, {"cid": 3}])
    assert got["x"].tolist()[:2] == [3.0, 2.0] and np.isnan(got["x"].iloc[2])
    # A new version is written afresh.
    cellops.register_feature_view("inc", feats.assign(x=feats["x"] * 10), entities="cid", timestamp="ts")
    (third,) = cellops.materialize("inc", end=T0 + pd.Timedelta("3h"))
    assert not third.incremental and third.rows_written == 2
    assert cellops.get_online_features("inc:x", [{"cid": 1}])["x"].tolist() == [30.0]


def test_a_retrieval_is_lineage_of_the_run_and_of_the_model_registered_from_it():
    from sklearn.linear_model import LogisticRegression

    feats = pd.DataFrame({"cid": [1, 2, 3, 4], "ts": [T0] * 4, "x": [0.1, 0.9, 0.2, 0.8]})
    view = cellops.register_feature_view("lin", feats, entities="cid", timestamp="ts")
    ents = pd.DataFrame({"cid": [1, 2, 3, 4], "event_timestamp": [T0 + pd.Timedelta("1h")] * 4,
                         "label": [0, 1, 0, 1]})
    with cellops.start_run(name="train") as run:
        train = cellops.get_historical_features(ents, ["lin:x"])
        model = LogisticRegression().fit(train[["x"]], train["label"])
        version = cellops.register_model(model, "churn", X_sample=train[["x"]])
    (used,) = [d for d in cellops.get_run(run.id).inputs if d.format == "feature_view"]
    assert used.name == "features:lin@v1" and used.fingerprint == view.fingerprint
    assert any(d["name"] == "features:lin@v1" for d in version.lineage)
    assert "features:lin@v1" in cellops.model_card("churn", version.version).markdown


def test_bad_input_is_a_clear_error_and_stores_nothing():
    feats = pd.DataFrame({"cid": [1, 2], "ts": [T0, T0], "x": [1.0, 2.0]})
    cellops.register_feature_view("good", feats, entities="cid", timestamp="ts")
    cases = [
        (dict(name="bad:name"), "letters, digits"),
        (dict(entities="nope"), "no column 'nope'"),
        (dict(timestamp="x"), "holds numbers"),
        (dict(ttl="soon"), "ttl is a timedelta"),
        (dict(ttl="-1d"), "ttl is a timedelta"),
        (dict(features=["cid"]), "key or timestamp"),
        (dict(source=feats.assign(cid=[1, None])), "have no 'cid'"),
        (dict(source=feats.assign(ts=[T0, None])), "have no 'ts'"),
        (dict(source=feats.assign(cid=[1.5, 2.5])), "keys are integers or text"),
        (dict(source="missing.parquet"), "No file at"),
    ]
    for change, message in cases:
        args = dict(name="good", source=feats, entities="cid", timestamp="ts") | change
        name, source = args.pop("name"), args.pop("source")
        with pytest.raises(InvalidArgumentError, match=message):
            cellops.register_feature_view(name, source, **args)
    assert [v.version for v in cellops.feature_view_versions("good")] == [1]
    ents = pd.DataFrame({"cid": ["1"], "event_timestamp": [T0]})
    with pytest.raises(InvalidArgumentError, match=r"astype\('int'\)"):
        cellops.get_historical_features(ents, "good:x")
    ok = pd.DataFrame({"cid": [1], "event_timestamp": [T0]})
    with pytest.raises(InvalidArgumentError, match="no 'when' column"):
        cellops.get_historical_features(ok, "good:x", timestamp="when")
    with pytest.raises(NotFoundError, match="Registered views: good"):
        cellops.get_historical_features(ok, "other:x")
    with pytest.raises(InvalidArgumentError, match="has no feature 'z'"):
        cellops.get_historical_features(ok, "good:z")
    with pytest.raises(InvalidArgumentError, match="not a feature reference"):
        cellops.get_historical_features(ok, "good.x")
    cellops.register_feature_view("twin", feats, entities="cid", timestamp="ts")
    with pytest.raises(InvalidArgumentError, match="full_feature_names=True"):
        cellops.get_historical_features(ok, ["good:x", "twin:x"])
    both = cellops.get_historical_features(ok, ["good:x", "twin:x"], full_feature_names=True)
    assert both[["good__x", "twin__x"]].iloc[0].tolist() == [1.0, 1.0]
    with pytest.raises(InvalidArgumentError, match="integer key"):
        cellops.get_online_features("good:x", [{"cid": "one"}])


def test_a_parquet_or_csv_file_is_a_source(tmp_path):
    feats = pd.DataFrame({"cid": ["a", "b"], "ts": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
                          "x": [1.0, 2.0]})
    feats.to_csv(tmp_path / "f.csv", index=False)
    pd.DataFrame({**feats, "ts": pd.to_datetime(feats["ts"])}).to_parquet(tmp_path / "f.parquet")
    a = cellops.register_feature_view("csv", tmp_path / "f.csv", entities="cid", timestamp="ts")
    b = cellops.register_feature_view("pq", str(tmp_path / "f.parquet"), entities="cid", timestamp="ts")
    assert a.source.endswith("f.csv") and b.num_rows == 2
    ents = pd.DataFrame({"cid": ["b", "a"], "event_timestamp": [pd.Timestamp("2024-01-03")] * 2})
    got = cellops.get_historical_features(ents, ["csv:x", "pq:x"], full_feature_names=True)
    assert got["csv__x"].tolist() == got["pq__x"].tolist() == [2.0, 1.0]


def test_an_fsspec_url_is_a_source_and_garbage_collection_keeps_every_version():
    import fsspec

    frame = pd.DataFrame({"cid": [1, 2], "ts": [T0, T0], "x": [1.0, 2.0]})
    with fsspec.open("memory://views/f.parquet", "wb") as f:
        frame.to_parquet(f)
    v1 = cellops.register_feature_view("url", "memory://views/f.parquet", entities="cid", timestamp="ts")
    assert v1.source == "memory://views/f.parquet" and v1.num_rows == 2
    cellops.register_feature_view("url", frame.assign(x=[3.0, 4.0]), entities="cid", timestamp="ts")
    cellops.garbage_collect(grace=0)
    from cellops.features import views as feature_views

    feature_views._FRAMES.clear()  # read back from the artifact store, as a new process does
    ents = pd.DataFrame({"cid": [2], "event_timestamp": [T0]})
    assert cellops.get_historical_features(ents, "url@1:x")["x"].tolist() == [2.0]
    assert cellops.get_historical_features(ents, "url:x")["x"].tolist() == [4.0]
