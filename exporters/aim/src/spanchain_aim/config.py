"""Exporter settings: constructor argument, else environment variable, else the default.

Every variable is documented in docs/aim.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from spanchain.config import env
from spanchain.config import resolve as R

logger = logging.getLogger(__name__)

ENV_REPO = env.OTEL_EXPORTER_AIM_REPO
ENV_EXPERIMENT = env.OTEL_EXPORTER_AIM_EXPERIMENT
ENV_RUN_PER = env.OTEL_EXPORTER_AIM_RUN_PER
ENV_RUN_NAME = env.OTEL_EXPORTER_AIM_RUN_NAME
ENV_SYSTEM_TRACKING_INTERVAL = env.OTEL_EXPORTER_AIM_SYSTEM_TRACKING_INTERVAL
ENV_LOG_SYSTEM_PARAMS = env.OTEL_EXPORTER_AIM_LOG_SYSTEM_PARAMS
ENV_MAX_TEXT_CHARS = env.OTEL_EXPORTER_AIM_MAX_TEXT_CHARS
ENV_MAX_CONTEXTS = env.OTEL_EXPORTER_AIM_MAX_CONTEXTS
ENV_TRACE_GRACE = env.OTEL_EXPORTER_AIM_TRACE_GRACE_SECONDS
ENV_TRACE_IDLE = env.OTEL_EXPORTER_AIM_TRACE_IDLE_SECONDS
ENV_TIMEOUT = env.OTEL_EXPORTER_AIM_TIMEOUT
ENV_REMOTE_WRITE_TIMEOUT = env.OTEL_EXPORTER_AIM_REMOTE_WRITE_TIMEOUT
ENV_SEED_COUNTERS = env.OTEL_EXPORTER_AIM_SEED_COUNTERS
ENV_TRACE_FIGURES = env.OTEL_EXPORTER_AIM_TRACE_FIGURES
ENV_SPOOL_DIR = env.OTEL_EXPORTER_AIM_SPOOL_DIR
ENV_SHARED_SPOOL_DIR = env.SPANCHAIN_SPOOL_DIR
ENV_SERVICE_NAME = env.OTEL_SERVICE_NAME

DEFAULT_REPO = "."
DEFAULT_EXPERIMENT = "langchain"
RUN_PER_CHOICES = ("session", "trace")


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


_UNSET_INTERVAL = object()


def _interval(value):
    """Seconds between system samples; `off`/`none`/0 turn Aim's tracking off."""
    if str(value).strip().lower() in {"none", "off", "false", "0", ""}:
        return None
    return R.number(value)


def _millis(value) -> float:
    return R.number(value) / 1000.0


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
    r = R.Resolver(env, owner="spanchain-aim")
    d = AimExporterConfig()
    interval = r.get(None if system_tracking_interval is _UNSET_INTERVAL else system_tracking_interval,
                     "system_tracking_interval", ENV_SYSTEM_TRACKING_INTERVAL, _interval, None)
    if system_tracking_interval is None:
        interval = None  # an explicit None: off, whatever the environment says
    spool = r.get(spool_dir, "spool_dir", ENV_SPOOL_DIR, R.text, None) or r.get(None, "", ENV_SHARED_SPOOL_DIR,
                                                                               R.text, None)
    return AimExporterConfig(
        repo=str(r.get(repo, "repo", ENV_REPO, R.text, d.repo)),
        experiment=r.get(experiment, "experiment", ENV_EXPERIMENT, R.text, None)
        or r.get(None, "", ENV_SERVICE_NAME, R.text, None),
        run_per=r.get(run_per, "run_per", ENV_RUN_PER, R.choice(*RUN_PER_CHOICES), d.run_per),
        run_name=r.get(run_name, "run_name", ENV_RUN_NAME, R.text, None),
        system_tracking_interval=interval,
        log_system_params=r.get(log_system_params, "log_system_params", ENV_LOG_SYSTEM_PARAMS, R.flag, False),
        max_text_chars=max(1_000, r.get(max_text_chars, "max_text_chars", ENV_MAX_TEXT_CHARS, R.integer,
                                        d.max_text_chars)),
        max_contexts=max(1, r.get(max_contexts, "max_contexts", ENV_MAX_CONTEXTS, R.integer, d.max_contexts)),
        trace_grace_s=float(r.get(trace_grace_s, "trace_grace_s", ENV_TRACE_GRACE, R.number, d.trace_grace_s)),
        trace_idle_s=float(r.get(trace_idle_s, "trace_idle_s", ENV_TRACE_IDLE, R.number, d.trace_idle_s)),
        shutdown_timeout_s=float(r.get(shutdown_timeout_s, "shutdown_timeout_s", ENV_TIMEOUT, R.number,
                                       d.shutdown_timeout_s, _millis)),
        spool_dir=str(spool) if spool else None,
        remote_write_timeout_s=float(
            r.get(remote_write_timeout_s, "remote_write_timeout_s", ENV_REMOTE_WRITE_TIMEOUT, R.number,
                  d.remote_write_timeout_s, _millis)
            or d.remote_write_timeout_s
        ),
        seed_counters=r.get(seed_counters, "seed_counters", ENV_SEED_COUNTERS, R.flag, d.seed_counters),
        trace_figures=r.get(trace_figures, "trace_figures", ENV_TRACE_FIGURES, R.flag, d.trace_figures),
    )


def experiment_for(config: AimExporterConfig, service_name: Any) -> str:
    """The configured experiment, else the span resource's service name, else the default."""
    if config.experiment:
        return config.experiment
    name = str(service_name or "")
    if name and not name.startswith("unknown_service"):
        return name
    return DEFAULT_EXPERIMENT
