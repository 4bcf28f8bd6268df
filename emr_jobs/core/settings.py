"""Settings plumbing shared by every component, on pydantic-settings.

Each component has one settings class (``KafkaSettings``, ``JobSettings``, ``AlertSettings``,
``ProducerSettings``, ``DashboardSettings``, ``ForwarderSettings``...). A field declares, in one
place, its environment variable, its default, its checks, its help text and, where it has one,
its command-line flag::

    vehicles: int = setting("SIM_VEHICLES", 5, "vehicles in the fleet", ge=1, le=10_000,
                            flag="--vehicles")

- ``Cls.from_env(env)`` reads a mapping (the process environment by default); tests build
  settings by passing values by field name, ``Cls(vehicles=3)``, and the environment still fills
  the rest.
- ``Cls.from_args(args, env)`` lays the flags ``add_flags`` put on an argparse parser over the
  environment; an error about a value given by a flag names the flag.
- ``settings.to_env()`` renders the environment that gives a child process the same settings.
- A wrong value raises ``SettingsError`` at start-up, one line that names the variable (or the
  flag) and the value.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources import PydanticBaseSettingsSource

# typing.Self is Python 3.11; the compose stack's Spark image runs the job on 3.10.
from typing_extensions import Self  # noqa: UP035


class SettingsError(ValueError):
    """A setting is missing or has a wrong value. The message names the setting."""


def setting(
    env: str,
    default: Any = PydanticUndefined,
    description: str = "",
    *,
    flag: str | None = None,
    flag_type: Callable[[str], Any] | None = None,
    also: tuple[str, ...] = (),
    **checks: Any,
) -> Any:
    """A field read from the environment variable ``env`` (then ``also``), and from ``flag``.

    ``flag_type`` converts the flag's text first (argparse ``type``), e.g. to add a default.
    """
    extra: dict[str, Any] = {"env": env, "flag": flag, "flag_type": flag_type}
    if "default_factory" not in checks:
        checks["default"] = default
    return Field(
        validation_alias=AliasChoices(env, *also) if also else env,
        description=description,
        json_schema_extra=extra,
        **checks,
    )


_DURATION = re.compile(r"^\s*(\d+)\s*(second|seconds|minute|minutes|hour|hours)\s*$")


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must look like '10 seconds', '2 minutes' or '1 hour'")
    return value.strip()


#: A Spark interval string such as ``"10 seconds"`` or ``"2 minutes"``.
Duration = Annotated[str, AfterValidator(_duration)]


def duration_seconds(value: str) -> int:
    match = _DURATION.match(value)
    if not match:
        raise SettingsError(f"not a duration: {value!r}")
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * {"second": 1, "minute": 60, "hour": 3600}[unit]


def check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    """For values that are not settings fields (a command's own arguments)."""
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")


#: The environment ``from_env`` reads, while it builds. Outside it there is none: a settings
#: object built with ``Cls(field=value)`` holds those values and defaults, whatever the process
#: environment says.
_SOURCE: ContextVar[Mapping[str, str]] = ContextVar("settings_source", default=MappingProxyType({}))
#: Field -> the flag that set it, while ``from_args`` builds (errors name the flag).
_FLAGS: ContextVar[Mapping[str, str] | None] = ContextVar("settings_flags", default=None)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, plus a class's extras."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k: v for k, v in self._env.items() if v.strip()}

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        extras = getattr(self.settings_cls, "extra_from_env", None)
        if extras is not None:
            data.update(extras(self.env_vars))
        return data


class Settings(BaseSettings):
    """Base of every component's settings: frozen, read from the environment, strict errors."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        populate_by_name=True,
        extra="ignore",
        env_ignore_empty=True,
        str_strip_whitespace=True,  # surrounding blanks in a variable are not its value
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise SettingsError(describe(type(self), err, _FLAGS.get() or {})) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _MappingSource(settings_cls, _SOURCE.get())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **values: Any) -> Self:
        """Settings from ``env`` (default: the process environment); ``values`` win over it."""
        token = _SOURCE.set(os.environ if env is None else env)
        try:
            return cls(**values)
        finally:
            _SOURCE.reset(token)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser, *only: str) -> None:
        """One option per field that declares a flag (or only the fields ``only`` names); its
        help names the variable and its default."""
        for name in only or tuple(cls.model_fields):
            info = cls.model_fields[name]
            extra = _extra(info)
            if not extra.get("flag"):
                if only:
                    raise TypeError(f"{cls.__name__}.{name} declares no flag")
                continue
            default = "" if info.default in (None, "", PydanticUndefined) else f"={info.default}"
            parser.add_argument(
                extra["flag"],
                type=extra["flag_type"] or str,
                dest=f"setting_{name}",
                metavar=name.upper(),
                help=f"{info.description} [{extra['env']}{default}]",
            )

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, env: Mapping[str, str] | None = None, **values: Any
    ) -> Self:
        """The flags ``add_flags`` declared laid over ``env``; errors name the flag given.
        ``values`` (a command's own flags, such as ``--available-now``) win over both."""
        given = {
            name: value
            for name in cls.model_fields
            if (value := getattr(args, f"setting_{name}", None)) is not None
        }
        flags = {name: _extra(cls.model_fields[name])["flag"] for name in given}
        token = _FLAGS.set(flags)
        try:
            return cls.from_env(env, **{**given, **values})
        finally:
            _FLAGS.reset(token)

    @classmethod
    def flags_given(cls, args: argparse.Namespace) -> dict[str, str]:
        """Variable -> flag, for each of this class's flags the command line set."""
        return {
            extra["env"]: extra["flag"]
            for name, info in cls.model_fields.items()
            if (extra := _extra(info)).get("flag")
            and getattr(args, f"setting_{name}", None) is not None
        }

    @classmethod
    def variables(cls) -> Iterator[tuple[str, FieldInfo]]:
        """(environment variable, field) for every field, in declaration order."""
        for info in cls.model_fields.values():
            if env := _extra(info).get("env"):
                yield env, info

    def updated(self, **changes: Any) -> Self:
        """A copy with ``changes`` (by field name), checked like any other settings."""
        return type(self)(**{**self.model_dump(), **changes})

    def to_env(self) -> dict[str, str]:
        """The environment that gives a child process these same settings."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value == "" or not _extra(info):
                continue
            # None is rendered empty: the child reads an empty variable as unset (its default),
            # even where this process's own environment had set it.
            env[_extra(info)["env"]] = "" if value is None else _render(value)
        return env


def _extra(info: FieldInfo) -> dict[str, Any]:
    """A field's ``setting(...)`` metadata; empty for a field that is not a variable."""
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) and "env" in extra else {}


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


_MESSAGES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "literal_error": "must be one of {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "missing": "is required",
}


