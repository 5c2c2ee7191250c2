"""The agent's one TOML file: who it is, what it reads, where readings go. Checked at load.

Layout (``examples/agent/shangbu-sim.toml`` is a complete sample, loaded by a test)::

    [agent]
    enterprise = "xinghai"            # the agent's identity (metrics labels, client names)
    site = "plant-1"
    state_dir = "var/agent"           # certificates, per-node high-water marks

    [spool]                           # the durable queue between sources and the store
    path = "var/agent/spool"
    max_bytes = 1073741824
    policy = "drop_oldest"            # drop_oldest | reject | block

    [output]
    store_url = "influxdb://127.0.0.1:8086/kilnworks"   # KILNWORKS_STORE_URL overrides

    [health]
    listen = "127.0.0.1:9108"         # /healthz and /metrics; "" turns it off

    [guard]
    max_future_s = 300                # clock skew the agent tolerates (0 = no check)
    max_past_s = 2592000

    [[source]]                        # one OPC UA server
    type = "opcua"
    name = "xinghai-kilns"
    endpoint = "opc.tcp://127.0.0.1:48400/kilnworks/xinghai/"
      [[source.node]]
      node_id = "ns=2;s=xinghai.kiln-1.zone1.tc1.temperature"
      asset = "xinghai/plant-1/firing-shop/kiln-1"
      field = "zone1_tc1_temperature_c"
      unit = "°C"

    [[source]]                        # type = "mqtt_json" | "sparkplug": checked by the MQTT
    type = "mqtt_json"                # sources' own parsers (edge_agent/sources/mqtt_json.py,
                                      # sparkplug.py), so each source owns its keys

Everything here is pure: loading never touches the network ("validate early, connect late").
Relative paths are resolved against the config file's directory so a config works from any
working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import ConfigError, Table, load_toml, parse_toml
from core.reading import AssetPath

STORE_URL_ENV = "KILNWORKS_STORE_URL"

SECURITY_POLICIES = ("None", "Basic256Sha256")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")
TIMESTAMP_SOURCES = ("source", "server", "receive")
SPOOL_POLICIES = ("drop_oldest", "reject_new")  # ingest.spool.POLICIES
DEADBAND_TYPES = ("none", "absolute", "percent")
# DataChangeFilter triggers: with "status_value_timestamp" a server reports a new sample even when
# the value repeats (a steady kiln zone), which "every reading, value for value" needs.
TRIGGERS = ("status", "status_value", "status_value_timestamp")

_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


@dataclass(frozen=True, slots=True)
class NodeMapping:
    """One OPC UA variable mapped to one field of one asset.

    ``eu_range`` (low, high) overrides the server's EURange property; values outside it are
    dead-lettered with reason ``out_of_range``. ``deadband`` is the OPC UA DataChangeFilter
    deadband: ``absolute`` in the value's unit, ``percent`` of the EURange.
    """

    node_id: str
    asset: str
    field: str
    unit: str = ""
    sampling_interval_ms: float = 1000.0
    queue_size: int = 100
    deadband_type: str = "none"
    deadband_value: float = 0.0
    eu_range: tuple[float, float] | None = None
    trigger: str = "status_value_timestamp"


@dataclass(frozen=True, slots=True)
class OpcUaConfig:
    """One OPC UA server the agent subscribes to (a ``[[source]]`` of ``type = "opcua"``)."""

    name: str
    endpoint: str
    nodes: tuple[NodeMapping, ...]
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: Path | None = None  # client certificate (DER/PEM); generated when absent
    private_key: Path | None = None
    server_certificate: Path | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    application_uri: str = "urn:kilnworks:edge-agent"
    timestamp: str = "source"
    publishing_interval_ms: float = 100.0
    request_timeout_s: float = 4.0
    history_fill: bool = True
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # The keep-alive probe's period and timeout: too short and a busy edge box mistakes a slow
    # answer for a dead server (a needless reconnect); a closed socket is noticed at once anyway.
    watchdog_s: float = 2.0
    max_batch: int = 5000
    batch_linger_ms: float = 100.0
    read_eu_range: bool = True


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    path: Path
    max_bytes: int = 1 << 30
    policy: str = "drop_oldest"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Limits :class:`edge_agent.guard.Guard` applies to every reading (0 = no check)."""

    max_future_s: float = 300.0
    max_past_s: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """A whole agent, as loaded from its TOML file. ``sources`` holds each ``[[source]]``'s
    config object in file order: :class:`OpcUaConfig` for ``type = "opcua"``, the MQTT sources'
    own config objects for ``mqtt_json`` / ``sparkplug`` (opaque here; each has ``name``)."""

    file: str
    enterprise: str
    site: str
    name: str
    state_dir: Path
    spool: SpoolConfig
    store_url: str
    health_listen: str
    guard: GuardConfig
    sources: tuple[Any, ...]
    source_types: tuple[str, ...] = ()
    log_level: str = "INFO"

    @property
    def opcua(self) -> tuple[OpcUaConfig, ...]:
        return tuple(s for s in self.sources if isinstance(s, OpcUaConfig))

    def source_names(self) -> list[str]:
        return [str(s.name) for s in self.sources]


