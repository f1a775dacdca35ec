"""What the serving tests share: small registered models and an HTTP client that keeps the
status, headers and body of every reply (http.client: nothing between the test and the
server's bytes)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import cellops

COLUMNS = ["age", "income", "score"]


def numeric_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.integers(18, 80, n).astype("float64"),
                      "income": rng.normal(50_000, 15_000, n),
                      "score": rng.random(n)})
    y = ((X["age"] > 45) ^ (X["score"] > 0.7)).astype(int).to_numpy()
    return X, y


def register_numeric(name: str = "churn", alias: str | None = "champion", C: float = 1.0):
    """A scaler + logistic regression on three float columns, registered with its
    signature; returns (version, fitted model, X)."""
    X, y = numeric_frame()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X, y)
    version = cellops.register_model(model, name, X_sample=X.head())
    if alias:
        cellops.set_alias(name, alias, version.version)
    return version, model, X


def register_mixed(name: str = "shops"):
    """A model over a string column and an integer column (a one-hot encoder inside)."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"city": rng.choice(["Lyon", "Oslo", "Pune"], 120),
                      "visits": rng.integers(0, 20, 120)})
    y = ((X["city"] == "Oslo") | (X["visits"] > 12)).astype(int).to_numpy()
    model = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                          remainder="passthrough"),
        LogisticRegression(max_iter=1000)).fit(X, y)
    version = cellops.register_model(model, name, X_sample=X.head())
    return version, model, X


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to a scoring server."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token = token
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None, chunked: bool = False) -> Reply:
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()  # the server closed the connection: a new one for the next call
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            raise
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post_json(self, path: str, doc: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return self.request("POST", path, body, {"Content-Type": content_type, **(headers or {})},
                            **kw)

    def invocations(self, doc: Any, **kw: Any) -> Reply:
        return self.post_json("/invocations", doc, **kw)

    def close(self) -> None:
        self.conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the server at ``url`` (run by ``proc``) answers its ping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read()}")
        try:
            if Client(url, timeout=2).get("/ping").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not come up")


def serve_process(*args: str, cwd: str | os.PathLike[str] | None = None
                  ) -> tuple[subprocess.Popen, str]:
    """``cellops serve ARGS`` in its own process (this process's environment, so its
    workspace), on a free port; returns the process and its URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cellops", "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, proc)
    return proc, url
