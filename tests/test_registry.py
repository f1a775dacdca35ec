"""The model registry: versions tied to their runs, aliases, URIs, safe loading, search."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import cellops
from engines_kit import RawDb

DATA = load_breast_cancer(as_frame=True)
X, Y = DATA.data, DATA.target


def fit(c: float = 1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(X, Y)


@pytest.fixture
def trained(ws):
    """A run as a %%track cell leaves it: params, metrics, a dataset, models/clf.skops and
    its signature."""
    with cellops.start_run(name="train", params={"C": 1.0}) as run:
        run.log_dataset(DATA.frame, "train")
        model = fit()
        run.log_artifact(cellops.dump_skops(model), "models/clf.skops")
        run.log_text(json.dumps({"inputs": [{"name": c, "dtype": "float64"} for c in X.columns],
                                 "n_features": X.shape[1]}), "models/clf.signature.json")
        run.log_metrics({"auc": 0.97, "accuracy": 0.95})
    return run, model


def test_a_run_registers_as_numbered_versions_that_remember_where_they_came_from(trained):
    run, model = trained
    v1 = cellops.register_model(run, "cancer", description="Screening", tags={"team": "ml"})
    v2 = cellops.register_model(run.id[:8], "cancer")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.run_id == run.id and v1.artifact_path == "models/clf.skops"
    assert v1.sha256 == hashlib.sha256(run.read_artifact("models/clf.skops")).hexdigest()
    assert v1.signature["n_features"] == 30 and v1.signature["inputs"][0]["name"] == "mean radius"
    assert v1.environment_id == run.info["environment_id"]
    assert [(d["name"], d["role"], d["rows"]) for d in v1.lineage] == [("train", "input", 569)]
    assert v1.tags == {"team": "ml"} and v1.description == "Screening"
    assert v1.created_by == cellops.current_user() and v1.uri == "models:/cancer/1"
    assert cellops.register_model(f"runs:/{run.id}/models/clf.skops", "other").version == 1
    assert [m.name for m in cellops.list_models()] == ["cancer", "other"]


def test_an_estimator_registers_with_its_signature_and_joins_the_active_run(ws):
    model = fit()
    loose = cellops.register_model(model, "loose", X_sample=X.head())
    assert loose.run_id is None and loose.artifact_path is None
    assert loose.signature["inputs"][1] == {"name": "mean texture", "dtype": "float64"}
    with cellops.start_run() as run:
        inside = cellops.register_model(model, "inside")
    assert inside.run_id == run.id and inside.artifact_path == "models/inside.skops"
    assert {a["path"] for a in run.artifacts} == {"models/inside.skops", "models/inside.signature.json"}


@pytest.mark.parametrize("source, message", [
    (42, "takes a run, a run id"),
    ("runs:/abcd", "names no artifact"),
    (LogisticRegression(), "LogisticRegression is not fitted: call .fit"),
])
def test_bad_sources_say_what_is_accepted(ws, source, message):
    with pytest.raises(cellops.InvalidArgumentError, match=message):
        cellops.register_model(source, "m")
    assert cellops.list_models() == [] and cellops.audit_head()["seq"] == 0


def test_a_run_without_a_model_file_says_how_to_get_one(ws):
    with cellops.start_run() as run:
        run.log_metric("m", 1)
    with pytest.raises(cellops.ArtifactNotFoundError, match="no model file"):
        cellops.register_model(run, "m")
    assert cellops.list_models() == []


@pytest.mark.parametrize("name", ["", "a/b", "a@b", " padded", "x" * 251, "bad\nname"])
def test_model_names_that_would_break_uris_are_refused(trained, name):
    with pytest.raises(cellops.InvalidArgumentError, match="model name"):
        cellops.register_model(trained[0], name)


def test_versions_aliases_and_latest_resolve_and_unknown_ones_list_the_choices(trained):
    run, _ = trained
    for _ in range(3):
        cellops.register_model(run, "m")
    cellops.set_alias("m", "champion", 2)
    assert cellops.get_model_version("m", "champion").version == 2
    assert cellops.get_model_version("m").version == 3  # latest
    assert cellops.get_model_version("m", 1).aliases == []
    with pytest.raises(cellops.ModelNotFoundError, match="No registered model named 'nope'. Models: 'm'"):
        cellops.get_model_version("nope", 1)
    with pytest.raises(cellops.ModelNotFoundError, match="no version 9. Versions: 1, 2, 3"):
        cellops.get_model_version("m", 9)
    with pytest.raises(cellops.ModelNotFoundError, match=r"no alias 'prod'. Aliases: champion->v2"):
        cellops.get_model_version("m", "prod")
    with pytest.raises(cellops.ModelNotFoundError, match="no version 7"):
        cellops.set_alias("m", "champion", 7)
    assert cellops.get_model_version("m", "champion").version == 2  # unchanged


def test_an_alias_moves_atomically_and_deletes(trained):
    run, _ = trained
    cellops.register_model(run, "m")
    cellops.register_model(run, "m")
    cellops.set_alias("m", "champion", 1)
    moved = cellops.set_alias("m", "champion", "latest")
    assert moved.version == 2 and moved.aliases == ["champion"]
    assert cellops.get_model_version("m", 1).aliases == []
    cellops.delete_alias("m", "champion")
    with pytest.raises(cellops.ModelNotFoundError):
        cellops.get_model_version("m", "champion")
    for bad in ("latest", "3", "has space", "a@b"):
        with pytest.raises(cellops.InvalidArgumentError, match="alias"):
            cellops.set_alias("m", bad, 1)


def test_a_version_an_alias_points_at_cannot_be_deleted(trained):
    run, _ = trained
    cellops.register_model(run, "m")
    cellops.register_model(run, "m")
    cellops.set_alias("m", "champion", 1)
    with pytest.raises(cellops.ModelStateError, match="champion"):
        cellops.delete_model_version("m", 1)
    cellops.delete_model_version("m", 2)
    assert [v.version for v in cellops.search_model_versions("name = 'm'")] == [1]
    assert cellops.register_model(run, "m").version == 3  # numbers are never reused


def test_tags_on_versions_and_models(trained):
    cellops.register_model(trained[0], "m")
    cellops.set_model_tags("m", {"stage": "candidate"}, version=1)
    cellops.set_model_tags("m", {"owner": "ml-team"})
    assert cellops.get_model_version("m", 1).tags == {"stage": "candidate"}
    assert cellops.list_models()[0].tags == {"owner": "ml-team"}


def test_search_uses_the_filter_grammar_over_versions_and_their_runs(ws):
    for c, auc in ((0.1, 0.91), (1.0, 0.97), (10.0, 0.95)):
        with cellops.start_run(params={"C": c}) as run:
            run.log_metric("auc", auc)
            cellops.register_model(fit(c), "m", tags={"C": c})
    cellops.set_alias("m", "champion", 2)
    def found(flt, **kw):
        return [v.version for v in cellops.search_model_versions(flt, **kw)]
    assert found("name = 'm'") == [3, 2, 1]
    assert found("metrics.auc > 0.93") == [3, 2]
    assert found("params.C >= 1 and metrics.auc < 0.96") == [3]
    assert found("alias = 'champion'") == [2]
    assert found("alias IS NULL") == [3, 1]
    assert found("tags.C = '0.1'") == [1]
    assert found("version > 1", order_by="version ASC") == [2, 3]
    assert found(None, max_results=1) == [3]
    with pytest.raises(cellops.FilterSyntaxError, match="Unknown attribute 'status'"):
        cellops.search_model_versions("status = 'FINISHED'")
    with pytest.raises(cellops.FilterSyntaxError, match="Unknown entity 'models' for model versions"):
        cellops.search_model_versions("models.name = 'x'")
    assert found("datasets.name = 'x'") == []  # their lineage is searchable (issue #27)


def test_load_model_by_version_alias_latest_and_run_uri(trained):
    run, model = trained
    cellops.register_model(run, "m")
    cellops.set_alias("m", "prod", 1)
    expected = model.predict_proba(X.head(10))
    for uri in ("models:/m/1", "models:/m@prod", "models:/m/latest", f"runs:/{run.id}/models/clf.skops"):
        assert np.allclose(cellops.load_model(uri).predict_proba(X.head(10)), expected), uri
    assert np.allclose(cellops.get_model_version("m", 1).load().predict_proba(X.head(3)), expected[:3])
    for bad in ("models:/m", "s3://x", "models:/@x", "runs:/abc"):
        with pytest.raises(cellops.InvalidArgumentError, match="not a model URI"):
            cellops.load_model(bad)


def test_a_model_file_whose_bytes_changed_is_not_loaded(trained, ws):
    run, _ = trained
    v = cellops.register_model(run, "m")
    blob = ws.path / "artifacts" / v.sha256[:2] / v.sha256
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(cellops.StoreError, match="changed after it was registered"):
        cellops.load_model("models:/m/1")


def double(x):
    return x * 2


def test_a_model_needing_untrusted_types_is_refused_until_named(ws):
    risky = make_pipeline(FunctionTransformer(double), StandardScaler(), LogisticRegression()).fit(X, Y)
    cellops.register_model(risky, "risky")
    with pytest.raises(cellops.UntrustedTypesError, match=r"test_registry\.double"):
        cellops.load_model("models:/risky/1")
    assert cellops.load_model("models:/risky/1", trusted=[f"{__name__}.double"]) is not None


def test_registered_models_outlive_their_run_and_gc(trained, ws):
    run, _ = trained
    v = cellops.register_model(run, "m")
    cellops.delete_runs([run.id], force=True)  # a source run: deleted on purpose
    cellops.garbage_collect(grace=0)
    assert cellops.load_model("models:/m/1") is not None
    card = cellops.model_card("m", 1).markdown
    assert "deleted since" in card and "| train | input | 569 × 31 |" in card
    assert ws.artifacts.exists(v.sha256)


def test_the_user_is_the_os_user_unless_cellops_user_or_acting_as_says(trained, monkeypatch):
    from cellops.tracking.context import process_info

    assert cellops.current_user() == process_info()["user"]
    monkeypatch.setenv("CELLOPS_USER", "ci-bot")
    assert cellops.register_model(trained[0], "m").created_by == "ci-bot"
    with cellops.acting_as("alice"):
        assert cellops.current_user() == "alice"
        assert cellops.register_model(trained[0], "m").created_by == "alice"
    assert cellops.current_user() == "ci-bot"


def test_registry_rows_are_refused_for_hostile_values_and_nothing_changes(trained, ws):
    cellops.register_model(trained[0], "m")
    before = RawDb(ws).execute("SELECT count(*) FROM audit_log").fetchone()
    for call in (lambda: cellops.set_model_tags("m", {"k": "x\ud800"}),
                 lambda: cellops.register_model(trained[0], "m", description="\udcff"),
                 lambda: cellops.set_alias("m", "a\nb", 1)):
        with pytest.raises(cellops.InvalidArgumentError):
            call()
    assert RawDb(ws).execute("SELECT count(*) FROM audit_log").fetchone() == before


def test_the_model_card_is_written_from_lineage(trained, ws):
    run, _ = trained
    with cellops.acting_as("alice"):
        cellops.register_model(run, "my_model", description="Flags <b>suspicious</b> biopsies")
        cellops.protect_alias("my_model", "prod", approvers=["bob"])
        req = cellops.set_alias("my_model", "prod", 1)
    with cellops.acting_as("bob"):
        cellops.approve(req.id, comment="validated on the holdout")
    card = cellops.model_card("my_model", "prod")
    md = card.markdown
    assert md.startswith("# my_model — version 1\n\nAliases: `prod`")
    assert "## Intended use\n\nFlags <b>suspicious</b> biopsies" in md
    assert f"- Run `{run.id[:8]}` train in experiment `Default`" in md
    assert "| C | 1.0 |" in md and "| auc | 0.97 |" in md
    assert "| train | input | 569 × 31 |" in md
    assert "- **train** (input): `mean radius` float64, `mean texture` float64" in md
    assert "| mean radius | float64 |" in md and "## Environment\n\nPython " in md
    assert "| scikit-learn |" in md
    # Issue #22: who asked, who approved and what moved come first, not at the bottom.
    assert md.index("## Approvals and alias history") < md.index("## Intended use")
    history = md.split("## Approvals and alias history")[1].split("## Intended use")[0]
    assert "| alice | request promotion | request #1 for v1 |" in history
    assert "| bob | approve | approved #1: validated on the holdout |" in history
    assert "| bob | set alias | my_model@prod: unset -> v1 |" in history
    html = card.html()
    assert "&lt;b&gt;suspicious&lt;/b&gt;" in html and "<b>suspicious" not in html  # user text escaped
    assert "<table>" in html and card._repr_html_() == html
    assert card.save(ws.path.parent / "cards" / "card.md").read_text() == md


def test_other_areas_add_card_sections_only_when_they_have_data(trained, monkeypatch):
    from cellops.registry import card as card_mod

    monkeypatch.setattr(card_mod, "_SECTIONS", [])
    cellops.register_model(trained[0], "m")
    cellops.register_model(trained[0], "m")
    cellops.registry.register_card_section("Monitoring", lambda v: "no drift" if v.version == 2 else None)
    assert "## Monitoring\n\nno drift" in cellops.model_card("m", 2).markdown
    assert "## Monitoring" not in cellops.model_card("m", 1).markdown
