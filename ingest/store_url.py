"""Parsing of ``influxdb://`` and ``influxdb2://`` store URLs: host, port, options, checked once.

Both InfluxDB dialects name their store by URL with query options (``?timeout=5&tls=1``); the
rules for host:port, unknown options, flags and numbers are the same, and so are the error
messages, which name the URL without its password or token.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from ingest.lineprotocol import PRECISIONS

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class StoreURL:
    """A store URL split and checked: ``scheme``, ``host``, ``port``, ``path``, ``username``,
    ``password`` and ``options``; :meth:`bad` makes the ValueError every check raises."""

    def __init__(self, url: str, scheme: str, example: str, allowed: tuple[str, ...]) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
            self.shown = f"{parts.scheme}://{parts.hostname or ''}:?{parts.path}"
            raise self.bad("the port is not a number") from None
        self.shown = f"{parts.scheme}://{parts.hostname or ''}:{port or ''}{parts.path}"
        if parts.scheme != scheme:
            raise self.bad(f"expected the {scheme}:// scheme")
        if not parts.hostname or port is None:
            raise self.bad(f"expected host:port, e.g. {example}")
        self.host: str = parts.hostname
        self.port: int = port
        self.path = parts.path
        self.username = parts.username or ""
        self.password = parts.password or ""
        self.options = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key in self.options:
            if key not in allowed:
                raise self.bad(f"unknown option {key!r} (expected one of: {', '.join(allowed)})")

    def bad(self, what: str) -> ValueError:
        return ValueError(f"store URL {self.shown}: {what}")

    def flag(self, key: str, default: bool) -> bool:
        text = self.options.get(key)
        if text is None:
            return default
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise self.bad(f"{key}: expected true or false, got {text!r}")

    def number(self, key: str, default: float) -> float:
        """A positive number option."""
        try:
            value = float(self.options.get(key, default))
        except ValueError:
            raise self.bad(f"{key}: expected a number, got {self.options[key]!r}") from None
        if not value > 0:
            raise self.bad(f"{key}: expected a positive number, got {self.options[key]!r}")
        return value

    def precision(self) -> str:
        precision = self.options.get("precision", "ns")
        if precision not in PRECISIONS:
            raise self.bad(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        return precision
