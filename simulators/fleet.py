"""The fleet: every simulated kiln and press of a scenario, on one simulated clock.

In-process API (tests, the demo, ``kilnworks simulate``)::

    from simulators.fleet import Fleet

    async with Fleet("mini", speed=3600, opcua_base_port=0, mqtt_url=broker.url,
                     truth_dir=tmp_path, seed=7) as fleet:
        manifest = fleet.manifest()            # endpoints, node ids, topics (the wire contract)
        await fleet.inject("xinghai/plant-1/firing-shop/kiln-1", "broken_thermocouple",
                           zone=1, tc=2, duration_s=3600)  # simulated s; None = until clear
        await fleet.clear("xinghai/plant-1/firing-shop/kiln-1", "broken_thermocouple")
        await fleet.inject("xinghai/plant-1/forming-shop/press-1", "garbage", kinds=["malformed"])
        await fleet.restart_opcua("xinghai", down_wall_s=1.0)
        await fleet.disconnect_mqtt("xinghai", down_wall_s=1.0)
        fleet.clock.now_ns()                   # simulated UTC ns

Constructor (all keyword-only after the scenario; a scenario is a built-in name, a path or a
:class:`~simulators.scenario.Scenario`):

* ``speed`` simulated seconds per wall second; ``start_time_ns`` simulated start (default: now);
* ``opcua_base_port`` first OPC UA port, one per enterprise in scenario order (0 = free ports);
  ``bind`` host to listen on (127.0.0.1); ``security`` subset of ("none", "sign", "encrypt");
  ``opcua_username``/``opcua_password``; ``state_dir`` for certificates (default: a temp dir);
* ``mqtt`` :class:`~simulators.mqtt_presses.MqttOptions` or ``mqtt_url`` for the simple case;
  ``topic_root`` / ``sparkplug_group`` override the scenario's (isolates tests on a shared broker);
* ``truth_dir`` ground-truth JSON Lines (see simulators/truth.py); ``seed`` makes runs repeatable;
* ``sample_interval_s`` / ``max_publish_hz`` override the scenario's kiln sampling;
* ``scheduled_faults`` False ignores the scenario's [[fault]] schedule;
* ``connect_timeout_s`` how long ``start()`` waits for MQTT before starting anyway (links retry);
* ``standard_space`` a :class:`~simulators.opcua_gateway.StandardAddressSpace` shared between
  fleets (tests starting several fleets build asyncua's standard nodes once).

Kiln sampling: one sample tick every ``max(sample_interval_s, speed / max_publish_hz)``
simulated seconds, so wall-clock load stays bounded at any speed (shangbu at ``--speed 600``:
30 s -> 300 s of simulated time per tick, 2 ticks/s per kiln). Physics always steps at one
simulated minute, whatever the sample interval.

Fault kinds (``inject``): kilns - broken_thermocouple(zone, tc), nan_reading(zone, tc),
burner_trip(zone=None: all), stall(power_fraction=0.4, zone=None), overshoot(delta_c=40,
zone=None), push_stop (tunnel); presses - press_breakdown(reason), short_stop(reason),
reject_burst(reject_rate=0.5), garbage(kinds=[...], count=1, one-shot); any kiln or press -
clock_skew(offset_s=3600: its wire timestamps run wrong by that much); enterprise (target is
the enterprise id or any of its assets) - opcua_restart(down_wall_s), mqtt_disconnect(down_wall_s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from simulators.clock import SimClock
from simulators.faults import (
    ASSET_FAULTS,
    KILN_FAULTS,
    SITE_FAULTS,
    FaultError,
    apply_kiln_fault,
    check_rate,
    skew_ns,
)
from simulators.kiln_model import ShuttleKiln, TunnelKiln
from simulators.mqtt_presses import (
    JSON_GARBAGE,
    SPARKPLUG_GARBAGE,
    MqttLink,
    MqttOptions,
    SparkplugEdgeNode,
    garbage_payloads,
    json_cycle_payload,
    json_state_payload,
)
from simulators.opcua_gateway import (
    NAMESPACE,
    SECURITY_MODES,
    GatewayKiln,
    KilnGateway,
    StandardAddressSpace,
)
from simulators.press_model import PressEvent, PressModel
from simulators.scenario import FAULT_KINDS, KilnSpec, PressSpec, Scenario, load_scenario
from simulators.truth import TruthWriter

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def asset_rng(seed: int, asset: str) -> np.random.Generator:
    """Each asset its own stream: adding an asset never changes what the others do."""
    return np.random.default_rng([seed, zlib.crc32(asset.encode())])


class Fleet:
    """Simulated kilns (OPC UA) and presses (MQTT) of one scenario. See the module docstring."""

    def __init__(
        self,
        scenario: Scenario | str | Path = "mini",
        *,
        speed: float = 600.0,
        start_time_ns: int | None = None,
        opcua_base_port: int = 48400,
        bind: str = "127.0.0.1",
        security: tuple[str, ...] | list[str] = SECURITY_MODES,
        opcua_username: str | None = None,
        opcua_password: str | None = None,
        state_dir: str | Path | None = None,
        mqtt: MqttOptions | None = None,
        mqtt_url: str | None = None,
        topic_root: str | None = None,
        sparkplug_group: str | None = None,
        truth_dir: str | Path | None = None,
        seed: int = 0,
        sample_interval_s: float | None = None,
        max_publish_hz: float | None = None,
        scheduled_faults: bool = True,
        connect_timeout_s: float = 5.0,
        standard_space: StandardAddressSpace | None = None,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        sc = self.scenario
        if start_time_ns is None:
            start_time_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000
        self.clock = SimClock(start_time_ns, speed)
        self.seed = seed
        self.bind = bind
        self.security = tuple(security)
        if mqtt is None:
            mqtt = MqttOptions(url=mqtt_url or "mqtt://127.0.0.1:1883")
        elif mqtt_url:
            raise ValueError("give either mqtt or mqtt_url, not both")
        self.mqtt_options = mqtt
        self.topic_root = topic_root or sc.topic_root
        self.sparkplug_group = sparkplug_group or sc.sparkplug_group
        self.truth = TruthWriter(truth_dir)
        self.truth_dir = Path(truth_dir) if truth_dir else None
        self.scheduled_faults = scheduled_faults
        self.connect_timeout_s = connect_timeout_s
        self._own_state_dir = state_dir is None
        # certificates: the given dir, or a temp dir made at start() and removed at stop()
        self.state_dir: Path | None = Path(state_dir) if state_dir else None
        interval = sample_interval_s if sample_interval_s is not None else sc.sample_interval_s
        hz = max_publish_hz if max_publish_hz is not None else sc.max_publish_hz
        self.sample_interval_s = max(interval, speed / hz)
        self.opcua_username, self.opcua_password = opcua_username, opcua_password

        # models
        start = self.clock.start_time_ns
        self.kilns: dict[str, ShuttleKiln | TunnelKiln] = {}
        self.kiln_specs: dict[str, KilnSpec] = {}
        for k in sc.kilns:
            rng = asset_rng(seed, k.asset)
            if k.kind == "shuttle":
                model: ShuttleKiln | TunnelKiln = ShuttleKiln(
                    k.asset,
                    k.zones,
                    k.thermocouples_per_zone,
                    [sc.programmes[p] for p in k.programmes],
                    rng,
                    start,
                    first_firing_h=k.first_firing_h,
                    idle_hours=k.idle_hours,
                    firing_prefix=f"{k.enterprise}-{k.id}",
                )
            else:
                model = TunnelKiln(
                    k.asset,
                    k.zones,
                    k.thermocouples_per_zone,
                    list(k.profile_c),
                    rng,
                    start,
                    push_interval_min=k.push_interval_min,
                    length_m=k.length_m,
                    campaign=f"{k.enterprise}-{k.id}-campaign",
                )
            self.kilns[k.asset] = model
            self.kiln_specs[k.asset] = k
        self.presses: dict[str, PressModel] = {}
        self.press_specs: dict[str, PressSpec] = {}
        for p in sc.presses:
            self.presses[p.asset] = PressModel(
                p.asset, p.kind, p.ideal_cycle_time_s, asset_rng(seed, p.asset), start
            )
            self.press_specs[p.asset] = p

        # network sides (built in start(): ports and the event loop are known then)
        self.opcua_base_port = opcua_base_port
        self.gateways: dict[str, KilnGateway] = {}
        self.json_links: dict[str, MqttLink] = {}
        self.edge_nodes: dict[str, SparkplugEdgeNode] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._fault_timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._last_text: dict[str, dict[str, Any]] = {}
        self._standard_space = standard_space or StandardAddressSpace()
        self._skew_ns: dict[str, int] = {}  # clock_skew faults: asset -> wire time offset
        self._active_params: dict[tuple[str, str], dict[str, Any]] = {}
        self._started = False
        if scheduled_faults:  # a broken schedule fails here, before any port is bound
            for f in sc.faults:
                self.check_fault(f.target, f.kind, f.params)
        self.counters: dict[str, int] = {
            "kiln_ticks": 0,
            "press_messages": 0,
            "undelivered": 0,
            "garbage": 0,
        }

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind OPC UA ports, connect MQTT, start the clock and every asset's task."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="kilnworks-sim-state-"))
        sc = self.scenario
        for i, ent in enumerate(sc.enterprises):
            kilns = [
                GatewayKiln(k.id, k.asset, k.zones, k.thermocouples_per_zone, k.kind == "tunnel")
                for k in sc.kilns
                if k.enterprise == ent
            ]
            if not kilns:
                continue
            port = _free_port(self.bind) if self.opcua_base_port == 0 else self.opcua_base_port + i
            self.gateways[ent] = KilnGateway(
                ent,
                kilns,
                host=self.bind,
                port=port,
                state_dir=self.state_dir,
                security=self.security,
                username=self.opcua_username,
                password=self.opcua_password,
                standard_space=self._standard_space,
            )
        try:
            for g in self.gateways.values():  # one after another: the first builds the template
                await g.start()
        except BaseException:
            await self.stop()
            raise
        for ent in sc.enterprises:
            if any(p.enterprise == ent and p.style == "json" for p in sc.presses):
                link = MqttLink(
                    f"{ent}-presses",
                    self.mqtt_options,
                    loop,
                    on_connected=lambda ent=ent: self._announce_states(ent),
                )
                self.json_links[ent] = link
                link.start()
            devices = {
                p.id: self.presses[p.asset]
                for p in sc.presses
                if p.enterprise == ent and p.style == "sparkplug"
            }
            if devices:
                node = SparkplugEdgeNode(
                    self.sparkplug_group,
                    f"{ent}-forming",
                    devices,
                    self.mqtt_options,
                    loop,
                    clock_ms=lambda: self.clock.now_ns() // 1_000_000,
                )
                self.edge_nodes[ent] = node
                node.start()
        try:  # presses announce their state on connect; give the broker a moment, never block
            await self.wait_connected(timeout_s=self.connect_timeout_s)
        except TimeoutError:
            log.warning(
                "MQTT broker %s not reachable yet; presses keep retrying", self.mqtt_options.url
            )
        self.clock.start()
        for asset in self.kilns:
            self._tasks.append(asyncio.create_task(self._run_kiln(asset), name=f"kiln {asset}"))
        for asset in self.presses:
            self._wake[asset] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run_press(asset), name=f"press {asset}"))
        if self.scheduled_faults:
            for f in sc.faults:
                self.schedule_fault(f.target, f.kind, f.at_h, f.duration_h, **f.params)

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until every MQTT link is connected and every edge node has published its births."""
        deadline = time.monotonic() + timeout_s
        while True:
            ok = all(link.connected.is_set() for link in self.json_links.values()) and all(
                n.born for n in self.edge_nodes.values()
            )
            if ok:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"MQTT not connected to {self.mqtt_options.url} after {timeout_s} s"
                )
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop every task, publish Sparkplug deaths, close servers and the truth files."""
        for t in [*self._tasks, *self._fault_timers.values()]:
            t.cancel()
        for t in [*self._tasks, *self._fault_timers.values()]:
            with contextlib.suppress(BaseException):
                await t
        self._tasks.clear()
        self._fault_timers.clear()
        await asyncio.gather(
            *(n.stop() for n in self.edge_nodes.values()),
            *(link.stop() for link in self.json_links.values()),
            *(g.stop() for g in self.gateways.values()),
            return_exceptions=True,
        )
        self.truth.close()
        self._started = False
        if self._own_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)  # our temp dir: certificates go too
            self.state_dir = None

    # ----------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, Any]:
        """What this fleet serves: OPC UA endpoints, node ids, MQTT topics (the wire contract)."""
        opcua = []
        for ent, g in self.gateways.items():
            kilns = []
            for k in self.scenario.kilns:
                if k.enterprise != ent:
                    continue
                kilns.append(
                    {
                        "asset": k.asset,
                        "kind": k.kind,
                        "zones": k.zones,
                        "thermocouples_per_zone": k.thermocouples_per_zone,
                        **self._kiln_design(k),
                        "nodes": g.manifest_nodes(k.id),
                    }
                )
            opcua.append(
                {
                    "enterprise": ent,
                    "endpoint": g.endpoint,
                    "namespace": NAMESPACE,
                    "security": list(self.security),
                    "username": self.opcua_username,
                    "kilns": kilns,
                }
            )
        presses = []
        for p in self.scenario.presses:
            entry: dict[str, Any] = {
                "asset": p.asset,
                "kind": p.kind,
                "style": p.style,
                "ideal_cycle_time_s": p.ideal_cycle_time_s,
            }
            if p.style == "json":
                base = self.press_topic_base(p)
                entry["topics"] = {"cycle": f"{base}/cycle", "state": f"{base}/state"}
            else:
                entry.update(
                    group=self.sparkplug_group, edge_node=f"{p.enterprise}-forming", device=p.id
                )
            presses.append(entry)
        o = self.mqtt_options
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "clock": {
                "start_time_ns": self.clock.start_time_ns,
                "speed": self.clock.speed,
                "sample_interval_s": self.sample_interval_s,
                # sim now = start_time_ns + (wall now - wall_start_ns) * speed
                "wall_start_ns": self.clock.wall_start_ns,
            },
            "opcua": opcua,
            "mqtt": {
                "broker": o.url,
                "protocol": o.protocol,
                "username": o.username,
                "presses": presses,
            },
        }

    def _kiln_design(self, k: KilnSpec) -> dict[str, Any]:
        """What a plant engineer knows of a kiln beyond its tags (nameplate, layout)."""
        model = self.kilns[k.asset]
        if isinstance(model, TunnelKiln):
            pitch = k.length_m / model.cars_in_kiln
            return {
                "length_m": k.length_m,
                "cars_in_kiln": model.cars_in_kiln,
                "car_pitch_m": round(pitch, 3),
                "zone_centres_m": [
                    round((z + 0.5) * k.length_m / k.zones, 3) for z in range(k.zones)
                ],
                "profile_c": list(k.profile_c),
                "push_interval_min": k.push_interval_min,
                "nameplate_cars_per_hour": k.nameplate_cars_per_hour,
            }
        return {"programmes": list(k.programmes)}

    def write_manifest(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")

    def press_topic_base(self, p: PressSpec) -> str:
        return f"{self.topic_root}/{p.enterprise}/{p.site}/{p.line}/{p.id}"

    def truth_path(self, asset: str) -> Path | None:
        return self.truth.path(asset)

    # ----------------------------------------------------------------- kilns
    async def _run_kiln(self, asset: str) -> None:
        spec = self.kiln_specs[asset]
        model = self.kilns[asset]
        gateway = self.gateways[spec.enterprise]
        step_ns = int(self.sample_interval_s * 1e9)
        t = self.clock.start_time_ns
        while True:
            await self.clock.sleep_until(t)
            try:
                model.advance_to(t)
                samples = model.snapshot()
                skew = self._skew_ns.get(asset, 0)
                live = await gateway.publish(spec.id, t + skew, samples)
                self._record_kiln(asset, t, samples, live, skew)
            except Exception:  # a simulator bug must not silently stop one kiln forever
                log.exception("kiln %s: tick at %d failed", asset, t)
            self.counters["kiln_ticks"] += 1
            t += step_ns

    def _record_kiln(
        self, asset: str, t_ns: int, samples: dict[str, Any], live: bool, skew: int = 0
    ) -> None:
        model = self.kilns[asset]
        for ev in model.events:
            self.truth.write(asset, ev)
        model.events.clear()
        if self.truth.directory is None:
            return
        last = self._last_text.setdefault(asset, {})
        for field, s in samples.items():
            key = (s.value, s.quality)
            changed = last.get(field) != key
            last[field] = key
            if not changed and (not isinstance(s.value, float) or s.quality == "bad"):
                continue  # unchanged strings, counters and Bad values are not re-written
            rec: dict[str, Any] = {
                "t_ns": t_ns,
                "kind": "sample",
                "field": field,
                "value": s.value,
                "quality": s.quality,
                "true_value": s.true_value,
                "live": live,
                # False: written again with the same value and status, which a subscription
                # with the default DataChangeFilter (StatusValue) does not report
                "changed": changed,
            }
            if s.setpoint is not None:
                rec["setpoint"] = s.setpoint
            if skew:
                rec["skew_ns"] = skew  # the wire said t_ns + skew_ns
            self.truth.write(asset, rec)
        prev_state = last.get("__state")
        if prev_state != samples["state"].value:
            last["__state"] = samples["state"].value
            state = samples["state"].value
            reason = "burner_trip" if state == "fault" else ""
            self.truth.write(
                asset, {"t_ns": t_ns, "kind": "state", "state": state, "reason": reason}
            )

    # ----------------------------------------------------------------- presses
    def _announce_states(self, enterprise: str) -> None:
        """On every (re)connect a JSON press re-publishes its current state (like a birth)."""
        if not self.clock.started:
            return  # the initial state is published by the press task itself
        now = self.clock.now_ns()
        for asset, spec in self.press_specs.items():
            if spec.enterprise == enterprise and spec.style == "json":
                press = self.presses[asset]
                payload = {"t_ns": now, "state": press.state, "reason": press.reason}
                skew = self._skew_ns.get(asset, 0)
                wire = json_state_payload({**payload, "t_ns": now + skew})
                ok = self.json_links[enterprise].publish(
                    f"{self.press_topic_base(spec)}/state", json.dumps(wire).encode()
                )
                self._record_press(asset, "state", {**payload, "announce": True}, ok, skew)

    async def _run_press(self, asset: str) -> None:
        model = self.presses[asset]
        wake = self._wake[asset]
        self._emit_press(asset, model.initial())
        while True:
            if await self.clock.sleep_until(model.next_t_ns, wake):
                wake.clear()
                continue  # a fault changed the press's plans
            try:
                self._emit_press(asset, model.advance())
            except Exception:
                log.exception("press %s: event failed", asset)
                model.next_t_ns += 10**9

    def _emit_press(self, asset: str, ev: PressEvent) -> None:
        spec = self.press_specs[asset]
        skew = self._skew_ns.get(asset, 0)
        if spec.style == "json":
            link = self.json_links[spec.enterprise]
            base = self.press_topic_base(spec)
            if ev.cycle:
                wire = json_cycle_payload({**ev.cycle, "t_ns": ev.cycle["t_ns"] + skew})
                ok = link.publish(f"{base}/cycle", json.dumps(wire).encode())
                self._record_press(asset, "cycle", ev.cycle, ok, skew)
            if ev.state:
                wire = json_state_payload({**ev.state, "t_ns": ev.state["t_ns"] + skew})
                ok = link.publish(f"{base}/state", json.dumps(wire).encode())
                self._record_press(asset, "state", ev.state, ok, skew)
            return
        node = self.edge_nodes[spec.enterprise]
        values: dict[str, Any] = {}
        if ev.cycle:
            c = ev.cycle
            values.update(
                cycle_time_s=c["cycle_time_s"],
                pressure_mpa=c["pressure_mpa"],
                cycle_result=c["result"],
                reject_reason=c["reject_reason"],
                count_total=c["count_total"],
                count_good=c["count_good"],
            )
        if ev.state:
            values.update(state=ev.state["state"], state_reason=ev.state["reason"])
        ok = node.publish_data(spec.id, values, (ev.t_ns + skew) // 1_000_000)
        if ev.cycle:
            self._record_press(asset, "cycle", ev.cycle, ok, skew)
        if ev.state:
            self._record_press(asset, "state", ev.state, ok, skew)

    def _record_press(
        self, asset: str, kind: str, payload: dict[str, Any], delivered: bool, skew: int = 0
    ) -> None:
        self.counters["press_messages"] += 1
        if not delivered:
            self.counters["undelivered"] += 1
        rec = {**payload, "kind": kind, "delivered": delivered}
        if skew:
            rec["skew_ns"] = skew  # the wire said t_ns + skew_ns
        self.truth.write(asset, rec)

    # ----------------------------------------------------------------- faults
    def _enterprise_of(self, target: str) -> str:
        ent = target.split("/", 1)[0]
        if ent not in self.scenario.enterprises:
            raise FaultError(f"unknown enterprise or asset {target!r}")
        return ent

    def _assets_of(self, enterprise: str, kind: str) -> list[str]:
        if kind == "opcua":
            return [a for a, s in self.kiln_specs.items() if s.enterprise == enterprise]
        return [a for a, s in self.press_specs.items() if s.enterprise == enterprise]

    async def inject(
        self,
        target: str,
        fault: str,
        *,
        duration_s: float | None = None,
        at_ns: int | None = None,
        **params: Any,
    ) -> None:
        """Start a fault now (simulated time); ``duration_s`` in simulated s, None = until cleared.

        Raises :class:`FaultError` for an unknown fault, an asset of the wrong kind or a bad
        parameter - before anything changes. ``at_ns`` stamps the start with a simulated time
        other than now (the schedule uses it so scheduled faults start exactly on time).
        """
        self.check_fault(target, fault, params)
        if fault == "opcua_restart":
            await self.restart_opcua(self._enterprise_of(target), **params)
            return
        if fault == "mqtt_disconnect":
            await self.disconnect_mqtt(self._enterprise_of(target), **params)
            return
        now = self.clock.now_ns() if at_ns is None else at_ns
        if fault == "short_stop" and duration_s is None:
            duration_s = 120.0  # a short stop is short by definition
        if fault in ASSET_FAULTS:
            if target not in self.kilns and target not in self.presses:
                raise FaultError(f"{fault} needs a kiln or press asset, got {target!r}")
            self._skew_ns[target] = skew_ns(params)
        elif fault in KILN_FAULTS:
            model = self.kilns.get(target)
            if model is None:
                raise FaultError(f"{fault} needs a kiln asset, got {target!r}")
            self._apply_kiln_fault(model, fault, params, on=True)
        else:
            press = self.presses.get(target)
            if press is None:
                raise FaultError(f"{fault} needs a press asset, got {target!r}")
            if fault == "garbage":
                self._garbage(target, now, **params)
                return
            self._apply_press_fault(
                target, press, fault, params, on=True, now=now, duration_s=duration_s
            )
        self.truth.write(
            target,
            {
                "t_ns": now,
                "kind": "fault",
                "fault": fault,
                "phase": "start",
                "params": params,
                "duration_s": duration_s,
            },
        )
        key = (target, fault)
        old = self._fault_timers.pop(key, None)
        if old:
            old.cancel()
        if duration_s is not None:
            self._fault_timers[key] = asyncio.create_task(
                self._end_after(target, fault, now + int(duration_s * 1e9), params)
            )
        else:
            self._active_params[key] = params

    async def _end_after(self, target: str, fault: str, t_ns: int, params: dict[str, Any]) -> None:
        await self.clock.sleep_until(t_ns)
        self._fault_timers.pop((target, fault), None)
        self._end(target, fault, params, t_ns)

    async def clear(self, target: str, fault: str) -> None:
        """End a fault started without a duration (or early)."""
        key = (target, fault)
        timer = self._fault_timers.pop(key, None)
        if timer:
            timer.cancel()
        params = self._active_params.pop(key, {})
        self._end(target, fault, params, self.clock.now_ns())

    def _end(self, target: str, fault: str, params: dict[str, Any], t_ns: int) -> None:
        if fault in ASSET_FAULTS:
            self._skew_ns.pop(target, None)
        elif fault in KILN_FAULTS:
            self._apply_kiln_fault(self.kilns[target], fault, params, on=False)
        else:
            self._apply_press_fault(
                target, self.presses[target], fault, params, on=False, now=t_ns, duration_s=None
            )
        self.truth.write(
            target,
            {"t_ns": t_ns, "kind": "fault", "fault": fault, "phase": "end", "params": params},
        )

    def _apply_kiln_fault(
        self, model: ShuttleKiln | TunnelKiln, fault: str, p: dict[str, Any], *, on: bool
    ) -> None:
        apply_kiln_fault(model, fault, p, on=on)

    def _apply_press_fault(
        self,
        asset: str,
        press: PressModel,
        fault: str,
        p: dict[str, Any],
        *,
        on: bool,
        now: int,
        duration_s: float | None,
    ) -> None:
        if fault == "reject_burst":
            rate = check_rate("reject_burst: reject_rate", p.get("reject_rate", 0.5))
            press.reject_rate_override = rate if on else None
            return
        if on:
            state, reason = (
                ("breakdown", p.get("reason", "hydraulic_fault"))
                if fault == "press_breakdown"
                else ("idle", p.get("reason", "minor_stop"))
            )
            ev = press.force(now, state, str(reason), None)
            self._emit_press(asset, ev)
        else:
            press.release(now)
        self._wake[asset].set()

    def _garbage(
        self, asset: str, now: int, kinds: list[str] | tuple[str, ...] | None = None, count: int = 1
    ) -> None:
        spec = self.press_specs[asset]
        allowed = JSON_GARBAGE if spec.style == "json" else SPARKPLUG_GARBAGE
        kinds = list(kinds or allowed)
        for k in kinds:
            if k not in allowed:
                raise FaultError(
                    f"garbage kind {k!r} not valid for a {spec.style} press (expected {allowed})"
                )
        sent = []
        for _ in range(int(count)):
            for k in kinds:
                if spec.style == "json":
                    base = self.press_topic_base(spec)
                    ok = self.json_links[spec.enterprise].publish(
                        f"{base}/cycle", garbage_payloads(k, now)
                    )
                else:
                    ok = self.edge_nodes[spec.enterprise].publish_garbage(
                        spec.id, k, now // 1_000_000
                    )
                sent.append({"garbage": k, "delivered": ok})
                self.counters["garbage"] += 1
        self.truth.write(
            asset,
            {
                "t_ns": now,
                "kind": "fault",
                "fault": "garbage",
                "phase": "start",
                "params": {"kinds": kinds, "count": count},
                "sent": sent,
            },
        )

    async def restart_opcua(self, enterprise: str, down_wall_s: float = 0.0) -> None:
        """Stop the enterprise's OPC UA server, keep the kilns running, start it again."""
        g = self.gateways[enterprise]
        now = self.clock.now_ns()
        for a in self._assets_of(enterprise, "opcua"):
            self.truth.write(
                a,
                {
                    "t_ns": now,
                    "kind": "fault",
                    "fault": "opcua_restart",
                    "phase": "start",
                    "params": {"down_wall_s": down_wall_s},
                },
            )
        await g.restart(down_wall_s)
        now = self.clock.now_ns()
        for a in self._assets_of(enterprise, "opcua"):
            self.truth.write(
                a,
                {
                    "t_ns": now,
                    "kind": "fault",
                    "fault": "opcua_restart",
                    "phase": "end",
                    "params": {},
                },
            )

    async def disconnect_mqtt(
        self, enterprise: str, down_wall_s: float = 1.0, *, wait: bool = True
    ) -> None:
        """Cut the enterprise's MQTT connections (no DISCONNECT: the broker fires the Will),
        keep the presses running, reconnect after ``down_wall_s`` (new bdSeq, new births)."""
        now = self.clock.now_ns()
        for a in self._assets_of(enterprise, "mqtt"):
            self.truth.write(
                a,
                {
                    "t_ns": now,
                    "kind": "fault",
                    "fault": "mqtt_disconnect",
                    "phase": "start",
                    "params": {"down_wall_s": down_wall_s},
                },
            )
        link = self.json_links.get(enterprise)
        node = self.edge_nodes.get(enterprise)
        await asyncio.gather(*(x.drop() for x in (link, node) if x is not None))

        async def back() -> None:
            await asyncio.sleep(down_wall_s)
            for x in (link, node):
                if x is not None:
                    x.start()
            t = self.clock.now_ns()
            for a in self._assets_of(enterprise, "mqtt"):
                self.truth.write(
                    a,
                    {
                        "t_ns": t,
                        "kind": "fault",
                        "fault": "mqtt_disconnect",
                        "phase": "end",
                        "params": {},
                    },
                )

        if wait:
            await back()
        else:
            self._tasks.append(asyncio.create_task(back()))

    def schedule_fault(
        self, target: str, fault: str, at_h: float, duration_h: float | None = None, **params: Any
    ) -> None:
        """Inject ``fault`` ``at_h`` simulated hours after the start (call after ``start()``).

        The target and parameters are checked now (:class:`FaultError`), not when it fires.
        """
        self.check_fault(target, fault, params)
        task = self._scheduled(target, fault, at_h, duration_h, params)
        self._tasks.append(asyncio.create_task(task, name=f"fault {fault} {target}"))

    def check_fault(self, target: str, fault: str, params: dict[str, Any]) -> None:
        """Raise :class:`FaultError` if ``fault`` with ``params`` cannot apply to ``target``."""
        if fault not in FAULT_KINDS:
            raise FaultError(f"unknown fault {fault!r} (expected one of {', '.join(FAULT_KINDS)})")
        if fault in SITE_FAULTS:
            self._enterprise_of(target)
            down = params.get("down_wall_s", 0.0)
            if not isinstance(down, int | float) or not 0 <= down <= 3600:
                raise FaultError(f"{fault}: down_wall_s must be in [0, 3600], got {down!r}")
        elif fault in ASSET_FAULTS:
            if target not in self.kilns and target not in self.presses:
                raise FaultError(f"{fault} needs a kiln or press asset, got {target!r}")
            skew_ns(params)
        elif fault in KILN_FAULTS:
            model = self.kilns.get(target)
            if model is None:
                raise FaultError(f"{fault} needs a kiln asset, got {target!r}")
            apply_kiln_fault(model, fault, params, on=True, dry_run=True)
        else:
            spec = self.press_specs.get(target)
            if spec is None:
                raise FaultError(f"{fault} needs a press asset, got {target!r}")
            if fault == "reject_burst":
                check_rate("reject_burst: reject_rate", params.get("reject_rate", 0.5))
            if fault == "garbage":
                allowed = JSON_GARBAGE if spec.style == "json" else SPARKPLUG_GARBAGE
                for k in params.get("kinds") or allowed:
                    if k not in allowed:
                        raise FaultError(
                            f"garbage kind {k!r} not valid for a {spec.style} press"
                            f" (expected {allowed})"
                        )

    async def _scheduled(
        self, target: str, fault: str, at_h: float, duration_h: float | None, params: dict[str, Any]
    ) -> None:
        at_ns = self.clock.start_time_ns + int(at_h * 3600e9)
        await self.clock.sleep_until(at_ns)
        try:
            if fault in SITE_FAULTS:
                await self.inject(target, fault, **params)
            else:
                duration_s = None if duration_h is None else duration_h * 3600
                await self.inject(target, fault, duration_s=duration_s, at_ns=at_ns, **params)
        except Exception:
            log.exception("scheduled fault %s on %s failed", fault, target)
