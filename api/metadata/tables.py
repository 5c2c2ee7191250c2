"""Table definitions of the metadata store (SQLAlchemy Core).

Times are integer UTC nanoseconds in BIGINT columns, like everywhere else in kilnworks.
JSON-ish payloads (reject reasons, assessment levels) are stored as text encoded by the store,
so SQLite and PostgreSQL hold exactly the same bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(24), primary_key=True),  # public part of the token, used to look it up
    Column("secret_sha256", String(64), nullable=False),  # sha256 hex of the secret part
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("enterprise", String(64), nullable=True),  # None for admin and town official
    Column("created_ns", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

firings = Table(
    "firings",
    metadata,
    Column("asset", String(300), primary_key=True),
    Column("firing_id", String(200), primary_key=True),
    Column("enterprise", String(64), nullable=False),
    Column("programme", String(200), nullable=False, default=""),
    Column("programme_segments", Text, nullable=False, default=""),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=True),  # None while the firing runs
    Column("state", String(20), nullable=False),  # running | complete
    Column("conformance_score", Float, nullable=True),  # cached once the firing is complete
    Column("energy_kwh", Float, nullable=True),
)
Index("firings_enterprise_start", firings.c.enterprise, firings.c.start_ns)

gradings = Table(
    "gradings",
    metadata,
    Column("asset", String(300), primary_key=True),
    Column("firing_id", String(200), primary_key=True),
    Column("enterprise", String(64), nullable=False),
    Column("good_count", Integer, nullable=False),
    Column("reject_count", Integer, nullable=False),
    Column("reject_reasons", Text, nullable=False),  # JSON object reason -> count
    Column("fired_mass_kg", Float, nullable=True),
    Column("graded_ns", BigInteger, nullable=False),
    Column("graded_by", String(200), nullable=False),
)

assessments = Table(
    "assessments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("enterprise", String(64), nullable=False),
    Column("submitted_ns", BigInteger, nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("levels", Text, nullable=False),  # JSON object element -> level 1..5 (GB/T 39116)
    Column("note", Text, nullable=False, default=""),
)
Index("assessments_enterprise_time", assessments.c.enterprise, assessments.c.submitted_ns)

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("enterprise", String(64), nullable=False),
    Column("asset", String(300), nullable=False),
    Column("kind", String(40), nullable=False),  # deviation | stall | broken_thermocouple | silent
    Column("subject", String(200), nullable=False),  # the field concerned, or "" for the asset
    Column("severity", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=True),  # None while active
    Column("acked_ns", BigInteger, nullable=True),
    Column("acked_by", String(200), nullable=True),
    # One open alarm per (asset, kind, subject): open_key is NULL once it ended, and NULLs do
    # not collide in a unique constraint on either database.
    Column("open_key", String(600), nullable=True),
    UniqueConstraint("open_key", name="alarms_one_open"),
)
Index("alarms_enterprise_start", alarms.c.enterprise, alarms.c.start_ns)
