"""The API's settings, in one class. Read from arguments, then ``KILNWORKS_*`` environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.plant import BUILTIN_SHANGBU


class Settings(BaseSettings):
    """Everything ``kilnworks serve`` can be told; validated when constructed."""

    model_config = SettingsConfigDict(env_prefix="KILNWORKS_", extra="forbid")

    store_url: str = "sqlite:///var/kilnworks/telemetry.db"  # telemetry store (open_store URL)
    db_url: str = "sqlite:///var/kilnworks/metadata.db"  # metadata store (SQLAlchemy URL)
    plant_path: str = str(BUILTIN_SHANGBU)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # An asset is "connected" when it sent something within this many seconds.
    silent_after_s: float = Field(120.0, gt=0)
    # How often the alarm evaluator runs in the background (0 = never; tests call it directly).
    alarm_interval_s: float = Field(30.0, ge=0)
    # Default band around the travelling setpoint (°C) when the programme does not carry one.
    tolerance_c: float = Field(15.0, gt=0)
    # Shift calendar TOML (analytics.shifts format); None: three 8 h shifts, Asia/Shanghai.
    shifts_path: str | None = None
    # Shuttle kilns have no nameplate push rate: their ideal is one firing per programme, and
    # this many hours per firing when no programme is known.
    shuttle_firing_hours: float = Field(30.0, gt=0)
    # Nominal sampling interval of a thermocouple or press counter, for data completeness
    # (samples received / samples expected) in the digitalisation indicators.
    expected_sample_interval_s: float = Field(10.0, gt=0)
    # How far back firings are looked for in telemetry when the caller gives no window.
    firing_lookback_s: float = Field(14 * 86400.0, gt=0)
    # The OEE cache (per process, per asset; docs/api.md "The OEE cache"). At most this many
    # per-asset results are kept, least recently used first out; 0 turns the cache off.
    oee_cache_entries: int = Field(4096, ge=0)
    # A window that ended less than this long ago may still receive data (edge agents deliver
    # late): it is "live". An older window is "settled".
    oee_cache_late_s: float = Field(600.0, ge=0)
    # A live window's result is kept this long, and "now" (the default end of a window) is
    # rounded down to a multiple of it so that pollers share entries; 0: never kept.
    oee_cache_live_s: float = Field(5.0, ge=0)
    # A settled window's result is kept at most this long (bounding how long data that arrives
    # later than oee_cache_late_s goes unseen); 0: until invalidated or evicted.
    oee_cache_settled_s: float = Field(3600.0, ge=0)
