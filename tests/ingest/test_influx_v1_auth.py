"""InfluxV1Store against an InfluxDB with authentication on (user/password, permissions)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.reading import ReadingBatch
from ingest.influx_v1 import InfluxV1Store, StoreAuthError
from ingest.stores import open_store
from tests.servers import InfluxDB

pytestmark = pytest.mark.integration

KILN = "xinghai/plant-1/firing-shop/kiln-2"
T0 = 1_767_225_600_000_000_000
ADMIN_PASSWORD = "s3cret pa$$/word"  # a space, a slash and '$' must survive URL quoting


@pytest.fixture(scope="module")
def secured() -> Iterator[InfluxDB]:
    server = InfluxDB(auth=True)
    try:
        server.start()
        # InfluxDB 1.x lets anyone create the first admin while no user exists.
        statements = [
            f"CREATE USER admin WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES",
            "CREATE USER reader WITH PASSWORD 'r'",
        ]
        for q in statements:
            resp = httpx.post(f"{server.http}/query", data={"q": q}, auth=("admin", ADMIN_PASSWORD))
            assert resp.status_code == 200 and "error" not in resp.text, resp.text
        yield server
    finally:
        server.close()


def _url(server: InfluxDB, user: str, password: str, database: str, query: str = "") -> str:
    from urllib.parse import quote

    return (
        f"influxdb://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:"
        f"{server.port}/{database}{query}"
    )


def _batch() -> ReadingBatch:
    return ReadingBatch.from_floats(KILN, "zone1_tc1_temperature_c", [1200.5], [T0])


def test_admin_creates_writes_and_reads(secured: InfluxDB):
    url = _url(secured, "admin", ADMIN_PASSWORD, "plant", "?create=true")
    with open_store(url) as store:
        assert store.write(_batch()).written == 1
        assert store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + 1).values.tolist() == [1200.5]
        assert list(store.latest(KILN)) == ["zone1_tc1_temperature_c"]


def test_wrong_password_is_a_clear_auth_error_without_the_password(secured: InfluxDB):
    url = _url(secured, "admin", "not-the-password", "plant")
    with InfluxV1Store.from_url(url) as store:
        with pytest.raises(StoreAuthError, match="401") as info:
            store.write(_batch())
        assert "not-the-password" not in str(info.value)
        assert "admin:***@" in str(info.value)
        with pytest.raises(StoreAuthError):
            store.series(KILN, "zone1_tc1_temperature_c", T0, T0 + 1)
        with pytest.raises(StoreAuthError):
            store.list_series()


def test_missing_credentials_and_missing_privileges(secured: InfluxDB):
    anonymous = InfluxV1Store.from_url(secured.store_url("plant"))
    with anonymous, pytest.raises(StoreAuthError, match="401"):
        anonymous.write(_batch())
    reader = InfluxV1Store.from_url(_url(secured, "reader", "r", "plant"))
    with reader, pytest.raises(StoreAuthError, match=r"403|not authorized"):
        reader.write(_batch())
