"""``kilnworks demo``: a simulated Shangbu workshop, the edge agent, the store and the dashboard.

Everything runs on this machine with nothing to install beyond ``pip install``:

1. an MQTT broker: ``mosquitto`` when it is on PATH (started on a free port, data in the demo
   dir), else ``amqtt`` (pure Python, MQTT 3.1.1 only: ``pip install -e '.[demo]'``), else none
   and the presses are left out (the kilns speak OPC UA and need no broker);
2. the simulators (``kilnworks simulate``) as a child process, as other vendors' equipment would
   be: the Shangbu fleet, its simulated clock started a day in the past and running ``--speed``
   times faster than the wall clock, so firing curves fill in within minutes;
3. the edge agent (``kilnworks agent run``) as a child process, with a config generated from the
   simulators' manifest, spooling into ``<dir>/agent/spool.db`` and forwarding into the
   embedded store ``<dir>/telemetry.db``;
4. the API and dashboard in this process, on the simulated clock, with an admin token printed
   once; and a table of what is arriving (per asset: readings/s, last values, lag) every few
   seconds.

Ctrl-C stops it all. ``--duration`` stops it after that many wall seconds (CI smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


class Child:
    """A child process whose output goes to a log file in the demo dir."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{tail}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def stop_all(children: list[Child]) -> None:
    """SIGTERM every child at once (agent and simulators drain in parallel), then wait; the
    broker last, so the agent can still take what is in flight."""
    brokers = [c for c in children if c.name in ("mosquitto", "amqtt")]
    others = [c for c in children if c not in brokers]
    for group in (others, brokers):
        for child in group:
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        for child in group:
            child.stop()


def start_mosquitto(data_dir: Path) -> tuple[Child, str] | None:
    """Mosquitto on a free loopback port, persistence in ``data_dir``; None if not installed."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if binary is None:
        return None
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "mosquitto.conf"
    # max_queued_messages 0: the default (1000) silently drops QoS 1 messages for a slow
    # subscriber. As root, mosquitto would switch to user "mosquitto", which cannot write here.
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data_dir}/\nmax_queued_messages 0\nlog_dest stdout\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    child = Child("mosquitto", [binary, "-c", str(conf)], data_dir)

    _wait_for(lambda: child.check() or _listening(port), 15, "mosquitto")
    return child, f"mqtt://127.0.0.1:{port}"


def start_amqtt(data_dir: Path) -> tuple[Child, str] | None:
    """The pure-Python amqtt broker (MQTT 3.1.1) as a child process; None if not installed.
    For machines without mosquitto: the demo must run on nothing but ``pip install``."""
    import importlib.util

    if importlib.util.find_spec("amqtt") is None:
        return None
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "amqtt.yaml"
    conf.write_text(
        f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    argv = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
    child = Child("amqtt", argv, data_dir)
    _wait_for(lambda: child.check() or _listening(port), 30, "amqtt")
    return child, f"mqtt://127.0.0.1:{port}"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _kilnworks(*args: str) -> list[str]:
    return [sys.executable, "-m", "core.cli", *args]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kilnworks demo",
        description="Run a simulated Shangbu workshop (5 enterprises, 10 kilns, 10 presses), the "
        "edge agent, the embedded store and the dashboard on this machine.",
    )
    p.add_argument("--dir", default="var/demo", help="where the demo keeps its data (%(default)s)")
    p.add_argument("--fresh", action="store_true", help="delete the demo dir's data first")
    p.add_argument(
        "--speed", type=float, default=600.0, help="simulated seconds per wall second (%(default)s)"
    )
    p.add_argument(
        "--start", default="-1d", help="simulated start time, e.g. -1d or an ISO time (%(default)s)"
    )
    p.add_argument("--scenario", default="shangbu", help="simulator scenario (%(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="dashboard port (%(default)s)")
    p.add_argument("--mqtt", help="use this broker (mqtt://host:port) instead of starting one")
    p.add_argument("--mqtt-protocol", default="5", choices=("5", "3.1.1"),
                   help="MQTT version for --mqtt (%(default)s)")  # fmt: skip
    p.add_argument("--broker", default="auto", choices=("auto", "mosquitto", "amqtt"),
                   help="which broker to start: mosquitto if installed, else amqtt")  # fmt: skip
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument(
        "--status-every",
        type=float,
        default=5.0,
        help="print what is arriving every N seconds (0: never)",
    )
    return p.parse_args(list(argv))


def sim_clock(start_ns: int, speed: float, wall0_ns: int) -> Callable[[], int]:
    """The simulators' clock, recomputed here: the API's "now" must be simulated time, or
    every kiln would look silent (its source times run ahead of the wall clock). ``wall0_ns``
    is when the simulators pinned ``start_ns`` (the manifest's ``clock`` says so exactly)."""

    def now() -> int:
        return start_ns + int((time.time_ns() - wall0_ns) * speed)

    return now


def _start_ns(text: str) -> int:
    """``-1d``, ``-6h``, ``now`` or an ISO time, to whole seconds (passed on as ISO text)."""
    now = time.time_ns()
    if text == "now":
        return now - now % 10**9
    if text.startswith("-") and text[-1] in "smhd":
        scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]
        t = now - int(float(text[1:-1]) * scale * 10**9)
        return t - t % 10**9
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 10**9


