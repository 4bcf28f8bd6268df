"""The dashboard's settings, read from the environment (variable in brackets).

Kafka (``KAFKA_*``, topic names) and the lake (``LAKE_*``) are the pipeline's own settings,
read by ``KafkaSettings`` and ``JobSettings``; only what is the dashboard's own lives here.
A wrong value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from emr_jobs.core.settings import SettingsError, check_range, env_float, env_int, env_str

LOOPBACK = "127.0.0.1"
_HOST = re.compile(r"^[A-Za-z0-9.:%-]{1,253}$")
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@dataclass(frozen=True)
class DashboardSettings:
    #: [DASHBOARD_HOST] address to bind. Loopback by default: anything else is a deliberate
    #: choice (the dashboard has no login), made with this variable or ``--host``.
    host: str = LOOPBACK
    port: int = 8050  # [DASHBOARD_PORT]
    #: [DASHBOARD_TILE_URL] optional map tiles, e.g. ``https://tiles.example/{z}/{x}/{y}.png``;
    #: empty: the base map is drawn from the project's route data only.
    tile_url: str = ""
    #: [DASHBOARD_CONSUMER_GROUP] the dashboard's own consumer group id. It never commits and
    #: reads every partition from the latest offset, so several dashboards never share work.
    consumer_group: str = "smartcity-dashboard"
    coalesce_seconds: float = 1.0  # [DASHBOARD_COALESCE_SECONDS] at most one position per vehicle
    connect_timeout_seconds: float = 5.0  # [DASHBOARD_CONNECT_TIMEOUT_SECONDS] broker at start-up
    health_seconds: float = 2.0  # [DASHBOARD_HEALTH_SECONDS] broker/checkpoint poll interval
    lake_seconds: float = 15.0  # [DASHBOARD_LAKE_SECONDS] lake metadata poll interval
    history_minutes: int = 30  # [DASHBOARD_HISTORY_MINUTES] road-condition charts
    #: [DASHBOARD_VEHICLE_TTL_SECONDS] a vehicle silent this long leaves the map (arrived)
    vehicle_ttl_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not _HOST.match(self.host):
            raise SettingsError(
                "DASHBOARD_HOST must be an address or host name such as 127.0.0.1 or 0.0.0.0; "
                f"got {self.host!r}"
            )
        check_range("DASHBOARD_PORT", self.port, 1, 65535)
        if self.tile_url and not (
            self.tile_url.startswith(("http://", "https://", "/")) and "{z}" in self.tile_url
        ):
            raise SettingsError(
                "DASHBOARD_TILE_URL must be an http(s) URL or a path with {z}, {x} and {y}, "
                f"e.g. https://tiles.example/{{z}}/{{x}}/{{y}}.png; got {self.tile_url!r}"
            )
        if not _GROUP.match(self.consumer_group):
            raise SettingsError(
                "DASHBOARD_CONSUMER_GROUP must be letters, digits, '.', '_' or '-'; "
                f"got {self.consumer_group!r}"
            )
        check_range("DASHBOARD_COALESCE_SECONDS", self.coalesce_seconds, 0.05, 60)
        check_range("DASHBOARD_CONNECT_TIMEOUT_SECONDS", self.connect_timeout_seconds, 0.5, 120)
        check_range("DASHBOARD_HEALTH_SECONDS", self.health_seconds, 0.2, 600)
        check_range("DASHBOARD_LAKE_SECONDS", self.lake_seconds, 1, 3600)
        check_range("DASHBOARD_HISTORY_MINUTES", self.history_minutes, 1, 24 * 60)
        check_range("DASHBOARD_VEHICLE_TTL_SECONDS", self.vehicle_ttl_seconds, 5, 86_400)

    @property
    def is_loopback(self) -> bool:
        return self.host in (LOOPBACK, "localhost", "::1") or self.host.startswith("127.")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if env is None else env
        return cls(
            host=env_str(env, "DASHBOARD_HOST", LOOPBACK),
            port=env_int(env, "DASHBOARD_PORT", 8050),
            tile_url=env_str(env, "DASHBOARD_TILE_URL", ""),
            consumer_group=env_str(env, "DASHBOARD_CONSUMER_GROUP", "smartcity-dashboard"),
            coalesce_seconds=env_float(env, "DASHBOARD_COALESCE_SECONDS", 1.0),
            connect_timeout_seconds=env_float(env, "DASHBOARD_CONNECT_TIMEOUT_SECONDS", 5.0),
            health_seconds=env_float(env, "DASHBOARD_HEALTH_SECONDS", 2.0),
            lake_seconds=env_float(env, "DASHBOARD_LAKE_SECONDS", 15.0),
            history_minutes=env_int(env, "DASHBOARD_HISTORY_MINUTES", 30),
            vehicle_ttl_seconds=env_float(env, "DASHBOARD_VEHICLE_TTL_SECONDS", 600.0),
        )
