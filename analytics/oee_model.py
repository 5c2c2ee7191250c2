"""Inputs of the OEE core: machine states, the state timeline, cycle counts, kiln pushes, gradings.

A press (or any machine) reports its *state* when it changes (``running``, ``idle``, ``setup``,
``breakdown``, ``starved``, ``blocked``, ``planned_stop``) with an optional reason code, and
*counts*: one event per cycle (good or reject) or monotonic counters. This module holds those as
NumPy columns, checked once at construction so the vectorised core never meets a NaN, an
unsorted time or a state it does not know.

How each state lands in ISO 22400-2 (``analytics/oee.py`` does the accounting):

===============  ==========================================  =========================
state            ISO 22400-2 element                         OPC 40001-1 (annex C)
===============  ==========================================  =========================
running          APT  actual production time                 Executing + Processing
setup            ASUT actual unit setup time                 Setup (Executing or not)
idle, starved,   ADOT actual unit down time (available, not   NotExecuting
blocked          executing orders)
breakdown        ADET actual unit delay time (malfunction)    OutOfService, Maintenance
planned_stop     PDOT planned down time (PBT = POT - PDOT)    (from the shift plan)
no_data          counted as unplanned down time, shown apart  NotAvailable
===============  ==========================================  =========================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class MachineState(IntEnum):
    """Machine states as the press simulator and the agent send them (lower-case names)."""

    RUNNING = 0
    IDLE = 1
    SETUP = 2
    BREAKDOWN = 3
    STARVED = 4
    BLOCKED = 5
    PLANNED_STOP = 6
    NO_DATA = 7


N_STATES = len(MachineState)

# Aliases seen on plant floors and in PLC exports; all map onto the seven states.
_ALIASES = {
    "run": MachineState.RUNNING,
    "producing": MachineState.RUNNING,
    "executing": MachineState.RUNNING,
    # Kiln controllers report the firing phase; any phase of a firing is production.
    "firing": MachineState.RUNNING,
    "heating": MachineState.RUNNING,
    "soaking": MachineState.RUNNING,
    "cooling": MachineState.RUNNING,
    "waiting": MachineState.IDLE,
    "stopped": MachineState.IDLE,
    "changeover": MachineState.SETUP,
    "fault": MachineState.BREAKDOWN,
    "failure": MachineState.BREAKDOWN,
    "down": MachineState.BREAKDOWN,
    "maintenance": MachineState.BREAKDOWN,
    "planned": MachineState.PLANNED_STOP,
    "planned_downtime": MachineState.PLANNED_STOP,
    "unknown": MachineState.NO_DATA,
    "offline": MachineState.NO_DATA,
}


def state_code(name: str) -> MachineState:
    """The state for a name (case-insensitive, ``-``/space = ``_``); ValueError lists choices."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return MachineState[key.upper()]
    except KeyError:
        pass
    if key in _ALIASES:
        return _ALIASES[key]
    choices = ", ".join(s.name.lower() for s in MachineState)
    raise ValueError(f"unknown machine state {name!r} (expected one of: {choices})")


# OPC 40001-1 state numbers (MachineryItemState / MachineryOperationMode state machines).
_OPC_ITEM = {"notavailable": 0, "outofservice": 1, "notexecuting": 2, "executing": 3}
_OPC_MODE = {"none": 0, "maintenance": 1, "setup": 2, "processing": 3}


