"""Exporter settings: constructor argument, then environment variable, then documented default.

Every variable is listed in docs/sagemaker.md. AWS region, credentials and endpoint are not read
here: boto3 resolves them itself from the standard AWS variables (AWS_REGION, AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER, ...).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
from dataclasses import dataclass
from typing import Mapping

from spanchain_sagemaker import sanitize as names

logger = logging.getLogger(__name__)

ENV_EXPERIMENT = "OTEL_EXPORTER_SAGEMAKER_EXPERIMENT"
ENV_RUN_NAME = "OTEL_EXPORTER_SAGEMAKER_RUN_NAME"
ENV_RUN_PER = "OTEL_EXPORTER_SAGEMAKER_RUN_PER"
ENV_BUCKET = "OTEL_EXPORTER_SAGEMAKER_BUCKET"
ENV_PREFIX = "OTEL_EXPORTER_SAGEMAKER_PREFIX"
ENV_SPOOL_DIR = "OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR"
# Resource attributes recorded as run parameters besides service name/version/namespace and
# deployment environment: comma-separated attribute names.
ENV_RESOURCE_PARAMETERS = "OTEL_EXPORTER_SAGEMAKER_RESOURCE_PARAMETERS"
ENV_SPOOL_DIR_GLOBAL = "SPANCHAIN_SPOOL_DIR"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"
# Durations in milliseconds, like OpenTelemetry's OTEL_EXPORTER_OTLP_TIMEOUT: TIMEOUT is the most
# time one batch may take, every call, retry and wait included.
ENV_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_TIMEOUT"
ENV_CONNECT_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT"

RUN_PER_SESSION = "session"
RUN_PER_TRACE = "trace"
DEFAULT_PREFIX = "trial-component-artifacts"  # the SageMaker SDK's own default
DEFAULT_EXPERIMENT = "spanchain"
DEFAULT_TIMEOUT_S = 30.0  # per batch (and per tick, flush, close), retries included
DEFAULT_CONNECT_TIMEOUT_S = 5.0  # per HTTP connection attempt
DEFAULT_READ_TIMEOUT_S = 15.0  # per wait for response bytes (cut to what is left of the budget)


class ConfigError(ValueError):
    pass


def _pick(argument, env: Mapping[str, str], *variables: str):
    if argument is not None:
        return argument
    for variable in variables:
        value = env.get(variable)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _duration_s(argument, env: Mapping[str, str], variable: str, default_s: float | None) -> float | None:
    """Seconds from an argument (seconds) or `variable` (milliseconds, as OTel's
    OTEL_EXPORTER_*_TIMEOUT). A value that is not a positive finite number is reported once and
    the default used: a bad setting must not take the app down."""
    if argument is not None:
        value, given = argument, f"argument {argument!r}"
        scale = 1.0
    else:
        raw = _pick(None, env, variable)
        if raw is None:
            return default_s
        value, given = raw, f"${variable}={raw!r} (milliseconds)"
        scale = 1000.0
    try:
        seconds = float(value) / scale
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        logger.error("sagemaker exporter: %s is not a positive duration; using the default", given)
        return default_s
    return seconds


def default_session_run_name(now_s: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_s if now_s is not None else time.time()))
    return f"session-{stamp}-{secrets.token_hex(3)}"


@dataclass
class Settings:
    experiment: str | None  # None: decided from the first span's service.name
    run_name: str | None  # session: the run; trace: a prefix for per-trace runs (None = "trace")
    run_per: str
    bucket: str | None  # None: the SDK's default bucket, sagemaker-<region>-<account>
    prefix: str
    spool_dir: str | None
    prefix_explicit: bool = False  # set by argument or env, so a user Run's prefix does not win
    timeout_s: float = DEFAULT_TIMEOUT_S  # one batch's budget: calls, retries and waits
    connect_timeout_s: float | None = None  # None: aws.ClientSettings' default (5 s)
    read_timeout_s: float | None = None  # None: aws.ClientSettings' default (15 s)
    resource_parameters: tuple[str, ...] = ()  # resource attributes recorded besides the defaults

    @classmethod
    def resolve(
        cls,
        experiment_name=None,
        run_name=None,
        run_per=None,
        artifact_bucket=None,
        artifact_prefix=None,
        spool_dir=None,
        timeout_s=None,
        connect_timeout_s=None,
        read_timeout_s=None,
        resource_parameters=None,
        env: Mapping[str, str] | None = None,
    ) -> "Settings":
        env = os.environ if env is None else env
        experiment = _pick(experiment_name, env, ENV_EXPERIMENT, ENV_SERVICE_NAME)
        mode = str(_pick(run_per, env, ENV_RUN_PER) or RUN_PER_SESSION).strip().lower()
        if mode not in (RUN_PER_SESSION, RUN_PER_TRACE):
            raise ConfigError(f"run_per must be 'session' or 'trace', not {mode!r}")
        prefix = _pick(artifact_prefix, env, ENV_PREFIX)
        extra = _pick(resource_parameters, env, ENV_RESOURCE_PARAMETERS) or ()
        if isinstance(extra, str):
            extra = extra.split(",")
        return cls(
            experiment=names.entity_name_part(experiment) if experiment else None,
            run_name=_pick(run_name, env, ENV_RUN_NAME),
            run_per=mode,
            bucket=_pick(artifact_bucket, env, ENV_BUCKET),
            prefix=names.s3_prefix(DEFAULT_PREFIX if prefix is None else prefix),
            prefix_explicit=prefix is not None,
            spool_dir=_pick(spool_dir, env, ENV_SPOOL_DIR, ENV_SPOOL_DIR_GLOBAL),
            timeout_s=_duration_s(timeout_s, env, ENV_TIMEOUT, DEFAULT_TIMEOUT_S),
            connect_timeout_s=_duration_s(connect_timeout_s, env, ENV_CONNECT_TIMEOUT, None),
            read_timeout_s=_duration_s(read_timeout_s, env, ENV_READ_TIMEOUT, None),
            resource_parameters=tuple(str(name).strip() for name in extra if str(name).strip()),
        )
