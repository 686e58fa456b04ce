"""Exporter settings: constructor argument, else environment variable, else the default.

Every variable is documented in docs/aim.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

logger = logging.getLogger(__name__)

ENV_REPO = "OTEL_EXPORTER_AIM_REPO"
ENV_EXPERIMENT = "OTEL_EXPORTER_AIM_EXPERIMENT"
ENV_RUN_PER = "OTEL_EXPORTER_AIM_RUN_PER"
ENV_RUN_NAME = "OTEL_EXPORTER_AIM_RUN_NAME"
ENV_SYSTEM_TRACKING_INTERVAL = "OTEL_EXPORTER_AIM_SYSTEM_TRACKING_INTERVAL"
ENV_LOG_SYSTEM_PARAMS = "OTEL_EXPORTER_AIM_LOG_SYSTEM_PARAMS"
ENV_MAX_TEXT_CHARS = "OTEL_EXPORTER_AIM_MAX_TEXT_CHARS"
ENV_MAX_CONTEXTS = "OTEL_EXPORTER_AIM_MAX_CONTEXTS"
ENV_TRACE_GRACE = "OTEL_EXPORTER_AIM_TRACE_GRACE_SECONDS"
ENV_TRACE_IDLE = "OTEL_EXPORTER_AIM_TRACE_IDLE_SECONDS"
# Durations in milliseconds, like OpenTelemetry's own OTEL_EXPORTER_*_TIMEOUT variables (the
# arguments are in seconds).
ENV_TIMEOUT = "OTEL_EXPORTER_AIM_TIMEOUT"
ENV_REMOTE_WRITE_TIMEOUT = "OTEL_EXPORTER_AIM_REMOTE_WRITE_TIMEOUT"
ENV_SEED_COUNTERS = "OTEL_EXPORTER_AIM_SEED_COUNTERS"
ENV_TRACE_FIGURES = "OTEL_EXPORTER_AIM_TRACE_FIGURES"
ENV_SPOOL_DIR = "OTEL_EXPORTER_AIM_SPOOL_DIR"
ENV_SHARED_SPOOL_DIR = "SPANCHAIN_SPOOL_DIR"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"

DEFAULT_REPO = "."
DEFAULT_EXPERIMENT = "langchain"
RUN_PER_CHOICES = ("session", "trace")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class AimExporterConfig:
    repo: str = DEFAULT_REPO
    experiment: str | None = None  # None: resolved per span from the resource's service.name
    run_per: str = "session"
    run_name: str | None = None
    system_tracking_interval: float | None = None
    log_system_params: bool = False
    max_text_chars: int = 100_000
    max_contexts: int = 1_000
    trace_grace_s: float = 5.0
    trace_idle_s: float = 60.0
    shutdown_timeout_s: float = 10.0
    spool_dir: str | None = None
    remote_write_timeout_s: float = 30.0  # aim:// only: wait for the server to confirm a trace
    seed_counters: bool = False  # langchain_community's 13 `counter.*` metrics (drop-in handler: on)
    trace_figures: bool = True  # each trace as a plotly waterfall (aim.Figure)

    @property
    def is_remote(self) -> bool:
        return self.repo.startswith("aim://")


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def _number(value: Any, name: str, *, integer: bool = False, allow_off: bool = False):
    if value is None:
        return None
    if allow_off and str(value).strip().lower() in {"none", "off", "false", "0", ""}:
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name}: must not be negative, got {value!r}")
    return number


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{name}: expected true/false, got {value!r}")


_UNSET_INTERVAL = object()


def _millis(value: Any, name: str):
    """Seconds from a number of milliseconds (an environment variable)."""
    number = _number(value, name)
    return None if number is None else number / 1000.0


class _Resolver:
    """Argument first (a bad one raises: it is a programming error), then the environment
    (a bad value is logged and the default used: a typo in a deployment must not stop the app)."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def get(self, arg, name: str, parse, default, env_parse=None):
        if arg is not None:
            value = parse(arg, name)
            return default if value is None else value
        raw = _env(self.env, name)
        if raw is None:
            return default
        try:
            value = (env_parse or parse)(raw, name)
        except ValueError as exc:
            logger.warning("spanchain-aim: ignoring %s (%s); using %r", name, exc, default)
            return default
        return default if value is None else value


