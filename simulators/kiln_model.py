"""Kiln physics: zones that follow a setpoint through thermal lag with limited heating power.

Pure model, no I/O: the OPC UA layer calls ``advance_to(t_ns)`` on every sample tick and then
``snapshot()`` to get what the kiln controller would show. Faults are modifiers on the model
(``set_stall``, ``set_burner_trip``, ...) so the physics shows their consequences honestly.

Zone model (per zone, vectorised over zones with NumPy), hours as the time unit::

    heat' = (max_heat * u * available - heat) / lag_h       burner output reaches the ware late
    T'    = heat - loss * (T - ambient) - fan * cool * (T - ambient)

* ``max_heat`` (C/h) is the heating rate the burners give at ambient; losses grow with
  temperature, so near peak the net rate falls to ~30-40 C/h: a programme ramping faster
  there lags, and a stall (``available < 1``) makes the kiln stop rising (L&L's E-1 error).
* The controller is feed-forward on the setpoint slope plus PI on the error, clamped to 0..1;
  cooling segments run the fans. ``PowerPercent`` is the controller output.
* Thermocouples: each has a fixed calibration offset (sd 1.5 C) and noise (sd 0.6 C); a broken
  one is published with StatusCode BadSensorFailure and, as OPC UA requires, a null value.
* Gas follows burner demand (natural gas, LHV 9.97 kWh/m3 as a typical figure); energy is its
  running integral. O2/CO follow the atmosphere: oxidising (O2 ~4-8 %, CO < 100 ppm) except in
  vitrification above 1000 C, where the programme reduces (CO ~2 %, domain.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from simulators.programmes import Programme, Schedule

NS_PER_H = 3_600_000_000_000
STEP_H = 1.0 / 60.0  # physics step: one simulated minute (explicit Euler, stable: lag >> 1 min)
GAS_KWH_PER_M3 = 9.97  # natural gas lower heating value, typical
AMBIENT_C = 25.0


@dataclass
class Sample:
    """One published value: what the wire shows and what was really true."""

    value: object
    quality: str = "good"  # good | bad
    true_value: object = None
    setpoint: float | None = None


class ZoneBank:
    """The zones of one kiln and their controller, vectorised over zones."""

    KP_PER_H = 2.0  # proportional gain: 10 C error -> 20 C/h extra demand
    KI_PER_H2 = 0.6

    def __init__(
        self,
        zones: int,
        tcs_per_zone: int,
        rng: np.random.Generator,
        *,
        max_heat_c_h: float,
        loss_per_h: float,
        cool_per_h: float,
        lag_h: float,
        gas_max_m3_h: float,
        start_c: float | np.ndarray = AMBIENT_C,
    ) -> None:
        self.rng = rng
        self.zones = zones
        self.tcs = tcs_per_zone
        # zones differ a little: burners, refractory and the door zone loses more heat
        self.max_heat = max_heat_c_h * rng.normal(1.0, 0.04, zones)
        self.loss = loss_per_h * rng.normal(1.0, 0.05, zones)
        self.cool = np.full(zones, cool_per_h)
        self.lag = lag_h * rng.normal(1.0, 0.08, zones).clip(0.7, 1.3)
        self.gas_max = gas_max_m3_h * np.ones(zones)
        self.temperature = np.broadcast_to(np.asarray(start_c, float), (zones,)).copy()
        self.heat = self.loss * (self.temperature - AMBIENT_C)
        self.integral = np.zeros(zones)
        self.output = np.zeros(zones)  # controller output 0..1 (burners)
        self.fan = np.zeros(zones)
        self.tc_offset = rng.normal(0.0, 1.5, (zones, tcs_per_zone))
        self.tc_noise_sd = 0.6
        # fault modifiers
        self.available = np.ones(zones)  # stall: share of burner power that reaches the kiln
        self.tripped = np.zeros(zones, bool)  # burner trip: no heat at all
        self.bias = np.zeros(zones)  # overshoot: controller aims this far above the setpoint
        self.broken = np.zeros((zones, tcs_per_zone), bool)
        self.nan_tc = np.zeros((zones, tcs_per_zone), bool)
        self.energy_kwh = 0.0

    def step(self, dt_h: float, sp: np.ndarray, rate: np.ndarray, mode: str) -> None:
        """Advance ``dt_h`` hours following setpoints ``sp`` rising at ``rate`` C/h.

        ``mode``: "control" (burners and fans), "natural" (all off), "off" (idle kiln).
        """
        t = self.temperature
        above = np.maximum(t - AMBIENT_C, 1.0)
        if mode == "control":
            err = sp + self.bias - t
            demand = rate + self.loss * above + self.KP_PER_H * err + self.integral
            u = demand / self.max_heat
            self.output = np.clip(u, 0.0, 1.0)
            # fans remove what the burners' residual heat and the losses do not: a cooling
            # controller sees the kiln lagging and opens the dampers further
            wanted = rate + self.KP_PER_H * err + self.integral  # desired dT/dt, C/h
            excess = self.heat - self.loss * above - wanted
            self.fan = np.where(u < 0.0, np.clip(excess / (self.cool * above), 0.0, 1.0), 0.0)
            unsaturated = (u > 0.0) & (u < 1.0)
            self.integral = np.where(
                unsaturated, self.integral + self.KI_PER_H2 * err * dt_h, self.integral
            ).clip(-200.0, 200.0)
        else:
            self.output = np.zeros(self.zones)
            self.fan = np.zeros(self.zones)
            self.integral *= 0.0
        burning = self.output * self.available * ~self.tripped
        target_heat = self.max_heat * burning
        self.heat += (target_heat - self.heat) * np.minimum(1.0, dt_h / self.lag)
        losses = (self.loss + self.fan * self.cool) * (t - AMBIENT_C)
        self.temperature = t + dt_h * (self.heat - losses)
        self.energy_kwh += float(np.sum(self.gas_max * burning)) * dt_h * GAS_KWH_PER_M3

    def gas_flow_m3_h(self) -> float:
        return float(np.sum(self.gas_max * self.output * self.available * ~self.tripped))

    def readings(self) -> tuple[np.ndarray, np.ndarray]:
        """Thermocouple readings (zones x tcs) and their true temperatures."""
        true = np.repeat(self.temperature[:, None], self.tcs, axis=1)
        shown = true + self.tc_offset + self.rng.normal(0.0, self.tc_noise_sd, true.shape)
        shown = np.where(self.nan_tc, np.nan, shown)
        return shown, true


def atmosphere(
    rng: np.random.Generator, sp_c: float, heating: bool, burning: bool
) -> tuple[float, float]:
    """(O2 %, CO ppm) for the programme's atmosphere at this setpoint."""
    if not burning:
        return float(rng.normal(20.6, 0.1)), float(abs(rng.normal(2.0, 1.0)))
    if heating and sp_c >= 1000.0:  # reducing in the vitrification range (domain.md: ~2 % CO)
        return float(abs(rng.normal(0.4, 0.1))), float(rng.normal(20000.0, 800.0))
    return float(rng.normal(6.0, 0.4)), float(abs(rng.normal(40.0, 10.0)))


