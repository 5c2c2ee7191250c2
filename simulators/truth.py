"""Ground truth: what the simulator really did, one JSON Lines file per asset.

File ``<dir>/<enterprise>__<site>__<line>__<asset>.jsonl``; each line is a JSON object with
``t_ns`` (simulated source time, UTC ns) and ``kind``:

* ``sample``: a published value - ``field``, ``value`` (as published, NaN written as null with
  ``"nan": true``), ``quality`` (good|bad), ``true_value`` (before noise and faults), ``setpoint``
  (temperatures), ``live`` (false when the OPC UA server was down: the value went only to the
  server's history, for HistoryRead), ``changed`` (false for a value written again unchanged,
  which a subscription with the default filter does not report);
* ``cycle``: a press cycle as published (``delivered`` false while the MQTT link was down), or a
  tunnel kiln car push (``event: car_push``);
* ``state``: a state change with its reason;
* ``fault``: an injected fault, ``fault``, ``phase`` start|end and its parameters;
* ``firing``: a firing's ``phase`` start|end with ``firing_id`` and ``programme``.

Lines are flushed one by one so a test can read the file while the simulator runs. ``None`` for
``directory`` records nothing (a no-op writer), so callers never branch on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any


def truth_filename(asset: str) -> str:
    return asset.replace("/", "__") + ".jsonl"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TruthWriter:
    """Appends ground-truth lines per asset. Called only from the fleet's event loop thread."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._files: dict[str, IO[str]] = {}
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, asset: str) -> Path | None:
        return self.directory / truth_filename(asset) if self.directory else None

    def write(self, asset: str, record: dict[str, Any]) -> None:
        if self.directory is None:
            return
        f = self._files.get(asset)
        if f is None:
            f = open(self.directory / truth_filename(asset), "a", encoding="utf-8")  # noqa: SIM115
            self._files[asset] = f
        if "value" in record and isinstance(record["value"], float) and math.isnan(record["value"]):
            record = {**record, "nan": True}
        clean = {k: _clean(v) for k, v in record.items()}
        f.write(json.dumps(clean, separators=(",", ":")) + "\n")
        f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read a truth file (tests, tools); a half-written last line is ignored."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out
