"""MQTT JSON source: JSON payloads mapped to readings by configuration.

A ``[[source]]`` table of ``type = "mqtt_json"`` holds the connection keys
(:mod:`edge_agent.sources.mqtt_common`) and one ``[[source.topic]]`` per kind of message::

    [[source.topic]]
    pattern = "shangbu/{enterprise}/{site}/{line}/{asset}/cycle"  # {name} = one level
    asset = "{enterprise}/{site}/{line}/{asset}"  # default when all four are captured
    time_path = "ts"                              # dotted JSON path
    time_unit = "ms"                              # s | ms | us | ns | rfc3339 | received
      [[source.topic.field]]
      path = "cycle_time_s"      # dotted JSON path (list indices as numbers: "zones.0.t")
      field = "cycle_time_s"     # platform field name (default: the path with "." -> "_")
      unit = "s"
      type = "float"             # float | int | bool | str | auto (auto: numbers become float)

A topic pattern is an MQTT topic filter in which a level may be a named capture ``{name}``
(subscribed as ``+``); ``+`` and a trailing ``#`` work as in MQTT. The first topic table whose
pattern matches a message wins. Everything that cannot become a reading is reported with
``Output.reject`` under a stable reason key (see :data:`REASONS`) and the rest of the message is
still delivered: one bad field never costs the good ones.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.config import Table
from core.reading import AssetPath, Quality, Reading, now_ns
from edge_agent.source import Output
from edge_agent.sources.mqtt_common import (
    CONNECTION_KEYS,
    ClientFactory,
    InboundMessage,
    MqttSession,
    MqttSettings,
    make_client,
    parse_mqtt_settings,
)

#: Reject reasons this source reports (metric label values; keep them stable).
REASONS = (
    "malformed_json",  # not UTF-8 or not JSON
    "not_an_object",  # JSON, but not an object (or records_path not a list of objects)
    "unknown_topic",  # no [[source.topic]] pattern matches
    "bad_asset",  # the asset template gave something that is not enterprise/site/line/asset
    "foreign_enterprise",  # asset of an enterprise this source may not write for
    "missing_field",  # a configured, non-optional field is absent
    "wrong_type",  # a value of the wrong JSON type for the field
    "not_finite",  # NaN or +-Infinity
    "out_of_range",  # outside the field's [min, max] or the int64 range
    "missing_time",  # no timestamp at time_path
    "bad_time",  # a timestamp that cannot be read
)

ROUTE_CACHE_SIZE = 10_000
TIME_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
TYPES = ("auto", "float", "int", "bool", "str")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Bad(Exception):
    """A part of a message that cannot become a reading: ``reason`` is a REASONS key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One JSON value -> one platform field."""

    path: tuple[str | int, ...]
    field: str
    unit: str = ""
    type: str = "auto"
    optional: bool = False
    scale: float = 1.0
    offset: float = 0.0
    min: float | None = None
    max: float | None = None

    # No scaling and no limits: a value of the right JSON type is stored as it is (fast path).
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = self.scale == 1.0 and self.offset == 0.0 and self.min is None and self.max is None
        object.__setattr__(self, "plain", plain)


@dataclass(frozen=True, slots=True)
class TopicMapping:
    """One ``[[source.topic]]``: which messages, which asset, where time and fields are."""

    pattern: str
    levels: tuple[str, ...]  # literal level, "+", "#", or "{name}"
    asset: str  # str.format template over the captures
    fields: tuple[FieldMapping, ...]
    time_path: tuple[str | int, ...] = ()
    time_unit: str = "ms"
    records_path: tuple[str | int, ...] = ()
    quality_path: tuple[str | int, ...] = ()

    @property
    def subscription(self) -> str:
        return "/".join("+" if _is_capture(lv) else lv for lv in self.levels)

    def match(self, topic_levels: list[str]) -> dict[str, str] | None:
        """Captures if ``topic_levels`` matches this pattern, else None."""
        captures: dict[str, str] = {}
        levels = self.levels
        for i, level in enumerate(levels):
            if level == "#":
                return captures
            if i >= len(topic_levels):
                return None
            part = topic_levels[i]
            if _is_capture(level):
                if not part:
                    return None
                captures[level[1:-1]] = part
            elif level != "+" and level != part:
                return None
        return captures if len(topic_levels) == len(levels) else None


@dataclass(frozen=True, slots=True)
class MqttJsonSourceConfig:
    name: str
    mqtt: MqttSettings
    topics: tuple[TopicMapping, ...]
    enterprises: tuple[str, ...] = ()  # empty: any enterprise


def _is_capture(level: str) -> bool:
    return len(level) > 2 and level[0] == "{" and level[-1] == "}"


def _path(table: Table, name: str, default: Any = None) -> tuple[str | int, ...]:
    text = table.str(name, default)
    if text is None:
        return ()
    parts = text.split(".")
    if not all(parts):
        raise table.error(name, f"expected a dotted JSON path such as 'a.b.0', got {text!r}")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _parse_levels(table: Table) -> tuple[str, ...]:
    pattern = table.str("pattern")
    levels = tuple(pattern.split("/"))
    names = set()
    for i, level in enumerate(levels):
        if level == "#" and i != len(levels) - 1:
            raise table.error("pattern", f"'#' must be the last level, got {pattern!r}")
        if _is_capture(level):
            name = level[1:-1]
            if not name.isidentifier() or name in names:
                raise table.error("pattern", f"capture {level} must be a unique identifier")
            names.add(name)
        elif (
            any(c in level for c in "{}")
            or ("+" in level and level != "+")
            or ("#" in level and level != "#")
        ):
            raise table.error(
                "pattern", f"level {level!r}: expected text, +, # or a whole-level {{name}}"
            )
    return levels


def _parse_field(table: Table) -> FieldMapping:
    table.check_keys("path", "field", "unit", "type", "optional", "scale", "offset", "min", "max")
    path = _path(table, "path")
    kind = table.str("type", "auto", choices=TYPES)
    scale = table.float("scale", 1.0)
    offset = table.float("offset", 0.0)
    if (scale != 1.0 or offset != 0.0) and kind not in ("float", "auto"):
        raise table.error("scale", "scale/offset apply to float fields only")
    return FieldMapping(
        path=path,
        field=table.str("field", "_".join(str(p) for p in path)),
        unit=table.str("unit", ""),
        type=kind,
        optional=table.bool("optional", False),
        scale=scale,
        offset=offset,
        min=table.float("min", None),
        max=table.float("max", None),
    )


def _parse_topic(table: Table) -> TopicMapping:
    table.check_keys(
        "pattern", "asset", "time_path", "time_unit", "records_path", "quality_path", "field"
    )
    levels = _parse_levels(table)
    captures = {lv[1:-1] for lv in levels if _is_capture(lv)}
    default_asset = None
    if {"enterprise", "site", "line", "asset"} <= captures:
        default_asset = "{enterprise}/{site}/{line}/{asset}"
    asset = table.str("asset", default_asset)
    if asset is None:
        raise table.error(
            "asset", "required unless the pattern captures enterprise, site, line, asset"
        )
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(asset) if name is not None}
    except ValueError as exc:
        raise table.error("asset", f"not a valid template: {exc}") from None
    if used - captures:
        raise table.error("asset", f"uses {sorted(used - captures)}, not captured by the pattern")
    if not used:
        try:
            AssetPath.parse(asset)
        except ValueError as exc:
            raise table.error("asset", str(exc)) from None
    time_unit = table.str("time_unit", "ms", choices=(*TIME_UNITS, "rfc3339", "received"))
    time_path = _path(table, "time_path", None)
    if time_unit != "received" and not time_path:
        raise table.error("time_path", 'required unless time_unit = "received"')
    fields = tuple(_parse_field(t) for t in table.tables("field", required=True))
    if not fields:
        raise table.error("field", "expected at least one [[...field]]")
    seen: set[str] = set()
    for i, f in enumerate(fields):
        if f.field in seen:
            raise table.error(f"field[{i}].field", f"field {f.field!r} mapped twice")
        seen.add(f.field)
    return TopicMapping(
        pattern="/".join(levels),
        levels=levels,
        asset=asset,
        fields=fields,
        time_path=time_path,
        time_unit=time_unit,
        records_path=_path(table, "records_path", None),
        quality_path=_path(table, "quality_path", None),
    )


def parse_mqtt_json_source(table: Table) -> MqttJsonSourceConfig:
    """Check a ``[[source]]`` table of ``type = "mqtt_json"`` and build its config.

    Called by the agent's config loader. Raises :class:`core.config.ConfigError` naming the
    file, key and expectation. Touches no network.
    """
    table.check_keys("type", "name", "enterprises", "topic", *CONNECTION_KEYS)
    if "type" in table:
        table.str("type", choices=("mqtt_json",))
    name = table.str("name")
    topics = tuple(_parse_topic(t) for t in table.tables("topic", required=True))
    if not topics:
        raise table.error("topic", "expected at least one [[source.topic]]")
    return MqttJsonSourceConfig(
        name=name,
        mqtt=parse_mqtt_settings(table, default_client_id=f"kilnworks-{name}"),
        topics=topics,
        enterprises=tuple(table.list_of_str("enterprises", [])),
    )


# -- conversion -----------------------------------------------------------------------------


def _lookup(doc: Any, path: tuple[str | int, ...]) -> Any:
    """The value at ``path`` or ``_ABSENT``."""
    for key in path:
        if isinstance(doc, dict):
            if isinstance(key, int):
                key = str(key)
            if key not in doc:
                return _ABSENT
            doc = doc[key]
        elif isinstance(doc, list) and isinstance(key, int):
            if key >= len(doc):
                return _ABSENT
            doc = doc[key]
        else:
            return _ABSENT
    return doc


_ABSENT = object()


def _time_ns(value: Any, unit: str) -> int:
    if unit == "rfc3339":
        if not isinstance(value, str):
            raise _Bad("bad_time", f"expected an RFC 3339 string, got {value!r}")
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("bad_time", f"not an RFC 3339 time: {value!r}") from None
        if stamp.tzinfo is None:
            raise _Bad("bad_time", f"RFC 3339 time without a UTC offset: {value!r}")
        # Integer arithmetic from the parts: a float timestamp() would round at ~0.2 µs.
        delta = stamp - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    scale = TIME_UNITS[unit]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad("bad_time", f"expected a number of {unit} since the epoch, got {value!r}")
    if isinstance(value, int):
        ns = value * scale
    else:
        if not math.isfinite(value):
            raise _Bad("bad_time", f"timestamp {value!r} is not finite")
        ns = round(value * scale)
    if not INT64_MIN <= ns <= INT64_MAX:
        raise _Bad("bad_time", f"timestamp {value!r} {unit} is outside the int64 nanosecond range")
    return ns


def _value(raw: Any, spec: FieldMapping) -> bool | int | float | str:
    kind = spec.type
    if raw is None:
        raise _Bad("wrong_type", "null")
    if kind == "str":
        if not isinstance(raw, str):
            raise _Bad("wrong_type", f"expected a string, got {raw!r}")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise _Bad("wrong_type", f"expected true or false, got {raw!r}")
        return raw
    if kind == "auto":
        if isinstance(raw, bool | str):
            return raw
        if not isinstance(raw, int | float):
            raise _Bad("wrong_type", f"expected a number, string or boolean, got {_short(raw)}")
        # Numbers become floats: InfluxDB fixes a field's type at its first point, and a
        # sensor that sends 88 one time and 88.4 the next must not fail on the second.
        kind = "float"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Bad("wrong_type", f"expected a number, got {_short(raw)}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _Bad("not_finite", f"value {raw!r}")
    if kind == "int":
        if isinstance(raw, float):
            if not raw.is_integer():
                raise _Bad("wrong_type", f"expected an integer, got {raw!r}")
            raw = int(raw)
        if not INT64_MIN <= raw <= INT64_MAX:
            raise _Bad("out_of_range", f"{raw} does not fit in a 64-bit integer")
        value: int | float = raw
    else:
        value = float(raw) * spec.scale + spec.offset
        if not math.isfinite(value):
            raise _Bad("not_finite", f"value {raw!r} scaled to {value!r}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise _Bad("out_of_range", f"{value} outside [{spec.min}, {spec.max}]")
    return value


def _quality(raw: Any) -> Quality:
    if isinstance(raw, bool):
        return Quality.GOOD if raw else Quality.BAD
    if isinstance(raw, int) and 0 <= raw <= 2:
        return Quality(raw)
    if isinstance(raw, str) and raw.lower() in ("good", "uncertain", "bad"):
        return Quality[raw.upper()]
    raise _Bad(
        "wrong_type", f"quality: expected good/uncertain/bad, 0..2 or a boolean, got {raw!r}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class JsonConverter:
    """Turns one MQTT message into readings per a config; pure apart from ``Output.reject``.

    Used by :class:`MqttJsonSource` on its worker thread, and directly by tests and the
    benchmark.
    """

    def __init__(self, config: MqttJsonSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self._enterprises = frozenset(config.enterprises)
        # topic -> (mapping, asset or rejection): a press publishes on the same few topics all
        # day, so matching and asset checks run once per topic, not once per message.
        self._routes: dict[str, tuple[TopicMapping | None, str | _Bad]] = {}

    def __call__(self, message: InboundMessage, output: Output) -> list[Reading]:
        where = message.topic
        route = self._routes.get(where)
        if route is None:
            route = self._route(where)
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()  # a flood of distinct topics must not grow memory
            self._routes[where] = route
        mapping, asset_or_bad = route
        if mapping is None:
            output.reject(
                self.name, "unknown_topic", f"no topic pattern matches {where!r}", message.payload
            )
            return []
        try:
            if isinstance(asset_or_bad, _Bad):
                # a fresh exception: re-raising the cached one would grow its traceback
                raise _Bad(asset_or_bad.reason, str(asset_or_bad))
            asset = asset_or_bad
            try:
                doc = json.loads(message.payload)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Bad("malformed_json", f"{exc}") from None
            records = [doc]
            if mapping.records_path:
                records = _lookup(doc, mapping.records_path)
                if not isinstance(records, list):
                    raise _Bad(
                        "not_an_object", f"records_path does not hold a list in {_short(doc)}"
                    )
        except _Bad as bad:
            output.reject(self.name, bad.reason, f"{where}: {bad}", message.payload)
            return []
        readings: list[Reading] = []
        for record in records:
            readings.extend(self._record(record, mapping, asset, message, output))
        return readings

    def _route(self, topic: str) -> tuple[TopicMapping | None, str | _Bad]:
        """The first topic mapping that matches and the asset (or why it has none)."""
        levels = topic.split("/")
        for mapping in self.config.topics:
            captures = mapping.match(levels)
            if captures is not None:
                try:
                    return mapping, self._asset(mapping, captures)
                except _Bad as bad:
                    return mapping, bad
        return None, ""

    def _asset(self, mapping: TopicMapping, captures: dict[str, str]) -> str:
        asset = mapping.asset.format_map(captures) if captures else mapping.asset
        try:
            path = AssetPath.parse(asset)
        except ValueError as exc:
            raise _Bad("bad_asset", str(exc)) from None
        if self._enterprises and path.enterprise not in self._enterprises:
            raise _Bad("foreign_enterprise", f"asset {asset} is not of {sorted(self._enterprises)}")
        return asset

    def _record(
        self,
        record: Any,
        mapping: TopicMapping,
        asset: str,
        message: InboundMessage,
        output: Output,
    ) -> list[Reading]:
        where = message.topic

        def reject(reason: str, detail: str) -> None:
            output.reject(self.name, reason, f"{where}: {detail}", message.payload)

        if not isinstance(record, dict):
            reject("not_an_object", f"expected a JSON object, got {_short(record)}")
            return []
        try:
            if mapping.time_unit == "received":
                time_ns = message.received_ns
            else:
                raw_time = _lookup(record, mapping.time_path)
                if raw_time is _ABSENT or raw_time is None:
                    raise _Bad(
                        "missing_time", f"no timestamp at {'.'.join(map(str, mapping.time_path))}"
                    )
                time_ns = _time_ns(raw_time, mapping.time_unit)
            quality = Quality.GOOD
            if mapping.quality_path:
                raw_quality = _lookup(record, mapping.quality_path)
                if raw_quality is not _ABSENT:
                    quality = _quality(raw_quality)
        except _Bad as bad:
            reject(bad.reason, str(bad))
            return []
        output.seen(self.name, asset, time_ns)
        readings = []
        received = message.received_ns
        for spec in mapping.fields:
            path = spec.path
            if len(path) == 1:  # the common flat payload: one dict lookup
                raw = (
                    record.get(path[0], _ABSENT) if type(path[0]) is str else _lookup(record, path)
                )
            else:
                raw = _lookup(record, path)
            if raw is _ABSENT:
                if not spec.optional:
                    reject(
                        "missing_field",
                        f"{spec.field}: no value at {'.'.join(map(str, spec.path))}",
                    )
                continue
            if raw is None:
                continue  # JSON null = no value now (e.g. reject_reason of a good cycle)
            kind = spec.type
            raw_type = type(raw)
            # Fast paths for the usual case (the right JSON type, no scaling, no limits);
            # everything else goes through the full checks in _value.
            if spec.plain and (
                (raw_type is str and kind == "str")
                or (raw_type is int and kind == "int" and INT64_MIN <= raw <= INT64_MAX)
            ):
                value = raw
            elif (
                spec.plain and raw_type is float and kind in ("float", "auto") and raw - raw == 0.0
            ):
                value = raw  # raw - raw is 0.0 only for finite floats
            else:
                try:
                    value = _value(raw, spec)
                except _Bad as bad:
                    reject(bad.reason, f"{spec.field}: {bad}")
                    continue
            readings.append(
                Reading(asset, spec.field, value, quality, time_ns, received, spec.unit)
            )
        return readings


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


class MqttJsonSource:
    """The ``mqtt_json`` source (implements :class:`edge_agent.source.Source`)."""

    def __init__(
        self,
        config: MqttJsonSourceConfig,
        *,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.config = config
        self.name = config.name
        self.converter = JsonConverter(config)
        self.session = MqttSession(
            config.name,
            config.mqtt,
            sorted({t.subscription for t in config.topics}),
            self.converter,
            client_factory=client_factory,
            clock=clock,
        )

    async def run(self, output: Output) -> None:
        await self.session.run(output)

    def status(self) -> dict[str, object]:
        return {"type": "mqtt_json", **self.session.status()}
