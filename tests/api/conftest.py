"""Fixtures of the API tests: an app around an in-memory store (a fake at the Store seam),
a real SQLite metadata file, the built-in Shangbu plant model, a settable clock, and a token
per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, issue_token
from api.metadata.store import MetadataStore
from api.settings import Settings
from core.plant import load_plant
from ingest.store_sqlite import SQLiteStore

NOW_NS = 1_764_115_200 * 10**9  # 2025-11-26 00:00 UTC


class FakeClock:
    def __init__(self, now_ns: int = NOW_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


@dataclass
class Tokens:
    admin: str
    manager: str  # dalian
    engineer: str  # dalian
    other_engineer: str  # fushun
    town: str

    def by_role(self) -> dict[str, str]:
        return {
            "admin": self.admin,
            "manager": self.manager,
            "engineer": self.engineer,
            "other_engineer": self.other_engineer,
            "town": self.town,
        }


@pytest.fixture
def plant():
    return load_plant()


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    """The embedded store, in memory: the real thing, fast."""
    s = SQLiteStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def meta(tmp_path) -> Iterator[MetadataStore]:
    m = MetadataStore.open(f"sqlite:///{tmp_path}/meta.db")
    yield m
    m.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(alarm_interval_s=0, silent_after_s=120)


@pytest.fixture
def app(settings, store, meta, plant, clock):
    return create_app(settings, store=store, meta=meta, plant=plant, clock=clock)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def tokens(meta, clock) -> Tokens:
    def tok(role: Role, enterprise: str | None = None) -> str:
        return issue_token(
            meta, name=f"t-{role}", role=role, enterprise=enterprise, now_ns=clock()
        )[0]

    return Tokens(
        admin=tok(Role.ADMIN),
        manager=tok(Role.MANAGER, "dalian"),
        engineer=tok(Role.ENGINEER, "dalian"),
        other_engineer=tok(Role.ENGINEER, "fushun"),
        town=tok(Role.TOWN),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
