"""Roll-ups: shift -> day, asset -> line -> site -> enterprise -> town, always time-weighted.

A roll-up sums the additive fields of :class:`~analytics.oee_result.OeeResult` (time elements,
quantities, ideal times) and lets the result's properties divide the sums. It never averages
ratios: a press that was planned for 8 hours weighs eight times one planned for 1 hour, and a
kiln's quality weighs by the ideal time of what it fired. ``tests/analytics/test_rollup.py``
shows a case where the mean of OEEs and the rolled-up OEE differ.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.oee_result import ADDITIVE, OeeResult, merge_reasons


def rollup(results: Iterable[OeeResult], *, scope: str = "", period: str = "") -> OeeResult:
    """Sum ``results`` into one result labelled ``scope`` / ``period``.

    The window spans the earliest start to the latest end. ``ideal_known`` holds only if every
    part knows its ideal time (a part without one would make performance look better than it
    is); ``unit`` is ``"mixed"`` when parts count different things. The same asset-period
    twice raises ValueError: that is double counting, not a roll-up. An empty input gives an
    empty result (every ratio None with a reason).
    """
    parts = list(results)
    if not parts:
        return OeeResult(scope, period, 0, 0, parts=0)
    seen: set[tuple[str, str, int, int]] = set()
    for p in parts:
        if p.parts == 1:
            key = (p.scope, p.period, p.window_start_ns, p.window_end_ns)
            if p.scope and key in seen:
                raise ValueError(f"rollup: {p.scope} {p.period or ''} appears twice")
            seen.add(key)
    sums = {name: sum(getattr(p, name) for p in parts) for name in ADDITIVE}
    units = {p.unit for p in parts}
    notes = tuple(dict.fromkeys(n for p in parts for n in p.notes))
    return OeeResult(
        scope=scope,
        period=period,
        window_start_ns=min(p.window_start_ns for p in parts),
        window_end_ns=max(p.window_end_ns for p in parts),
        downtime_by_reason=merge_reasons([p.downtime_by_reason for p in parts]),
        unit=units.pop() if len(units) == 1 else "mixed",
        ideal_known=all(p.ideal_known for p in parts),
        notes=notes,
        **sums,
    )


def _ancestors(path: str) -> list[str]:
    """``e/s/l/a`` -> ``["e/s/l/a", "e/s/l", "e/s", "e", ""]`` ("" is the town)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def rollup_hierarchy(results: Iterable[OeeResult], *, period: str = "") -> dict[str, OeeResult]:
    """Roll asset results up the ISA-95 tree.

    Every ``result.scope`` must be an asset path ``enterprise/site/line/asset`` (ValueError
    otherwise). Returns a result for each asset, line ``e/s/l``, site ``e/s``, enterprise
    ``e`` and the town ``""``; each is the time-weighted roll-up of the assets below it.
    """
    groups: dict[str, list[OeeResult]] = {}
    for r in results:
        if len(r.scope.split("/")) != 4 or not all(r.scope.split("/")):
            raise ValueError(
                f"rollup_hierarchy: scope {r.scope!r} is not an asset path "
                "enterprise/site/line/asset"
            )
        for node in _ancestors(r.scope):
            groups.setdefault(node, []).append(r)
    return {node: rollup(parts, scope=node, period=period) for node, parts in groups.items()}


__all__ = ["rollup", "rollup_hierarchy"]
