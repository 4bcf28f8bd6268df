"""Producer settings: the simulation options and the pace, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from emr_jobs.core.contracts import parse_timestamp
from emr_jobs.core.settings import (
    SettingsError,
    check_choice,
    check_range,
    env_float,
    env_int,
    env_str,
)

PACES = ("max", "realtime")
DEFAULT_START = "2026-01-05T08:00:00Z"


@dataclass(frozen=True)
class ProducerSettings:
    vehicles: int = 5  # [SIM_VEHICLES] 1..10000
    seed: int = 42  # [SIM_SEED]
    start_time: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # [SIM_START_TIME] ISO-8601
    tick_seconds: float = 5.0  # [SIM_TICK_SECONDS]
    pace: str = "max"  # [SIM_PACE] max | realtime
    speedup: float = 1.0  # [SIM_SPEEDUP] realtime only: simulated seconds per wall second
    max_events: int | None = None  # [SIM_MAX_EVENTS] unset: until every vehicle arrives
    late_fraction: float = 0.0  # [SIM_LATE_FRACTION] 0..1
    duplicate_fraction: float = 0.0  # [SIM_DUPLICATE_FRACTION] 0..1
    flush_timeout_seconds: float = 30.0  # [PRODUCER_FLUSH_TIMEOUT_SECONDS]
    connect_timeout_seconds: float = 5.0  # [PRODUCER_CONNECT_TIMEOUT_SECONDS]
    #: [PRODUCER_DELIVERY_TIMEOUT_SECONDS] how long an event may wait for the broker's
    #: acknowledgement, retries included (librdkafka ``message.timeout.ms``); then it fails.
    delivery_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        check_range("SIM_VEHICLES", self.vehicles, 1, 10_000)
        check_choice("SIM_PACE", self.pace, PACES)
        check_range("SIM_SPEEDUP", self.speedup, 1e-3, None)
        check_range("SIM_TICK_SECONDS", self.tick_seconds, 0.1, 3600)
        if self.max_events is not None:
            check_range("SIM_MAX_EVENTS", self.max_events, 1, None)
        check_range("SIM_LATE_FRACTION", self.late_fraction, 0.0, 1.0)
        check_range("SIM_DUPLICATE_FRACTION", self.duplicate_fraction, 0.0, 1.0)
        check_range("PRODUCER_DELIVERY_TIMEOUT_SECONDS", self.delivery_timeout_seconds, 1.0, None)
        if self.start_time.tzinfo is None:
            raise SettingsError(
                "SIM_START_TIME must include a UTC offset, e.g. 2026-01-05T08:00:00Z"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProducerSettings:
        env = os.environ if env is None else env
        start_text = env_str(env, "SIM_START_TIME", DEFAULT_START)
        start = parse_timestamp(
            start_text.replace("Z", "+00:00") if start_text.endswith("Z") else start_text
        )
        if start is None:
            raise SettingsError(
                "SIM_START_TIME must be ISO-8601 with an offset, "
                f"e.g. {DEFAULT_START}; got {start_text!r}"
            )
        return cls(
            vehicles=env_int(env, "SIM_VEHICLES", 5),
            seed=env_int(env, "SIM_SEED", 42),
            start_time=start,
            tick_seconds=env_float(env, "SIM_TICK_SECONDS", 5.0),
            pace=env_str(env, "SIM_PACE", "max"),
            speedup=env_float(env, "SIM_SPEEDUP", 1.0),
            max_events=env_int(env, "SIM_MAX_EVENTS", None),
            late_fraction=env_float(env, "SIM_LATE_FRACTION", 0.0),
            duplicate_fraction=env_float(env, "SIM_DUPLICATE_FRACTION", 0.0),
            flush_timeout_seconds=env_float(env, "PRODUCER_FLUSH_TIMEOUT_SECONDS", 30.0, minimum=0),
            connect_timeout_seconds=env_float(
                env, "PRODUCER_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.5
            ),
            delivery_timeout_seconds=env_float(env, "PRODUCER_DELIVERY_TIMEOUT_SECONDS", 30.0),
        )
