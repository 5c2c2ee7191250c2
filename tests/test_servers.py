"""The server fixtures themselves: each starts, answers, and survives a restart with its data."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.servers import InfluxDB, Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration


def test_influxdb_keeps_data_across_kill_and_restart(influxdb: InfluxDB) -> None:
    influxdb.create_database("plant")
    r = httpx.post(f"{influxdb.http}/write", params={"db": "plant"}, content=b"m v=1.5 1000\n")
    assert r.status_code == 204
    influxdb.kill()
    influxdb.start()
    out = influxdb.query('SELECT v FROM "m"', "plant")
    assert out["results"][0]["series"][0]["values"] == [[1000, 1.5]]


def test_mosquitto_restarts_on_same_port(mosquitto: Mosquitto) -> None:
    import paho.mqtt.publish as publish

    port = mosquitto.port
    mosquitto.restart()
    assert mosquitto.port == port
    publish.single("t/x", b"1", qos=1, hostname="127.0.0.1", port=port)


def test_victoria_metrics_accepts_v2_write(victoria_metrics: VictoriaMetrics) -> None:
    r = httpx.post(f"{victoria_metrics.http}/api/v2/write", content=b"kiln,asset=a t=1.0\n")
    assert r.status_code == 204


def test_postgres_answers(postgres: str) -> None:
    dsn = postgres.replace("+psycopg", "")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select 40 + 2").fetchone() == (42,)