SourceParser = Callable[[Table], Any]


def _parse_mqtt_json(table: Table) -> Any:
    # Imported when used, so an OPC UA-only agent never loads paho.
    from edge_agent.sources.mqtt_json import parse_mqtt_json_source

    return parse_mqtt_json_source(table)


def _parse_sparkplug(table: Table) -> Any:
    from edge_agent.sources import sparkplug

    return sparkplug.parse_sparkplug_source(table)


def default_source_parsers(base_dir: Path, env: Mapping[str, str]) -> dict[str, SourceParser]:
    """``type`` of a ``[[source]]`` -> the function that checks its table."""
    return {
        "opcua": lambda t: _parse_opcua(t, base_dir, env),
        "mqtt_json": _parse_mqtt_json,
        "sparkplug": _parse_sparkplug,
    }


def load_agent_config(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    parsers: Mapping[str, SourceParser] | None = None,
) -> AgentConfig:
    """Load and check an agent config file. Raises :class:`core.config.ConfigError` naming the
    file, the key and what was expected. ``environ`` (default ``os.environ``) supplies
    ``KILNWORKS_STORE_URL`` and ``password_env`` values."""
    path = Path(path)
    return parse_agent_config(
        load_toml(path), base_dir=path.parent, environ=environ, parsers=parsers
    )


def parse_agent_text(
    text: str,
    name: str = "<string>",
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    parsers: Mapping[str, SourceParser] | None = None,
) -> AgentConfig:
    """Like :func:`load_agent_config` for text in memory (tests, generated configs)."""
    return parse_agent_config(
        parse_toml(text, name),
        base_dir=base_dir or Path.cwd(),
        environ=environ,
        parsers=parsers,
    )


def _path(table: Table, key: str, base_dir: Path, default: Any = None) -> Path | None:
    value = table.str(key, default)
    if value is None:
        return None
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base_dir / p)


def _listen(table: Table, key: str, default: str) -> str:
    value = table.data.get(key, default)
    if value == "":
        return ""
    if not isinstance(value, str) or not re.match(r"^[^:\s]+:\d{1,5}$", value):
        raise table.error(key, f'expected "host:port" or "" (off), got {value!r}')
    port = int(value.rsplit(":", 1)[1])
    if port > 65535:
        raise table.error(key, f"expected a port in [0, 65535], got {port}")
    return value


