"""Real engines for the team-workspace tests: a throwaway PostgreSQL cluster and an S3
server (moto's server mode), each started once per test session.

The cluster is Debian's ``postgresql`` (installed by the README's test command): ``initdb``
and ``pg_ctl`` under a temporary folder, listening on 127.0.0.1 and a free port, trust
authentication, ``fsync`` off (a throwaway cluster; durability is PostgreSQL's own).
``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
Each test gets a fresh database cloned from a template that already holds the migrated
schema, so a test costs one ``CREATE DATABASE``, not thirteen migrations.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    """The folder holding Debian's PostgreSQL server programs, or None."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(found, "pg_ctl")):
            return Path(found)
    where = shutil.which("pg_ctl")
    return Path(where).parent if where else None


class PgCluster:
    """One PostgreSQL server for the test session."""

    def __init__(self, base: Path, *, durable: bool = False) -> None:
        """``durable``: PostgreSQL's default fsync and synchronous commit (for benchmarks);
        otherwise both off (a throwaway cluster for tests)."""
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql "
                               "(the README's test command does it)")
        self.bin = bin_dir
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.durable = durable
        base.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(base, "postgres", "postgres")
            os.chmod(base, 0o755)
        self.user = "postgres" if self.as_root else os.environ.get("USER", "postgres")
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self.start()
        self.psql("CREATE ROLE cellops LOGIN SUPERUSER")

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {res.stdout}\n{res.stderr}")
        return res

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                   str(self.base / "server.log"), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                  check=False)

    def destroy(self, mode: str = "fast") -> None:
        """Stop the server and delete its folder (a session's cluster holds hundreds of MB;
        a benchmark's, gigabytes)."""
        self.stop(mode)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, db: str = "postgres", user: str = "cellops") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        import psycopg

        with psycopg.connect(self.url(db, "postgres"), autocommit=True) as conn:
            cur = conn.execute(sql)
            return str(cur.fetchall()) if cur.description else ""

    def new_database(self, template: str | None = None) -> str:
        """A fresh database's URL (a copy of ``template`` when given)."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.url(name)


class _LocalServer:
    """A storage service's emulator run as a process on 127.0.0.1 and a free port."""

    port: int
    proc: subprocess.Popen

    def _start(self, argv: list[str], what: str) -> None:
        """Run ``argv`` (which listens on ``self.port``) until the port takes connections."""
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{what} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class S3Server(_LocalServer):
    """moto's S3 server on 127.0.0.1, with the environment boto/s3fs read credentials from."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    "moto's S3 server")

    env = property(lambda self: {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": self.endpoint,
        "AWS_ENDPOINT_URL": self.endpoint})

    def bucket(self) -> str:
        import boto3

        name = "b" + uuid.uuid4().hex[:12]
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(
            Bucket=name)
        return name


class AzuriteServer(_LocalServer):
    """Azurite's Blob service (Microsoft's Azure Storage emulator, from npm: the README's test
    command installs it) on 127.0.0.1, with the connection string adlfs reads credentials
    from (``AZURE_STORAGE_CONNECTION_STRING``) for az:// artifact roots."""

    # Azurite's well-known development account (documented by Microsoft; not a secret).
    ACCOUNT = "devstoreaccount1"
    KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
           "KBHBeksoGMGw==")

    def __init__(self) -> None:
        exe = shutil.which("azurite-blob")
        if exe is None:
            raise RuntimeError("Azurite is not installed: npm install -g azurite@3 "
                               "(the README's test command does it)")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cellops-azurite-"))
        self._start([exe, "--silent", "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                     "--location", str(self.folder), "--skipApiVersionCheck", "--loose"],
                    "Azurite")

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={self.KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.port}/{self.ACCOUNT};")

    env = property(lambda self: {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string})

    def container(self) -> str:
        from azure.storage.blob import BlobServiceClient

        name = "c" + uuid.uuid4().hex[:12]
        BlobServiceClient.from_connection_string(self.connection_string).create_container(name)
        return name

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class GcsServer(_LocalServer):
    """gcp-storage-emulator (PyPI), a Google Cloud Storage emulator, on 127.0.0.1, in memory,
    with the environment gcsfs reads its endpoint from (``STORAGE_EMULATOR_HOST``: gcsfs then
    sends no credentials) for gs:// artifact roots."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._start([sys.executable, "-m", "gcp_storage_emulator", "start", "--host",
                     "127.0.0.1", "--port", str(self.port), "--in-memory"],
                    "gcp-storage-emulator")

    # gcsfs asks a bucket's type (hierarchical or not) over gRPC unless told not to; the
    # emulator speaks only JSON over HTTP.
    env = property(lambda self: {"STORAGE_EMULATOR_HOST": self.endpoint,
                                 "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"})

    def bucket(self) -> str:
        import gcsfs

        name = "g" + uuid.uuid4().hex[:12]
        gcsfs.GCSFileSystem(endpoint_url=self.endpoint, token="anon",
                            skip_instance_cache=True).mkdir(name)
        return name


class CutProxy:
    """A TCP proxy in front of a PostgreSQL server that, once armed, lets one query through
    whose text holds ``marker`` and cuts both of that connection's sockets the moment the
    server's reply to it is complete (its ReadyForQuery message): the server ran the query,
    COMMIT included, and the client never hears back — the network failing at the worst
    moment. Then it is disarmed; ``cut`` says it happened."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.port = free_port()
        self.cut = threading.Event()
        self._marker: bytes | None = None
        self._armed = 0  # how many times armed: text sent before the latest arming never matches
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """``url`` (of the target server) through this proxy."""
        return url.replace(f":{self.target_port}/", f":{self.port}/")

    def arm(self, marker: bytes) -> None:
        self.cut.clear()
        with self._lock:
            self._marker = marker
            self._armed += 1

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"doomed": False}
            threading.Thread(target=self._upstream, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, state: dict) -> None:
        tail, seen = b"", -1  # the end of the last chunk: a marker may span two
        try:
            while data := client.recv(65536):
                with self._lock:
                    if seen != self._armed:
                        tail, seen = b"", self._armed
                    if self._marker is not None and self._marker in tail + data:
                        self._marker = None
                        state["doomed"] = True
                tail = data[-64:]
                server.sendall(data)
        except OSError:
            pass

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        held = b""
        try:
            while data := server.recv(65536):
                if state["doomed"]:
                    held += data
                    if b"Z\x00\x00\x00\x05" in held:  # ReadyForQuery: the query is done
                        self.cut.set()  # first: the client may see the cut at once
                        for sock in (client, server):
                            sock.shutdown(socket.SHUT_RDWR)
                            sock.close()
                        return
                    continue
                client.sendall(data)
        except OSError:
            pass


def temp_base() -> Path:
    return Path(tempfile.mkdtemp(prefix="cellops-pg-"))


class RawDb:
    """Direct SQL on a workspace's database, bypassing cellops — what a test (or someone
    tampering with the workspace) does with ``sqlite3`` or ``psql``. Statements are in
    SQLite's spelling (``?`` placeholders) and autocommit; ``BEGIN``/``COMMIT`` work on both."""

    def __init__(self, ws=None, url: str | None = None) -> None:
        self.url = url or (ws.store_url if ws is not None else None)
        if self.url:
            import psycopg

            self.conn = psycopg.connect(self.url, autocommit=True)
        else:
            import sqlite3

            self.conn = sqlite3.connect(ws.db_path, isolation_level=None)

    @classmethod
    def from_url(cls, url: str) -> "RawDb":
        return cls(url=url)

    def execute(self, sql: str, params=()):
        if self.url:
            from cellops.store.dialect import translate

            return self.conn.execute(translate(sql), tuple(params))
        return self.conn.execute(sql, params)

    def count(self, table: str) -> int:
        return self.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
