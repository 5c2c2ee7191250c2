"""MetadataStore: every read and write of the relational metadata, as parametrised statements.

Called by the API's routes and services (through ``api.deps.MetaDep``) and by ``kilnworks
serve create-token``. Methods take and return plain values and small dataclasses; no SQL text
ever leaves this module and no caller-supplied text is ever formatted into SQL.
Database errors propagate as ``sqlalchemy.exc.SQLAlchemyError`` (the API answers 503).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.metadata import tables as t


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    secret_sha256: str
    name: str
    role: str
    enterprise: str | None
    created_ns: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class FiringRow:
    asset: str
    firing_id: str
    enterprise: str
    programme: str
    programme_segments: str
    start_ns: int
    end_ns: int | None
    state: str
    conformance_score: float | None
    energy_kwh: float | None


@dataclass(frozen=True, slots=True)
class GradingRow:
    asset: str
    firing_id: str
    enterprise: str
    good_count: int
    reject_count: int
    reject_reasons: dict[str, int]
    fired_mass_kg: float | None
    graded_ns: int
    graded_by: str


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    id: int
    enterprise: str
    submitted_ns: int
    submitted_by: str
    levels: dict[str, int]
    note: str


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    enterprise: str
    asset: str
    kind: str
    subject: str
    severity: str
    message: str
    start_ns: int
    last_ns: int
    end_ns: int | None
    acked_ns: int | None
    acked_by: str | None


def open_engine(url: str) -> Engine:
    """An engine for ``sqlite:///...`` or ``postgresql+psycopg://...``.

    SQLite gets WAL and a busy timeout because the API's worker threads and the alarm
    evaluator write concurrently; without them a reader would see "database is locked".
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


# What kiln OEE takes from a firing's row: when it ended (a car out), its programme (the
# nameplate rate) and its start (which windows the firing overlaps, so which firings' programmes
# set that rate and whether a window is still open). Not the score or energy. The start used to
# be left out because every scan over a window beginning after the firing did moved it later (a
# tunnel kiln's campaign "changed" on every scan); now a start only ever moves earlier, which
# happens when telemetry of the firing's beginning is seen for the first time (a wider window,
# or an edge agent's history gap-fill arriving after the live data): results computed without
# it may be wrong, and it is rare enough to drop them.
FIRING_FACTS = ("start_ns", "end_ns", "state", "programme_segments")


