"""``kilnworks agent discover``: browse an OPC UA server and print a mapping skeleton.

A plant engineer points it at a kiln's gateway and gets ``[[source.node]]`` tables for every
variable below ``Objects`` (the server's own diagnostics in namespace 0 left out), each with
its node id, a guessed ``asset`` (from the object path) and ``field`` (from the browse path,
with the unit suffix from the variable's EngineeringUnits), the unit text, and the EURange as a
comment. Edit the guesses, paste into the agent config, run ``kilnworks agent check``.

Reads only (Browse + Read); a variable that cannot be read is listed with a comment instead of
stopping the walk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from asyncua import Client, ua

from edge_agent.manifest import toml_value

# UNECE Recommendation 20 codes (as OPC UA encodes them in EUInformation.UnitId, Part 8 5.6.3)
# for the units a kiln or press reports -> (unit text, field-name suffix).
_UNECE = {
    "CEL": ("°C", "c"),
    "KEL": ("K", "k"),
    "P1": ("%", "pct"),
    "MQH": ("m3/h", "m3_h"),
    "KWH": ("kWh", "kwh"),
    "KWT": ("kW", "kw"),
    "59": ("ppm", "ppm"),
    "MPA": ("MPa", "mpa"),
    "BAR": ("bar", "bar"),
    "SEC": ("s", "s"),
    "MIN": ("min", "min"),
    "HUR": ("h", "h"),
    "MTR": ("m", "m"),
    "MMT": ("mm", "mm"),
}
_TEXT_SUFFIX = {"°c": "c", "degc": "c", "%": "pct", "m3/h": "m3_h", "kwh": "kwh", "ppm": "ppm"}


def unece_code(unit_id: int) -> str:
    """Decode an OPC UA UnitId (UNECE code packed into an Int32, Part 8 5.6.3)."""
    chars = []
    for shift in (16, 8, 0):
        byte = (unit_id >> shift) & 0xFF
        if byte:
            chars.append(chr(byte))
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class FoundVariable:
    node_id: str
    path: tuple[str, ...]  # browse names from below Objects, e.g. ("kiln-1", "Zone1", "TC1")
    data_type: str
    unit: str = ""
    unit_suffix: str = ""
    eu_range: tuple[float, float] | None = None
    historizing: bool = False
    error: str = ""


def snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def guess_field(var: FoundVariable) -> str:
    """``zone1_tc1_temperature_c`` from ``kiln-1/Zone1/TC1/Temperature`` and °C."""
    parts = [snake(p) for p in var.path[1:]] or [snake(var.path[-1])]
    name = "_".join(p for p in parts if p) or "value"
    if not name[0].isalpha():
        name = "v_" + name
    if var.unit_suffix and not name.endswith("_" + var.unit_suffix):
        name += "_" + var.unit_suffix
    return name


async def browse(
    client: Client, *, max_depth: int = 8, max_variables: int = 10_000
) -> list[FoundVariable]:
    """Every variable below Objects (not in namespace 0), depth-first, with units and ranges."""
    found: list[FoundVariable] = []

    async def walk(node, path: tuple[str, ...], depth: int) -> None:
        if depth > max_depth or len(found) >= max_variables:
            return
        children = await node.get_children_descriptions(refs=ua.ObjectIds.HierarchicalReferences)
        for ref in children:
            if ref.NodeId.NamespaceIndex == 0:
                continue  # the server's own objects (Server, diagnostics)
            child = client.get_node(ref.NodeId)
            name = ref.BrowseName.Name
            if ref.NodeClass == ua.NodeClass.Variable:
                if ref.TypeDefinition == ua.NodeId(ua.ObjectIds.PropertyType):
                    continue  # EURange, EngineeringUnits...: described with their variable
                found.append(await describe(client, child, (*path, name)))
                await walk(child, (*path, name), depth + 1)  # AnalogItem children, if any
            elif ref.NodeClass == ua.NodeClass.Object:
                await walk(child, (*path, name), depth + 1)

    await walk(client.nodes.objects, (), 0)
    return found


async def describe(client: Client, node, path: tuple[str, ...]) -> FoundVariable:
    nid = node.nodeid.to_string()
    try:
        dtype_id = await node.read_data_type()
        dtype = (await client.get_node(dtype_id).read_browse_name()).Name
    except ua.UaError as exc:
        return FoundVariable(nid, path, "?", error=str(exc))
    unit = suffix = ""
    rng = None
    try:
        eu = await (await node.get_child("0:EngineeringUnits")).read_value()
        code = unece_code(int(eu.UnitId)) if eu.UnitId and eu.UnitId > 0 else ""
        unit, suffix = _UNECE.get(code, (eu.DisplayName.Text or code, ""))
        if not suffix:
            suffix = _TEXT_SUFFIX.get((unit or "").lower(), "")
    except ua.UaError:
        pass
    try:
        r = await (await node.get_child("0:EURange")).read_value()
        rng = (float(r.Low), float(r.High))
    except ua.UaError:
        pass
    historizing = False
    try:
        dv = await node.read_attribute(ua.AttributeIds.Historizing)
        historizing = bool(dv.Value.Value)
    except ua.UaError:
        pass
    return FoundVariable(nid, path, dtype, unit, suffix, rng, historizing)


def skeleton(
    endpoint: str,
    variables: Sequence[FoundVariable],
    *,
    enterprise: str = "enterprise",
    site: str = "site",
    line: str = "line",
    name: str = "opcua-1",
) -> str:
    """The TOML skeleton (a ``[[source]]`` with one ``[[source.node]]`` per variable)."""
    out = [
        f"# Generated by `kilnworks agent discover {endpoint}`: {len(variables)} variables.",
        "# Check each asset and field, delete what you do not need, then `kilnworks agent check`.",
        "[[source]]",
        'type = "opcua"',
        f"name = {toml_value(name)}",
        f"endpoint = {toml_value(endpoint)}",
    ]
    for v in variables:
        asset_id = snake(v.path[0]).replace("_", "-") if v.path else "asset"
        out += ["", "  [[source.node]]"]
        comment = f"  # {'/'.join(v.path)}: {v.data_type}"
        if v.eu_range:
            comment += f", EURange {v.eu_range[0]:g}..{v.eu_range[1]:g}"
        if v.historizing:
            comment += ", historized (gaps are filled)"
        if v.error:
            comment += f", unreadable: {v.error}"
        out.append(comment)
        out.append(f"  node_id = {toml_value(v.node_id)}")
        out.append(f"  asset = {toml_value(f'{enterprise}/{site}/{line}/{asset_id}')}")
        out.append(f"  field = {toml_value(guess_field(v))}")
        if v.unit:
            out.append(f"  unit = {toml_value(v.unit)}")
    return "\n".join(out) + "\n"
