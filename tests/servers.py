"""Real servers for integration tests: InfluxDB 1.x, Mosquitto, VictoriaMetrics, PostgreSQL.

Each server runs as a child process on a free 127.0.0.1 port with its data in a temp dir, so a
test can ``stop()``, ``kill()`` (SIGKILL) and ``start()`` it again on the same port with the same
data. A binary that is missing is a test *failure* with a message saying what to install, never
a skip: ``scripts/test`` installs them on Debian.

Fixtures (see ``tests/conftest.py``): ``influxdb`` / ``mosquitto`` / ``victoria_metrics`` /
``postgres`` give a server of the test's own (restart freely); ``influxdb_shared`` etc. give one
per session for tests that only read and write (each test takes its own database or topic).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str, debian_package: str, candidates: tuple[str, ...] = ()) -> str:
    for c in (*candidates, name):
        found = shutil.which(c) or (c if os.path.isabs(c) and os.access(c, os.X_OK) else None)
        if found:
            return found
    pytest.fail(
        f"{name} not found: this integration test needs a real server. Install Debian's "
        f"'{debian_package}' package (scripts/test does this as root: apt-get install "
        f"{debian_package}).",
        pytrace=False,
    )


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    """A server child process with a fixed port and data dir that survives restarts."""

    name = "server"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix=f"kilnworks-{self.name}-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.root / f"{self.name}.log"

    # subclasses fill these in
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    def prepare(self) -> None:
        """Write config files; called before every start."""

    def start(self) -> None:
        if self.running:
            return
        self.prepare()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
            start_new_session=True, env=self.env(),
        )  # fmt: skip
        log.close()
        try:
            wait_until(self._ready_or_dead, READY_TIMEOUT_S, f"{self.name} on port {self.port}")
        except TimeoutError:
            self.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")

    def env(self) -> dict[str, str] | None:
        return None

    def _ready_or_dead(self) -> bool:
        return self.proc is None or self.proc.poll() is not None or self.ready()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Graceful stop (SIGTERM), waiting until the port is closed."""
        if not self.running:
            return
        assert self.proc is not None
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        wait_until(lambda: not port_open(self.port), 10, f"{self.name} port to close")

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait()

    def _signal(self, sig: int) -> None:
        # The whole process group: wrappers such as runuser must not leave the server behind.
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class InfluxDB(ServerProcess):
    """Debian's influxd 1.x (v1 HTTP API only). ``url`` is an ``influxdb://`` store URL base."""

    name = "influxdb"

    def __init__(
        self, root: Path | None = None, *, auth: bool = False, max_row_limit: int = 0
    ) -> None:
        self.binary = require_binary("influxd", "influxdb")
        super().__init__(root)
        self.rpc_port = free_port()
        self.auth = auth
        # [http] max-row-limit: cut non-chunked answers short (marked "partial"); 0 = off
        self.max_row_limit = max_row_limit

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_url(self, database: str) -> str:
        return f"influxdb://127.0.0.1:{self.port}/{database}"

    def prepare(self) -> None:
        r = self.root
        (r / "influxdb.conf").write_text(
            f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{r}/meta"
[data]
  dir = "{r}/data"
  wal-dir = "{r}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[coordinator]
  log-queries-after = "0s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  max-body-size = 0
  max-row-limit = {int(self.max_row_limit)}
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
"""
        )

    def command(self) -> list[str]:
        return [self.binary, "-config", str(self.root / "influxdb.conf")]

    def ready(self) -> bool:
        return httpx.get(f"{self.http}/ping", timeout=0.5).status_code == 204

    def query(self, q: str, database: str | None = None, **params: str) -> dict:
        p = {"q": q, "epoch": "ns", **params}
        if database:
            p["db"] = database
        resp = httpx.post(f"{self.http}/query", data=p, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def create_database(self, name: str) -> str:
        self.query(f'CREATE DATABASE "{name}"')
        return name


class Mosquitto(ServerProcess):
    """Mosquitto 2.x with persistence on and no queue limit (the default of 1000 queued
    messages silently drops QoS 1 messages for a slow subscriber)."""

    name = "mosquitto"

    def __init__(self, root: Path | None = None, *, extra_config: str = "") -> None:
        self.binary = require_binary("mosquitto", "mosquitto", ("/usr/sbin/mosquitto",))
        super().__init__(root)
        self.extra_config = extra_config

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        auth = "allow_anonymous true" if "password_file" not in self.extra_config else ""
        (self.root / "mosquitto.conf").write_text(
            f"""
listener {self.port} 127.0.0.1
{auth}
persistence true
persistence_location {self.root}/
autosave_interval 1
max_queued_messages 0
max_inflight_messages 0
user root
log_dest stdout
log_type error
log_type warning
{self.extra_config}
"""
        )

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.root / "mosquitto.conf")]


class VictoriaMetrics(ServerProcess):
    """Debian's victoria-metrics: accepts InfluxDB v2 line protocol at /api/v2/write."""

    name = "victoria-metrics"

    def __init__(self, root: Path | None = None) -> None:
        self.binary = require_binary("victoria-metrics", "victoria-metrics")
        super().__init__(root)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.root}/data",
            "-retentionPeriod=100y",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]

    def ready(self) -> bool:
        return httpx.get(f"{self.http}/health", timeout=0.5).status_code == 200


class PostgreSQL(ServerProcess):
    """PostgreSQL from Debian's packages, initdb'd into a temp dir, trust auth on loopback.
    Runs as the ``postgres`` user when the tests run as root (postgres refuses root)."""

    name = "postgresql"

    def __init__(self, root: Path | None = None) -> None:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        cands = tuple(str(b / "postgres") for b in bindir)
        self.binary = require_binary("postgres", "postgresql", cands)
        self.bindir = Path(self.binary).parent
        super().__init__(root)
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def prepare(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                [*self.as_user, str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                 "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True,
            )  # fmt: skip
        if self.as_user:
            with contextlib.suppress(FileNotFoundError):
                shutil.chown(self.log_path, "postgres", "postgres")

    def ready(self) -> bool:
        probe = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, check=False).returncode == 0

    def command(self) -> list[str]:
        return [
            *self.as_user, self.binary, "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}",
            "-c", "fsync=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
