"""``kilnworks simulate``: run a simulated fleet of kilns (OPC UA) and presses (MQTT).

Example::

    kilnworks simulate --scenario shangbu --speed 600 --opcua-port 48400 \\
        --mqtt mqtt://127.0.0.1:1883 --manifest sim.json --truth truth/ --duration 600

``main(argv) -> int``: 0 after ``--duration`` or Ctrl-C/SIGTERM, 2 for a bad option or
scenario (message on stderr naming what is wrong), 1 when the servers cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from simulators.fleet import FaultError, Fleet
from simulators.mqtt_presses import MqttOptions
from simulators.scenario import FAULT_KINDS, ScenarioError, load_scenario

log = logging.getLogger("kilnworks.simulate")

SECURITY = {
    "none": ("none",),
    "sign": ("sign",),
    "encrypt": ("encrypt",),
    "all": ("none", "sign", "encrypt"),
}


def parse_start(text: str) -> int:
    """``now``, ``-7d`` / ``-36h`` (that long ago) or an ISO 8601 time -> UTC ns."""
    now = time.time_ns() // 1_000_000_000 * 1_000_000_000
    if text == "now":
        return now
    m = re.fullmatch(r"-(\d+(?:\.\d+)?)([dhm])", text)
    if m:
        factor = {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
        return now - int(float(m.group(1)) * factor * 1e9)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected now, -<N>d/h/m or an ISO time, got {text!r}"
        ) from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(f"start time needs a timezone (e.g. Z), got {text!r}")
    return int(dt.timestamp()) * 1_000_000_000


def parse_fault(text: str) -> dict[str, object]:
    """``KIND@TARGET[,at_h=H][,duration_h=H][,key=value...]`` -> a fault dict."""
    head, _, rest = text.partition(",")
    kind, sep, target = head.partition("@")
    if not sep or kind not in FAULT_KINDS or not target:
        raise argparse.ArgumentTypeError(
            f"expected KIND@TARGET[,at_h=H][,duration_h=H][,key=value] with KIND one of "
            f"{', '.join(FAULT_KINDS)}; got {text!r}"
        )
    out: dict[str, object] = {"kind": kind, "target": target, "at_h": 0.0}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"fault option {part!r}: expected key=value")
        with contextlib.suppress(ValueError):
            out[key] = json.loads(value)
            continue
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kilnworks simulate", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scenario", default="shangbu", help="built-in name (shangbu, mini) or a TOML file"
    )
    p.add_argument(
        "--speed", type=float, default=600.0, help="simulated seconds per wall second (600)"
    )
    p.add_argument(
        "--start", type=parse_start, default="now", help="simulated start: now, -7d, or ISO time"
    )
    p.add_argument(
        "--opcua-port",
        type=int,
        default=48400,
        help="first OPC UA port, one per enterprise (0 = any free)",
    )
    p.add_argument("--bind", default="127.0.0.1", help="address the OPC UA servers listen on")
    p.add_argument(
        "--security", choices=sorted(SECURITY), default="all", help="OPC UA endpoints offered"
    )
    p.add_argument("--opcua-user", help="require this OPC UA username")
    p.add_argument("--opcua-password", help="password for --opcua-user")
    p.add_argument(
        "--state-dir",
        default=str(
            Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
            / "kilnworks-sim"
        ),
        help="certificates are generated here on first start",
    )
    p.add_argument(
        "--mqtt", default="mqtt://127.0.0.1:1883", help="broker URL, mqtt:// or mqtts://"
    )
    p.add_argument("--mqtt-protocol", type=int, choices=(5, 311), default=5)
    p.add_argument("--mqtt-user")
    p.add_argument("--mqtt-password")
    p.add_argument("--mqtt-ca", help="CA certificate file (enables TLS)")
    p.add_argument("--mqtt-cert", help="client certificate file (TLS)")
    p.add_argument("--mqtt-key", help="client key file (TLS)")
    p.add_argument(
        "--mqtt-insecure", action="store_true", help="do not check the broker's hostname (TLS)"
    )
    p.add_argument("--topic-root", help="JSON topic root (default: the scenario's)")
    p.add_argument("--sparkplug-group", help="Sparkplug group id (default: the scenario's)")
    p.add_argument(
        "--manifest", type=Path, help="write endpoints, node ids and topics here as JSON"
    )
    p.add_argument("--truth", type=Path, help="write ground truth JSON Lines into this directory")
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-interval", type=float, help="simulated seconds between kiln samples")
    p.add_argument(
        "--max-publish-hz", type=float, help="cap on kiln samples per wall second per kiln"
    )
    p.add_argument(
        "--no-scheduled-faults",
        action="store_true",
        help="ignore the scenario's [[fault]] schedule",
    )
    p.add_argument(
        "--fault",
        action="append",
        type=parse_fault,
        default=[],
        metavar="KIND@TARGET[,at_h=H,...]",
        help="add a fault, e.g. burner_trip@xinghai/plant-1/firing-shop/kiln-1,at_h=5,duration_h=1",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


async def run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    mqtt = MqttOptions(
        url=args.mqtt,
        username=args.mqtt_user,
        password=args.mqtt_password,
        protocol=args.mqtt_protocol,
        tls_ca=args.mqtt_ca,
        tls_cert=args.mqtt_cert,
        tls_key=args.mqtt_key,
        tls_insecure=args.mqtt_insecure,
    )
    fleet = Fleet(
        scenario,
        speed=args.speed,
        start_time_ns=args.start,
        opcua_base_port=args.opcua_port,
        bind=args.bind,
        security=SECURITY[args.security],
        opcua_username=args.opcua_user,
        opcua_password=args.opcua_password,
        state_dir=args.state_dir,
        mqtt=mqtt,
        topic_root=args.topic_root,
        sparkplug_group=args.sparkplug_group,
        truth_dir=args.truth,
        seed=args.seed,
        sample_interval_s=args.sample_interval,
        max_publish_hz=args.max_publish_hz,
        scheduled_faults=not args.no_scheduled_faults,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start()
    except OSError as exc:
        print(f"kilnworks simulate: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        for f in args.fault:
            params = {
                k: v for k, v in f.items() if k not in ("kind", "target", "at_h", "duration_h")
            }
            duration = f.get("duration_h")
            fleet.schedule_fault(
                str(f["target"]),
                str(f["kind"]),
                float(f["at_h"]),  # type: ignore[arg-type]
                None if duration is None else float(duration),  # type: ignore[arg-type]
                **params,
            )
        if args.manifest:
            fleet.write_manifest(args.manifest)
        m = fleet.manifest()
        log.info(
            "simulating %s: %d kilns on %s, %d presses on %s, speed %gx, sample every %g sim s",
            scenario.name,
            len(fleet.kilns),
            ", ".join(o["endpoint"] for o in m["opcua"]),
            len(fleet.presses),
            args.mqtt,
            args.speed,
            fleet.sample_interval_s,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
    finally:
        await fleet.stop()
    log.info("stopped: %s", fleet.counters)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("asyncua", "paho"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    try:
        return asyncio.run(run(args))
    except (ScenarioError, FaultError, ValueError) as exc:
        print(f"kilnworks simulate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
