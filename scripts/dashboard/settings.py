"""The dashboard's settings, read from the environment (``emr_jobs.core.settings``).

Kafka (``KAFKA_*``, topic names) and the lake (``LAKE_*``) are the pipeline's own settings,
read by ``KafkaSettings`` and ``JobSettings``; only what is the dashboard's own lives here. Each
field declares its variable, default, checks, help and (``--host``, ``--port``) flag in one
place. A wrong value raises ``SettingsError`` naming the variable (or the flag that set it).
"""

from __future__ import annotations

import re

from pydantic import field_validator

from emr_jobs.core.settings import Settings, setting

LOOPBACK = "127.0.0.1"
_HOST = re.compile(r"^[A-Za-z0-9.:%-]{1,253}$")
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class DashboardSettings(Settings):
    """The dashboard's own settings."""

    #: Loopback by default: anything else is a deliberate choice (the dashboard has no login).
    host: str = setting(
        "DASHBOARD_HOST",
        LOOPBACK,
        "address to bind; not loopback: anyone who can reach this machine sees the dashboard",
        flag="--host",
    )
    port: int = setting("DASHBOARD_PORT", 8050, "port to listen on", flag="--port", ge=1, le=65535)
    tile_url: str = setting(
        "DASHBOARD_TILE_URL",
        "",
        "map tiles, e.g. https://tiles.example/{z}/{x}/{y}.png; "
        "unset: the base map is drawn from the route data only",
    )
    #: It never commits and reads every partition from the latest offset, so several
    #: dashboards never share work.
    consumer_group: str = setting(
        "DASHBOARD_CONSUMER_GROUP", "smartcity-dashboard", "the dashboard's own consumer group"
    )
    coalesce_seconds: float = setting(
        "DASHBOARD_COALESCE_SECONDS",
        1.0,
        "at most one position per vehicle this often",
        ge=0.05,
        le=60,
    )
    connect_timeout_seconds: float = setting(
        "DASHBOARD_CONNECT_TIMEOUT_SECONDS",
        5.0,
        "give up on the broker at start-up after this",
        ge=0.5,
        le=120,
    )
    health_seconds: float = setting(
        "DASHBOARD_HEALTH_SECONDS", 2.0, "broker and checkpoint poll interval", ge=0.2, le=600
    )
    lake_seconds: float = setting(
        "DASHBOARD_LAKE_SECONDS", 15.0, "lake metadata poll interval", ge=1, le=3600
    )
    history_minutes: int = setting(
        "DASHBOARD_HISTORY_MINUTES",
        30,
        "minutes of road conditions in the charts",
        ge=1,
        le=24 * 60,
    )
    vehicle_ttl_seconds: float = setting(
        "DASHBOARD_VEHICLE_TTL_SECONDS",
        600.0,
        "a vehicle silent this long leaves the map",
        ge=5,
        le=86_400,
    )

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _HOST.match(value):
            raise ValueError("must be an address or host name such as 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("tile_url")
    @classmethod
    def _tiles(cls, value: str) -> str:
        if value and not (value.startswith(("http://", "https://", "/")) and "{z}" in value):
            raise ValueError(
                "must be an http(s) URL or a path with {z}, {x} and {y}, "
                "e.g. https://tiles.example/{z}/{x}/{y}.png"
            )
        return value

    @field_validator("consumer_group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _GROUP.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-'")
        return value

    @property
    def is_loopback(self) -> bool:
        return self.host in (LOOPBACK, "localhost", "::1") or self.host.startswith("127.")
