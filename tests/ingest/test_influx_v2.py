"""InfluxV2Writer: real arrival in VictoriaMetrics (/api/v2/write), outages, refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from core.reading import Quality, Reading, ReadingBatch
from ingest.contracts import StoreUnavailable
from ingest.influx_v1 import StoreAuthError
from ingest.influx_v2 import InfluxV2Config, InfluxV2Writer
from ingest.stores import open_store
from tests.servers import VictoriaMetrics, wait_until

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000
FIELD = "zone3_tc2_temperature_c"


def kiln_batch(n: int, start: int = 0) -> ReadingBatch:
    i = np.arange(start, start + n)
    return ReadingBatch.from_floats(
        KILN, FIELD, 1000.0 + i + 0.25, T0 + i * 1_000_000_000, received_time_ns=T0
    )


def exported(vm: VictoriaMetrics, metric: str) -> dict[int, float]:
    """What VictoriaMetrics holds for ``metric`` (ms timestamps -> values)."""
    httpx.get(f"{vm.http}/internal/force_flush", timeout=10)
    resp = httpx.post(
        f"{vm.http}/api/v1/export", data={"match[]": f'{{__name__="{metric}"}}'}, timeout=10
    )
    out: dict[int, float] = {}
    for line in resp.text.splitlines():
        row = json.loads(line)
        if row["metric"].get("asset") == KILN:
            out.update(zip(row["timestamps"], row["values"], strict=True))
    return out


@pytest.mark.integration
def test_written_readings_arrive_and_outage_is_unavailable(victoria_metrics: VictoriaMetrics):
    url = f"influxdb2://127.0.0.1:{victoria_metrics.port}/?org=xinghai&bucket=telemetry&token=t"
    writer = open_store(url)
    assert isinstance(writer, InfluxV2Writer)
    with writer:
        first = kiln_batch(50)
        bad = ReadingBatch.from_readings([Reading(KILN, FIELD, float("nan"), 0, T0, T0)])
        result = writer.write(ReadingBatch.concat([first, bad]))
        assert result.written == 50 and len(result.rejected) == 1
        want = {(T0 + i * 10**9) // 10**6: 1000.0 + i + 0.25 for i in range(50)}
        wait_until(lambda: exported(victoria_metrics, f"{FIELD}_value") == want, 30, "points in VM")
        qualities = exported(victoria_metrics, f"{FIELD}_quality")
        assert set(qualities.values()) == {float(Quality.GOOD)}

        victoria_metrics.stop()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            writer.write(kiln_batch(50, start=50))
        victoria_metrics.start()
        assert writer.write(kiln_batch(50, start=50)).written == 50
        want |= {(T0 + i * 10**9) // 10**6: 1000.0 + i + 0.25 for i in range(50, 100)}
        wait_until(
            lambda: exported(victoria_metrics, f"{FIELD}_value") == want, 30, "all 100 in VM"
        )


def test_reads_say_to_use_the_v1_compat_endpoint():
    writer = InfluxV2Writer.from_url("influxdb2://127.0.0.1:9/?org=o&bucket=b")
    with pytest.raises(NotImplementedError, match="influxdb://"):
        writer.series(KILN, FIELD, 0, 1)
    with pytest.raises(NotImplementedError):
        writer.latest(KILN)
    with pytest.raises(NotImplementedError):
        writer.list_series()
    writer.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("influxdb2://h:1/?bucket=b", "org"),
        ("influxdb2://h:1/?org=o", "bucket"),
        ("influxdb2://h/?org=o&bucket=b", "host:port"),
        ("influxdb2://h:1/b?org=o&bucket=b", "path"),
        ("influxdb2://h:1/?org=o&bucket=b&tls=sometimes", "tls"),
        ("influxdb2://h:1/?org=o&bucket=b&tokn=x", "unknown option"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(ValueError, match=message):
        InfluxV2Config.from_url(url)


def test_url_options():
    c = InfluxV2Config.from_url(
        "influxdb2://cloud.example:443/?org=xinghai&bucket=kilns&token=s3cr%3Dt&tls=1&timeout=3"
    )
    assert c.base_url == "https://cloud.example:443"
    assert (c.org, c.bucket, c.token, c.timeout_s) == ("xinghai", "kilns", "s3cr=t", 3.0)
    assert "s3cr" not in c.redacted()


# ------------------------------------------------------------- refusals (a stub server)


@pytest.fixture
def stub() -> Iterator[tuple[str, list[tuple[str, bytes, str]], list]]:
    """A local HTTP server answering /api/v2/write with ``answer[0](body) -> status``."""
    seen: list[tuple[str, bytes, str]] = []
    answer: list[Callable[[bytes], tuple[int, str]]] = [lambda body: (204, "")]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, body, self.headers.get("Authorization", "")))
            status, message = answer[0](body)
            payload = json.dumps({"code": "invalid", "message": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if status != 204 else 0))
            self.end_headers()
            if status != 204:
                self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"influxdb2://127.0.0.1:{server.server_address[1]}/?org=o&bucket=b&token=tok",
            seen,
            answer,
        )
    finally:
        server.shutdown()
        server.server_close()


def test_token_org_bucket_and_precision_are_sent(stub):
    url, seen, _ = stub
    with InfluxV2Writer.from_url(url) as writer:
        assert writer.write(kiln_batch(3)).written == 3
    ((path, body, auth),) = seen
    assert path.startswith("/api/v2/write?")
    assert {"org=o", "bucket=b", "precision=ns"} <= set(path.split("?", 1)[1].split("&"))
    assert auth == "Token tok"
    assert body.count(b"\n") == 2 and body.endswith(str(T0 + 2 * 10**9).encode())


def test_a_refused_point_is_isolated_and_the_rest_written(stub):
    url, _, answer = stub
    bad = str(T0 + 5 * 10**9).encode()
    # InfluxDB 2.x refuses a whole request over one bad point; bisection finds it.
    answer[0] = lambda body: (400, "unable to parse: bad point") if bad in body else (204, "")
    with InfluxV2Writer.from_url(url) as writer:
        result = writer.write(kiln_batch(16))
    assert result.written == 15
    (rejected,) = result.rejected
    assert rejected.reading.source_time_ns == T0 + 5 * 10**9
    assert "bad point" in rejected.reason


@pytest.mark.parametrize(
    ("status", "error"), [(401, StoreAuthError), (403, StoreAuthError), (503, StoreUnavailable)]
)
def test_refusals_map_to_the_store_errors(stub, status, error):
    url, _, answer = stub
    answer[0] = lambda body: (status, "nope")
    with InfluxV2Writer.from_url(url) as writer, pytest.raises(error, match=str(status)) as info:
        writer.write(kiln_batch(2))
    assert "tok" not in str(info.value).replace("token", "")