def _iso(t_ns: int) -> str:
    return datetime.fromtimestamp(t_ns // 10**9, tz=UTC).isoformat()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(args.dir).resolve()
    if args.fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    # SIGTERM stops the demo like Ctrl-C does, so the child processes are always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _run(args, root, children)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"kilnworks demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all(children)


def _run(args: argparse.Namespace, root: Path, children: list[Child]) -> int:
    from edge_agent.manifest import config_from_manifest

    mqtt_url = args.mqtt
    mqtt_protocol = args.mqtt_protocol
    if mqtt_url is None and args.broker in ("auto", "mosquitto"):
        broker = start_mosquitto(root / "mosquitto")
        if broker is not None:
            children.append(broker[0])
            mqtt_url = broker[1]
    if mqtt_url is None and args.broker in ("auto", "amqtt"):
        broker = start_amqtt(root / "amqtt")
        if broker is not None:
            children.append(broker[0])
            mqtt_url, mqtt_protocol = broker[1], "3.1.1"
    if mqtt_url is None:
        print(
            "kilnworks demo: no MQTT broker, so the presses are left out: install mosquitto "
            "(apt-get install mosquitto) or amqtt (pip install -e '.[demo]'), or pass --mqtt URL."
        )

    start_ns = _start_ns(args.start)
    manifest_path = root / "manifest.json"
    manifest_path.unlink(missing_ok=True)
    sim_args = [
        "simulate",
        "--scenario",
        args.scenario,
        "--speed",
        str(args.speed),
        "--start",
        _iso(start_ns),
        "--opcua-port",
        "0",
        "--manifest",
        str(manifest_path),
        "--truth",
        str(root / "truth"),
        "--state-dir",
        str(root / "simulator"),
    ]
    if mqtt_url:
        sim_args += ["--mqtt", mqtt_url, "--mqtt-protocol", mqtt_protocol.replace(".", "")]
    sim = Child("simulators", _kilnworks(*sim_args), root)
    children.append(sim)

    def manifest_ready() -> bool:
        sim.check()
        return manifest_path.exists() and manifest_path.stat().st_size > 0

    _wait_for(manifest_ready, 60, "the simulators' manifest")
    manifest = json.loads(manifest_path.read_text())
    if not mqtt_url:
        manifest.pop("mqtt", None)

    store_url = f"sqlite:///{root / 'telemetry.db'}"
    agent_conf = root / "agent.toml"
    agent_conf.write_text(
        config_from_manifest(
            manifest,
            store_url=store_url,
            state_dir=str(root / "agent"),
            health_listen=f"127.0.0.1:{_free_port()}",
            mqtt_protocol=mqtt_protocol,
        )
    )
    agent = Child("agent", _kilnworks("agent", "run", "--config", str(agent_conf)), root)
    children.append(agent)

    pinned = manifest.get("clock", {})
    clock = sim_clock(
        int(pinned.get("start_time_ns", start_ns)),
        float(pinned.get("speed", args.speed)),
        int(pinned.get("wall_start_ns", manifest_path.stat().st_mtime_ns)),
    )
    return asyncio.run(_serve(args, root, store_url, clock, [sim, agent]))


async def _serve(
    args: argparse.Namespace,
    root: Path,
    store_url: str,
    clock: Callable[[], int],
    watched: list[Child],
) -> int:
    import uvicorn

    from api.app import create_app
    from api.auth import Role, issue_token
    from api.metadata.store import MetadataStore
    from api.settings import Settings
    from ingest.stores import open_store

    settings = Settings(
        store_url=store_url,
        db_url=f"sqlite:///{root / 'metadata.db'}",
        host=args.host,
        port=args.port,
        # "silent" is judged in simulated time, which runs --speed times faster: allow about
        # half a minute of wall time between samples before calling an asset silent.
        silent_after_s=max(120.0, 30.0 * args.speed),
        # The OEE cache's lifetimes are simulated time too: keep a live result about 5 wall
        # seconds, treat a window as settled a wall minute after it ended, keep a settled
        # result at most a wall hour.
        oee_cache_live_s=5.0 * max(args.speed, 1.0),
        oee_cache_late_s=max(600.0, 60.0 * args.speed),
        oee_cache_settled_s=max(3600.0, 3600.0 * args.speed),
    )
    meta = MetadataStore.open(settings.db_url)
    meta.create_schema()
    token, _ = issue_token(
        meta, name="demo admin", role=Role.ADMIN, enterprise=None, now_ns=clock()
    )
    store = open_store(store_url)
    app = create_app(settings, store=store, meta=meta, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,  # browsers keep connections open; do not wait on them
        )
    )
    url = f"http://{args.host}:{args.port}/"
    print(
        f"\nkilnworks demo is running: open {url} and log in with this admin token:\n\n"
        f"    {token}\n\nLogs and data: {root}   (Ctrl-C stops everything)\n",
        flush=True,
    )

    # Ctrl-C and SIGTERM end the loop below; uvicorn must not install its own handlers.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve())
    deadline = None if args.duration is None else time.monotonic() + args.duration
    last: dict[tuple[str, str], int] = {}
    last_print = time.monotonic()
    try:
        while not serving.done() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            for child in watched:
                child.check()
            if deadline is not None and time.monotonic() >= deadline:
                break
            if args.status_every and time.monotonic() - last_print >= args.status_every:
                elapsed = time.monotonic() - last_print
                last_print = time.monotonic()
                print(
                    await asyncio.to_thread(status_table, store, clock(), last, elapsed), flush=True
                )
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        store.close()
        meta.close()
    return 0


