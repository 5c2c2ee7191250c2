"""Helpers for simulator tests: small fleets built in code so each test starts only what it needs.

A fleet with kilns costs ~2 s CPU per enterprise to start (asyncua's standard address space), one
with only presses starts at once; tests pick accordingly.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from simulators.opcua_gateway import StandardAddressSpace
from simulators.scenario import Scenario, parse_scenario


@pytest.fixture(scope="session")
def standard_space() -> StandardAddressSpace:
    """asyncua's standard address space, built by the first fleet and copied by the others."""
    return StandardAddressSpace()


def kiln_scenario(**kiln_overrides: Any) -> Scenario:
    """One enterprise (xinghai) with a shuttle kiln (2 zones x 2 TCs) and a tunnel kiln."""
    shuttle = {
        "id": "kiln-1",
        "kind": "shuttle",
        "zones": 2,
        "thermocouples_per_zone": 2,
        "programmes": ["test-fast"],
        "first_firing_h": 0.0,
        **kiln_overrides,
    }
    tunnel = {
        "id": "kiln-2",
        "kind": "tunnel",
        "zones": 3,
        "thermocouples_per_zone": 2,
        "profile_c": [600.0, 1280.0, 700.0],
        "push_interval_min": 30.0,
    }
    data = {
        "name": "t-kilns",
        "sample_interval_s": 60.0,
        "max_publish_hz": 20.0,
        "enterprise": [{"id": "xinghai", "kiln": [shuttle, tunnel]}],
    }
    return parse_scenario(data, "test")


def press_scenario() -> Scenario:
    """One enterprise (xinghai) with a JSON isostatic press and a Sparkplug extruder."""
    data = {
        "name": "t-presses",
        "enterprise": [
            {
                "id": "xinghai",
                "press": [
                    {
                        "id": "press-1",
                        "kind": "isostatic",
                        "style": "json",
                        "ideal_cycle_time_s": 90.0,
                    },
                    {
                        "id": "press-2",
                        "kind": "extruder",
                        "style": "sparkplug",
                        "ideal_cycle_time_s": 30.0,
                    },
                ],
            }
        ],
    }
    return parse_scenario(data, "test")


def unique(prefix: str) -> str:
    """A topic root / group id of this test's own on the shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
