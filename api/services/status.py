"""Connection status of assets: last seen and connected, from the store's latest readings."""

from __future__ import annotations

from dataclasses import dataclass

from core.reading import Reading
from ingest.contracts import Store


@dataclass(frozen=True, slots=True)
class AssetStatus:
    last_seen_ns: int | None
    connected: bool
    latest: dict[str, Reading]


def asset_status(store: Store, asset: str, now_ns: int, silent_after_s: float) -> AssetStatus:
    """Latest readings of ``asset`` and whether it reported within ``silent_after_s``.

    "Last seen" is the newest *source* time of any field; a source clock that runs ahead of
    ours (skew) counts as seen now, not as seen in the future.
    """
    latest = store.latest(asset)
    if not latest:
        return AssetStatus(None, False, latest)
    last = min(max(r.source_time_ns for r in latest.values()), now_ns)
    return AssetStatus(last, now_ns - last <= int(silent_after_s * 1e9), latest)
