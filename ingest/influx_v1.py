"""The InfluxDB v1 HTTP dialect (``/write``, ``/query`` with InfluxQL) as a kilnworks Store.

InfluxDB 1.x serves this API natively; InfluxDB 2.x/3.x serve it as a compatibility endpoint
(token auth, database = bucket mapping). Opened by URL (``ingest.stores.open_store``)::

    influxdb://[user:password@]host:port/database[?option=value&...]

Options: ``token`` (sends ``Authorization: Token ...``, InfluxDB 2.x/3.x), ``timeout`` (seconds
per HTTP request, default 10), ``precision`` (``ns`` default; ``u``/``ms``/``s`` truncate
stored timestamps), ``rp`` (retention policy, default the database's default), ``create``
(``true``: create the database before the first write if it is missing; off by default so a
typo in the URL fails loudly instead of filling a new database), ``tls`` (``1``: https),
``verify`` (``0``: accept any TLS certificate; a test rig only), ``max_body_mb`` (split
writes above this size; InfluxDB 1.x refuses bodies over 25 MB by default), ``gzip`` (``1``:
compress writes and accept compressed answers; off by default because influxd's gzip costs
~4x the time of a query on a plant-LAN link, worth it only over a slow WAN).

Writes (called by the forwarder thread, ``ingest/writer.py``): one POST per call, split only
when the body is too large. Readings that cannot be encoded come back rejected without a
request; when InfluxDB answers 400 (a partial write: a field-type conflict, a point outside the
retention policy) the good points of the batch *are* written (InfluxDB 1.x writes them) and
the refused ones are found, from InfluxDB's message when it names them exactly, else by
bisecting the batch (re-sending halves is harmless: writes are idempotent).

Errors: :class:`ingest.contracts.StoreUnavailable` for refused connections, timeouts, 5xx and
429; its subclasses :class:`StoreAuthError` (401/403) and :class:`DatabaseNotFound` (404) say
what an operator must fix. They are "unavailable" on purpose: the spool keeps the data and the
forwarder retries until the operator fixes the token or creates the database, instead of
dead-lettering good readings for a configuration mistake. :class:`InfluxQueryError` is a query
InfluxDB refused (a bug here, or an aggregate a field's type does not support).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import operator
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import httpx
import numpy as np

from core.reading import KIND_BOOL, KIND_FLOAT, KIND_INT, KIND_STR, Quality, Reading, ReadingBatch
from ingest.contracts import AGGREGATES, Rejected, Series, StoreUnavailable, WriteResult
from ingest.influxql import duration_ns, int_literal, quote_ident, quote_regex_prefix, quote_string
from ingest.lineprotocol import EncodedBatch, encode_batch
from ingest.paging import DEFAULT_PAGE_SIZE, check_page_size, pages_by_time
from ingest.store_url import StoreURL

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BODY_MB = 20.0
# Rows per chunk of a chunked answer (InfluxDB sends a series longer than this in pieces).
CHUNK_ROWS = 100_000
_OPTIONS = (
    "token",
    "timeout",
    "precision",
    "rp",
    "create",
    "tls",
    "verify",
    "max_body_mb",
    "gzip",
)
# InfluxDB field type -> the batch kind a reading of that type has.
FIELD_KINDS = {"float": KIND_FLOAT, "integer": KIND_INT, "boolean": KIND_BOOL, "string": KIND_STR}
_CONFLICT = re.compile(
    r'field type conflict: input field "value" on measurement (".*?(?<!\\)") is type \w+, '
    r"already exists as type (\w+) dropped=(\d+)"
)


class StoreAuthError(StoreUnavailable, PermissionError):
    """InfluxDB refused the credentials (401) or the permission (403). Fix the store URL's
    user/password or token; the spool keeps the readings meanwhile."""


class DatabaseNotFound(StoreUnavailable):
    """The database does not exist (create it, or open the store with ``?create=true``)."""


class InfluxQueryError(RuntimeError):
    """InfluxDB refused a query or a request for a reason retrying cannot fix."""


@dataclass(frozen=True, slots=True)
class InfluxV1Config:
    """Where and how to reach the v1 API; built from a store URL by :meth:`from_url`."""

    host: str
    port: int
    database: str
    username: str = ""
    password: str = ""
    token: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    precision: str = "ns"
    retention_policy: str = ""
    create: bool = False
    tls: bool = False
    verify_tls: bool = True
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1_000_000)
    gzip: bool = False

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def redacted(self) -> str:
        """The URL for logs and error messages: never the password or the token."""
        user = f"{self.username}:***@" if self.username else ""
        token = "?token=***" if self.token else ""
        return f"influxdb://{user}{self.host}:{self.port}/{self.database}{token}"

    @classmethod
    def from_url(cls, url: str) -> InfluxV1Config:
        """Parse ``influxdb://[user:password@]host:port/database[?options]``; ValueError
        naming the part that is wrong (the password is never echoed)."""
        u = StoreURL(url, "influxdb", "influxdb://127.0.0.1:8086/plant", _OPTIONS)
        database = unquote(u.path.lstrip("/"))
        if not database or "/" in database:
            raise u.bad("expected one database name after host:port")
        return cls(
            host=u.host,
            port=u.port,
            database=database,
            username=unquote(u.username),
            password=unquote(u.password),
            token=u.options.get("token", ""),
            timeout_s=u.number("timeout", DEFAULT_TIMEOUT_S),
            precision=u.precision(),
            retention_policy=u.options.get("rp", ""),
            create=u.flag("create", False),
            tls=u.flag("tls", False),
            verify_tls=u.flag("verify", True),
            max_body_bytes=int(u.number("max_body_mb", DEFAULT_MAX_BODY_MB) * 1_000_000),
            gzip=u.flag("gzip", False),
        )


def make_client(
    config: InfluxV1Config, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """A keep-alive HTTP client with the URL's credentials; the default client factory.
    ``transport`` replaces the network (``httpx.MockTransport`` in unit tests)."""
    # Measured: influxd gzipping a 1M-row answer takes ~4x as long as sending it plain.
    headers = {"User-Agent": "kilnworks", "Accept-Encoding": "gzip" if config.gzip else "identity"}
    auth = None
    if config.token:
        headers["Authorization"] = f"Token {config.token}"
    elif config.username:
        auth = httpx.BasicAuth(config.username, config.password)
    return httpx.Client(
        base_url=config.base_url,
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(config.timeout_s),
        verify=config.verify_tls,
        transport=transport,
    )


ClientFactory = Callable[[InfluxV1Config], httpx.Client]


class InfluxV1Store:
    """An :class:`ingest.contracts.Store` over InfluxDB's v1 HTTP API (see module docstring).

    Thread-safe: the forwarder writes from its thread while the API reads from others.
    """

    def __init__(self, config: InfluxV1Config, client_factory: ClientFactory = make_client):
        self.config = config
        self._client = client_factory(config)
        self._created = False
        self._create_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, client_factory: ClientFactory = make_client) -> InfluxV1Store:
        """Open a store from its URL; checks the URL, does not connect (connect late)."""
        return cls(InfluxV1Config.from_url(url), client_factory)

    def __repr__(self) -> str:
        return f"InfluxV1Store({self.config.redacted()})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> InfluxV1Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            resp = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"InfluxDB {self.config.redacted()} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        return self._check(resp)

    def _check(self, resp: httpx.Response) -> httpx.Response:
        status = resp.status_code
        if status in (401, 403):
            raise StoreAuthError(
                f"InfluxDB {self.config.redacted()} refused the credentials ({status}: "
                f"{_error_text(resp)}); check the user/password or token in the store URL"
            )
        if status >= 500 or status in (408, 429):
            raise StoreUnavailable(
                f"InfluxDB {self.config.redacted()} answered {status}: {_error_text(resp)}"
            )
        return resp

    def query(self, statement: str, *, csv: bool = False, chunked: bool = False) -> httpx.Response:
        """POST one InfluxQL statement (or several, ``;``-separated) to /query with
        ``epoch=ns``. Build statements only with :mod:`ingest.influxql`. Raises
        :class:`InfluxQueryError` for a refused query and StoreUnavailable like ``write``.
        ``csv`` answers are chunked; ``chunked`` asks for a chunked JSON answer."""
        params = {"db": self.config.database, "epoch": "ns"}
        headers = {}
        if csv or chunked:
            # chunked keeps InfluxDB from buffering the whole result in its memory, and its
            # [http] max-row-limit, which silently cuts non-chunked answers short, does not
            # apply to chunked ones.
            params |= {"chunked": "true", "chunk_size": str(CHUNK_ROWS)}
        if csv:
            # CSV is ~3x faster than JSON for InfluxDB to produce and for us to parse.
            headers["Accept"] = "application/csv"
        resp = self._request(
            "POST", "/query", params=params, data={"q": statement}, headers=headers
        )
        if resp.status_code != 200:
            raise InfluxQueryError(f"InfluxDB refused {statement!r}: {_error_text(resp)}")
        return resp

    def _query_json(self, statement: str) -> list[dict]:
        """The ``results`` of a JSON query, one per statement; raises on any error. The
        answer is chunked (never cut short by a ``max-row-limit``) and its chunks joined."""
        chunks = _json_chunks(self.query(statement, chunked=True).text)
        results = _join_chunks(chunks, statement)
        for result in results:
            error = result.get("error")
            if error and error.startswith("database not found"):
                if self.config.create:
                    return [{} for _ in results]
                raise DatabaseNotFound(f"InfluxDB {self.config.redacted()}: {error}")
            if error:
                raise InfluxQueryError(f"InfluxDB refused {statement!r}: {error}")
            if result.get("partial") or any(x.get("partial") for x in result["series"]):
                raise InfluxQueryError(
                    f"InfluxDB {self.config.redacted()} ended its answer to {statement!r} "
                    "before its last chunk"
                )
        return results

    def _from(self, measurement: str) -> str:
        if self.config.retention_policy:
            return (
                f"{quote_ident(self.config.database)}."
                f"{quote_ident(self.config.retention_policy)}.{quote_ident(measurement)}"
            )
        return quote_ident(measurement)

    def create_database(self) -> None:
        """``CREATE DATABASE`` (idempotent in InfluxDB). Called before the first write when
        the URL says ``create=true``; call it yourself to set up a database once."""
        self._query_json(f"CREATE DATABASE {quote_ident(self.config.database)}")

    # ------------------------------------------------------------------------ write

    def write(self, batch: ReadingBatch) -> WriteResult:
        """Write a batch now (see module docstring). Idempotent: writing the same readings
        again overwrites the same points."""
        encoded = encode_batch(batch, self.config.precision)
        result = WriteResult(0, list(encoded.rejected))
        if len(encoded) == 0:
            return result
        if self.config.create and not self._created:
            with self._create_lock:
                if not self._created:
                    self.create_database()
                    self._created = True
        lines = Lines(batch, encoded, self.config.precision)
        for lo, hi in lines.chunks(self.config.max_body_bytes):
            written, rejected = self._write_range(lines, lo, hi)
            result.written += written
            result.rejected.extend(rejected)
        if result.rejected:
            log.warning(
                "%s: %d of %d readings rejected; first: %s",
                self.config.redacted(),
                len(result.rejected),
                len(batch),
                result.rejected[0].reason,
            )
        return result

    def _post_write(self, body: bytes) -> httpx.Response:
        params = {"db": self.config.database, "precision": self.config.precision}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        headers = {}
        if self.config.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        resp = self._request("POST", "/write", params=params, content=body, headers=headers)
        if resp.status_code == 404:
            raise DatabaseNotFound(
                f"InfluxDB {self.config.redacted()}: {_error_text(resp)} (create it, or add "
                "?create=true to the store URL)"
            )
        return resp

    def _write_range(self, lines: Lines, lo: int, hi: int) -> tuple[int, list[Rejected]]:
        def post(body: bytes) -> tuple[int, str]:
            resp = self._post_write(body)
            return resp.status_code, _error_text(resp)

        return write_isolating(lines, lo, hi, post, self.config.redacted())

    # ------------------------------------------------------------------------ read

    def field_types(self, measurements: list[str]) -> dict[str, str]:
        """InfluxDB's type (float, integer, boolean, string) of the ``value`` field of each
        measurement that exists."""
        if not measurements:
            return {}
        sources = ",".join(self._from(m) for m in measurements)
        results = self._query_json(f"SHOW FIELD KEYS FROM {sources}")
        types = {}
        for s in results[0].get("series", []) if results else []:
            for key, kind in s.get("values", []):
                if key == "value":
                    types[s["name"]] = kind
        return types

    def series(
        self,
        asset: str,
        field: str,
        start_ns: int,
        end_ns: int,
        *,
        window_ns: int | None = None,
        aggregate: str = "mean",
    ) -> Series:
        """See :meth:`ingest.contracts.Store.series`. Numeric and boolean fields come back
        as float64, text as an object array. ``mean``/``sum``/``min``/``max`` of a text field
        raise ValueError; booleans are aggregated here as 0/1 (InfluxQL cannot)."""
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate {aggregate!r}: expected one of {', '.join(AGGREGATES)}")
        kind = self.field_types([field]).get(field)
        if kind is None or end_ns <= start_ns:
            return _empty_series(kind == "string")
        where = f'WHERE "asset" = {quote_string(asset)} AND {_time_range(start_ns, end_ns)}'
        source = self._from(field)
        if window_ns is None:
            statement = f'SELECT "value","quality" FROM {source} {where}'
        else:
            window = duration_ns(window_ns)
            if kind == "string" and aggregate not in ("first", "last", "count"):
                raise ValueError(f"aggregate {aggregate!r} is not defined for text field {field!r}")
            if kind == "boolean" and aggregate not in ("first", "last", "count"):
                return _downsample(
                    self.series(asset, field, start_ns, end_ns), window_ns, aggregate
                )
            statement = (
                f'SELECT {aggregate}("value"),max("quality") FROM {source} {where} '
                f"GROUP BY time({window}) fill(none)"
            )
        numeric = kind in ("float", "integer")
        if numeric or (aggregate == "count" and window_ns is not None):
            return self._query_numeric(statement)
        resp = self.query(statement, csv=True)
        return _parse_csv_rows(resp.content, boolean=kind == "boolean")

    def _query_numeric(self, statement: str) -> Series:
        """Stream a CSV answer of ``time, value, quality`` rows into NumPy, parsing blocks
        while InfluxDB is still sending: influxd formats on one core while we parse on the
        other, so a 1M-point series costs about the download alone."""
        params = {
            "db": self.config.database,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(CHUNK_ROWS),
        }
        blocks = _CsvBlocks()
        try:
            with self._client.stream(
                "POST",
                "/query",
                params=params,
                data={"q": statement},
                headers={"Accept": "application/csv"},
            ) as resp:
                if resp.status_code != 200:
                    resp.read()
                    self._check(resp)
                    raise InfluxQueryError(f"InfluxDB refused {statement!r}: {_error_text(resp)}")
                for data in resp.iter_bytes(1 << 20):
                    blocks.feed(data)
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"InfluxDB {self.config.redacted()} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        return blocks.finish()

    def readings(
        self, asset: str, field: str, start_ns: int, end_ns: int, *, limit: int | None = None
    ) -> list[Reading]:
        """The stored readings of one field of an asset in ``[start_ns, end_ns)``, exactly as
        written (value type, quality, receive time, unit), oldest first; points sharing a
        time (one per unit tag) ordered by unit. ``limit=None`` reads them all, in pages
        (:meth:`iter_readings`); with a ``limit``, at most that many in one query, which may
        cut a group of points sharing a time: to page, use :meth:`iter_readings`."""
        if limit is None:
            return list(self.iter_readings(asset, field, start_ns, end_ns))
        kind = self.field_types([field]).get(field)
        if kind is None:
            return []
        rows = self._raw_readings(asset, field, start_ns, end_ns, max(1, limit))
        return list(_readings_of(rows, asset, field, kind))

    def iter_readings(
        self,
        asset: str,
        field: str,
        start_ns: int,
        end_ns: int,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Reading]:
        """The readings :meth:`readings` returns, in the same order, read ``page_size`` at a
        time (``time >= cursor AND time < window end ... ORDER BY time LIMIT page_size`` per
        query, the window adapted to the data, see :mod:`ingest.paging`), so memory and each
        query, including the shards it touches, stay bounded however long the range.
        Nothing is skipped or repeated at a page boundary, also where points share a time.
        ``kilnworks export`` reads with this."""
        check_page_size(page_size)
        _time_range(start_ns, end_ns)  # type-check the bounds now, not at the first next()
        return self._iter_readings(asset, field, start_ns, end_ns, page_size)

    def _iter_readings(
        self, asset: str, field: str, start_ns: int, end_ns: int, page_size: int
    ) -> Iterator[Reading]:
        kind = self.field_types([field]).get(field)
        if kind is None:
            return

        def read(start: int, end: int, limit: int | None) -> list[list]:
            return self._raw_readings(asset, field, start, end, limit)

        # windowed: each query's range bounded too, else InfluxDB plans every shard from the
        # cursor to the end for every page (see ingest.paging)
        pages = pages_by_time(read, start_ns, end_ns, page_size, time_of=_row_time, windowed=True)
        for rows in pages:
            yield from _readings_of(rows, asset, field, kind)

    def _raw_readings(
        self, asset: str, field: str, start_ns: int, end_ns: int, limit: int | None
    ) -> list[list]:
        """One query: InfluxDB's rows ``[time, value, quality, received_ns, unit]`` ordered by
        time, then unit, the first ``limit`` of them (None: all)."""
        where = _time_range(start_ns, end_ns)
        if operator.index(end_ns) <= operator.index(start_ns):
            return []
        statement = (
            f'SELECT "value","quality","received_ns","unit" FROM {self._from(field)} '
            f'WHERE "asset" = {quote_string(asset)} AND {where}'
        )
        if limit is not None:
            statement += f" ORDER BY time ASC LIMIT {int_literal(limit)}"
        (result,) = self._query_json(statement)
        rows = []
        for s in result.get("series", []):
            if s["columns"] != _READING_COLUMNS:
                raise InfluxQueryError(f"unexpected columns {s['columns']} for {statement!r}")
            rows.extend(s["values"])
        # InfluxDB merges the series of one measurement (one per unit tag) in no fixed order
        # where they share a time; order them by unit so that every read agrees (a stable
        # sort, linear on rows already in time order).
        rows.sort(key=_row_time_and_unit)
        return rows

    def latest(self, asset: str) -> dict[str, Reading]:
        """See :meth:`ingest.contracts.Store.latest`."""
        fields = [f for a, f in self.list_series_exact(asset)]
        types = self.field_types(fields)
        # One statement per measurement: InfluxDB 1.x returns nulls when one SELECT spans
        # measurements whose "value" fields have different types.
        statements = [
            f'SELECT "value","quality","received_ns","unit" FROM {self._from(f)} '
            f'WHERE "asset" = {quote_string(asset)} ORDER BY time DESC LIMIT 1'
            for f in fields
            if f in types
        ]
        if not statements:
            return {}
        out: dict[str, Reading] = {}
        for result in self._query_json(";".join(statements)):
            for s in result.get("series", []):
                if s["columns"] != _READING_COLUMNS:
                    raise InfluxQueryError(f"unexpected columns {s['columns']} from latest")
                for r in _readings_of(s["values"], asset, s["name"], types[s["name"]]):
                    out[r.field] = r
        return out

    def list_series_exact(self, asset: str) -> list[tuple[str, str]]:
        """The (asset, field) pairs of exactly this asset."""
        return self._tag_values(f'WHERE "asset" = {quote_string(asset)}')

    def list_series(self, asset_prefix: str = "") -> list[tuple[str, str]]:
        """See :meth:`ingest.contracts.Store.list_series`."""
        where = f'WHERE "asset" =~ {quote_regex_prefix(asset_prefix)}' if asset_prefix else ""
        return self._tag_values(where)

    def _tag_values(self, where: str) -> list[tuple[str, str]]:
        rp = self.config.retention_policy
        source = f"{quote_ident(self.config.database)}.{quote_ident(rp)}./.*/" if rp else "/.*/"
        (result,) = self._query_json(f'SHOW TAG VALUES FROM {source} WITH KEY = "asset" {where}')
        pairs = {(value, s["name"]) for s in result.get("series", []) for _, value in s["values"]}
        return sorted(pairs)


# ---------------------------------------------------------------------------- helpers


class Lines:
    """The encoded lines of a batch, addressable by position for chunking and bisection
    (used by :func:`write_isolating`)."""

    def __init__(self, batch: ReadingBatch, encoded: EncodedBatch, precision: str) -> None:
        self.batch = batch
        self.encoded = encoded
        self.precision = precision
        n = len(encoded)
        # Splitting the body on newlines is exact unless a text value holds a newline; then
        # sub-ranges are re-encoded instead.
        self._split: list[bytes] | None = None
        if encoded.body.count(b"\n") == n - 1:
            self._whole = encoded.body
        else:
            self._whole = None

    def __len__(self) -> int:
        return len(self.encoded)

    def _lines(self) -> list[bytes] | None:
        if self._split is None and self._whole is not None:
            self._split = self._whole.split(b"\n")
        return self._split

    def body(self, lo: int, hi: int) -> bytes:
        if lo == 0 and hi == len(self):
            return self.encoded.body
        lines = self._lines()
        if lines is not None:
            return b"\n".join(lines[lo:hi])
        rows = self.encoded.index[lo:hi]
        return encode_batch(self.batch.take(rows), self.precision).body

    def chunks(self, max_bytes: int) -> Iterator[tuple[int, int]]:
        n = len(self)
        size = len(self.encoded.body)
        if size <= max_bytes:
            yield 0, n
            return
        per_chunk = max(1, int(n * max_bytes / size * 0.9))
        for lo in range(0, n, per_chunk):
            yield lo, min(n, lo + per_chunk)

    def reading(self, k: int) -> Reading:
        i = int(self.encoded.index[k])
        return self.batch.take(np.array([i])).to_readings()[0]

    def conflicting(self, lo: int, hi: int, reason: str) -> list[int] | None:
        """Positions InfluxDB's field-type-conflict message names exactly, or None."""
        if "unable to parse" in reason:
            return None
        match = _CONFLICT.search(reason)
        if match is None:
            return None
        try:
            measurement = json.loads(match.group(1))
        except ValueError:
            return None
        existing = FIELD_KINDS.get(match.group(2))
        dropped = int(match.group(3))
        if existing is None:
            return None
        rows = self.encoded.index[lo:hi]
        mask = (self.batch.field[rows] == measurement) & (self.batch.kind[rows] != existing)
        positions = (np.flatnonzero(mask) + lo).tolist()
        # Only trust the message when it accounts for every dropped point (a batch spanning
        # shards or measurements needs bisection).
        return positions if len(positions) == dropped else None


