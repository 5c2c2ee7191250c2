"""Sparkplug B payload encoding, with the protobuf message definition written in code.

The message definition follows the Eclipse Sparkplug B specification (``sparkplug_b.proto``,
package ``org.eclipse.tahu.protobuf``, proto2): ``Payload`` {timestamp=1, metrics=2, seq=3,
uuid=4, body=5} and ``Payload.Metric`` {name=1, alias=2, timestamp=3, datatype=4,
is_historical=5, is_transient=6, is_null=7, metadata=8, properties=9, and the ``value`` oneof
int_value=10, long_value=11, float_value=12, double_value=13, boolean_value=14,
string_value=15, bytes_value=16, ...}. Only the fields a press uses are declared here (unknown
fields are legal protobuf). It is built with ``descriptor_pb2`` rather than shipping a
generated ``_pb2`` module because the simulator and the platform must share nothing but the wire.

Topics: ``spBv1.0/<group>/<NBIRTH|NDEATH|DBIRTH|DDEATH|NDATA|DDATA|NCMD|DCMD>/<node>[/<dev>]``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

NAMESPACE = "spBv1.0"

# DataType enum numbers from the specification.
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = 9, 10, 11, 12, 13, 14

_F = descriptor_pb2.FieldDescriptorProto


def _build_payload_class() -> type:
    fd = descriptor_pb2.FileDescriptorProto()
    fd.name = "kilnworks_sim/sparkplug_b.proto"
    fd.package = "org.eclipse.tahu.protobuf"
    fd.syntax = "proto2"
    payload = fd.message_type.add()
    payload.name = "Payload"
    metric = payload.nested_type.add()
    metric.name = "Metric"
    metric.oneof_decl.add().name = "value"

    def field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, oneof=None):
        f = msg.field.add()
        f.name, f.number, f.type, f.label = name, number, ftype, label
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof

    field(metric, "name", 1, _F.TYPE_STRING)
    field(metric, "alias", 2, _F.TYPE_UINT64)
    field(metric, "timestamp", 3, _F.TYPE_UINT64)
    field(metric, "datatype", 4, _F.TYPE_UINT32)
    field(metric, "is_historical", 5, _F.TYPE_BOOL)
    field(metric, "is_transient", 6, _F.TYPE_BOOL)
    field(metric, "is_null", 7, _F.TYPE_BOOL)
    field(metric, "int_value", 10, _F.TYPE_UINT32, oneof=0)
    field(metric, "long_value", 11, _F.TYPE_UINT64, oneof=0)
    field(metric, "float_value", 12, _F.TYPE_FLOAT, oneof=0)
    field(metric, "double_value", 13, _F.TYPE_DOUBLE, oneof=0)
    field(metric, "boolean_value", 14, _F.TYPE_BOOL, oneof=0)
    field(metric, "string_value", 15, _F.TYPE_STRING, oneof=0)
    field(metric, "bytes_value", 16, _F.TYPE_BYTES, oneof=0)
    field(payload, "timestamp", 1, _F.TYPE_UINT64)
    field(
        payload,
        "metrics",
        2,
        _F.TYPE_MESSAGE,
        _F.LABEL_REPEATED,
        ".org.eclipse.tahu.protobuf.Payload.Metric",
    )
    field(payload, "seq", 3, _F.TYPE_UINT64)
    field(payload, "uuid", 4, _F.TYPE_STRING)
    field(payload, "body", 5, _F.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()  # private pool: never clashes with anyone's pb2
    pool.Add(fd)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload")
    )


Payload = _build_payload_class()


def topic(group: str, message_type: str, edge_node: str, device: str | None = None) -> str:
    parts = [NAMESPACE, group, message_type, edge_node]
    if device:
        parts.append(device)
    return "/".join(parts)


def set_value(metric: Any, datatype: int, value: Any) -> None:
    """Put ``value`` in the oneof field the spec assigns to ``datatype``; None -> is_null."""
    metric.datatype = datatype
    if value is None:
        metric.is_null = True
    elif datatype in (INT8, INT16, INT32):
        metric.int_value = int(value) & 0xFFFFFFFF  # two's complement in a uint32, per spec
    elif datatype in (UINT8, UINT16, UINT32):
        metric.int_value = int(value)
    elif datatype in (INT64,):
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype in (UINT64, DATETIME):
        metric.long_value = int(value)
    elif datatype == FLOAT:
        metric.float_value = float(value)
    elif datatype == DOUBLE:
        metric.double_value = float(value)
    elif datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype in (STRING, TEXT):
        metric.string_value = str(value)
    else:
        raise ValueError(f"unsupported Sparkplug datatype {datatype}")


def get_value(metric: Any) -> Any:
    """Decode a metric's value (used by tests and tools); None when ``is_null``."""
    if metric.is_null:
        return None
    which = metric.WhichOneof("value")
    v = getattr(metric, which) if which else None
    if which == "int_value" and metric.datatype in (INT8, INT16, INT32) and v >= 2**31:
        v -= 2**32
    if which == "long_value" and metric.datatype == INT64 and v >= 2**63:
        v -= 2**64
    return v


def encode(
    metrics: list[tuple[str | None, int | None, int, Any, int]],
    *,
    timestamp_ms: int,
    seq: int | None,
) -> bytes:
    """Encode a payload. ``metrics``: (name or None, alias or None, datatype, value, ts_ms)."""
    p = Payload()
    p.timestamp = timestamp_ms
    if seq is not None:
        p.seq = seq
    for name, alias, datatype, value, ts_ms in metrics:
        m = p.metrics.add()
        if name is not None:
            m.name = name
        if alias is not None:
            m.alias = alias
        m.timestamp = ts_ms
        set_value(m, datatype, value)
    return p.SerializeToString()


def decode(data: bytes) -> Any:
    p = Payload()
    p.ParseFromString(data)
    return p
