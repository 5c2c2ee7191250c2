"""Sparkplug B payloads: the protobuf message definition, written in code from the spec.

The Eclipse Sparkplug B specification (3.0, chapter 6 "Sparkplug B payload") defines the
payload as a proto2 message ``org.eclipse.tahu.protobuf.Payload``. We build the same descriptor
here with ``descriptor_pb2`` instead of shipping a generated module or a copied ``.proto``:
the simulators build their own from the same spec, so the two sides share only the wire.

Field numbers and data type numbers are the spec's; changing one breaks every peer.

Public API:

* :data:`Payload` - the message class (``Payload()``, ``Payload.FromString(raw)``);
* :class:`DataType` - the spec's data type numbers;
* :func:`decode_payload` - bytes to a ``Payload``, raising :class:`PayloadError` when the
  bytes are not a Sparkplug B payload;
* :func:`metric_value` - the Python value of a metric, signed integers restored;
* :func:`set_metric_value` - the inverse, used for commands (NCMD) and test publishers.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

PACKAGE = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug B data type numbers (spec 3.0, section 6.4.16)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21


class PayloadError(ValueError):
    """Bytes that are not a Sparkplug B payload, or a metric whose value cannot be read."""


_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALARS = {
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}


def _field(
    msg: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: str,
    *,
    repeated: bool = False,
    oneof: int | None = None,
) -> None:
    f = msg.field.add(name=name, number=number, label=_REP if repeated else _OPT)
    if kind in _SCALARS:
        f.type = _SCALARS[kind]
    else:  # a message type, named relative to Payload
        f.type = _F.TYPE_MESSAGE
        f.type_name = f".{PACKAGE}.Payload.{kind}"
    if oneof is not None:
        f.oneof_index = oneof


def _extensible(msg: descriptor_pb2.DescriptorProto, start: int) -> None:
    # The spec reserves "extensions N to max" on most messages; declaring the range keeps
    # such fields parseable as extensions instead of failing on a future peer.
    msg.extension_range.add(start=start, end=536870912)


def _value_extension(parent: descriptor_pb2.DescriptorProto, name: str) -> None:
    ext = parent.nested_type.add(name=name)
    _extensible(ext, 1)


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="kilnworks/edge_agent/sparkplug_b.proto", package=PACKAGE, syntax="proto2"
    )
    payload = fd.message_type.add(name="Payload")

    # Template (user-defined types) and its Parameter
    template = payload.nested_type.add(name="Template")
    parameter = template.nested_type.add(name="Parameter")
    parameter.oneof_decl.add(name="value")
    _field(parameter, "name", 1, "string")
    _field(parameter, "type", 2, "uint32")
    for name, number, kind in (
        ("int_value", 3, "uint32"),
        ("long_value", 4, "uint64"),
        ("float_value", 5, "float"),
        ("double_value", 6, "double"),
        ("boolean_value", 7, "bool"),
        ("string_value", 8, "string"),
        ("extension_value", 9, "Template.Parameter.ParameterValueExtension"),
    ):
        _field(parameter, name, number, kind, oneof=0)
    _value_extension(parameter, "ParameterValueExtension")
    _field(template, "version", 1, "string")
    _field(template, "metrics", 2, "Metric", repeated=True)
    _field(template, "parameters", 3, "Template.Parameter", repeated=True)
    _field(template, "template_ref", 4, "string")
    _field(template, "is_definition", 5, "bool")
    _extensible(template, 6)

    # DataSet (tables) with its values and rows
    dataset = payload.nested_type.add(name="DataSet")
    ds_value = dataset.nested_type.add(name="DataSetValue")
    ds_value.oneof_decl.add(name="value")
    for name, number, kind in (
        ("int_value", 1, "uint32"),
        ("long_value", 2, "uint64"),
        ("float_value", 3, "float"),
        ("double_value", 4, "double"),
        ("boolean_value", 5, "bool"),
        ("string_value", 6, "string"),
        ("extension_value", 7, "DataSet.DataSetValue.DataSetValueExtension"),
    ):
        _field(ds_value, name, number, kind, oneof=0)
    _value_extension(ds_value, "DataSetValueExtension")
    row = dataset.nested_type.add(name="Row")
    _field(row, "elements", 1, "DataSet.DataSetValue", repeated=True)
    _extensible(row, 2)
    _field(dataset, "num_of_columns", 1, "uint64")
    _field(dataset, "columns", 2, "string", repeated=True)
    _field(dataset, "types", 3, "uint32", repeated=True)
    _field(dataset, "rows", 4, "DataSet.Row", repeated=True)
    _extensible(dataset, 5)

    # PropertyValue / PropertySet / PropertySetList (metric properties such as engUnit)
    prop_value = payload.nested_type.add(name="PropertyValue")
    prop_value.oneof_decl.add(name="value")
    _field(prop_value, "type", 1, "uint32")
    _field(prop_value, "is_null", 2, "bool")
    for name, number, kind in (
        ("int_value", 3, "uint32"),
        ("long_value", 4, "uint64"),
        ("float_value", 5, "float"),
        ("double_value", 6, "double"),
        ("boolean_value", 7, "bool"),
        ("string_value", 8, "string"),
        ("propertyset_value", 9, "PropertySet"),
        ("propertysets_value", 10, "PropertySetList"),
        ("extension_value", 11, "PropertyValue.PropertyValueExtension"),
    ):
        _field(prop_value, name, number, kind, oneof=0)
    _value_extension(prop_value, "PropertyValueExtension")
    prop_set = payload.nested_type.add(name="PropertySet")
    _field(prop_set, "keys", 1, "string", repeated=True)
    _field(prop_set, "values", 2, "PropertyValue", repeated=True)
    _extensible(prop_set, 3)
    prop_list = payload.nested_type.add(name="PropertySetList")
    _field(prop_list, "propertyset", 1, "PropertySet", repeated=True)
    _extensible(prop_list, 2)

    # MetaData (multi-part files, descriptions)
    meta = payload.nested_type.add(name="MetaData")
    for name, number, kind in (
        ("is_multi_part", 1, "bool"),
        ("content_type", 2, "string"),
        ("size", 3, "uint64"),
        ("seq", 4, "uint64"),
        ("file_name", 5, "string"),
        ("file_type", 6, "string"),
        ("md5", 7, "string"),
        ("description", 8, "string"),
    ):
        _field(meta, name, number, kind)
    _extensible(meta, 9)

    # Metric: the unit of data
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind in (
        ("name", 1, "string"),
        ("alias", 2, "uint64"),
        ("timestamp", 3, "uint64"),
        ("datatype", 4, "uint32"),
        ("is_historical", 5, "bool"),
        ("is_transient", 6, "bool"),
        ("is_null", 7, "bool"),
        ("metadata", 8, "MetaData"),
        ("properties", 9, "PropertySet"),
    ):
        _field(metric, name, number, kind)
    for name, number, kind in (
        ("int_value", 10, "uint32"),
        ("long_value", 11, "uint64"),
        ("float_value", 12, "float"),
        ("double_value", 13, "double"),
        ("boolean_value", 14, "bool"),
        ("string_value", 15, "string"),
        ("bytes_value", 16, "bytes"),
        ("dataset_value", 17, "DataSet"),
        ("template_value", 18, "Template"),
        ("extension_value", 19, "Metric.MetricValueExtension"),
    ):
        _field(metric, name, number, kind, oneof=0)
    _value_extension(metric, "MetricValueExtension")

    # The payload itself
    _field(payload, "timestamp", 1, "uint64")
    _field(payload, "metrics", 2, "Metric", repeated=True)
    _field(payload, "seq", 3, "uint64")
    _field(payload, "uuid", 4, "string")
    _field(payload, "body", 5, "bytes")
    _extensible(payload, 6)
    return fd


def _message_class() -> Any:
    # A private pool: registering "org.eclipse.tahu.protobuf" in the default pool would clash
    # with any other Sparkplug module loaded into the same process (the simulator in tests).
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_build_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


Payload: Any = _message_class()
Metric: Any = Payload.Metric

_SIGNED_32 = {DataType.INT8, DataType.INT16, DataType.INT32}
_UNSIGNED_32 = {DataType.UINT8, DataType.UINT16, DataType.UINT32}
_TEXT = {DataType.STRING, DataType.TEXT, DataType.UUID}


def decode_payload(raw: bytes) -> Any:
    """Parse a Sparkplug B payload; :class:`PayloadError` when ``raw`` is not one."""
    try:
        return Payload.FromString(raw)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise PayloadError(f"not a Sparkplug B payload: {exc}") from None


def metric_value(metric: Any, datatype: int) -> bool | int | float | str:
    """The value of ``metric`` as Python, read as ``datatype`` (from the metric or its birth).

    Signed integers travel as two's complement in the unsigned ``int_value``/``long_value``
    fields (spec 6.4.17), so they are sign-restored here. DateTime stays an integer of epoch
    milliseconds. Raises :class:`PayloadError` for a type this platform does not store
    (DataSet, Template, Bytes, File, arrays) or a value in the wrong field.
    """
    kind = metric.WhichOneof("value")
    try:
        dt = DataType(datatype)
    except ValueError:
        raise PayloadError(f"unknown Sparkplug datatype {datatype}") from None
    if dt in _SIGNED_32 or dt in _UNSIGNED_32:
        raw = _expect(metric, kind, dt, "int_value", "long_value")
        if dt in _SIGNED_32:
            raw &= 0xFFFFFFFF
            return raw - (1 << 32) if raw >= 1 << 31 else raw
        return raw
    if dt in (DataType.INT64, DataType.UINT64, DataType.DATETIME):
        raw = _expect(metric, kind, dt, "long_value", "int_value")
        if dt == DataType.INT64 and raw >= 1 << 63:
            return raw - (1 << 64)
        return raw
    if dt in (DataType.FLOAT, DataType.DOUBLE):
        value = float(_expect(metric, kind, dt, "double_value", "float_value"))
        if dt == DataType.FLOAT and math.isfinite(value):
            # A float32 widened to float64 shows its binary noise (88.4 -> 88.40000152...).
            # numpy prints the shortest decimal that round-trips to the same float32, so the
            # stored double is what the device meant and two distinct float32s stay distinct.
            value = float(str(np.float32(value)))
        return value
    if dt == DataType.BOOLEAN:
        return bool(_expect(metric, kind, dt, "boolean_value"))
    if dt in _TEXT:
        return str(_expect(metric, kind, dt, "string_value"))
    raise PayloadError(f"Sparkplug datatype {dt.name} is not stored by this agent")


def _expect(metric: Any, kind: str | None, dt: DataType, *fields: str) -> Any:
    if kind not in fields:
        raise PayloadError(f"{dt.name} metric carries {kind or 'no value'}, expected {fields[0]}")
    return getattr(metric, kind)


def set_metric_value(metric: Any, datatype: DataType, value: bool | int | float | str) -> None:
    """Store ``value`` in ``metric`` as ``datatype`` (sets ``metric.datatype`` too)."""
    metric.datatype = int(datatype)
    if datatype in _SIGNED_32 or datatype in _UNSIGNED_32:
        metric.int_value = int(value) & 0xFFFFFFFF
    elif datatype in (DataType.INT64, DataType.UINT64, DataType.DATETIME):
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype == DataType.FLOAT:
        metric.float_value = float(value)
    elif datatype == DataType.DOUBLE:
        metric.double_value = float(value)
    elif datatype == DataType.BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype in _TEXT:
        metric.string_value = str(value)
    else:
        raise PayloadError(f"cannot encode a {datatype.name} metric")