# (status, InfluxDB's message) for one POST of line protocol; raises StoreUnavailable itself.
PostLines = Callable[[bytes], tuple[int, str]]


def write_isolating(
    lines: Lines, lo: int, hi: int, post: PostLines, where: str
) -> tuple[int, list[Rejected]]:
    """Write lines ``[lo, hi)`` with ``post``; isolate the points the server refuses.

    Shared by the v1 store and the v2 writer. On 400/422 the points InfluxDB names exactly in
    a field-type-conflict message are rejected (InfluxDB 1.x wrote the rest); otherwise the
    range is bisected and each half re-sent (idempotent), down to single refused points,
    which are rejected with the server's reason. 413 (body too large) splits likewise.
    Returns (written, rejected)."""
    status, reason = post(lines.body(lo, hi))
    if status in (200, 204):
        return hi - lo, []
    if status not in (400, 413, 422):
        raise InfluxQueryError(f"InfluxDB {where} answered {status} to a write: {reason}")
    if hi - lo == 1:
        if status == 413:
            raise InfluxQueryError(f"InfluxDB {where} refused a single point as too large")
        return 0, [Rejected(lines.reading(lo), f"InfluxDB refused the point: {reason}")]
    named = lines.conflicting(lo, hi, reason) if status != 413 else None
    if named is not None:
        # InfluxDB wrote the rest of the range and named exactly the points it dropped.
        return hi - lo - len(named), [
            Rejected(lines.reading(k), f"InfluxDB refused the point: {reason}") for k in named
        ]
    mid = (lo + hi) // 2
    w1, r1 = write_isolating(lines, lo, mid, post, where)
    w2, r2 = write_isolating(lines, mid, hi, post, where)
    return w1 + w2, r1 + r2


