"""Settings, read from the environment in exactly one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

MAX_MODEL_BYTES = 5 * 1024 * 1024  # largest .bpmn/.dmn/.json file a designer may deploy


def _here(name: str) -> Path:
    """Folders default to the working directory: run the service from the project folder."""
    return Path.cwd() / name


@dataclass(frozen=True)
class Settings:
    """Every setting of the service. Build one with `Settings.from_env()`."""

    database_url: str
    redis_url: str | None = None
    secret_key: str = "dev-secret-change-me"
    instance_dir: Path = field(default_factory=lambda: _here("instance"))
    bpmn_dir: Path = field(default_factory=lambda: _here("bpmn"))
    forms_dir: Path = field(default_factory=lambda: _here("forms"))
    calendars_file: Path | None = None  # named business calendars (default: bpmn/calendars.json)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "clientconnect@localhost"
    smtp_tls: bool = False
    max_upload_bytes: int = MAX_MODEL_BYTES
    script_timeout_seconds: float = 1.0
    job_retries: int = 3
    job_backoff_seconds: float = 2.0
    job_timeout_seconds: int = 300
    ticker_interval_seconds: float = 0.5
    queue_name: str = "clientconnect"
    log_level: str = "INFO"
    mass_incident_cases: int = 5  # this many cases of one product ...
    mass_incident_minutes: int = 30  # ... within this many minutes open a major incident
    password_profile: str = "RFC_9106_LOW_MEMORY"  # an argon2.profiles name; tests use CHEAPEST

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs and timers run inside the process."""
        return not self.redis_url

    @property
    def outbox_dir(self) -> Path:
        return self.instance_dir / "outbox"

    def with_overrides(self, **overrides) -> Settings:
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read every setting; a malformed value raises ConfigError naming the variable."""
        env = dict(os.environ if env is None else env)
        number = _Numbers(env)
        instance_dir = Path(env.get("CLIENTCONNECT_INSTANCE_DIR", _here("instance")))
        return cls(
            database_url=(env.get("DATABASE_URL")
                          or f"sqlite:///{instance_dir / 'clientconnect.db'}"),
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY", cls.secret_key),
            instance_dir=instance_dir,
            bpmn_dir=Path(env.get("CLIENTCONNECT_BPMN_DIR", _here("bpmn"))),
            forms_dir=Path(env.get("CLIENTCONNECT_FORMS_DIR", _here("forms"))),
            calendars_file=Path(env.get("CLIENTCONNECT_CALENDARS",
                                        Path(env.get("CLIENTCONNECT_BPMN_DIR", _here("bpmn")))
                                        / "calendars.json")),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=number.integer("SMTP_PORT", 25, 1, 65535),
            smtp_user=env.get("SMTP_USER") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_from=env.get("SMTP_FROM", cls.smtp_from),
            smtp_tls=env.get("SMTP_TLS", "").lower() in ("1", "true", "yes"),
            job_retries=number.integer("CLIENTCONNECT_JOB_RETRIES", 3, 0, 100),
            job_backoff_seconds=number.decimal("CLIENTCONNECT_JOB_BACKOFF", 2.0, 0.0, 3600.0),
            script_timeout_seconds=number.decimal("CLIENTCONNECT_SCRIPT_TIMEOUT", 1.0, 0.01, 60.0),
            log_level=_log_level(env.get("LOG_LEVEL", "INFO")),
            mass_incident_cases=number.integer("CLIENTCONNECT_MASS_INCIDENT_CASES", 5, 2, 10_000),
            mass_incident_minutes=number.integer("CLIENTCONNECT_MASS_INCIDENT_MINUTES", 30, 1,
                                                 24 * 60),
        )


class ConfigError(ValueError):
    """A setting in the environment is malformed."""


class _Numbers:
    """Numeric settings with bounds, parsed once with a clear error."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return int(self._number(name, default, low, high, int))

    def decimal(self, name: str, default: float, low: float, high: float) -> float:
        return float(self._number(name, default, low, high, float))

    def _number(self, name, default, low, high, kind):
        raw = self.env.get(name)
        if raw in (None, ""):
            return default
        try:
            value = kind(raw)
        except ValueError:
            label = "an integer" if kind is int else "a number"
            raise ConfigError(f"{name}={raw!r} is not {label}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
        return value


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL={raw!r} is not a logging level")
    return level
