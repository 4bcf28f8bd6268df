"""Settings plumbing shared by every component: the error a wrong setting raises, and checks.

Standard library only: the producer imports this module and must not pull in pyspark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class SettingsError(ValueError):
    """A setting is missing or has a wrong value. The message names the setting."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def env_int(
    env: Mapping[str, str],
    name: str,
    default: int | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    check_range(name, value, minimum, maximum)
    return value


def env_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    check_range(name, value, minimum, None)
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")


_DURATION = re.compile(r"^\s*(\d+)\s*(second|seconds|minute|minutes|hour|hours)\s*$")


def check_duration(name: str, value: str) -> str:
    """Spark interval strings such as ``"2 minutes"`` or ``"10 seconds"``."""
    if not _DURATION.match(value):
        raise SettingsError(
            f"{name} must look like '10 seconds', '2 minutes' or '1 hour'; got {value!r}"
        )
    return value.strip()


def duration_seconds(value: str) -> int:
    match = _DURATION.match(value)
    if not match:
        raise SettingsError(f"not a duration: {value!r}")
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"second": 1, "minute": 60, "hour": 3600}[unit]