def _time_range(start_ns: int, end_ns: int) -> str:
    """``time >= start AND time < end``, clamped to int64 (InfluxQL's literal range)."""
    # operator.index: ints and NumPy ints pass, floats and strings raise TypeError
    start = max(operator.index(start_ns), -(2**63))
    end = min(operator.index(end_ns), 2**63 - 1)
    return f"time >= {int_literal(start)} AND time < {int_literal(end)}"


def _json_chunks(text: str) -> Iterator[dict]:
    """The JSON objects of a chunked answer (one per chunk, newline-separated)."""
    decoder = json.JSONDecoder(parse_int=_json_int)
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return
        obj, i = decoder.raw_decode(text, i)
        yield obj


def _join_chunks(chunks: Iterator[dict], statement: str) -> list[dict]:
    """One result per statement from the chunks of an answer: a series a chunk left
    ``partial`` goes on in the next one (same name and tags). A joined result keeps the
    ``partial`` flags of its last chunk: set, the answer ended early."""
    joined: dict[int, dict] = {}
    for body in chunks:
        if "error" in body:
            raise InfluxQueryError(f"InfluxDB refused {statement!r}: {body['error']}")
        for part in body.get("results", []):
            result = joined.get(part.get("statement_id", 0))
            if result is None:
                result = joined[part.get("statement_id", 0)] = {"series": []}
            if "error" in part:
                result["error"] = part["error"]
            for s in part.get("series", []):
                last = result["series"][-1] if result["series"] else None
                if (
                    last is not None
                    and last.get("partial")
                    and (last.get("name"), last.get("tags")) == (s.get("name"), s.get("tags"))
                ):
                    last.setdefault("values", []).extend(s.get("values", []))
                    last["partial"] = s.get("partial", False)
                else:
                    result["series"].append(s)
            result["partial"] = part.get("partial", False)
    return [joined[k] for k in sorted(joined)]


