"""Artifacts: content-addressed blobs, safe names, any fsspec root."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

import cellops
from cellops.artifacts import ArtifactStore, validate_name


def test_files_folders_and_bytes_are_stored_and_read_back(ws, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x00weights")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    with cellops.start_run() as run:
        assert run.log_artifact(tmp_path / "model.bin") == "model.bin"
        assert run.log_artifact(str(folder)) == ["plots/a.txt", "plots/sub/b.txt"]
        assert run.log_artifact(b"raw", "data/raw.dat") == "data/raw.dat"
        run.log_text("hello", "notes.md")
        run.log_dict({"k": [1, 2]}, "cfg.json")
    arts = {a["path"]: a for a in cellops.get_run(run.id).artifacts}
    assert set(arts) == {"model.bin", "plots/a.txt", "plots/sub/b.txt", "data/raw.dat",
                         "notes.md", "cfg.json"}
    assert arts["model.bin"]["sha256"] == hashlib.sha256(b"\x00weights").hexdigest()
    assert arts["model.bin"]["size"] == 8
    assert arts["notes.md"]["media_type"] == "text/markdown"
    assert run.read_artifact("plots/sub/b.txt") == b"B"
    assert json.loads(run.read_artifact("cfg.json")) == {"k": [1, 2]}
    out = run.download_artifact("model.bin", str(tmp_path / "out") + "/")
    assert out.read_bytes() == b"\x00weights" and out.name == "model.bin"


def test_identical_content_is_stored_once(ws):
    with cellops.start_run() as a:
        a.log_artifact(b"same", "x.txt")
    with cellops.start_run() as b:
        b.log_artifact(b"same", "y.txt")
    assert a.artifacts[0]["sha256"] == b.artifacts[0]["sha256"]
    assert sorted(ws.artifacts.blobs()) == sorted(ws.store.artifacts.referenced_blobs())


def test_logging_the_same_name_again_replaces_it(ws):
    with cellops.start_run() as run:
        run.log_artifact(b"v1", "m.txt")
        run.log_artifact(b"v2", "m.txt")
    assert run.read_artifact("m.txt") == b"v2" and len(run.artifacts) == 1


@pytest.mark.parametrize(
    "name, message",
    [
        ("../escape.txt", "'..'"),
        ("a/../../b", "'..'"),
        ("..\\win.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\temp\\x", "absolute"),
        ("bad\x00name", "control character"),
        ("a\nb.txt", "control character '\\n'"),
        ("tab\there", "control character"),
        ("x\ud800.txt", "not valid Unicode"),
        ("", "non-empty"),
        ("./", "names no file"),
    ],
)
def test_unsafe_names_are_refused_and_nothing_is_stored(ws, name, message):
    with cellops.start_run() as run:
        run.log_artifact(b"keep", "keep.txt")
        with pytest.raises(cellops.ArtifactNameError, match=message.replace("\\", "\\\\")):
            run.log_artifact(b"data", name)
    assert [a["path"] for a in run.artifacts] == ["keep.txt"]
    assert run.read_artifact("keep.txt") == b"keep"


def test_names_are_normalised():
    assert validate_name("./a//b/./c.txt") == "a/b/c.txt"
    assert validate_name("dir\\file.txt") == "dir/file.txt"


def test_bad_artifact_inputs_get_advice(ws, tmp_path):
    with cellops.start_run() as run:
        with pytest.raises(cellops.InvalidArgumentError, match="needs a name"):
            run.log_artifact(b"data")
        with pytest.raises(cellops.InvalidArgumentError, match="No file or folder"):
            run.log_artifact(tmp_path / "missing.txt")
        with pytest.raises(cellops.InvalidArgumentError, match="log_figure"):
            run.log_artifact(12345)  # type: ignore[arg-type]
        with pytest.raises(cellops.ArtifactNotFoundError, match="It has no artifacts"):
            run.read_artifact("nope.txt")
        run.log_artifact(b"1", "one.txt")
        with pytest.raises(cellops.ArtifactNotFoundError, match="'one.txt'"):
            run.read_artifact("two.txt")


def test_matplotlib_figures_are_stored_as_png(ws):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with cellops.start_run() as run:
        assert run.log_figure(fig, "curve") == "curve.png"
        run.log_figure(fig, "curve.svg")
        with pytest.raises(cellops.InvalidArgumentError, match="matplotlib or plotly"):
            run.log_figure(object(), "x.png")
    plt.close(fig)
    assert run.read_artifact("curve.png").startswith(b"\x89PNG")
    assert b"<svg" in run.read_artifact("curve.svg")


def test_a_logged_model_carries_its_signature_and_registers_and_serves_by_column(ws):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"age": [20, 30, 40, 50], "income": [1.0, 2.5, 3.0, 4.5]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    with cellops.start_run() as run:
        assert cellops.log_model(model, X_sample=X) == "models/model.skops"
        with pytest.raises(cellops.InvalidArgumentError, match="fitted scikit-learn estimator"):
            run.log_model({"not": "a model"})
    sig = json.loads(run.read_artifact("models/model.signature.json"))
    assert sig["inputs"] == [{"name": "age", "dtype": "int64"}, {"name": "income", "dtype": "float64"}]
    version = cellops.register_model(run.id, "logged")
    assert version.signature == sig
    loaded = cellops.load_model("models:/logged/1")
    assert list(loaded.predict(X)) == list(model.predict(X))


def test_the_artifact_root_may_be_any_fsspec_url(tmp_path):
    ws_dir = tmp_path / ".cellops"
    ws_dir.mkdir()
    (ws_dir / "config.json").write_text(json.dumps({"artifact_root": "memory://cellops-test"}))
    ws = cellops.workspace()
    assert ws.artifacts.url == "memory://cellops-test"
    with cellops.start_run() as run:
        run.log_artifact(b"in memory", "m.txt")
    assert run.read_artifact("m.txt") == b"in memory"
    assert not any((ws_dir / "artifacts").rglob("*")) if (ws_dir / "artifacts").exists() else True
    sha = run.artifacts[0]["sha256"]
    assert ws.artifacts.fs.exists(f"/cellops-test/{sha[:2]}/{sha}")


def test_memory_store_dedups_and_collects_garbage():
    store = ArtifactStore("memory://gc-test")
    a, _ = store.put(b"a")
    b, size = store.put(b"bb")
    assert store.put(b"a")[0] == a and sorted(store.blobs()) == sorted([a, b])
    kept = store.gc(lambda: {a})  # both are younger than the grace period
    assert kept.blobs == [] and sorted(store.blobs()) == sorted([a, b])
    found = store.gc(lambda: {a}, grace_s=0)
    assert found.blobs == [b] and found.blob_bytes == size == 2
    assert list(store.blobs()) == [a]


def test_writes_go_through_a_temporary_name(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path / "blobs")
    seen = []
    real_open = store.fs.open

    def spy(path, mode="rb", **kw):
        seen.append(path)
        return real_open(path, mode, **kw)

    monkeypatch.setattr(store.fs, "open", spy)
    sha, _ = store.put(b"payload")
    assert "/.tmp/" in seen[0]
    assert not list((tmp_path / "blobs" / ".tmp").iterdir())
    assert (tmp_path / "blobs" / sha[:2] / sha).read_bytes() == b"payload"


def test_a_failed_write_leaves_no_blob_and_no_row(ws):
    class Exploding:
        def read(self, n):
            raise OSError("disk on fire")

    with pytest.raises(OSError):
        ws.artifacts.put(Exploding())
    assert list(ws.artifacts.blobs()) == []
    assert not list((ws.path / "artifacts" / ".tmp").iterdir())


def test_a_blob_deleted_behind_cellops_gives_a_clear_error(ws):
    with cellops.start_run() as run:
        run.log_artifact(b"gone", "g.txt")
    ws.artifacts.delete(run.artifacts[0]["sha256"])
    with pytest.raises(cellops.ArtifactNotFoundError, match="deleted outside cellops"):
        run.read_artifact("g.txt")
    rows = sqlite3.connect(ws.db_path).execute("SELECT path FROM artifacts").fetchall()
    assert rows == [("g.txt",)]


def test_an_object_store_root_without_its_backend_says_which_extra_to_install():
    import fsspec

    def missing(url, **kw):
        raise ImportError("Install s3fs to access S3")  # what fsspec says without s3fs

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fsspec.core, "url_to_fs", missing)
        with pytest.raises(cellops.WorkspaceError, match=r'needs a package that is not installed '
                                                         r'.*pip install "cellops\[s3\]"'):
            ArtifactStore("s3://bucket/prefix")
    with pytest.raises(cellops.WorkspaceError, match="not a URL fsspec knows"):
        ArtifactStore("nosuchscheme://bucket/prefix")
