"""A small real OPC UA server (asyncua, TCP on 127.0.0.1) standing in for a kiln's SCADA gateway.

Used by the OPC UA source, runtime and CLI tests. Address space per the wire contract
(docs/simulators.md): ``Objects/<kiln>/Zone<z>/TC<t>`` AnalogItems (Double, °C, EURange
0..1450, historized), ``Zone<z>/Setpoint``, ``<kiln>/State`` (String), ``<kiln>/CarPushCount``
(UInt32); string node ids ``ns=<idx>;s=<enterprise>.<kiln>.zone<z>.tc<t>.temperature``.

History lives in one storage object kept across a *restart* (a new Server object on the same
port), like a real gateway's historian that outlives its OPC UA front end. :meth:`publish`
writes a value with a source timestamp and remembers it, so a test can compare what the agent
stored with what was published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import Server, ua
from asyncua.server.history import HistoryDict

NAMESPACE = "urn:kilnworks-sim:kilns"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEGREE_CELSIUS_UNECE = 4408652  # UNECE code "CEL" as OPC UA encodes it (Part 8, 5.6.3)


class KeptHistory(HistoryDict):
    """In-memory history that survives the server being re-created (restart)."""

    async def new_historized_node(self, node_id, period, count=0):
        if node_id not in self._datachanges:
            await super().new_historized_node(node_id, period, count)

    async def stop(self) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ns_to_dt(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


@dataclass
class Published:
    node_id: str
    field: str
    value: object
    time_ns: int
    quality: str = "good"


@dataclass
class KilnServer:
    root: Path
    enterprise: str = "xinghai"
    kiln: str = "kiln-1"
    zones: int = 2
    thermocouples: int = 2
    security: bool = False
    users: dict[str, str] | None = None
    port: int = field(default_factory=free_port)
    published: list[Published] = field(default_factory=list)
    server: Server | None = None
    nodes: dict[str, ua.NodeId] = field(default_factory=dict)  # field -> node id
    idx: int = 2
    history: HistoryDict | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/kilnworks/{self.enterprise}/"

    @property
    def asset(self) -> str:
        return f"{self.enterprise}/plant-1/firing-shop/{self.kiln}"

    def node_id_text(self, field_name: str) -> str:
        nid = self.nodes[field_name]
        return f"ns={nid.NamespaceIndex};s={nid.Identifier}"

    def fields(self) -> list[str]:
        return list(self.nodes)

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"kilnworks test gateway {self.enterprise}")
        if self.security:
            from asyncua.crypto.cert_gen import setup_self_signed_certificate
            from cryptography.x509.oid import ExtendedKeyUsageOID

            pki = self.root / "server-pki"
            pki.mkdir(parents=True, exist_ok=True)
            uri = "urn:kilnworks-sim:gateway"
            server.set_server_name("kilnworks test gateway")
            await server.set_application_uri(uri)
            await setup_self_signed_certificate(
                pki / "key.pem",
                pki / "cert.der",
                uri,
                socket.gethostname(),
                [ExtendedKeyUsageOID.SERVER_AUTH],
                {"commonName": "kilnworks test gateway"},
            )
            await server.load_certificate(str(pki / "cert.der"))
            await server.load_private_key(str(pki / "key.pem"))
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_Sign,
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ]
            )
        if self.users is not None:
            users = self.users

            class Users:
                def get_user(self, iserver, username=None, password=None, certificate=None):
                    from asyncua.crypto.permission_rules import User, UserRole

                    if username is not None and users.get(username) == password:
                        return User(role=UserRole.User, name=username)
                    return None

            server.iserver.set_user_manager(Users())
            server.set_security_IDs(["Username"])
        if self.history is None:
            self.history = KeptHistory()
        server.iserver.history_manager.set_storage(self.history)
        self.idx = await server.register_namespace(NAMESPACE)
        idx = self.idx
        objects = server.nodes.objects
        kiln = await objects.add_object(
            ua.NodeId(f"{self.enterprise}.{self.kiln}", idx), ua.QualifiedName(self.kiln, idx)
        )
        prefix = f"{self.enterprise}.{self.kiln}"
        for z in range(1, self.zones + 1):
            zone = await kiln.add_object(
                ua.NodeId(f"{prefix}.zone{z}", idx), ua.QualifiedName(f"Zone{z}", idx)
            )
            for t in range(1, self.thermocouples + 1):
                var = await zone.add_variable(
                    ua.NodeId(f"{prefix}.zone{z}.tc{t}.temperature", idx),
                    ua.QualifiedName(f"TC{t}", idx),
                    ua.Variant(20.0, ua.VariantType.Double),
                )
                await var.add_property(
                    ua.NodeId(f"{prefix}.zone{z}.tc{t}.temperature.eurange", idx),
                    ua.QualifiedName("EURange", 0),
                    ua.Range(Low=0.0, High=1450.0),
                )
                await var.add_property(
                    ua.NodeId(f"{prefix}.zone{z}.tc{t}.temperature.eu", idx),
                    ua.QualifiedName("EngineeringUnits", 0),
                    ua.EUInformation(
                        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                        UnitId=DEGREE_CELSIUS_UNECE,
                        DisplayName=ua.LocalizedText("°C"),
                        Description=ua.LocalizedText("degree Celsius"),
                    ),
                )
                await self._historize(var)
                self.nodes[f"zone{z}_tc{t}_temperature_c"] = var.nodeid
            sp = await zone.add_variable(
                ua.NodeId(f"{prefix}.zone{z}.setpoint", idx),
                ua.QualifiedName("Setpoint", idx),
                ua.Variant(20.0, ua.VariantType.Double),
            )
            await self._historize(sp)
            self.nodes[f"zone{z}_setpoint_c"] = sp.nodeid
        state = await kiln.add_variable(
            ua.NodeId(f"{prefix}.state", idx),
            ua.QualifiedName("State", idx),
            ua.Variant("idle", ua.VariantType.String),
        )
        await self._historize(state)
        self.nodes["state"] = state.nodeid
        push = await kiln.add_variable(
            ua.NodeId(f"{prefix}.car_push_count", idx),
            ua.QualifiedName("CarPushCount", idx),
            ua.Variant(0, ua.VariantType.UInt32),
        )
        await self._historize(push)
        self.nodes["car_push_count"] = push.nodeid
        await server.start()
        self.server = server

    async def _historize(self, var) -> None:
        """Mark a variable Historizing with HistoryRead access; :meth:`publish` appends each
        written value to the history itself. (asyncua's own historizing samples through a
        subscription with queue size 1, so two writes inside one 10 ms publishing window keep
        only the second: a test historian must not lose what it is meant to prove.)"""
        assert self.history is not None
        await self.history.new_historized_node(var.nodeid, None)
        await var.write_attribute(ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True)))
        level = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask
        await var.write_attribute(
            ua.AttributeIds.AccessLevel, ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
        )

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            with contextlib.suppress(Exception):
                await server.stop()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop_network(self) -> None:
        """Close the port and drop every session and subscription, keeping the address space
        and history (a gateway service restart; rebuilding asyncua's standard address space
        costs ~2 s of CPU, which a shared test machine can do without)."""
        assert self.server is not None
        await self.server.bserver.stop()

    async def start_network(self) -> None:
        from asyncua.server.binary_server_asyncio import BinaryServer

        server = self.server
        assert server is not None
        host, port = server._get_bind_socket_info()
        bserver = BinaryServer(server.iserver, host, port, server.limits)
        bserver.set_policies(server._policies)
        await bserver.start()
        server.bserver = bserver

    async def publish(
        self,
        field_name: str,
        value: object,
        time_ns: int,
        *,
        status: int = ua.StatusCodes.Good,
        record: bool = True,
    ) -> None:
        """Write ``value`` with source time ``time_ns`` (what a PLC reports)."""
        assert self.server is not None, "server is stopped"
        nid = self.nodes[field_name]
        if isinstance(value, bool):
            variant = ua.Variant(value, ua.VariantType.Boolean)
        elif isinstance(value, float):
            variant = ua.Variant(value, ua.VariantType.Double)
        elif isinstance(value, int):
            variant = ua.Variant(value, ua.VariantType.UInt32)
        else:
            variant = ua.Variant(value, ua.VariantType.String)
        dt = ns_to_dt(time_ns)
        dv = ua.DataValue(
            variant, StatusCode=ua.StatusCode(status), SourceTimestamp=dt, ServerTimestamp=dt
        )
        await self.server.write_attribute_value(nid, dv)
        assert self.history is not None
        await self.history.save_node_value(nid, dv)
        if record:
            quality = (
                "good" if (status >> 30) == 0 else ("uncertain" if status >> 30 == 1 else "bad")
            )
            # A Bad sample goes on the wire without its value (asyncua drops it, as the spec
            # allows): record what a client can see.
            seen = value if quality != "bad" else None
            self.published.append(
                Published(self.node_id_text(field_name), field_name, seen, time_ns, quality)
            )


async def wait_for(predicate, timeout_s: float, what: str) -> None:
    """Await a condition without sleeping a fixed time (polls with a short backoff)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.005
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


logging.getLogger("asyncua").setLevel(logging.WARNING)
