"""What to simulate: :class:`SimulationOptions`, checked when it is built."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

MAX_VEHICLES = 10_000


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate. Every value is checked; a bad one raises ValueError naming it."""

    vehicles: int = 5
    seed: int = 42
    start_time: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    tick_seconds: float = 5.0
    max_events: int | None = None
    late_fraction: float = 0.0
    late_max_seconds: float = 60.0
    duplicate_fraction: float = 0.0
    weather_every_seconds: float = 60.0
    incident_rate_per_hour: float = 0.5

    def __post_init__(self) -> None:
        if (
            isinstance(self.vehicles, bool)
            or not isinstance(self.vehicles, int)
            or not 1 <= self.vehicles <= MAX_VEHICLES
        ):
            raise ValueError(
                f"vehicles must be an integer from 1 to {MAX_VEHICLES:,}, got {self.vehicles!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if (
            not isinstance(self.start_time, datetime)
            or self.start_time.tzinfo is None
            or self.start_time.utcoffset() is None
        ):
            raise ValueError("start_time must be a timezone-aware datetime")
        if not 0.001 <= self.tick_seconds <= 3600:
            raise ValueError(f"tick_seconds must be from 0.001 to 3600, got {self.tick_seconds!r}")
        if self.max_events is not None and (
            isinstance(self.max_events, bool)
            or not isinstance(self.max_events, int)
            or self.max_events < 0
        ):
            raise ValueError(f"max_events must be None or an integer >= 0, got {self.max_events!r}")
        for name in ("late_fraction", "duplicate_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be from 0 to 1, got {value!r}")
        if not 0.0 <= self.late_max_seconds <= 3600 or (
            self.late_fraction > 0 and self.late_max_seconds < 0.001
        ):
            raise ValueError(
                f"late_max_seconds must be from 0.001 to 3600, got {self.late_max_seconds!r}"
            )
        if not 0.001 <= self.weather_every_seconds <= 86_400:
            raise ValueError(
                "weather_every_seconds must be from 0.001 to 86400, "
                f"got {self.weather_every_seconds!r}"
            )
        if not 0.0 <= self.incident_rate_per_hour <= 3600:
            raise ValueError(
                "incident_rate_per_hour must be from 0 to 3600, "
                f"got {self.incident_rate_per_hour!r}"
            )
