"""Simulated kilns (OPC UA) and presses (MQTT) standing in for other vendors' equipment.

Imports nothing from the platform packages: the simulators share only the wire with the edge
agent. Entry points: :class:`simulators.fleet.Fleet` (in-process, for tests and the demo) and
``kilnworks simulate`` (:mod:`simulators.cli`). docs/simulators.md is the vendor documentation.
"""
