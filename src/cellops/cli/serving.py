"""``cellops serve``, ``cellops predict``, ``cellops predictions`` and ``cellops servers``:
the serving area's commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

import cellops
from cellops.display import format_number

from .base import Seconds, cli, echo_json, fmt, table


@cli.command("serve")
@click.argument("model_uri")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface: put a token or a proxy "
                   "in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              help="Port (0 for any free one).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each loads the model and follows the alias).")
@click.option("--no-log", is_flag=True, help="Keep no prediction log.")
@click.option("--token", envvar="CELLOPS_SERVE_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on every route but the health checks "
                   "(or set $CELLOPS_SERVE_TOKEN, which keeps it out of `ps`).")
@click.option("--poll-interval", type=Seconds(min=0.05), default=2.0, show_default=True,
              help="How often to look for an alias move, in seconds.")
@click.option("--max-body-mb", type=click.FloatRange(0.001, 4096), default=64, show_default=True,
              help="Refuse request bodies larger than this (413).")
@click.option("--no-access-log", is_flag=True, help="Do not print the access log (JSON lines "
                                                     "on stderr).")
@click.option("--trust", "trusted", multiple=True, metavar="TYPE",
              help="Also trust this type when loading the model file (repeatable).")
def serve_command(model_uri: str, host: str, port: int, workers: int, no_log: bool,
                  token: str | None, poll_interval: float, max_body_mb: float,
                  no_access_log: bool, trusted: tuple[str, ...]) -> None:
    """Serve MODEL_URI over HTTP until SIGTERM or Ctrl-C.

    MODEL_URI is models:/NAME/VERSION, models:/NAME@ALIAS (followed: when the alias
    moves, the new version is swapped in), models:/NAME/latest or runs:/RUN_ID/PATH.
    Speaks MLflow's scoring protocol (POST /invocations) and the Open Inference Protocol
    v2 (POST /v2/models/NAME/infer); GET /metrics for Prometheus.
    """
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        click.echo(f"warning: listening on {host} without --token: anyone who can reach this "
                   "port can use the model.", err=True)

    def ready(url: str, model: object) -> None:
        click.echo(f"cellops serving {getattr(model, 'name', '')} version "
                   f"{getattr(model, 'version', '')} ({model_uri}) at {url} with {workers} "
                   "worker(s); Ctrl-C or SIGTERM stops it.", err=True)

    cellops.serve(model_uri, host=host, port=port, workers=workers, log=not no_log, token=token,
                  poll_interval=poll_interval, max_body_mb=max_body_mb,
                  access_log=not no_access_log, trusted=tuple(trusted), block=True, on_ready=ready)


@cli.command("predict")
@click.argument("model_uri")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the predictions (.csv or .parquet).")
@click.option("--chunk-rows", type=click.IntRange(1, 10**8), default=100_000, show_default=True,
              help="Rows read, scored and written at a time (memory stays flat).")
@click.option("--method", type=click.Choice(["predict", "predict_proba", "predict_log_proba",
                                             "decision_function"]),
              default="predict", show_default=True, help="Which method of the model to call.")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="Copy this input column (an id, say) into the output (repeatable).")
@click.option("--no-log", is_flag=True, help="Do not log the predictions.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def predict_command(model_uri: str, input_file: str, output: str, chunk_rows: int, method: str,
                    keep: tuple[str, ...], no_log: bool, no_progress: bool) -> None:
    """Score INPUT (.csv or .parquet) with MODEL_URI, writing the predictions to -o.

    Chunk by chunk, so a file of millions of rows needs the memory of one chunk; each
    chunk is logged in the prediction log (source 'batch') unless --no-log.
    """
    result = cellops.predict_file(model_uri, input_file, output, chunk_rows=chunk_rows,
                                  method=method, keep=list(keep) or None, log=not no_log,
                                  progress=not no_progress and sys.stderr.isatty())
    click.echo(str(result))


@cli.command("predictions")
@click.argument("model", required=False)
@click.option("--version", "version", type=click.IntRange(1, 2**62), help="Only this version.")
@click.option("--since", metavar="TIME", help="ISO date or time (UTC), e.g. 2026-11-23T09:00.")
@click.option("--until", metavar="TIME", help="ISO date or time (UTC), exclusive.")
@click.option("--errors", "include_errors", is_flag=True, help="Include refused requests.")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), default=20, show_default=True,
              help="At most this many requests.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write every matching row to this .csv or .parquet instead of printing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def predictions_command(model: str | None, version: int | None, since: str | None,
                        until: str | None, include_errors: bool, limit: int, output: str | None,
                        as_json: bool) -> None:
    """Show the prediction log (of MODEL): one line per predicted row, oldest first."""
    frame = cellops.predictions(model, version=version, since=since, until=until,
                                include_errors=include_errors, limit=None if output else limit)
    if output:
        path = Path(output)
        if path.suffix.lower() == ".csv":
            frame.to_csv(path, index=False)
        elif path.suffix.lower() in (".parquet", ".pq"):
            frame.assign(prediction=frame["prediction"].astype(str)).to_parquet(path, index=False)
        else:
            raise click.BadParameter("the output must end in .csv or .parquet", param_hint="-o")
        click.echo(f"Wrote {len(frame):,} row(s) to {path}")
        return
    if as_json:
        echo_json(frame.to_dict(orient="records"))
        return
    if frame.empty:
        click.echo("No predictions logged" + (f" for {model}" if model else "") + ".")
        return
    shown = ["request_id", "row", "time", "model", "version", "status", "latency_ms", "prediction",
             "label"]
    click.echo(table(["request", "row", "time", "model", "v", "status", "ms", "prediction", "label"],
                     [[r["request_id"][:12], r["row"], fmt(r["time"]), r["model"], r["version"],
                       r["status"], format_number(r["latency_ms"]), _short(r["prediction"]),
                       "" if r["label"] is None else _short(r["label"])]
                      for r in frame[shown].to_dict(orient="records")]))


def _short(value: object) -> str:
    text = format_number(value) if isinstance(value, float) else str(value)
    return text if len(text) <= 30 else text[:27] + "..."


@cli.command("servers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def servers_command(as_json: bool) -> None:
    """List the scoring servers of this workspace that are running, and how busy they are."""
    found = cellops.serving_endpoints()
    if as_json:
        echo_json([e.__dict__ for e in found])
        return
    if not found:
        click.echo("No scoring servers are running. Start one with `cellops serve MODEL_URI`.")
        return
    click.echo(table(["model", "version", "url", "pid", "since", "requests", "req/s"],
                     [[e.model, e.version, e.url, e.pid, fmt(e.started_at), e.requests_total,
                       format_number(e.rate)] for e in found]))