def _opc(value: str | int, table: dict[str, int], what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value in table.values():
            return value
    elif isinstance(value, str) and value.strip().lower().replace("_", "") in table:
        return table[value.strip().lower().replace("_", "")]
    raise ValueError(f"unknown OPC 40001-1 {what} {value!r} (expected one of {sorted(table)})")


def from_opc40001(item_state: str | int, operation_mode: str | int = "none") -> MachineState:
    """Map OPC 40001-1 MachineryItemState and MachineryOperationMode onto a machine state.

    Follows the ISO 22400 interpretation in OPC 40001-1 annex C: Executing + Processing is
    production (APT), Setup is setup time (ASUT, also when not executing: the machine is being
    set up), NotExecuting is available but idle (ADOT), OutOfService or Maintenance mode is a
    malfunction delay (ADET: if the maintenance was planned, the shift calendar's planned
    downtime covers it), NotAvailable means we do not know (no data).
    """
    item = _opc(item_state, _OPC_ITEM, "MachineryItemState")
    mode = _opc(operation_mode, _OPC_MODE, "MachineryOperationMode")
    if item == 0:
        return MachineState.NO_DATA
    if item == 1 or mode == 1:
        return MachineState.BREAKDOWN
    if mode == 2:
        return MachineState.SETUP
    return MachineState.RUNNING if item == 3 else MachineState.IDLE


def _int64(values: object, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected integer nanoseconds, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _quantity(values: object, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        bad = int(np.flatnonzero(~np.isfinite(arr) | (arr < 0))[0])
        raise ValueError(f"{what}[{bad}] = {arr[bad]!r}: expected a finite count >= 0")
    return arr


def _check_sorted(time_ns: np.ndarray, what: str, strict: bool) -> None:
    if time_ns.size < 2:
        return
    step = np.diff(time_ns)
    bad = step <= 0 if strict else step < 0
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        order = "strictly increasing" if strict else "sorted"
        raise ValueError(
            f"{what}: expected {order} times, but [{i + 1}] = {time_ns[i + 1]} follows {time_ns[i]}"
        )


@dataclass(frozen=True, slots=True, eq=False)
class StateTimeline:
    """Machine state changes of one asset: state ``state[i]`` holds from ``start_ns[i]`` until
    ``start_ns[i + 1]``; the last one until ``end_ns`` (None: until the end of any window asked
    about, i.e. the machine is still in that state). Before ``start_ns[0]`` nothing is known
    (``no_data``). ``reason`` is the operator's or PLC's reason code, 0 = none given.

    Construction raises ValueError for unsorted or duplicate times, unknown state codes or a
    length mismatch: the caller (the API service, the CLI) counts and reports those rows.
    """

    start_ns: np.ndarray
    state: np.ndarray
    reason: np.ndarray
    end_ns: int | None = None

    def __post_init__(self) -> None:
        start = _int64(self.start_ns, "timeline start_ns")
        state = np.asarray(self.state)
        n = start.size
        if state.shape != (n,):
            raise ValueError(f"timeline state: expected {n} codes, got shape {state.shape}")
        if n and (not np.issubdtype(state.dtype, np.integer) or state.min() < 0
                  or state.max() >= N_STATES):  # fmt: skip
            raise ValueError(f"timeline state: expected codes 0..{N_STATES - 1} (MachineState)")
        reason = np.zeros(n, np.int32) if self.reason is None else np.asarray(self.reason)
        if reason.shape != (n,) or (n and not np.issubdtype(reason.dtype, np.integer)):
            raise ValueError(f"timeline reason: expected {n} integer codes")
        _check_sorted(start, "timeline start_ns", strict=True)
        if self.end_ns is not None and n and int(self.end_ns) < int(start[-1]):
            raise ValueError(f"timeline end_ns {self.end_ns} is before the last change {start[-1]}")
        object.__setattr__(self, "start_ns", start)
        object.__setattr__(self, "state", state.astype(np.int8, copy=False))
        object.__setattr__(self, "reason", reason.astype(np.int32, copy=False))

    @classmethod
    def from_names(
        cls,
        start_ns: Sequence[int] | np.ndarray,
        states: Sequence[str],
        reasons: Sequence[int] | np.ndarray | None = None,
        end_ns: int | None = None,
    ) -> StateTimeline:
        """Build from state names (``"running"``...); ValueError names the first unknown one."""
        codes = np.array([state_code(s) for s in states], dtype=np.int8)
        return cls(np.asarray(start_ns, dtype=np.int64), codes, reasons, end_ns)

    def __len__(self) -> int:
        return int(self.start_ns.size)


@dataclass(frozen=True, slots=True, eq=False)
class CycleCounts:
    """Produced quantity: at ``time_ns[i]`` the machine completed ``good[i]`` good and
    ``reject[i]`` rejected items (a cycle event is 1/0 or 0/1; a counter delta any amount;
    tonnes are fine too). Times sorted (equal times allowed); ValueError otherwise.
    """

    time_ns: np.ndarray
    good: np.ndarray
    reject: np.ndarray

    def __post_init__(self) -> None:
        t = _int64(self.time_ns, "counts time_ns")
        _check_sorted(t, "counts time_ns", strict=False)
        object.__setattr__(self, "time_ns", t)
        object.__setattr__(self, "good", _quantity(self.good, t.size, "counts good"))
        object.__setattr__(self, "reject", _quantity(self.reject, t.size, "counts reject"))

    @classmethod
    def empty(cls) -> CycleCounts:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def from_results(
        cls, time_ns: Sequence[int] | np.ndarray, results: Sequence[str | bool]
    ) -> CycleCounts:
        """One event per cycle: ``True``/``"good"``/``"ok"`` or ``False``/``"reject"``/``"ng"``."""
        ok = np.array([parse_result(r) for r in results], dtype=bool)
        return cls(np.asarray(time_ns, np.int64), ok.astype(np.float64), (~ok).astype(np.float64))

    @classmethod
    def from_counters(
        cls,
        time_ns: Sequence[int] | np.ndarray,
        good_total: Sequence[float] | np.ndarray,
        reject_total: Sequence[float] | np.ndarray,
    ) -> CycleCounts:
        """From monotonic PLC counters sampled over time.

        The first sample is the baseline (it says nothing about what was made before it). A
        counter that goes down was reset (power cycle, shift reset): the new value is what was
        made since the reset, so it counts in full rather than as a huge negative delta.
        """
        t = np.asarray(time_ns, np.int64)

        def deltas(total: object, what: str) -> np.ndarray:
            v = _quantity(total, t.size, what)
            if v.size == 0:
                return v
            d = np.diff(v)
            return np.where(d < 0, v[1:], d)

        return cls(t[1:], deltas(good_total, "good_total"), deltas(reject_total, "reject_total"))


def encode_reasons(reasons: Sequence[str | None]) -> tuple[np.ndarray, dict[int, str]]:
    """Reason texts (``"die_change"``, as the press sends them) to int32 codes for
    :class:`StateTimeline`: "" or None is 0 (no reason), others get 1, 2, ... in order of first
    appearance. Returns the codes and ``{code: text}`` to name them in reports."""
    table: dict[str, int] = {}
    codes = np.zeros(len(reasons), np.int32)
    for i, text in enumerate(reasons):  # one per state change: a few thousand a day
        if text:
            codes[i] = table.setdefault(text, len(table) + 1)
    return codes, {code: text for text, code in table.items()}


def parse_result(value: str | bool) -> bool:
    """A cycle result as True (good) or False (reject); ValueError for anything else."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    key = str(value).strip().lower()
    if key in {"good", "ok", "pass", "1", "true"}:
        return True
    if key in {"reject", "ng", "bad", "fail", "scrap", "0", "false"}:
        return False
    raise ValueError(f"unknown cycle result {value!r} (expected good/ok/pass or reject/ng/scrap)")


@dataclass(frozen=True, slots=True, eq=False)
class KilnPushes:
    """Tunnel-kiln output: car ``car_id[i]`` left the kiln at ``time_ns[i]`` carrying
    ``quantity[i]`` (1.0 when counting cars, or the fired tonnes). Sorted by time."""

    time_ns: np.ndarray
    car_id: np.ndarray
    quantity: np.ndarray

    def __post_init__(self) -> None:
        t = _int64(self.time_ns, "pushes time_ns")
        _check_sorted(t, "pushes time_ns", strict=False)
        object.__setattr__(self, "time_ns", t)
        object.__setattr__(self, "car_id", _int64(self.car_id, "pushes car_id"))
        if self.car_id.shape != t.shape:
            raise ValueError("pushes car_id: expected one id per push")
        object.__setattr__(self, "quantity", _quantity(self.quantity, t.size, "pushes quantity"))


@dataclass(frozen=True, slots=True, eq=False)
class Gradings:
    """Grading results that arrive after firing: car ``car_id[i]`` graded at ``graded_ns[i]``
    with ``good[i]`` first-quality and ``reject[i]`` downgraded or broken pieces. A car graded
    twice keeps the latest grading known at the time asked about (a re-count corrects)."""

    car_id: np.ndarray
    good: np.ndarray
    reject: np.ndarray
    graded_ns: np.ndarray

    def __post_init__(self) -> None:
        ids = _int64(self.car_id, "gradings car_id")
        object.__setattr__(self, "car_id", ids)
        object.__setattr__(self, "good", _quantity(self.good, ids.size, "gradings good"))
        object.__setattr__(self, "reject", _quantity(self.reject, ids.size, "gradings reject"))
        g = _int64(self.graded_ns, "gradings graded_ns")
        if g.shape != ids.shape:
            raise ValueError("gradings graded_ns: expected one time per grading")
        object.__setattr__(self, "graded_ns", g)

    @classmethod
    def empty(cls) -> Gradings:
        z = np.zeros(0, np.int64)
        return cls(z, np.zeros(0), np.zeros(0), z)
