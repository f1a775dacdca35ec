"""Model files: skops in, the trusted-types loader out; pickle never."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import cellops
from cellops.skops_io import trusted_by_default, untrusted_types

X, y = load_breast_cancer(return_X_y=True)


@pytest.mark.parametrize("model", [
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    RandomForestClassifier(n_estimators=5, random_state=0),      # keeps sklearn.tree._tree.Tree
    HistGradientBoostingClassifier(max_iter=5),                  # keeps TreePredictor objects
    MLPClassifier(max_iter=5, random_state=0),                   # keeps its optimizer
], ids=["pipeline", "forest", "hist-gbm", "mlp"])
def test_scikit_learn_models_load_without_naming_any_type(model, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    path = tmp_path / "m.skops"
    path.write_bytes(cellops.dump_skops(model))
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        loaded = cellops.load_skops(source)
        assert np.array_equal(loaded.predict(X[:20]), model.predict(X[:20]))
    assert untrusted_types(path) == []


def double(x):
    return x * 2


def test_a_file_needing_other_types_is_refused_with_the_list_and_the_way_to_trust_them():
    model = make_pipeline(FunctionTransformer(double), StandardScaler(),
                          LogisticRegression(max_iter=500)).fit(X, y)
    data = cellops.dump_skops(model)
    name = f"{__name__}.double"
    with pytest.raises(cellops.UntrustedTypesError) as info:
        cellops.load_skops(data)
    assert info.value.types == [name]
    assert f"cellops.load_skops(source, trusted=['{name}'])" in str(info.value)
    loaded = cellops.load_skops(data, trusted=[name])  # the explicit decision
    assert np.array_equal(loaded.predict(X[:5]), model.predict(X[:5]))


@pytest.mark.parametrize("type_name, trusted", [
    ("sklearn.tree._tree.Tree", True),
    ("sklearn.linear_model._logistic.LogisticRegression", True),
    ("numpy.float64", True),
    ("scipy.sparse._csr.csr_matrix", True),
    ("sklearn.metrics.accuracy_score", False),   # a function, not a class
    ("builtins.eval", False),
    ("os.system", False),
    ("__main__.Anything", False),
    ("sklearn.no_such_module.X", False),
    ("numpy.core.multiarray._reconstruct; import os", False),
])
def test_only_classes_of_scikit_learn_numpy_and_scipy_are_trusted_by_default(type_name, trusted):
    assert trusted_by_default(type_name) is trusted


def test_bad_sources_get_clear_errors(tmp_path):
    with pytest.raises(cellops.InvalidArgumentError, match="not a readable skops file"):
        cellops.load_skops(b"not a zip file")
    with pytest.raises(cellops.InvalidArgumentError, match="Cannot read the model file"):
        cellops.load_skops(tmp_path / "missing.skops")
    with pytest.raises(cellops.InvalidArgumentError, match="list of type names"):
        cellops.load_skops(b"x", trusted="builtins.eval")


def test_loading_never_imports_modules_outside_the_trusted_packages(tmp_path):
    code = ("import sys, cellops.skops_io as m\n"
            "assert not m.trusted_by_default('json.decoder.JSONDecoder')\n"
            "assert not m.trusted_by_default('xml.dom.minidom.Document')\n"
            "print('xml.dom.minidom' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
