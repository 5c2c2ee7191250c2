"""The OPC UA side of a simulated site: one server per enterprise, like a site SCADA gateway.

Endpoint ``opc.tcp://<host>:<port>/kilnworks/<enterprise>/``, namespace ``urn:kilnworks-sim:kilns``.
Address space, per kiln (string node ids ``ns=<idx>;s=<enterprise>.<kiln>.<suffix>``)::

    Objects/<kiln>/State, Programme, ProgrammeSegments, FiringId           String
    Objects/<kiln>/GasFlow (m3/h), Energy (kWh), O2 (%), CO (ppm)          AnalogItem Double
    Objects/<kiln>/CarPushCount (UInt32), PushIntervalMinutes               tunnel kilns only
    Objects/<kiln>/Zone<z>/Setpoint (C), PowerPercent (%)                   AnalogItem Double
    Objects/<kiln>/Zone<z>/TC<t>  (C, EURange 0..1450, Historizing)          AnalogItem Double

AnalogItems carry ``EngineeringUnits`` (UNECE codes, OPC UA units namespace) and ``EURange``.
Values carry simulated source timestamps; a broken thermocouple is StatusCode BadSensorFailure.

History: temperature values go into a :class:`SimHistory` that outlives server restarts and is
also fed while the server is down (the controller keeps logging), so a client that reconnects
after ``restart(down_wall_s=...)`` can HistoryRead the gap - the case the platform must handle.

Security: the policies asked for (``none``, ``sign`` = Basic256Sha256 Sign, ``encrypt`` =
Basic256Sha256 SignAndEncrypt); a self-signed application certificate is generated on first
start into ``<state_dir>/<enterprise>/`` and reused afterwards. Client certificates are not
checked against a trust list (a test rig trusts everyone; documented). With a username set,
anonymous logins are refused.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.binary_server_asyncio import BinaryServer
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.kiln_model import Sample

log = logging.getLogger(__name__)

NAMESPACE = "urn:kilnworks-sim:kilns"
UNITS_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
SECURITY_MODES = ("none", "sign", "encrypt")
_POLICY = {
    "none": ua.SecurityPolicyType.NoSecurity,
    "sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "encrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}

# UNECE Rec. 20 common codes -> (display name, description)
UNITS = {
    "CEL": ("°C", "degree Celsius"),
    "P1": ("%", "percent"),
    "MQH": ("m³/h", "cubic metre per hour"),
    "KWH": ("kWh", "kilowatt hour"),
    "59": ("ppm", "part per million"),
    "MIN": ("min", "minute"),
}


def unit_id(code: str) -> int:
    """OPC UA Part 8 UnitId from a UNECE common code (each character a byte, big-endian)."""
    v = 0
    for ch in code:
        v = (v << 8) | ord(ch)
    return v


@dataclass(frozen=True)
class VarSpec:
    """One kiln variable: where it sits, what it is called, its OPC UA type and units."""

    field: str
    folder: str  # "" or "Zone<z>"
    browse: str
    suffix: str
    vtype: ua.VariantType
    unit: str | None = None
    eu_range: tuple[float, float] | None = None
    historizing: bool = False


def kiln_vars(zones: int, tcs: int, tunnel: bool) -> list[VarSpec]:
    D, S = ua.VariantType.Double, ua.VariantType.String
    out = [
        VarSpec("state", "", "State", "state", S),
        VarSpec("programme", "", "Programme", "programme", S),
        VarSpec("programme_segments", "", "ProgrammeSegments", "programme_segments", S),
        VarSpec("firing_id", "", "FiringId", "firing_id", S),
        VarSpec("gas_flow_m3_h", "", "GasFlow", "gas_flow", D, "MQH", (0.0, 1000.0)),
        VarSpec("energy_kwh", "", "Energy", "energy", D, "KWH", (0.0, 1e12)),
        VarSpec("o2_pct", "", "O2", "o2", D, "P1", (0.0, 25.0)),
        VarSpec("co_ppm", "", "CO", "co", D, "59", (0.0, 50000.0)),
    ]
    if tunnel:
        out.append(
            VarSpec("car_push_count", "", "CarPushCount", "car_push_count", ua.VariantType.UInt32)
        )
        out.append(
            VarSpec(
                "push_interval_min",
                "",
                "PushIntervalMinutes",
                "push_interval_minutes",
                D,
                "MIN",
                (0.0, 1440.0),
            )
        )
    for z in range(1, zones + 1):
        zf = f"Zone{z}"
        out.append(
            VarSpec(
                f"zone{z}_setpoint_c", zf, "Setpoint", f"zone{z}.setpoint", D, "CEL", (0.0, 1450.0)
            )
        )
        out.append(
            VarSpec(
                f"zone{z}_power_pct",
                zf,
                "PowerPercent",
                f"zone{z}.power_percent",
                D,
                "P1",
                (0.0, 100.0),
            )
        )
        for t in range(1, tcs + 1):
            out.append(
                VarSpec(
                    f"zone{z}_tc{t}_temperature_c",
                    zf,
                    f"TC{t}",
                    f"zone{z}.tc{t}.temperature",
                    D,
                    "CEL",
                    (0.0, 1450.0),
                    historizing=True,
                )
            )
    return out


class SimHistory(HistoryStorageInterface):
    """In-memory history of data changes, kept across server restarts, bounded per node.

    5,000 values per thermocouple (~2 MB) cover 42 simulated hours at a 30 s sample interval and
    17 days at 300 s: enough to backfill any outage a test or demo makes, bounded for long runs.

    Values are appended in source-time order by :class:`KilnGateway`, so reads bisect.
    """

    def __init__(self, max_values_per_node: int = 5_000, max_response: int = 10_000) -> None:
        self.max_values = max_values_per_node
        self.max_response = max_response
        self._values: dict[ua.NodeId, list[ua.DataValue]] = {}
        self._times: dict[ua.NodeId, list[datetime]] = {}

    async def init(self) -> None:
        pass

    async def new_historized_node(self, node_id, period, count=0) -> None:
        self._values.setdefault(node_id, [])
        self._times.setdefault(node_id, [])

    def add(self, node_id: ua.NodeId, dv: ua.DataValue) -> None:
        values = self._values.setdefault(node_id, [])
        times = self._times.setdefault(node_id, [])
        values.append(dv)
        times.append(dv.SourceTimestamp)
        if len(values) > self.max_values:  # drop the oldest tenth at once: amortised O(1)
            cut = self.max_values // 10
            del values[:cut], times[:cut]

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        self.add(node_id, datavalue)

    async def read_node_history(self, node_id, start, end, nb_values):
        values = self._values.get(node_id, [])
        times = self._times.get(node_id, [])
        epoch = ua.get_win_epoch()
        lo_t = start if start not in (None, epoch) else None
        hi_t = end if end not in (None, epoch) else None
        # OPC UA Part 11: StartTime > EndTime, or only EndTime given, reads backwards in time
        reverse = (lo_t is not None and hi_t is not None and lo_t > hi_t) or (
            lo_t is None and hi_t is not None
        )
        if reverse and lo_t is not None:
            lo_t, hi_t = hi_t, lo_t
        lo = bisect.bisect_left(times, lo_t) if lo_t else 0
        hi = bisect.bisect_right(times, hi_t) if hi_t else len(times)
        result = values[lo:hi]
        if reverse:
            result = result[::-1]
        limit = min(nb_values or self.max_response, self.max_response)
        cont = None
        if len(result) > limit:
            cont = result[limit].SourceTimestamp
            result = result[:limit]
        return result, cont

    async def new_historized_event(self, source_id, evtypes, period, count=0) -> None:
        pass

    async def save_event(self, event) -> None:
        pass

    async def read_event_history(self, source_id, start, end, nb_values, evfilter):
        return [], None

    async def stop(self) -> None:
        pass


class StandardAddressSpace:
    """The OPC UA standard address space, built once and copied into every server of a fleet.

    asyncua fills ~5,000 standard nodes from generated code on every ``Server.init`` (~2 s CPU);
    a fleet of five gateways would spend ~10 s CPU starting on a shared 2-core machine. Copying
    the node table takes a fraction of that. The copy shares immutable parts (DataValues,
    reference descriptions) and gives each server its own NodeData and attribute slots, which
    is all asyncua mutates. This reaches into asyncua internals (``iserver.aspace._nodes``),
    so ``install`` falls back to asyncua's own loader if those are not there.
    """

    def __init__(self) -> None:
        self._template: dict[ua.NodeId, NodeData] | None = None

    @staticmethod
    def _copy(nodes: dict[ua.NodeId, NodeData]) -> dict[ua.NodeId, NodeData]:
        out = {}
        for nid, nd in nodes.items():
            c = NodeData(nid)
            c.attributes = {k: AttributeValue(v.value) for k, v in nd.attributes.items()}
            c.references = list(nd.references)
            c.call = nd.call
            out[nid] = c
        return out

    def install(self, server: Server) -> None:
        iserver = server.iserver
        original = iserver.load_standard_address_space
        if not isinstance(getattr(iserver.aspace, "_nodes", None), dict):
            return

        async def load(shelf_file: Path | None = None) -> None:
            if self._template is None:
                await original(shelf_file)
                self._template = self._copy(iserver.aspace._nodes)
            else:
                iserver.aspace._nodes = self._copy(self._template)

        iserver.load_standard_address_space = load


class _PasswordUsers(UserManager):
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == self.username and password == self.password:
            return User(role=UserRole.User, name=username)
        return None


def ns_to_datetime(t_ns: int) -> datetime:
    return datetime.fromtimestamp(t_ns // 1_000_000_000, UTC).replace(
        microsecond=(t_ns // 1000) % 1_000_000
    )


@dataclass
class GatewayKiln:
    id: str
    asset: str
    zones: int
    tcs: int
    tunnel: bool


class KilnGateway:
    """One enterprise's OPC UA server with its kilns. Owned and driven by the fleet.

    ``start()`` binds the port (certificates made on first start); ``publish()`` is called by the
    fleet on every kiln sample and never raises because the server is down; ``restart()`` stops
    the server, waits ``down_wall_s`` and starts a fresh one on the same port and node ids.
    """

    def __init__(
        self,
        enterprise: str,
        kilns: list[GatewayKiln],
        *,
        host: str,
        port: int,
        state_dir: Path,
        security: tuple[str, ...] = SECURITY_MODES,
        username: str | None = None,
        password: str | None = None,
        standard_space: StandardAddressSpace | None = None,
    ) -> None:
        for mode in security:
            if mode not in SECURITY_MODES:
                raise ValueError(
                    f"unknown OPC UA security mode {mode!r} (expected {SECURITY_MODES})"
                )
        if not security:
            raise ValueError("at least one OPC UA security mode is needed")
        self.enterprise = enterprise
        self.kilns = {k.id: k for k in kilns}
        self.host, self.port = host, port
        self.state_dir = Path(state_dir) / enterprise
        self.security = tuple(security)
        self.username, self.password = username, password
        self.history = SimHistory()
        self.standard_space = standard_space or StandardAddressSpace()
        self.ns_index = 2  # confirmed at build time; the manifest is written after start()
        self.server: Server | None = None
        self._vars: dict[str, list[VarSpec]] = {
            k.id: kiln_vars(k.zones, k.tcs, k.tunnel) for k in kilns
        }
        self._node_ids: dict[tuple[str, str], ua.NodeId] = {}
        self._last: dict[ua.NodeId, object] = {}
        self._lock = asyncio.Lock()
        self.live = False

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/kilnworks/{self.enterprise}/"

    @property
    def application_uri(self) -> str:
        return f"urn:kilnworks-sim:{self.enterprise}"

    def node_id_string(self, kiln: str, field: str) -> str:
        spec = next(v for v in self._vars[kiln] if v.field == field)
        return f"ns={self.ns_index};s={self.enterprise}.{kiln}.{spec.suffix}"

    def manifest_nodes(self, kiln: str) -> dict[str, str]:
        return {v.field: self.node_id_string(kiln, v.field) for v in self._vars[kiln]}

    async def _certificate(self) -> tuple[Path, Path]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key, cert = self.state_dir / "server_key.pem", self.state_dir / "server_cert.der"
        await setup_self_signed_certificate(
            key,
            cert,
            self.application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {
                "countryName": "CN",
                "organizationName": "kilnworks simulator",
                "commonName": f"kilnworks-sim {self.enterprise}",
            },
        )
        return key, cert

    async def _build(self) -> Server:
        users = _PasswordUsers(self.username, self.password or "") if self.username else None
        server = Server(user_manager=users) if users else Server()
        self.standard_space.install(server)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"kilnworks simulated kilns - {self.enterprise}")
        server.product_uri = "urn:kilnworks-sim"
        await server.set_application_uri(self.application_uri)
        server.set_security_policy([_POLICY[m] for m in self.security])
        if users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        if any(m != "none" for m in self.security) or users:
            key, cert = await self._certificate()  # reused from state_dir after the first start
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        server.iserver.history_manager.set_storage(self.history)
        # what a client's "About" shows: this is a simulator, not a real kiln controller
        await server.set_build_info(
            "urn:kilnworks-sim",
            "kilnworks simulators",
            "simulated kiln gateway",
            "1.0",
            "sim",
            datetime(2026, 1, 1, tzinfo=UTC),
        )
        idx = await server.register_namespace(NAMESPACE)
        self.ns_index = idx
        objects = server.nodes.objects
        for kiln in self.kilns.values():
            base = f"{self.enterprise}.{kiln.id}"
            kobj = await objects.add_object(ua.NodeId(base, idx), ua.QualifiedName(kiln.id, idx))
            folders: dict[str, object] = {"": kobj}
            for v in self._vars[kiln.id]:
                parent = folders.get(v.folder)
                if parent is None:
                    z = v.folder[4:]
                    parent = await kobj.add_folder(
                        ua.NodeId(f"{base}.zone{z}", idx), ua.QualifiedName(v.folder, idx)
                    )
                    folders[v.folder] = parent
                nid = ua.NodeId(f"{base}.{v.suffix}", idx)
                await self._add_variable(
                    server, parent.nodeid, nid, ua.QualifiedName(v.browse, idx), v
                )
                self._node_ids[(kiln.id, v.field)] = nid
        return server

    async def _add_variable(
        self, server: Server, parent: ua.NodeId, nid: ua.NodeId, qname: ua.QualifiedName, v: VarSpec
    ) -> None:
        initial = {ua.VariantType.Double: 0.0, ua.VariantType.String: "", ua.VariantType.UInt32: 0}[
            v.vtype
        ]
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = nid
        item.BrowseName = qname
        item.NodeClass = ua.NodeClass.Variable
        item.ParentNodeId = parent
        item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
        analog = v.unit is not None
        item.TypeDefinition = ua.NodeId(
            ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType
        )
        attrs = ua.VariableAttributes()
        attrs.DisplayName = ua.LocalizedText(v.browse)
        attrs.Description = ua.LocalizedText(v.field)
        attrs.DataType = ua.NodeId(
            {
                ua.VariantType.Double: ua.ObjectIds.Double,
                ua.VariantType.String: ua.ObjectIds.String,
                ua.VariantType.UInt32: ua.ObjectIds.UInt32,
            }[v.vtype]
        )
        attrs.Value = ua.Variant(initial, v.vtype)
        attrs.ValueRank = ua.ValueRank.Scalar
        access = ua.AccessLevel.CurrentRead.mask
        if v.historizing:
            access |= ua.AccessLevel.HistoryRead.mask
        attrs.AccessLevel = access
        attrs.UserAccessLevel = access
        attrs.Historizing = v.historizing
        attrs.MinimumSamplingInterval = 0.0
        item.NodeAttributes = attrs
        res = await server.iserver.isession.add_nodes([item])
        res[0].StatusCode.check()
        if analog:
            node = server.get_node(nid)
            name, desc = UNITS[v.unit]
            eu = ua.EUInformation(
                NamespaceUri=UNITS_NAMESPACE,
                UnitId=unit_id(v.unit),
                DisplayName=ua.LocalizedText(name),
                Description=ua.LocalizedText(desc),
            )
            await node.add_property(
                ua.NodeId(f"{nid.Identifier}.EngineeringUnits", nid.NamespaceIndex),
                "EngineeringUnits",
                eu,
                datatype=ua.NodeId(ua.ObjectIds.EUInformation),
            )
            lo, hi = v.eu_range or (0.0, 0.0)
            await node.add_property(
                ua.NodeId(f"{nid.Identifier}.EURange", nid.NamespaceIndex),
                "EURange",
                ua.Range(Low=lo, High=hi),
                datatype=ua.NodeId(ua.ObjectIds.Range),
            )
        if v.historizing:
            await self.history.new_historized_node(nid, None)

    async def start(self) -> None:
        async with self._lock:
            if self.server is not None:
                return
            server = await self._build()
            await server.start()
            self.server = server
            self._last.clear()
            self.live = True
            log.info(
                "OPC UA gateway %s listening on %s (%s)",
                self.enterprise,
                self.endpoint,
                ",".join(self.security),
            )

    async def stop(self) -> None:
        async with self._lock:
            server, self.server = self.server, None
            self.live = False
            if server is not None:
                await server.stop()

    async def restart(self, down_wall_s: float = 0.0) -> None:
        """Restart the server's network side: every client connection, session and subscription
        is dropped and the port is closed for ``down_wall_s``; the address space (and history)
        survive, as on a gateway whose service restarts. Rebuilding the whole server would cost
        asyncua's ~2 s CPU of standard address space per restart on a shared 2-core machine.
        """
        async with self._lock:
            server = self.server
            if server is None:
                raise RuntimeError(f"OPC UA gateway {self.enterprise} is not running")
            self.live = False
            if server.bserver is not None:
                await server.bserver.stop()
            if down_wall_s > 0:
                await asyncio.sleep(down_wall_s)
            host, port = server._get_bind_socket_info()
            bserver = BinaryServer(server.iserver, host, port, server.limits)
            bserver.set_policies(server._policies)
            await bserver.start()
            server.bserver = bserver
            self.live = True

    async def publish(self, kiln: str, t_ns: int, samples: dict[str, Sample]) -> bool:
        """Write one sample tick of a kiln; returns False when the server is down (history only)."""
        ts = ns_to_datetime(t_ns)
        server = self.server
        now = datetime.now(UTC)
        for v in self._vars[kiln]:
            s = samples.get(v.field)
            if s is None:
                continue
            nid = self._node_ids.get((kiln, v.field)) or ua.NodeId(
                f"{self.enterprise}.{kiln}.{v.suffix}", self.ns_index
            )
            status = ua.StatusCode(
                ua.StatusCodes.BadSensorFailure if s.quality == "bad" else ua.StatusCodes.Good
            )
            value = s.value
            if value is None:
                variant = ua.Variant(None, ua.VariantType.Null)
            elif v.vtype == ua.VariantType.UInt32:
                variant = ua.Variant(int(value), v.vtype)
            elif v.vtype == ua.VariantType.Double:
                variant = ua.Variant(float(value), v.vtype)
            else:
                variant = ua.Variant(value, v.vtype)
            dv = ua.DataValue(variant, status, SourceTimestamp=ts, ServerTimestamp=now)
            if v.historizing:
                self.history.add(nid, dv)
            if server is None:
                continue
            if v.vtype != ua.VariantType.Double or value is None:
                key = (value, s.quality)
                if self._last.get(nid) == key:
                    continue  # unchanged strings/counters: a real server reports changes only
                self._last[nid] = key
            try:
                await server.write_attribute_value(nid, dv)
            except Exception:  # the server is being stopped under us by a restart
                log.debug("write to %s failed", nid, exc_info=True)
                return False
        return server is not None and self.live


def is_nan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)
