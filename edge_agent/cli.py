"""``kilnworks agent ...``: run, check, discover, config-from-manifest, dead-letters.

* ``kilnworks agent run --config agent.toml`` - collect until SIGINT/SIGTERM (exit 0), or exit
  2 when the config is broken (the message names file, key, expectation).
* ``kilnworks agent check --config agent.toml`` - validate only; prints a summary, exit 0/2.
* ``kilnworks agent discover opc.tcp://host:port/path [--security ...]`` - browse a server and
  print a ``[[source.node]]`` mapping skeleton (units from EngineeringUnits).
* ``kilnworks agent config-from-manifest manifest.json [--store-url ...]`` - an agent config
  for the simulators' manifest (the demo and tests use it).
* ``kilnworks agent dead-letters --config agent.toml`` - show the newest dead letters.

Registered in ``core/cli.py`` as the ``agent`` command: ``main(argv) -> int``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.config import ConfigError
from edge_agent.config import load_agent_config

log = logging.getLogger("edge_agent")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kilnworks agent", description="Collect kiln and press telemetry into the store."
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    run.add_argument("--config", "-c", required=True, type=Path)
    run.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (overrides config)")
    check = sub.add_parser("check", help="validate a config file and print what it collects")
    check.add_argument("--config", "-c", required=True, type=Path)
    disc = sub.add_parser("discover", help="browse an OPC UA server, print a mapping skeleton")
    disc.add_argument("endpoint", help="opc.tcp://host:port/path")
    disc.add_argument(
        "--security",
        default="None",
        help="None | Basic256Sha256,Sign | Basic256Sha256,SignAndEncrypt",
    )
    disc.add_argument("--certificate", type=Path, help="client certificate (DER/PEM)")
    disc.add_argument("--private-key", type=Path, help="client private key (PEM)")
    disc.add_argument("--username", default="")
    disc.add_argument("--password", default="", help="better: KILNWORKS_OPCUA_PASSWORD env var")
    disc.add_argument("--enterprise", default="enterprise")
    disc.add_argument("--site", default="site")
    disc.add_argument("--line", default="line")
    disc.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    man = sub.add_parser("config-from-manifest", help="agent config for a simulator manifest")
    man.add_argument("manifest", type=Path)
    man.add_argument("--store-url", default="sqlite:///kilnworks.db")
    man.add_argument("--state-dir", default="agent-state")
    man.add_argument("--health-listen", default="127.0.0.1:9108")
    man.add_argument("--enterprise", action="append", help="only these (repeatable)")
    man.add_argument("--no-mqtt", action="store_true", help="OPC UA sources only")
    man.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    dl = sub.add_parser("dead-letters", help="print the newest dead letters as JSON lines")
    dl.add_argument("--config", "-c", required=True, type=Path)
    dl.add_argument("--limit", type=int, default=20)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check":
            return _check(args)
        if args.command == "discover":
            return _discover(args)
        if args.command == "config-from-manifest":
            return _from_manifest(args)
        if args.command == "dead-letters":
            return _dead_letters(args)
    except ConfigError as exc:
        print(f"kilnworks agent: {exc}", file=sys.stderr)
        return 2
    return 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # asyncua logs every reconnect attempt's stack at WARNING/ERROR; the source logs one line.
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)


def _run(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    _setup_logging(args.log_level or config.log_level)
    from edge_agent.runtime import Agent

    try:
        Agent(config).run()
    except Exception as exc:  # the spool locked by another agent, a store URL it cannot open...
        log.error("cannot run: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        print(f"kilnworks agent: cannot run: {exc}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    print(f"{args.config}: ok")
    print(f"  agent {config.name} ({config.enterprise}/{config.site})")
    print(
        f"  spool {config.spool.path} (max {config.spool.max_bytes} bytes, {config.spool.policy})"
    )
    print(f"  store {_redact(config.store_url)}")
    print(f"  health {config.health_listen or 'off'}")
    for kind, source in zip(config.source_types, config.sources, strict=True):
        extra = ""
        if kind == "opcua":
            extra = f" {source.endpoint}, {len(source.nodes)} nodes"
        print(f"  source {source.name} ({kind}){extra}")
    return 0


def _redact(url: str) -> str:
    from edge_agent.runtime import _redact as redact

    return redact(url)


def _discover(args: argparse.Namespace) -> int:
    import os

    from asyncua import Client, ua

    from edge_agent.discover import browse, skeleton

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)

    async def go() -> str:
        client = Client(args.endpoint, timeout=args.timeout)
        client.application_uri = "urn:kilnworks:edge-agent"
        password = args.password or os.environ.get("KILNWORKS_OPCUA_PASSWORD", "")
        if args.username:
            client.set_user(args.username)
            client.set_password(password)
        if args.security != "None":
            policy, _, mode = args.security.partition(",")
            if policy != "Basic256Sha256" or mode not in ("Sign", "SignAndEncrypt"):
                raise SystemExit(
                    f"--security {args.security!r}: expected None, Basic256Sha256,Sign or "
                    "Basic256Sha256,SignAndEncrypt"
                )
            from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

            cert, key = args.certificate, args.private_key
            if cert is None or key is None:
                from edge_agent.config import NodeMapping, OpcUaConfig
                from edge_agent.sources.opcua import OpcUaSource

                tmp = OpcUaSource(
                    OpcUaConfig("discover", args.endpoint, (NodeMapping("i=1", "a/b/c/d", "x"),)),
                    state_dir=Path.home() / ".kilnworks",
                )
                cert, key = await tmp._certificates()
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=str(cert),
                private_key=str(key),
                mode=getattr(ua.MessageSecurityMode, mode),
            )
        async with client:
            variables = await browse(client)
        return skeleton(
            args.endpoint, variables, enterprise=args.enterprise, site=args.site, line=args.line
        )

    try:
        text = asyncio.run(go())
    except (OSError, TimeoutError, ConnectionError) as exc:
        print(f"kilnworks agent discover: cannot reach {args.endpoint}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _from_manifest(args: argparse.Namespace) -> int:
    from edge_agent.manifest import config_from_manifest, load_manifest

    try:
        manifest = load_manifest(args.manifest)
    except ValueError as exc:
        print(f"kilnworks agent: {exc}", file=sys.stderr)
        return 2
    text = config_from_manifest(
        manifest,
        store_url=args.store_url,
        state_dir=args.state_dir,
        health_listen=args.health_listen,
        enterprises=args.enterprise,
        include_mqtt=not args.no_mqtt,
    )
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    from ingest.spool import Spool, SpoolLocked

    if not config.spool.path.exists():
        print(f"kilnworks agent: no spool at {config.spool.path} yet", file=sys.stderr)
        return 1
    try:
        with Spool(config.spool.path, max_bytes=config.spool.max_bytes) as spool:
            rows = spool.dead_letters(args.limit)
    except SpoolLocked:
        rows = _dead_letters_read_only(config.spool.path, args.limit)
    for row in rows:
        if isinstance(row.get("raw"), bytes):
            row["raw"] = row["raw"].decode("utf-8", "backslashreplace")
        print(json.dumps(row, default=str))
    return 0


def _dead_letters_read_only(path: Path, limit: int) -> list[dict]:
    """Read the dead-letter table of a spool a running agent holds (SQLite WAL lets a reader
    in; the spool's own lock only keeps a second *writer* out)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = db.execute(
            "SELECT time_ns, source, reason, detail, raw, asset, field, value, quality, "
            "source_time_ns, received_time_ns, unit FROM dead_letter ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        db.close()