class ShuttleKiln:
    """A periodic kiln: one load fired through a whole programme, then unloaded and reloaded."""

    kind = "shuttle"

    def __init__(
        self,
        asset: str,
        zones: int,
        tcs_per_zone: int,
        programmes: list[Programme],
        rng: np.random.Generator,
        start_ns: int,
        *,
        first_firing_h: float = 0.25,
        idle_hours: float = 4.0,
        max_heat_c_h: float = 190.0,
        loss_per_h: float = 0.115,
        cool_per_h: float = 0.22,
        lag_h: float = 0.2,  # burner output -> kiln atmosphere thermocouples, ~12 min
        gas_max_m3_h: float = 30.0,
        firing_prefix: str = "",
    ) -> None:
        self.asset = asset
        self.rng = rng
        self.programmes = programmes
        self.bank = ZoneBank(
            zones,
            tcs_per_zone,
            rng,
            max_heat_c_h=max_heat_c_h,
            loss_per_h=loss_per_h,
            cool_per_h=cool_per_h,
            lag_h=lag_h,
            gas_max_m3_h=gas_max_m3_h,
        )
        self.bank.loss[0] *= 1.1  # zone 1 is the door side: it loses more heat through the seals
        # a negative first_firing_h: the firing began before the simulation did, so the kiln
        # is met mid-firing (the physics is run silently up to the start)
        self.t_ns = start_ns + min(0, int(first_firing_h * NS_PER_H))
        self.idle_hours = idle_hours
        self.next_firing_ns = start_ns + int(first_firing_h * NS_PER_H)
        self.firing_prefix = firing_prefix or asset.replace("/", "-")
        self.firings = 0
        self.firing_id = ""
        self.programme: Programme | None = None
        self.schedule: Schedule | None = None
        self.firing_start_ns = 0
        self.setpoint = np.full(zones, AMBIENT_C)
        self.rate = np.zeros(zones)
        self.segment = -1
        self.events: list[dict[str, object]] = []  # firing start/end, drained by the caller
        if self.t_ns < start_ns:
            self.advance_to(start_ns)

    @property
    def zones(self) -> int:
        return self.bank.zones

    def state(self) -> str:
        if self.schedule is None:
            return "idle"
        if self.bank.tripped.all():
            return "fault"
        seg = self.programme.segments[self.segment] if self.programme else None
        if seg is None:
            return "idle"
        return {"ramp": "heating", "hold": "soaking"}.get(seg.kind, "cooling")

    def _start_firing(self, t_ns: int) -> None:
        self.programme = self.programmes[self.firings % len(self.programmes)]
        self.firings += 1
        day = datetime.fromtimestamp(t_ns / 1e9, UTC).strftime("%Y%m%d")
        self.firing_id = f"{self.firing_prefix}-{day}-{self.firings:03d}"
        self.schedule = Schedule(self.programme, float(np.mean(self.bank.temperature)))
        self.firing_start_ns = t_ns
        self.events.append(
            {
                "t_ns": t_ns,
                "kind": "firing",
                "phase": "start",
                "firing_id": self.firing_id,
                "programme": self.programme.name,
                "segments": self.programme.wire_json(),
            }
        )

    def _end_firing(self, t_ns: int) -> None:
        self.events.append(
            {
                "t_ns": t_ns,
                "kind": "firing",
                "phase": "end",
                "firing_id": self.firing_id,
                "programme": self.programme.name if self.programme else "",
            }
        )
        self.schedule = None
        self.programme = None
        self.firing_id = ""
        self.segment = -1
        self.next_firing_ns = t_ns + int(self.idle_hours * NS_PER_H)

    def advance_to(self, t_ns: int) -> None:
        """Run the physics from the last call up to ``t_ns`` in one-minute steps."""
        while self.t_ns < t_ns:
            step_ns = min(int(STEP_H * NS_PER_H), t_ns - self.t_ns)
            dt_h = step_ns / NS_PER_H
            if self.schedule is None and self.t_ns >= self.next_firing_ns:
                self._start_firing(self.t_ns)
            if self.schedule is not None:
                th = (self.t_ns - self.firing_start_ns) / NS_PER_H
                sp, rate, seg = self.schedule.at(th)
                self.segment = seg
                self.setpoint[:] = sp
                self.rate[:] = rate
                kind = self.programme.segments[seg].kind
                self.bank.step(
                    dt_h,
                    self.setpoint,
                    self.rate,
                    "natural" if kind == "natural_cool" else "control",
                )
                if self.schedule.finished(th, float(np.mean(self.bank.temperature))):
                    self._end_firing(self.t_ns + step_ns)
            else:
                self.setpoint[:] = AMBIENT_C
                self.rate[:] = 0.0
                self.bank.step(dt_h, self.setpoint, self.rate, "off")
            self.t_ns += step_ns

    def snapshot(self) -> dict[str, Sample]:
        b = self.bank
        out = zone_samples(b, self.setpoint)
        state = self.state()
        burning = bool(np.any(b.output * ~b.tripped > 0.0))
        heating = state in ("heating", "soaking")
        o2, co = atmosphere(self.rng, float(np.mean(self.setpoint)), heating, burning)
        gas = b.gas_flow_m3_h()
        prog = self.programme
        for field, value in (
            ("state", state),
            ("programme", prog.name if prog else ""),
            ("programme_segments", prog.wire_json() if prog else "[]"),
            ("firing_id", self.firing_id),
            ("gas_flow_m3_h", gas),
            ("energy_kwh", b.energy_kwh),
            ("o2_pct", o2),
            ("co_ppm", co),
        ):
            out[field] = Sample(value, true_value=value)
        return out