def describe(cls: type[BaseModel], err: ValidationError, flags: Mapping[str, str]) -> str:
    """One line per wrong value, naming its variable (or the flag that set it)."""
    by_alias = {_extra(i).get("env"): name for name, i in cls.model_fields.items() if _extra(i)}
    lines = []
    for error in err.errors():
        loc = str(error["loc"][0]) if error["loc"] else ""
        field = by_alias.get(loc, loc)
        name = flags.get(field) or _extra(cls.model_fields.get(field, Field())).get("env", "")
        kind = error["type"]
        if kind == "value_error":
            message = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            template = _MESSAGES.get(kind)
            ctx = {k: str(v).replace("'", "") for k, v in error.get("ctx", {}).items()}
            message = template.format(**ctx) if template else error["msg"].lower()
        if name:
            got = f"; got {error['input']!r}" if kind != "missing" else ""
            lines.append(f"{name} {message}{got}")
        else:
            lines.append(message)
    given = {_extra(cls.model_fields[field])["env"]: flag for field, flag in flags.items()}
    return name_flags("; ".join(lines), given)


def name_flags(message: str, given: Mapping[str, str]) -> str:
    """Each variable the user set with a flag, named by that flag in an error message."""
    for variable, flag in given.items():
        message = re.sub(rf"\b{variable}\b", flag, message)
    return message
