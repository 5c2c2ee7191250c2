"""Tokens and who may see what.

A token reads ``kw_<id>_<secret>``: ``id`` (public, 12 hex chars) finds the row, ``secret``
(32 random bytes, url-safe) is checked against its SHA-256 with a constant-time compare. Only
the hash is stored, so a leaked metadata database does not leak usable tokens; SHA-256 (not a
slow password hash) is right because the secret has 256 bits of entropy, not a human password.

Roles:

* ``admin``: everything, including tokens.
* ``manager`` / ``engineer``: one enterprise; see its raw data; engineers post gradings and
  acknowledge alarms; managers also submit digitalisation self-assessments.
* ``town``: the town official; aggregates of the *key* enterprises only (OEE of enterprises
  and the town, digitalisation progress, the town overview); no raw series, no firing details.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from api.metadata.store import MetadataStore, TokenRow
from core.plant import PlantModel


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    ENGINEER = "engineer"
    TOWN = "town"


ENTERPRISE_ROLES = (Role.MANAGER, Role.ENGINEER)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as established by :func:`authenticate`."""

    token_id: str
    name: str
    role: Role
    enterprise: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.token_id})"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    store: MetadataStore, *, name: str, role: Role, enterprise: str | None, now_ns: int
) -> tuple[str, TokenRow]:
    """Create a token; returns the full token text (shown once) and the stored row.

    Raises ValueError when the role and enterprise do not fit together.
    """
    if role in ENTERPRISE_ROLES and not enterprise:
        raise ValueError(f"role {role} needs an enterprise")
    if role not in ENTERPRISE_ROLES and enterprise:
        raise ValueError(f"role {role} is not tied to an enterprise")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = TokenRow(token_id, _sha256(secret), name, str(role), enterprise, now_ns, False)
    store.add_token(row)
    return f"kw_{token_id}_{secret}", row


def authenticate(store: MetadataStore, token: str) -> Principal | None:
    """The principal for a presented token, or None (unknown, malformed, wrong or revoked)."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "kw" or len(parts[1]) != 12:
        return None
    row = store.token(parts[1])
    if row is None or row.revoked:
        # Hash anyway so a miss costs what a hit costs (no timing oracle on ids).
        hmac.compare_digest(_sha256(parts[2]), "0" * 64)
        return None
    if not hmac.compare_digest(_sha256(parts[2]), row.secret_sha256):
        return None
    return Principal(row.id, row.name, Role(row.role), row.enterprise)


class TokenCache:
    """Recently authenticated tokens, so a dashboard polling every few seconds does not cost a
    metadata query per request. Keyed by the token's SHA-256 (never the token itself); entries
    live ``ttl_s`` seconds, and revoking through the API clears the cache at once (a token
    revoked directly in the database stops working within ``ttl_s``)."""

    def __init__(self, ttl_s: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl_ns = int(ttl_s * 1e9)
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, int]] = {}

    def authenticate(self, store: MetadataStore, token: str, now_ns: int) -> Principal | None:
        key = _sha256(token)
        hit = self._entries.get(key)
        if hit is not None and hit[1] > now_ns:
            return hit[0]
        principal = authenticate(store, token)
        if principal is not None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # crude but bounded; a miss only costs one query
            self._entries[key] = (principal, now_ns + self.ttl_ns)
        return principal

    def clear(self) -> None:
        self._entries.clear()


def visible_enterprises(principal: Principal, plant: PlantModel) -> list[str]:
    """Enterprises whose data (raw or aggregate, per role) the principal may see."""
    if principal.role is Role.ADMIN:
        return [e.id for e in plant.enterprises]
    if principal.role is Role.TOWN:
        return [e.id for e in plant.enterprises if e.key]
    return [principal.enterprise] if principal.enterprise else []


def may_see_raw(principal: Principal, enterprise: str) -> bool:
    """Raw series, assets, firings and alarms of an enterprise."""
    if principal.role is Role.ADMIN:
        return True
    return principal.role in ENTERPRISE_ROLES and principal.enterprise == enterprise


def may_see_aggregate(principal: Principal, enterprise: str, plant: PlantModel) -> bool:
    """Enterprise-level aggregates (OEE of the enterprise, digitalisation progress)."""
    return may_see_raw(principal, enterprise) or (
        principal.role is Role.TOWN and enterprise in visible_enterprises(principal, plant)
    )