def parse_agent_config(
    top: Table,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    parsers: Mapping[str, SourceParser] | None = None,
) -> AgentConfig:
    """Check a parsed TOML table and build the :class:`AgentConfig` (see module docstring)."""
    env = os.environ if environ is None else environ
    top.check_keys("agent", "spool", "output", "health", "guard", "source", "log")
    agent = top.table("agent")
    agent.check_keys("enterprise", "site", "name", "state_dir")
    enterprise = agent.str("enterprise")
    site = agent.str("site", "")
    name = agent.str("name", f"{enterprise}-{site}-edge" if site else f"{enterprise}-edge")
    state_dir = _path(agent, "state_dir", base_dir, "agent-state")
    assert state_dir is not None

    spool_t = top.table("spool", Table({}, top.file, "spool"))
    spool_t.check_keys("path", "max_bytes", "policy")
    spool = SpoolConfig(
        path=_path(spool_t, "path", base_dir, str(state_dir / "spool")) or state_dir / "spool",
        max_bytes=spool_t.int("max_bytes", 1 << 30, min=1 << 20),
        policy=spool_t.str("policy", "drop_oldest", choices=SPOOL_POLICIES),
    )

    output = top.table("output", Table({}, top.file, "output"))
    output.check_keys("store_url")
    store_url = env.get(STORE_URL_ENV) or output.str("store_url", "")
    if not store_url:
        raise output.error(
            "store_url",
            f"required (or set {STORE_URL_ENV}): influxdb://host:port/db, "
            "influxdb2://host:port/?org=..&bucket=..&token=.. or sqlite:///path.db",
        )
    if not re.match(r"^(influxdb|influxdb2|sqlite)://", store_url):
        raise output.error(
            "store_url",
            f"expected an influxdb://, influxdb2:// or sqlite:// URL, got {store_url!r}",
        )

    health = top.table("health", Table({}, top.file, "health"))
    health.check_keys("listen")
    guard_t = top.table("guard", Table({}, top.file, "guard"))
    guard_t.check_keys("max_future_s", "max_past_s")
    guard = GuardConfig(
        max_future_s=guard_t.float("max_future_s", 300.0, min=0.0),
        max_past_s=guard_t.float("max_past_s", 30 * 86400.0, min=0.0),
    )
    log = top.table("log", Table({}, top.file, "log"))
    log.check_keys("level")

    known = {**default_source_parsers(base_dir, env), **(parsers or {})}
    sources = []
    types = []
    for t in top.tables("source", required=True):
        kind = t.str("type", choices=tuple(known))
        sources.append(known[kind](t))
        types.append(kind)

    config = AgentConfig(
        file=top.file,
        enterprise=enterprise,
        site=site,
        name=name,
        state_dir=state_dir,
        spool=spool,
        store_url=store_url,
        health_listen=_listen(health, "listen", "127.0.0.1:9108"),
        guard=guard,
        sources=tuple(sources),
        source_types=tuple(types),
        log_level=log.str("level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    seen: set[str] = set()
    for i, source_name in enumerate(config.source_names()):
        if source_name in seen:
            raise ConfigError(
                top.file, f"source[{i}].name", f"a unique name, {source_name!r} repeats"
            )
        seen.add(source_name)
    if not config.source_names():
        raise ConfigError(top.file, "source", "expected at least one [[source]]")
    return config


_OPCUA_KEYS = (
    "type",
    "name",
    "endpoint",
    "node",
    "security_policy",
    "security_mode",
    "certificate",
    "private_key",
    "server_certificate",
    "username",
    "password",
    "password_env",
    "application_uri",
    "timestamp",
    "publishing_interval_ms",
    "sampling_interval_ms",
    "queue_size",
    "deadband",
    "deadband_type",
    "request_timeout_s",
    "history_fill",
    "trigger",
    "reconnect_min_s",
    "reconnect_max_s",
    "watchdog_s",
    "max_batch",
    "batch_linger_ms",
    "read_eu_range",
)


def _parse_opcua(t: Table, base_dir: Path, env: Mapping[str, str]) -> OpcUaConfig:
    t.check_keys(*_OPCUA_KEYS)
    endpoint = t.str("endpoint")
    if not endpoint.startswith("opc.tcp://"):
        raise t.error("endpoint", f"expected an opc.tcp://host:port/... URL, got {endpoint!r}")
    policy = t.str("security_policy", "None", choices=SECURITY_POLICIES)
    mode = t.str("security_mode", "None" if policy == "None" else "SignAndEncrypt")
    if mode not in SECURITY_MODES:
        raise t.error("security_mode", f"expected one of {', '.join(SECURITY_MODES)}, got {mode!r}")
    if (policy == "None") != (mode == "None"):
        raise t.error(
            "security_mode",
            f"security_policy {policy!r} needs a mode of "
            + ("None" if policy == "None" else "Sign or SignAndEncrypt")
            + f", got {mode!r}",
        )
    password = t.str("password", "")
    if "password_env" in t:
        var = t.str("password_env")
        if var not in env:
            raise t.error("password_env", f"environment variable {var} is not set")
        password = env[var]
    username = t.str("username", "")
    if password and not username:
        raise t.error("username", "a password needs a username")

    defaults = {
        "sampling_interval_ms": t.float("sampling_interval_ms", 1000.0, min=0.0),
        "queue_size": t.int("queue_size", 100, min=1, max=100_000),
        "deadband_type": t.str("deadband_type", "none", choices=DEADBAND_TYPES),
        "deadband": t.float("deadband", 0.0, min=0.0),
        "trigger": t.str("trigger", "status_value_timestamp", choices=TRIGGERS),
    }
    nodes = tuple(_parse_node(n, defaults) for n in t.tables("node", required=True))
    if not nodes:
        raise t.error("node", "expected at least one [[source.node]]")
    seen: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n.node_id in seen:
            raise t.error(
                f"node[{i}].node_id", f"{n.node_id!r} is already mapped by node[{seen[n.node_id]}]"
            )
        seen[n.node_id] = i
    targets: set[tuple[str, str]] = set()
    for i, n in enumerate(nodes):
        if (n.asset, n.field) in targets:
            raise t.error(f"node[{i}].field", f"{n.asset} {n.field} is mapped twice")
        targets.add((n.asset, n.field))
    rmin = t.float("reconnect_min_s", 0.5, min=0.01, max=600.0)
    rmax = t.float("reconnect_max_s", 30.0, min=0.01, max=3600.0)
    if rmax < rmin:
        raise t.error("reconnect_max_s", f"expected >= reconnect_min_s ({rmin}), got {rmax}")
    return OpcUaConfig(
        name=t.str("name"),
        endpoint=endpoint,
        nodes=nodes,
        security_policy=policy,
        security_mode=mode,
        certificate=_path(t, "certificate", base_dir),
        private_key=_path(t, "private_key", base_dir),
        server_certificate=_path(t, "server_certificate", base_dir),
        username=username,
        password=password,
        application_uri=t.str("application_uri", "urn:kilnworks:edge-agent"),
        timestamp=t.str("timestamp", "source", choices=TIMESTAMP_SOURCES),
        publishing_interval_ms=t.float("publishing_interval_ms", 100.0, min=1.0, max=600_000.0),
        request_timeout_s=t.float("request_timeout_s", 4.0, min=0.1, max=600.0),
        history_fill=t.bool("history_fill", True),
        reconnect_min_s=rmin,
        reconnect_max_s=rmax,
        watchdog_s=t.float("watchdog_s", 2.0, min=0.05, max=60.0),
        max_batch=t.int("max_batch", 5000, min=1, max=1_000_000),
        batch_linger_ms=t.float("batch_linger_ms", 100.0, min=0.0, max=10_000.0),
        read_eu_range=t.bool("read_eu_range", True),
    )


def _parse_node(n: Table, defaults: dict[str, Any]) -> NodeMapping:
    n.check_keys(
        "node_id",
        "asset",
        "field",
        "unit",
        "sampling_interval_ms",
        "queue_size",
        "deadband",
        "deadband_type",
        "eu_range",
        "trigger",
    )
    node_id = n.str("node_id")
    if not _NODE_ID.match(node_id):
        raise n.error(
            "node_id", f'expected an OPC UA node id like "ns=2;s=kiln-1.zone1", got {node_id!r}'
        )
    asset = n.str("asset")
    try:
        AssetPath.parse(asset)
    except ValueError as exc:
        raise n.error("asset", str(exc)) from None
    fld = n.str("field")
    if not _FIELD.match(fld):
        raise n.error("field", f"expected a lower_snake_case field name with its unit, got {fld!r}")
    eu_range = None
    if "eu_range" in n:
        raw = n.data["eu_range"]
        if (
            not isinstance(raw, list)
            or len(raw) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw)
            or raw[0] >= raw[1]
        ):
            raise n.error("eu_range", f"expected [low, high] with low < high, got {raw!r}")
        eu_range = (float(raw[0]), float(raw[1]))
    deadband_type = n.str("deadband_type", defaults["deadband_type"], choices=DEADBAND_TYPES)
    deadband = n.float("deadband", defaults["deadband"], min=0.0)
    if deadband_type == "percent" and deadband > 100.0:
        raise n.error("deadband", f"expected a percent in [0, 100], got {deadband}")
    if "deadband" in n and "deadband_type" not in n and deadband_type == "none":
        deadband_type = "absolute"
    return NodeMapping(
        node_id=node_id,
        asset=asset,
        field=fld,
        unit=n.str("unit", ""),
        sampling_interval_ms=n.float(
            "sampling_interval_ms", defaults["sampling_interval_ms"], min=0.0
        ),
        queue_size=n.int("queue_size", defaults["queue_size"], min=1, max=100_000),
        deadband_type=deadband_type,
        deadband_value=deadband,
        eu_range=eu_range,
        trigger=n.str("trigger", defaults["trigger"], choices=TRIGGERS),
    )
