"""Fixtures shared by every test package. Server fixtures start real servers (tests/servers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.servers import InfluxDB, Mosquitto, PostgreSQL, VictoriaMetrics


def _own(cls: type, **kwargs: object) -> Iterator:
    server = cls(**kwargs)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def influxdb() -> Iterator[InfluxDB]:
    """An InfluxDB 1.x of this test's own: stop, kill and restart it freely."""
    yield from _own(InfluxDB)


@pytest.fixture(scope="session")
def influxdb_shared() -> Iterator[InfluxDB]:
    """One InfluxDB for the session; take a database of your own (``influx_database``)."""
    yield from _own(InfluxDB)


@pytest.fixture
def influx_database(influxdb_shared: InfluxDB) -> str:
    """A fresh database on the shared InfluxDB; returns its ``influxdb://`` store URL."""
    name = "t_" + uuid.uuid4().hex[:12]
    influxdb_shared.create_database(name)
    return influxdb_shared.store_url(name)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own (persistence on): stop, kill and restart it freely."""
    yield from _own(Mosquitto)


@pytest.fixture(scope="session")
def mosquitto_shared() -> Iterator[Mosquitto]:
    """One Mosquitto for the session; use topics of your own (e.g. with a uuid prefix)."""
    yield from _own(Mosquitto)


@pytest.fixture
def victoria_metrics() -> Iterator[VictoriaMetrics]:
    yield from _own(VictoriaMetrics)


@pytest.fixture(scope="session")
def postgres_shared() -> Iterator[PostgreSQL]:
    yield from _own(PostgreSQL)


@pytest.fixture
def postgres(postgres_shared: PostgreSQL) -> str:
    """A fresh database on the shared PostgreSQL; returns its SQLAlchemy URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_shared.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_shared.sqlalchemy_url.rsplit("/", 1)[0] + "/" + name
