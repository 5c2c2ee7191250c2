"""Stores are named by URL everywhere (CLI, config, environment): open one with
:func:`open_store`, print one with :func:`redact`.

* ``influxdb://[user:password@]host:port/database[?token=...]`` — InfluxDB v1 HTTP API
  (``ingest.influx_v1.InfluxV1Store``); also 2.x/3.x compatibility endpoints with a token.
* ``influxdb2://host:port/?org=...&bucket=...&token=...`` — InfluxDB v2 write API, write only
  (``ingest.influx_v2.InfluxV2Writer``).
* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` —
  the embedded store (``ingest.store_sqlite.SQLiteStore``). Three slashes then a relative
  path, four for an absolute one: the SQLAlchemy convention, which the metadata store's URLs
  follow too.

Backends are imported when first used, so a machine without the v2 client can still use the
others.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from ingest.contracts import Store

SCHEMES = ("influxdb", "influxdb2", "sqlite")
_SECRET_PARAMS = {"token", "password", "p", "secret", "api_key", "apikey", "auth"}


class StoreURLError(ValueError):
    """A store URL that cannot be used; the message names the (redacted) URL and why."""


def redact(url: str) -> str:
    """``url`` with its password and secret query parameters (token, password...) replaced
    by ``***``, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable store URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret; urlunsplit would also fold sqlite:////abs into sqlite://abs
    out = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        out += f"?{query}"
    return f"{out}#{parts.fragment}" if parts.fragment else out


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
    except ValueError:
        return []
    return found


def open_store(url: str) -> Store:
    """Open the store ``url`` names. Raises :class:`StoreURLError` for an unknown scheme or a
    malformed URL (the message is redacted). Connecting happens lazily in the backend, so an
    unreachable server shows up as ``StoreUnavailable`` on first use, not here."""
    if not isinstance(url, str) or "://" not in url:
        raise StoreURLError(
            f"store URL {redact(str(url))!r}: expected scheme://..., one of "
            f"{', '.join(s + '://' for s in SCHEMES)}"
        )
    scheme = url.split("://", 1)[0].lower()
    try:
        if scheme == "sqlite":
            from ingest.store_sqlite import SQLiteStore

            return SQLiteStore.from_url(url)
        if scheme == "influxdb":
            from ingest.influx_v1 import InfluxV1Store

            return InfluxV1Store.from_url(url)
        if scheme == "influxdb2":
            from ingest.influx_v2 import InfluxV2Writer

            return InfluxV2Writer.from_url(url)  # type: ignore[return-value]
    except StoreURLError:
        raise
    except ValueError as exc:
        # Backends say what is wrong; make sure no secret from the URL is echoed.
        message = str(exc).replace(url, redact(url))
        for secret in _secrets(url):
            message = message.replace(secret, "***")
        raise StoreURLError(f"store URL {redact(url)!r}: {message}") from None
    raise StoreURLError(
        f"store URL {redact(url)!r}: unknown scheme {scheme!r}; expected one of "
        f"{', '.join(s + '://' for s in SCHEMES)}"
    )
