"""The scoring server (a front end of :mod:`cellops.serving`): MLflow's scoring protocol and the Open Inference Protocol v2 from one
process, on Starlette and uvicorn.

Routes (see docs/serving.md):

    GET  /ping, /health                  200 once the model is loaded (no token needed)
    GET  /version                        the cellops version
    POST /invocations                    MLflow scoring protocol (JSON or CSV)
    GET  /metrics                        Prometheus text format
    GET  /v2                             OIP server metadata
    GET  /v2/health/live, /v2/health/ready   (no token needed)
    GET  /v2/models/{name}[/versions/{v}]            model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer      OIP inference

Why Starlette on uvicorn: an ASGI stack with no per-request framework work beyond routing
(no validation layer, no dependency injection), uvicorn's httptools parser and uvloop, and
graceful shutdown on SIGTERM built in; ``benchmarks/bench_serving.py`` has the figures.
A request never touches the database: the model is in memory, the prediction log is a
queue drained by a thread, and the alias is watched by another.

The package, one module per part: :mod:`.config` (``ServeConfig``, limits, loggers),
:mod:`.state` (what the app holds: the model, the prediction log, the endpoint beacon),
:mod:`.metrics` (Prometheus), :mod:`.auth` (the token, the access log and the last-resort
500, as ASGI middleware), :mod:`.common` (reading and parsing bodies off the event loop,
predicting, recording), :mod:`.mlflow` and :mod:`.oip` (the two protocols' routes),
:mod:`.app` (building the app; running it in a thread or in the foreground).
"""

from .app import (
           Server,
           app_from_env,
           configure_access_log,
           create_app,
           running_servers,
           serve,
)
from .config import CONFIG_ENV, ServeConfig

__all__ = ["CONFIG_ENV", "ServeConfig", "Server", "app_from_env", "configure_access_log",
           "create_app", "running_servers", "serve"]
