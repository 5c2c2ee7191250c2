"""The InfluxDB v2 write API (``/api/v2/write``) through ``influxdb-client``, write only.

For InfluxDB 2.x / Cloud users (and anything else that speaks ``/api/v2/write``, e.g.
VictoriaMetrics). Opened by URL (``ingest.stores.open_store``)::

    influxdb2://host:port/?org=...&bucket=...&token=...[&tls=1][&verify=0][&timeout=10]

The batch is encoded once by :mod:`ingest.lineprotocol` and handed to the client as bytes:
building ``Point`` objects costs ~5 µs a reading (influxdb-client's ``Point.to_line_protocol``
runs at ~200k points/s), several times the whole encode. The write is synchronous (the
forwarder in ``ingest/writer.py`` owns batching and retries; the client's own batching
thread would hide failures from it), with the same semantics as
:meth:`ingest.influx_v1.InfluxV1Store.write`: rejected readings with reasons, refused points
isolated, :class:`ingest.contracts.StoreUnavailable` (or :class:`StoreAuthError`) to ask for a
retry.

Reads raise NotImplementedError: InfluxDB 2.x answers InfluxQL on its v1-compatibility
endpoint, so read through an ``influxdb://host:port/bucket?token=...`` store (a DBRP mapping
for the bucket must exist on the server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from core.reading import Reading, ReadingBatch
from ingest.contracts import Series, StoreUnavailable, WriteResult
from ingest.influx_v1 import DatabaseNotFound, Lines, StoreAuthError, write_isolating
from ingest.lineprotocol import encode_batch
from ingest.store_url import StoreURL

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BODY_MB = 20.0
_OPTIONS = ("org", "bucket", "token", "tls", "verify", "timeout", "precision", "max_body_mb")
_PRECISION = {
    "ns": WritePrecision.NS,
    "u": WritePrecision.US,
    "ms": WritePrecision.MS,
    "s": WritePrecision.S,
}
_READS = (
    "the influxdb2:// store is write-only: read through the v1-compatibility API with an "
    "influxdb://host:port/<bucket>?token=... store URL"
)


@dataclass(frozen=True, slots=True)
class InfluxV2Config:
    """Where and how to reach the v2 write API; built from a store URL by :meth:`from_url`."""

    host: str
    port: int
    org: str
    bucket: str
    token: str = ""
    tls: bool = False
    verify_tls: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    precision: str = "ns"
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1_000_000)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def redacted(self) -> str:
        token = "&token=***" if self.token else ""
        return f"influxdb2://{self.host}:{self.port}/?org={self.org}&bucket={self.bucket}{token}"

    @classmethod
    def from_url(cls, url: str) -> InfluxV2Config:
        """Parse ``influxdb2://host:port/?org=...&bucket=...&token=...``; ValueError naming
        what is wrong (the token is never echoed)."""
        example = "influxdb2://127.0.0.1:8086/?org=..&bucket=.."
        u = StoreURL(url, "influxdb2", example, _OPTIONS)
        if u.path.strip("/"):
            raise u.bad("the bucket goes in ?bucket=..., not in the path")
        for key in ("org", "bucket"):
            if not u.options.get(key):
                raise u.bad(f"{key}: required (e.g. ?org=xinghai&bucket=telemetry)")
        return cls(
            host=u.host,
            port=u.port,
            org=u.options["org"],
            bucket=u.options["bucket"],
            token=u.options.get("token", ""),
            tls=u.flag("tls", False),
            verify_tls=u.flag("verify", True),
            timeout_s=u.number("timeout", DEFAULT_TIMEOUT_S),
            precision=u.precision(),
            max_body_bytes=int(u.number("max_body_mb", DEFAULT_MAX_BODY_MB) * 1_000_000),
        )


def make_client(config: InfluxV2Config) -> InfluxDBClient:
    """The default client factory: no client-side retries (the forwarder retries)."""
    return InfluxDBClient(
        url=config.base_url,
        token=config.token or None,
        org=config.org,
        timeout=int(config.timeout_s * 1000),
        verify_ssl=config.verify_tls,
        retries=False,
    )


class InfluxV2Writer:
    """Writes batches through InfluxDB's v2 write API; reads raise NotImplementedError.

    Thread-safe for one writer thread (the forwarder); ``close`` releases the client.
    """

    def __init__(
        self,
        config: InfluxV2Config,
        client_factory: Callable[[InfluxV2Config], InfluxDBClient] = make_client,
    ) -> None:
        self.config = config
        self._client = client_factory(config)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    @classmethod
    def from_url(cls, url: str, client_factory: Callable[..., Any] = make_client) -> InfluxV2Writer:
        """Open a writer from its URL; checks the URL, does not connect."""
        return cls(InfluxV2Config.from_url(url), client_factory)

    def __repr__(self) -> str:
        return f"InfluxV2Writer({self.config.redacted()})"

    def write(self, batch: ReadingBatch) -> WriteResult:
        """Write a batch now; same contract as :meth:`ingest.contracts.Store.write`."""
        encoded = encode_batch(batch, self.config.precision)
        result = WriteResult(0, list(encoded.rejected))
        if len(encoded) == 0:
            return result
        lines = Lines(batch, encoded, self.config.precision)
        for lo, hi in lines.chunks(self.config.max_body_bytes):
            written, rejected = write_isolating(lines, lo, hi, self._post, self.config.redacted())
            result.written += written
            result.rejected.extend(rejected)
        return result

    def _post(self, body: bytes) -> tuple[int, str]:
        where = self.config.redacted()
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=body,
                write_precision=_PRECISION[self.config.precision],
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = _message(exc)
            if status in (401, 403):
                raise StoreAuthError(
                    f"InfluxDB {where} refused the token ({status}: {message}); check ?token="
                ) from None
            if status == 404:
                raise DatabaseNotFound(f"InfluxDB {where}: {message} (create the bucket)") from None
            if status >= 500 or status in (0, 408, 429):
                raise StoreUnavailable(f"InfluxDB {where} answered {status}: {message}") from None
            return status, message
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(
                f"InfluxDB {where} unreachable: {type(exc).__name__}: {exc}"
            ) from None
        return 204, ""

    def series(self, *args: object, **kwargs: object) -> Series:
        raise NotImplementedError(_READS)

    def latest(self, asset: str) -> dict[str, Reading]:
        raise NotImplementedError(_READS)

    def list_series(self, asset_prefix: str = "") -> list[tuple[str, str]]:
        raise NotImplementedError(_READS)

    def close(self) -> None:
        self._write_api.close()
        self._client.close()

    def __enter__(self) -> InfluxV2Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _message(exc: ApiException) -> str:
    import json

    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    try:
        return str(json.loads(body)["message"])
    except (ValueError, TypeError, KeyError):
        return (body or exc.reason or "").strip()[:500]
