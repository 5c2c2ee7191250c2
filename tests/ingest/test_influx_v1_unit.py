"""InfluxV1Store at its HTTP seam (httpx.MockTransport): URL options, headers, status codes.

Behaviour against a real server is in test_influx_v1.py; these cover what a real InfluxDB 1.6
cannot be made to do on demand (a 503, a 413, a 2.x token) and URL checking.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pytest

from core.reading import ReadingBatch
from ingest.contracts import StoreUnavailable
from ingest.influx_v1 import (
    InfluxQueryError,
    InfluxV1Config,
    InfluxV1Store,
    StoreAuthError,
    make_client,
)

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000


def store_with(url: str, handler: Callable[[httpx.Request], httpx.Response]) -> InfluxV1Store:
    def factory(config: InfluxV1Config) -> httpx.Client:
        return make_client(config, transport=httpx.MockTransport(handler))

    return InfluxV1Store.from_url(url, factory)


def batch(n: int = 10) -> ReadingBatch:
    return ReadingBatch.from_floats(
        KILN, "zone1_tc1_temperature_c", np.arange(n) + 0.5, T0 + np.arange(n), received_time_ns=T0
    )


def test_url_options_are_parsed():
    c = InfluxV1Config.from_url(
        "influxdb://ops%40plant:p%3Ass@influx.local:8086/kiln%20data?timeout=2.5&precision=ms"
        "&rp=one_year&create=true&tls=1&verify=0&max_body_mb=4"
    )
    assert (c.host, c.port, c.database) == ("influx.local", 8086, "kiln data")
    assert (c.username, c.password) == ("ops@plant", "p:ss")
    assert c.timeout_s == 2.5 and c.precision == "ms" and c.retention_policy == "one_year"
    assert c.create and c.tls and not c.verify_tls and c.max_body_bytes == 4_000_000
    assert c.base_url == "https://influx.local:8086"
    assert "p:ss" not in c.redacted()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:1/db", "scheme"),
        ("influxdb://h/db", "host:port"),
        ("influxdb://h:1/", "database"),
        ("influxdb://h:1/a/b", "database"),
        ("influxdb://h:1/db?tokne=x", "unknown option 'tokne'"),
        ("influxdb://h:1/db?timeout=soon", "timeout"),
        ("influxdb://h:1/db?timeout=0", "positive"),
        ("influxdb://h:1/db?precision=h", "precision"),
        ("influxdb://h:1/db?create=maybe", "create"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(ValueError, match=message):
        InfluxV1Config.from_url(url)


def test_bad_url_never_echoes_the_password():
    with pytest.raises(ValueError) as info:
        InfluxV1Config.from_url("influxdb://u:hunter2@h:1/db?nope=1")
    assert "hunter2" not in str(info.value)


def test_token_goes_in_the_authorization_header():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with store_with("influxdb://h:8086/telemetry?token=abc%3D%3D&rp=raw", handler) as store:
        assert store.write(batch()).written == 10
    (request,) = seen
    assert request.headers["Authorization"] == "Token abc=="
    assert request.url.path == "/write"
    assert dict(request.url.params) == {"db": "telemetry", "precision": "ns", "rp": "raw"}
    assert request.content.count(b"\n") == 9


def test_user_password_use_basic_auth():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with store_with("influxdb://kiln:pw@h:8086/telemetry", handler) as store:
        store.write(batch())
    assert seen[0].headers["Authorization"] == httpx.BasicAuth("kiln", "pw")._auth_header


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_trouble_is_store_unavailable(status):
    with (
        store_with(
            "influxdb://h:1/db", lambda r: httpx.Response(status, json={"error": "busy"})
        ) as s,
        pytest.raises(StoreUnavailable, match=str(status)),
    ):
        s.write(batch())


def test_timeouts_are_store_unavailable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with store_with("influxdb://h:1/db", handler) as s, pytest.raises(StoreUnavailable):
        s.series(KILN, "x", 0, 1)


def test_token_refused_is_an_auth_error():
    def handler(request):
        return httpx.Response(401, json={"error": "token invalid"})

    s = store_with("influxdb://h:1/db?token=t0ps3cret", handler)
    with s, pytest.raises(StoreAuthError) as info:
        s.write(batch())
    assert "token invalid" in str(info.value) and "t0ps3cret" not in str(info.value)


def test_too_large_body_is_split_and_every_line_sent_once():
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if len(request.content) > 400:
            return httpx.Response(413, json={"error": "Request Entity Too Large"})
        bodies.append(request.content)
        return httpx.Response(204)

    b = batch(40)
    with store_with("influxdb://h:1/db", handler) as s:
        result = s.write(b)
    assert result.written == 40 and result.rejected == []
    lines = [line for body in bodies for line in body.split(b"\n")]
    assert len(lines) == 40
    assert [int(line.rsplit(b" ", 1)[1]) for line in lines] == b.source_time_ns.tolist()


def test_max_body_option_chunks_writes_up_front():
    bodies: list[bytes] = []

    def handler(request):
        bodies.append(request.content)
        return httpx.Response(204)

    with store_with("influxdb://h:1/db?max_body_mb=0.001", handler) as s:
        assert s.write(batch(100)).written == 100
    assert len(bodies) > 5 and all(len(b) <= 1000 for b in bodies)
    assert sum(b.count(b"\n") + 1 for b in bodies) == 100


def test_bisection_isolates_a_point_the_server_refuses():
    """A server that refuses any body holding one particular point (as InfluxDB 2.x does
    for a whole batch with one bad line): that point is rejected, the rest written."""
    bad_time = str(T0 + 13).encode()

    def handler(request):
        if bad_time in request.content:
            return httpx.Response(400, json={"error": "points beyond retention policy"})
        return httpx.Response(204)

    with store_with("influxdb://h:1/db", handler) as s:
        result = s.write(batch(32))
    assert result.written == 31
    (rejected,) = result.rejected
    assert rejected.reading.source_time_ns == T0 + 13
    assert "beyond retention" in rejected.reason


def test_unexpected_status_is_a_query_error():
    s = store_with("influxdb://h:1/db", lambda r: httpx.Response(405))
    with s, pytest.raises(InfluxQueryError, match="405"):
        s.write(batch())


def test_streamed_csv_is_parsed_across_blocks_and_repeated_headers(monkeypatch):
    """The numeric read path parses the answer in blocks while it streams; lines cut across
    network chunks, repeated chunk headers and quoted measurement names must not matter."""
    from ingest import influx_v1

    monkeypatch.setattr(influx_v1._CsvBlocks, "BLOCK_BYTES", 64)
    header = b"name,tags,time,value,quality\n"
    rows = [f'"zone 1,""x""",,{T0 + i},{i * 0.1!r},{i % 3}\n'.encode() for i in range(50)]
    body = header + b"".join(rows[:20]) + header + b"".join(rows[20:])

    def handler(request: httpx.Request) -> httpx.Response:
        if b"SHOW+FIELD+KEYS" in request.content:
            series = {"name": 'zone 1,"x"', "values": [["value", "float"]]}
            return httpx.Response(200, json={"results": [{"series": [series]}]})
        chunks = [body[i : i + 7] for i in range(0, len(body), 7)]  # cut anywhere
        return httpx.Response(200, content=iter(chunks))

    with store_with("influxdb://h:1/db", handler) as s:
        got = s.series(KILN, 'zone 1,"x"', T0, T0 + 100)
    assert got.time_ns.tolist() == [T0 + i for i in range(50)]
    assert got.values.tolist() == [i * 0.1 for i in range(50)]
    assert got.quality.tolist() == [i % 3 for i in range(50)]