def _text(value, name):
    return str(value)


def _run_per(value, name):
    text = str(value).strip().lower()
    if text not in RUN_PER_CHOICES:
        raise ValueError(f"{name}: expected one of {RUN_PER_CHOICES}, got {value!r}")
    return text


def _interval(value, name):
    return _number(value, name, allow_off=True)


def _int(value, name):
    return _number(value, name, integer=True)


def resolve_config(
    repo: str | os.PathLike | None = None,
    experiment: str | None = None,
    run_per: str | None = None,
    *,
    run_name: str | None = None,
    system_tracking_interval: Any = _UNSET_INTERVAL,
    log_system_params: bool | None = None,
    max_text_chars: int | None = None,
    max_contexts: int | None = None,
    trace_grace_s: float | None = None,
    trace_idle_s: float | None = None,
    shutdown_timeout_s: float | None = None,
    spool_dir: str | os.PathLike | None = None,
    remote_write_timeout_s: float | None = None,
    seed_counters: bool | None = None,
    trace_figures: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> AimExporterConfig:
    """Settings from arguments, then `OTEL_EXPORTER_AIM_*`, then defaults."""
    r = _Resolver(os.environ if env is None else env)
    d = AimExporterConfig()
    if system_tracking_interval is _UNSET_INTERVAL:
        interval = r.get(None, ENV_SYSTEM_TRACKING_INTERVAL, _interval, None)
    else:
        interval = _interval(system_tracking_interval, "system_tracking_interval")
    spool = r.get(spool_dir, ENV_SPOOL_DIR, _text, None) or r.get(None, ENV_SHARED_SPOOL_DIR, _text, None)
    return AimExporterConfig(
        repo=str(r.get(repo, ENV_REPO, _text, d.repo)),
        experiment=r.get(experiment, ENV_EXPERIMENT, _text, None) or r.get(None, ENV_SERVICE_NAME, _text, None),
        run_per=r.get(run_per, ENV_RUN_PER, _run_per, d.run_per),
        run_name=r.get(run_name, ENV_RUN_NAME, _text, None),
        system_tracking_interval=interval,
        log_system_params=bool(r.get(log_system_params, ENV_LOG_SYSTEM_PARAMS, _flag, False)),
        max_text_chars=max(1_000, r.get(max_text_chars, ENV_MAX_TEXT_CHARS, _int, d.max_text_chars)),
        max_contexts=max(1, r.get(max_contexts, ENV_MAX_CONTEXTS, _int, d.max_contexts)),
        trace_grace_s=float(r.get(trace_grace_s, ENV_TRACE_GRACE, _number, d.trace_grace_s)),
        trace_idle_s=float(r.get(trace_idle_s, ENV_TRACE_IDLE, _number, d.trace_idle_s)),
        shutdown_timeout_s=float(r.get(shutdown_timeout_s, ENV_TIMEOUT, _number, d.shutdown_timeout_s, _millis)),
        spool_dir=str(spool) if spool else None,
        remote_write_timeout_s=float(
            r.get(remote_write_timeout_s, ENV_REMOTE_WRITE_TIMEOUT, _number, d.remote_write_timeout_s, _millis)
            or d.remote_write_timeout_s
        ),
        seed_counters=bool(r.get(seed_counters, ENV_SEED_COUNTERS, _flag, d.seed_counters)),
        trace_figures=bool(r.get(trace_figures, ENV_TRACE_FIGURES, _flag, d.trace_figures)),
    )


def experiment_for(config: AimExporterConfig, service_name: Any) -> str:
    """The configured experiment, else the span resource's service name, else the default."""
    if config.experiment:
        return config.experiment
    name = str(service_name or "")
    if name and not name.startswith("unknown_service"):
        return name
    return DEFAULT_EXPERIMENT
