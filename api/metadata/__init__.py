"""The relational metadata store: plant-side facts that are not telemetry.

Firings, gradings, digitalisation assessments, alarms and API tokens live here, in SQLite by
default and PostgreSQL in a real deployment (SQLAlchemy 2 Core, parametrised statements only).
"""

from api.metadata.store import MetadataStore
from api.metadata.tables import metadata

__all__ = ["MetadataStore", "metadata"]
