"""The producer's settings: what to simulate, at what pace, and how long to wait for Kafka.

The simulation's defaults and limits are the simulator's own (``SimulationOptions``): a value
is checked once, by the simulator, and a wrong one is reported with the variable (or flag)
that set it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal, Self

from pydantic import field_validator, model_validator

from emr_jobs.core.settings import Settings, setting
from producer.simulator import MAX_VEHICLES, SimulationOptions

_SIM = SimulationOptions()
#: The settings that are simulation options, by their ``SimulationOptions`` name.
SIMULATION_FIELDS = (
    "vehicles",
    "seed",
    "start_time",
    "tick_seconds",
    "max_events",
    "late_fraction",
    "duplicate_fraction",
)


def utc_if_naive(text: str) -> str:
    """A ``--start-time`` without an offset is UTC (the variable must carry one)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # the settings reject it, naming the flag
    return text if parsed.tzinfo else parsed.replace(tzinfo=UTC).isoformat()


class ProducerSettings(Settings):
    vehicles: int = setting(
        "SIM_VEHICLES",
        _SIM.vehicles,
        f"vehicles in the fleet, 1..{MAX_VEHICLES}",
        flag="--vehicles",
    )
    seed: int = setting("SIM_SEED", _SIM.seed, "same seed, same events", flag="--seed")
    start_time: datetime = setting(
        "SIM_START_TIME",
        _SIM.start_time,
        "simulated start, ISO-8601 (flag: UTC if no offset)",
        flag="--start-time",
        flag_type=utc_if_naive,
    )
    tick_seconds: float = setting(
        "SIM_TICK_SECONDS", _SIM.tick_seconds, "simulated seconds between a vehicle's readings"
    )
    pace: Literal["max", "realtime"] = setting("SIM_PACE", "max", "max | realtime", flag="--pace")
    speedup: float = setting(
        "SIM_SPEEDUP",
        1.0,
        "realtime: simulated seconds per wall second",
        flag="--speedup",
        ge=1e-3,
    )
    max_events: int | None = setting(
        "SIM_MAX_EVENTS",
        _SIM.max_events,
        "stop after N events (unset: when all arrive)",
        flag="--max-events",
        ge=1,
    )
    late_fraction: float = setting(
        "SIM_LATE_FRACTION",
        _SIM.late_fraction,
        "share of events sent late, 0..1",
        flag="--late-fraction",
    )
    duplicate_fraction: float = setting(
        "SIM_DUPLICATE_FRACTION",
        _SIM.duplicate_fraction,
        "share of events sent twice, 0..1",
        flag="--duplicate-fraction",
    )
    flush_timeout_seconds: float = setting(
        "PRODUCER_FLUSH_TIMEOUT_SECONDS", 30.0, "how long the final flush may take", ge=0
    )
    connect_timeout_seconds: float = setting(
        "PRODUCER_CONNECT_TIMEOUT_SECONDS",
        5.0,
        "give up on an unreachable broker after this",
        ge=0.5,
    )
    delivery_timeout_seconds: float = setting(
        "PRODUCER_DELIVERY_TIMEOUT_SECONDS",
        30.0,
        "seconds an event may wait for the broker's acknowledgement, retries included, before "
        "it counts as failed (librdkafka message.timeout.ms)",
        flag="--delivery-timeout",
        ge=1.0,
    )
    aws_profile: str = setting(
        "AWS_PROFILE", "", "msk-iam: sign with this profile", flag="--aws-profile"
    )
    role_arn: str = setting(
        "MSK_IAM_ROLE_ARN", "", "msk-iam: sign as this assumed role", flag="--role-arn"
    )

    @field_validator("start_time")
    @classmethod
    def _has_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-01-05T08:00:00Z")
        return value

    @model_validator(mode="after")
    def _simulation_is_valid(self) -> Self:
        try:
            self.simulation_options()
        except ValueError as err:
            # The simulator names its option; the user set the variable.
            message = str(err)
            for name in SIMULATION_FIELDS:
                env = type(self).model_fields[name].json_schema_extra["env"]  # type: ignore[index]
                message = re.sub(rf"^{name}\b", str(env), message)
            raise ValueError(message) from None
        return self

    def simulation_options(self) -> SimulationOptions:
        return SimulationOptions(**{name: getattr(self, name) for name in SIMULATION_FIELDS})