def _merge_firing(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What to write over the recorded firing ``old`` after a scan derived ``new``.

    A scan sees only its window, so it only ever adds to what is known. One that began after
    the firing did saw part of it: its start is the window's first sample and its programme was
    looked up at that time, so both stay as recorded (an earlier start is taken, with the
    programme found there). A finished firing is history: a scan of a window that ended before
    the firing did sees it running, so its end and state stay as recorded. Cached score and
    energy are kept unless the start moved (they were judged over the part known before).
    """
    merged = dict(new)
    if old["start_ns"] <= new["start_ns"]:
        merged["start_ns"] = old["start_ns"]
        if old["end_ns"] is not None or old["start_ns"] < new["start_ns"]:
            merged["programme"] = old["programme"]
            merged["programme_segments"] = old["programme_segments"]
        for name in ("conformance_score", "energy_kwh"):  # never forgotten for lack of one
            if merged[name] is None:
                merged[name] = old[name]
    if old["end_ns"] is not None:
        merged["end_ns"], merged["state"] = old["end_ns"], old["state"]
    return merged


class MetadataStore:
    """The metadata of one deployment. Thread-safe (a connection per call from the pool).

    Writes that change what OEE is computed from (a grading put, a firing recorded or its
    facts changed) are announced to the listeners (:meth:`add_listener`) with the asset's path
    after they are committed: the API's OEE cache drops that asset's results. Only writes
    through this object are seen; another process writing the same database is not.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[str], None]] = []
        self._listeners_lock = threading.Lock()
        self._firings_lock = threading.Lock()

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(asset_path)`` after each committed write that changes OEE inputs."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _changed(self, asset: str) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(asset)

    @classmethod
    def open(cls, url: str) -> MetadataStore:
        store = cls(open_engine(url))
        store.create_schema()
        return store

    def create_schema(self) -> None:
        """Create missing tables (idempotent; called at start-up)."""
        t.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- tokens -------------------------------------------------------------------------------

    def add_token(self, row: TokenRow) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.tokens).values(**_asdict(row)))

    def token(self, token_id: str) -> TokenRow | None:
        with self.engine.connect() as c:
            r = c.execute(select(t.tokens).where(t.tokens.c.id == token_id)).mappings().first()
        return TokenRow(**r) if r else None

    def tokens(self) -> list[TokenRow]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.tokens).order_by(t.tokens.c.created_ns)).mappings()
            return [TokenRow(**r) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self.engine.begin() as c:
            n = c.execute(
                update(t.tokens).where(t.tokens.c.id == token_id).values(revoked=True)
            ).rowcount
        return n > 0

    # -- firings ------------------------------------------------------------------------------

    def upsert_firing(self, row: FiringRow) -> None:
        """Record a firing derived from a scan of telemetry, merged with what earlier scans
        knew (:func:`_merge_firing`: a start only moves earlier, a finished firing stays
        finished); idempotent. Listeners hear of a new firing or changed facts
        (``FIRING_FACTS``), not of a re-scan that found nothing new."""
        values = _asdict(row)
        key = and_(t.firings.c.asset == row.asset, t.firings.c.firing_id == row.firing_id)
        # Read, merge and write as one step: two scans merging against the same old row would
        # otherwise let the narrower one write back a start the wider one had just moved
        # earlier. The lock covers this process (SQLite's reads run outside the write
        # transaction); FOR UPDATE covers other processes on PostgreSQL.
        with self._firings_lock, self.engine.begin() as c:
            existing = c.execute(select(t.firings).where(key).with_for_update()).mappings().first()
            if existing is None:
                try:
                    # The savepoint keeps PostgreSQL's transaction usable after a conflict.
                    with c.begin_nested():
                        c.execute(insert(t.firings).values(**values))
                    changed = True
                except IntegrityError:  # another process inserted it first: merge with that
                    existing = (
                        c.execute(select(t.firings).where(key).with_for_update()).mappings().one()
                    )
            if existing is not None:
                merged = _merge_firing(existing, values)
                changed = any(existing[name] != merged[name] for name in FIRING_FACTS)
                if any(existing[name] != value for name, value in merged.items()):
                    c.execute(update(t.firings).where(key).values(**merged))
        if changed:
            self._changed(row.asset)

    def firings(
        self,
        *,
        asset: str | None = None,
        enterprises: Iterable[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[FiringRow]:
        """Firings overlapping ``[start_ns, end_ns)``, newest first."""
        q = select(t.firings)
        if asset is not None:
            q = q.where(t.firings.c.asset == asset)
        if enterprises is not None:
            q = q.where(t.firings.c.enterprise.in_(list(enterprises)))
        if end_ns is not None:
            q = q.where(t.firings.c.start_ns < end_ns)
        if start_ns is not None:
            q = q.where((t.firings.c.end_ns.is_(None)) | (t.firings.c.end_ns >= start_ns))
        q = q.order_by(t.firings.c.start_ns.desc())
        with self.engine.connect() as c:
            return [FiringRow(**r) for r in c.execute(q).mappings()]

    def firing(self, asset: str, firing_id: str) -> FiringRow | None:
        q = select(t.firings).where(
            and_(t.firings.c.asset == asset, t.firings.c.firing_id == firing_id)
        )
        with self.engine.connect() as c:
            r = c.execute(q).mappings().first()
        return FiringRow(**r) if r else None

    # -- gradings -----------------------------------------------------------------------------

    def put_grading(self, row: GradingRow) -> None:
        """Record (or replace) the grading result of a firing: a late re-grade overrides."""
        values = _asdict(row)
        values["reject_reasons"] = json.dumps(row.reject_reasons, sort_keys=True)
        key = and_(t.gradings.c.asset == row.asset, t.gradings.c.firing_id == row.firing_id)
        with self.engine.begin() as c:
            c.execute(delete(t.gradings).where(key))
            c.execute(insert(t.gradings).values(**values))
        self._changed(row.asset)

    def gradings(
        self, *, asset: str | None = None, enterprises: Iterable[str] | None = None
    ) -> list[GradingRow]:
        q = select(t.gradings)
        if asset is not None:
            q = q.where(t.gradings.c.asset == asset)
        if enterprises is not None:
            q = q.where(t.gradings.c.enterprise.in_(list(enterprises)))
        with self.engine.connect() as c:
            return [_grading(r) for r in c.execute(q).mappings()]

    def grading(self, asset: str, firing_id: str) -> GradingRow | None:
        q = select(t.gradings).where(
            and_(t.gradings.c.asset == asset, t.gradings.c.firing_id == firing_id)
        )
        with self.engine.connect() as c:
            r = c.execute(q).mappings().first()
        return _grading(r) if r else None

    # -- digitalisation assessments -----------------------------------------------------------

    def add_assessment(
        self, enterprise: str, submitted_ns: int, submitted_by: str, levels: dict, note: str
    ) -> AssessmentRow:
        with self.engine.begin() as c:
            result = c.execute(
                insert(t.assessments).values(
                    enterprise=enterprise,
                    submitted_ns=submitted_ns,
                    submitted_by=submitted_by,
                    levels=json.dumps(levels, sort_keys=True),
                    note=note,
                )
            )
            new_id = int(result.inserted_primary_key[0])
        return AssessmentRow(new_id, enterprise, submitted_ns, submitted_by, dict(levels), note)

    def assessments(self, enterprise: str) -> list[AssessmentRow]:
        q = (
            select(t.assessments)
            .where(t.assessments.c.enterprise == enterprise)
            .order_by(t.assessments.c.submitted_ns, t.assessments.c.id)
        )
        with self.engine.connect() as c:
            return [
                AssessmentRow(**{**r, "levels": json.loads(r["levels"])})
                for r in c.execute(q).mappings()
            ]

    # -- alarms -------------------------------------------------------------------------------

    def raise_alarm(
        self,
        *,
        enterprise: str,
        asset: str,
        kind: str,
        subject: str,
        severity: str,
        message: str,
        now_ns: int,
    ) -> AlarmRow:
        """Open an alarm, or refresh the open one for the same (asset, kind, subject)."""
        open_key = f"{asset}|{kind}|{subject}"
        with self.engine.begin() as c:
            existing = (
                c.execute(select(t.alarms).where(t.alarms.c.open_key == open_key))
                .mappings()
                .first()
            )
            if existing:
                c.execute(
                    update(t.alarms)
                    .where(t.alarms.c.id == existing["id"])
                    .values(last_ns=now_ns, message=message, severity=severity)
                )
                alarm_id = existing["id"]
            else:
                alarm_id = c.execute(
                    insert(t.alarms).values(
                        enterprise=enterprise,
                        asset=asset,
                        kind=kind,
                        subject=subject,
                        severity=severity,
                        message=message,
                        start_ns=now_ns,
                        last_ns=now_ns,
                        open_key=open_key,
                    )
                ).inserted_primary_key[0]
            r = c.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).mappings().one()
        return _alarm(r)

    def clear_alarms(self, asset: str, keep: set[tuple[str, str]], now_ns: int) -> int:
        """End the open alarms of ``asset`` whose (kind, subject) is not in ``keep``."""
        with self.engine.begin() as c:
            rows = c.execute(
                select(t.alarms.c.id, t.alarms.c.kind, t.alarms.c.subject).where(
                    and_(t.alarms.c.asset == asset, t.alarms.c.open_key.is_not(None))
                )
            ).all()
            ended = [r.id for r in rows if (r.kind, r.subject) not in keep]
            if ended:
                c.execute(
                    update(t.alarms)
                    .where(t.alarms.c.id.in_(ended))
                    .values(end_ns=now_ns, open_key=None)
                )
        return len(ended)

    def alarms(
        self,
        *,
        enterprises: Iterable[str] | None = None,
        asset: str | None = None,
        active_only: bool = False,
        limit: int = 500,
    ) -> list[AlarmRow]:
        q = select(t.alarms)
        if enterprises is not None:
            q = q.where(t.alarms.c.enterprise.in_(list(enterprises)))
        if asset is not None:
            q = q.where(t.alarms.c.asset == asset)
        if active_only:
            q = q.where(t.alarms.c.end_ns.is_(None))
        q = q.order_by(t.alarms.c.start_ns.desc(), t.alarms.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            return [_alarm(r) for r in c.execute(q).mappings()]

    def alarm(self, alarm_id: int) -> AlarmRow | None:
        with self.engine.connect() as c:
            r = c.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).mappings().first()
        return _alarm(r) if r else None

    def ack_alarm(self, alarm_id: int, by: str, now_ns: int) -> AlarmRow | None:
        """Acknowledge an alarm (the first acknowledgement wins; later ones change nothing)."""
        with self.engine.begin() as c:
            c.execute(
                update(t.alarms)
                .where(and_(t.alarms.c.id == alarm_id, t.alarms.c.acked_ns.is_(None)))
                .values(acked_ns=now_ns, acked_by=by)
            )
            r = c.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).mappings().first()
        return _alarm(r) if r else None


def _asdict(row: object) -> dict:
    return {name: getattr(row, name) for name in row.__slots__}  # type: ignore[attr-defined]


def _grading(r: dict) -> GradingRow:
    return GradingRow(**{**r, "reject_reasons": json.loads(r["reject_reasons"])})


def _alarm(r: dict) -> AlarmRow:
    return AlarmRow(**{k: v for k, v in r.items() if k != "open_key"})
