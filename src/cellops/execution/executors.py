"""Where steps and trials run: a local process pool, or a Dask cluster.

Executors are looked up by the scheme of ``--executor``: ``local`` (default) or
``dask://host:port``. Register more with :func:`register_executor`.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ExecutorError, InvalidArgumentError


class InlineExecutor:
    """Runs each task in this process when it is submitted (one worker: no pool to start).

    Every step still runs in its own fresh kernel; only papermill's client side
    stays in this process, as with plain papermill.
    """

    def submit(self, fn: Callable, arg: Any) -> Any:
        from concurrent import futures

        fut: futures.Future = futures.Future()
        try:
            fut.set_result(fn(arg))
        except BaseException as exc:  # noqa: BLE001 - delivered through result()
            fut.set_exception(exc)
        return fut

    def wait_any(self, handles: list[Any], timeout: float | None = None) -> list[Any]:
        return list(handles)

    def share(self, data: Any) -> Any:
        """``data`` for many tasks, sent once (here: nothing to send)."""
        return data

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        pass


# What a worker needs, imported once by the fork server rather than by every worker.
_PRELOAD = ["cellops.execution.fastimport", "papermill", "cellops.execution.worker"]


def _worker_start(environ: dict[str, str]) -> None:
    """In a new worker: the environment the caller has now (a forked worker would have
    the fork server's, from when it started), and the imports (done already when
    forked from the fork server)."""
    import os

    os.environ.clear()
    os.environ.update(environ)
    import papermill  # noqa: F401

    from . import fastimport  # noqa: F401 - first: makes the next import cheaper


def _noop() -> None:
    pass


def _context() -> Any:
    """Workers forked from a single-threaded fork server that has imported papermill
    once (a second sweep in the same session starts its workers at once), or spawned
    where there is no fork server (Windows)."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


class LocalExecutor:
    """A pool of ``workers`` processes (each step still gets a fresh kernel)."""

    def __init__(self, workers: int = 1) -> None:
        import os
        from concurrent import futures

        self.pool = futures.ProcessPoolExecutor(max_workers=max(1, workers),
                                                mp_context=_context(),
                                                initializer=_worker_start,
                                                initargs=(dict(os.environ),))
        for _ in range(max(1, workers)):  # start every worker now, importing in parallel
            self.pool.submit(_noop)
        self._shared: list[str] = []

    def submit(self, fn: Callable, arg: Any) -> Any:
        return self.pool.submit(fn, arg)

    def share(self, data: Any) -> "SharedFile":
        """``data`` for many tasks, sent once: pickled to a temporary file that each worker
        reads the first time a task asks for it (:func:`shared`), instead of pickled into
        every task's arguments. Removed when the executor closes."""
        import os
        import pickle
        import tempfile

        fd, path = tempfile.mkstemp(prefix="cellops-shared-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared.append(path)
        return SharedFile(path)

    def wait_any(self, handles: list[Any], timeout: float | None = None) -> list[Any]:
        """The handles that are done, waiting up to ``timeout`` s (None: until one is)."""
        from concurrent import futures

        done, _ = futures.wait(handles, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        import os

        self.pool.shutdown(wait=True, cancel_futures=True)
        for path in self._shared:
            try:
                os.unlink(path)
            except OSError:
                pass
        self._shared.clear()


class DaskExecutor:
    """Steps as tasks on a ``dask.distributed`` cluster. Workers must see the workspace
    and the pipeline folder at the same paths (a shared filesystem). A scheduler that does
    not answer within ``CELLOPS_DASK_TIMEOUT`` seconds (10) is an :class:`ExecutorError`."""

    def __init__(self, address: str, workers: int = 1) -> None:
        from .environment import DASK_TIMEOUT, dask_timeout

        try:
            from dask.distributed import Client
        except ImportError:
            raise InvalidArgumentError(
                "The dask executor needs dask.distributed: pip install 'cellops[dask]'."
            ) from None
        timeout = dask_timeout()
        try:
            self.client = Client(address, set_as_default=False, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"No Dask scheduler answered at {address} within {timeout:g} s ({exc}). Start "
                f"one there (`dask scheduler`, then `dask worker {address}`), check the address, "
                f"or wait longer with {DASK_TIMEOUT}=SECONDS.") from None

    def submit(self, fn: Callable, arg: Any) -> Any:
        return self.client.submit(fn, arg, pure=False)

    def share(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (a dict) for many tasks, sent to the cluster once: a dict of futures,
        which Dask replaces by their values in each task's argument."""
        return self.client.scatter(data, hash=False)

    def wait_any(self, handles: list[Any], timeout: float | None = None) -> list[Any]:
        import asyncio

        from dask.distributed import wait

        with self.client.as_current():  # wait() looks up the current client
            try:
                done, _ = wait(handles, timeout=timeout, return_when="FIRST_COMPLETED")
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                return []
        return list(done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self) -> None:
        self.client.close()


class SharedFile:
    """What :meth:`LocalExecutor.share` sent: a pickle file's path, read once per worker."""

    def __init__(self, path: str) -> None:
        self.path = path


_LOADED: dict[str, Any] = {}


def shared(data: Any) -> Any:
    """In a task: the value an executor's ``share`` sent (read once per worker process)."""
    if not isinstance(data, SharedFile):
        return data
    if data.path not in _LOADED:
        import pickle

        _LOADED.clear()  # one search's data at a time in a worker
        with open(data.path, "rb") as f:
            _LOADED[data.path] = pickle.load(f)
    return _LOADED[data.path]


def share(pool: Any, data: Any) -> Any:
    """``data`` sent once for many tasks on ``pool`` (as it is, for an executor registered
    without a ``share`` method)."""
    method = getattr(pool, "share", None)
    return data if method is None else method(data)


_EXECUTORS: dict[str, Callable[[str, int], Any]] = {
    "local": lambda target, workers: InlineExecutor() if workers <= 1 else LocalExecutor(workers),
    "dask": lambda target, workers: DaskExecutor(target, workers),
}


def register_executor(scheme: str, factory: Callable[[str, int], Any]) -> None:
    """Make ``--executor SCHEME://...`` create executors with ``factory(target, workers)``."""
    _EXECUTORS[scheme] = factory


def make_executor(spec: str | None, workers: int) -> Any:
    spec = spec or "local"
    scheme, sep, rest = spec.partition("://")
    if scheme not in _EXECUTORS:
        raise InvalidArgumentError(
            f"Unknown executor {spec!r}; use 'local' or 'dask://HOST:PORT'.")
    target = f"tcp://{rest}" if scheme == "dask" and sep else rest
    if scheme == "dask" and not rest:
        raise InvalidArgumentError("The dask executor needs an address: dask://HOST:PORT.")
    return _EXECUTORS[scheme](target, workers)