def _json_int(text: str) -> int | float:
    # Go's encoding/json writes the float -0.0 as "-0"; int() would lose its sign.
    return -0.0 if text == "-0" else int(text)


def _error_text(resp: httpx.Response) -> str:
    text = resp.text.strip()
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(text)["error"])
    return text[:500] or resp.reason_phrase


def _empty_series(text: bool = False) -> Series:
    return Series(
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=object if text else np.float64),
        np.zeros(0, dtype=np.uint8),
    )


def _data_lines(content: bytes) -> bytes:
    """The CSV body without its header lines (chunked CSV may repeat them)."""
    if not content:
        return b""
    first, _, rest = content.partition(b"\n")
    if first in rest:
        rest = b"\n".join(line for line in rest.split(b"\n") if line != first)
    return rest


class _CsvBlocks:
    """Parses a streamed numeric CSV answer in blocks of whole lines (see _query_numeric)."""

    BLOCK_BYTES = 4 << 20

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._size = 0
        self._header: bytes | None = None
        self._parts: list[Series] = []

    def feed(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.BLOCK_BYTES:
            buffered = b"".join(self._pending)
            cut = buffered.rfind(b"\n") + 1
            self._pending = [buffered[cut:]]
            self._size = len(buffered) - cut
            self._parse(buffered[:cut])

    def finish(self) -> Series:
        self._parse(b"".join(self._pending))
        parts = [p for p in self._parts if len(p)]
        if not parts:
            return _empty_series()
        if len(parts) == 1:
            return parts[0]
        return Series(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def _parse(self, block: bytes) -> None:
        if self._header is None:
            if not block:
                return
            self._header, _, block = block.partition(b"\n")
        if self._header in block:  # a chunked answer may repeat its header
            block = b"\n".join(line for line in block.split(b"\n") if line != self._header)
        self._parts.append(_parse_numeric_rows(block))


def _parse_numeric_rows(data: bytes) -> Series:
    """``name,tags,time,value,quality`` rows (no header) into NumPy with NumPy's C CSV
    reader (``quotechar`` copes with measurement names holding commas or quotes)."""
    if not data.strip():
        return _empty_series()
    cols = np.loadtxt(
        io.StringIO(data.decode("utf-8")),
        delimiter=",",
        quotechar='"',
        usecols=(2, 3, 4),
        dtype=[("t", np.int64), ("v", np.float64), ("q", np.uint8)],
        ndmin=1,
    )
    return Series(
        np.ascontiguousarray(cols["t"]),
        np.ascontiguousarray(cols["v"]),
        np.ascontiguousarray(cols["q"]),
    )


def _parse_csv_rows(content: bytes, *, boolean: bool) -> Series:
    """The slow, exact path for text and boolean values (quoted, may hold commas/newlines)."""
    import csv

    rows = list(csv.reader(io.StringIO(_data_lines(content).decode("utf-8"), newline="")))
    rows = [r for r in rows if r]
    times = np.array([int(r[2]) for r in rows], dtype=np.int64)
    if boolean:
        values = np.array([r[3] == "true" for r in rows], dtype=np.float64)
    else:
        values = np.empty(len(rows), dtype=object)
        values[:] = [r[3] for r in rows]
    quality = np.array([int(r[4]) for r in rows], dtype=np.uint8)
    return Series(times, values, quality)


def _downsample(series: Series, window_ns: int, aggregate: str) -> Series:
    """Windowed aggregate in NumPy, for types InfluxQL cannot aggregate (booleans)."""
    if len(series) == 0:
        return series
    starts = (series.time_ns // window_ns) * window_ns
    edges = np.flatnonzero(np.diff(starts)) + 1
    bounds = np.concatenate(([0], edges))
    values = series.values.astype(np.float64)
    ufunc = {"sum": np.add, "min": np.minimum, "max": np.maximum}
    if aggregate == "mean":
        sums = np.add.reduceat(values, bounds)
        counts = np.diff(np.append(bounds, len(values)))
        out = sums / counts
    else:
        out = ufunc[aggregate].reduceat(values, bounds)
    return Series(starts[bounds], out, np.maximum.reduceat(series.quality, bounds))


# The columns of every raw read: SELECT "value","quality","received_ns","unit" (time first).
_READING_COLUMNS = ["time", "value", "quality", "received_ns", "unit"]


def _row_time(row: list) -> int:
    return row[0]


def _row_time_and_unit(row: list) -> tuple[int, str]:
    return row[0], row[4] or ""


def _readings_of(rows: list[list], asset: str, field: str, kind: str) -> Iterator[Reading]:
    """Readings from raw rows in :data:`_READING_COLUMNS` order; rows without a value (a
    point some other writer stored without one) are left out."""
    convert: Callable[[object], object] = {
        "float": float,
        "integer": int,
        "boolean": bool,
        "string": str,
    }[kind]
    for t, value, quality, received_ns, unit in rows:
        if value is None:
            continue
        yield Reading(
            asset,
            field,
            convert(value),
            Quality(int(quality or 0)),
            int(t),
            int(received_ns or 0),
            unit or "",
        )