SHOWN_FIELDS = ("zone1_tc1_temperature_c", "state", "firing_id", "count_total", "car_push_count")


def status_table(
    store: object, now_ns: int, seen: dict[tuple[str, str], int], elapsed_s: float
) -> str:
    """Per asset: readings/s since the last table (counted in the store), a few last values,
    and how far the newest reading lags behind the (simulated) clock. ``seen`` carries the
    newest source time per series from one table to the next."""
    from ingest.contracts import Store

    assert isinstance(store, Store)
    fields: dict[str, list[str]] = {}
    for asset, field in store.list_series():
        fields.setdefault(asset, []).append(field)
    lines = [f"{'asset':<42} {'series':>6} {'rdg/s':>7} {'lag_s':>9}  last values"]
    for asset in sorted(fields):
        latest = store.latest(asset)
        arrived = 0
        for f, r in latest.items():
            since = seen.get((asset, f))
            if since is not None and r.source_time_ns > since:
                arrived += len(store.series(asset, f, since + 1, r.source_time_ns + 1))
            seen[(asset, f)] = r.source_time_ns
        newest = max((r.source_time_ns for r in latest.values()), default=now_ns)
        shown = ", ".join(f"{f}={_fmt(latest[f].value)}" for f in SHOWN_FIELDS if f in latest)
        rate = arrived / max(elapsed_s, 1e-9)
        lag_s = (now_ns - newest) / 1e9
        lines.append(f"{asset:<42} {len(latest):>6} {rate:>7.1f} {lag_s:>9.0f}  {shown}")
    return "\n".join(lines) + "\n"


def _fmt(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