class TunnelKiln:
    """A continuous kiln: fixed temperature profile along its zones, cars pushed at an interval.

    Each push brings a cold car into the entry (preheat zones dip a few degrees and recover) and
    a hot car out of the cooling end. The programme reported on the wire is the time-temperature
    curve a car sees on its way through (ramps between zone setpoints at the push rate).
    """

    kind = "tunnel"

    def __init__(
        self,
        asset: str,
        zones: int,
        tcs_per_zone: int,
        profile_c: list[float],
        rng: np.random.Generator,
        start_ns: int,
        *,
        push_interval_min: float = 52.0,
        length_m: float = 96.0,
        car_length_m: float = 2.4,
        max_heat_c_h: float = 260.0,
        loss_per_h: float = 0.13,
        cool_per_h: float = 0.25,
        lag_h: float = 0.35,
        gas_max_m3_h: float = 45.0,
        campaign: str = "",
    ) -> None:
        if len(profile_c) != zones:
            raise ValueError(f"{asset}: profile_c has {len(profile_c)} values for {zones} zones")
        self.asset = asset
        self.rng = rng
        self.profile = np.asarray(profile_c, float)
        self.bank = ZoneBank(
            zones,
            tcs_per_zone,
            rng,
            max_heat_c_h=max_heat_c_h,
            loss_per_h=loss_per_h,
            cool_per_h=cool_per_h,
            lag_h=lag_h,
            gas_max_m3_h=gas_max_m3_h,
            start_c=self.profile,
        )
        self.t_ns = start_ns
        self.push_interval_min = push_interval_min
        self.push_interval_ns = int(push_interval_min * 60e9)
        self.next_push_ns = start_ns + int(rng.uniform(0.1, 1.0) * self.push_interval_ns)
        self.car_push_count = 0
        self.pushes_stopped = False
        self.cars_in_kiln = max(1, round(length_m / car_length_m))
        self.firing_id = campaign or f"{asset.replace('/', '-')}-campaign"
        self.events: list[dict[str, object]] = []
        from simulators.programmes import Segment

        zone_h = self.cars_in_kiln * push_interval_min / 60.0 / zones
        segs, prev = [], AMBIENT_C
        for sp in self.profile:
            rate = max(abs(float(sp) - prev) / zone_h, 0.1)
            segs.append(
                Segment(
                    "ramp" if sp >= prev else "cool", rate_c_h=round(rate, 1), target_c=float(sp)
                )
            )
            prev = float(sp)
        segs.append(
            Segment("cool", rate_c_h=round(max((prev - 60.0) / zone_h, 0.1), 1), target_c=60.0)
        )
        self.programme = Programme(f"tunnel-profile-{int(self.profile.max())}", tuple(segs))

    def state(self) -> str:
        if self.bank.tripped.all():
            return "fault"
        return "heating"  # in production: burners firing to hold the profile (documented)

    def advance_to(self, t_ns: int) -> None:
        while self.t_ns < t_ns:
            step_ns = min(int(STEP_H * NS_PER_H), t_ns - self.t_ns)
            if self.t_ns >= self.next_push_ns:
                if not self.pushes_stopped:
                    self._push(self.t_ns)
                self.next_push_ns += self.push_interval_ns
            self.bank.step(step_ns / NS_PER_H, self.profile, np.zeros(self.bank.zones), "control")
            self.t_ns += step_ns

    def _push(self, t_ns: int) -> None:
        self.car_push_count += 1
        # a cold car absorbs heat at the entry; hot ware releases heat at the cooling end
        dip = np.zeros(self.bank.zones)
        dip[: max(1, self.bank.zones // 2)] = -self.rng.uniform(3.0, 8.0)
        dip[-1] = self.rng.uniform(1.0, 4.0)
        self.bank.temperature += dip
        self.events.append(
            {"t_ns": t_ns, "kind": "cycle", "event": "car_push", "count": self.car_push_count}
        )

    def snapshot(self) -> dict[str, Sample]:
        b = self.bank
        out = zone_samples(b, self.profile)
        burning = bool(np.any(b.output * ~b.tripped > 0.0))
        o2, co = atmosphere(self.rng, float(self.profile.max()), True, burning)
        for field, value in (
            ("state", self.state()),
            ("programme", self.programme.name),
            ("programme_segments", self.programme.wire_json()),
            ("firing_id", self.firing_id),
            ("gas_flow_m3_h", b.gas_flow_m3_h()),
            ("energy_kwh", b.energy_kwh),
            ("o2_pct", o2),
            ("co_ppm", co),
            ("car_push_count", self.car_push_count),
            ("push_interval_min", self.push_interval_min),
        ):
            out[field] = Sample(value, true_value=value)
        return out


def zone_samples(bank: ZoneBank, setpoint: np.ndarray) -> dict[str, Sample]:
    """Every zone's thermocouples, setpoint and burner power as published samples."""
    shown, true = bank.readings()
    out: dict[str, Sample] = {}
    for z in range(bank.zones):
        sp = float(setpoint[z])
        for t in range(bank.tcs):
            bad = bool(bank.broken[z, t])
            # OPC UA Part 4 7.7.1: a Bad StatusCode travels with a null value
            out[f"zone{z + 1}_tc{t + 1}_temperature_c"] = Sample(
                None if bad else float(shown[z, t]),
                "bad" if bad else "good",
                float(true[z, t]),
                sp,
            )
        out[f"zone{z + 1}_setpoint_c"] = Sample(sp, true_value=sp)
        power = float(bank.output[z] * 100.0)
        out[f"zone{z + 1}_power_pct"] = Sample(power, true_value=power)
    return out
