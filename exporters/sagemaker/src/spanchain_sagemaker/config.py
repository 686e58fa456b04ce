"""Exporter settings: constructor argument, then environment variable, then documented default.

Every variable is listed in docs/sagemaker.md. AWS region, credentials and endpoint are not read
here: boto3 resolves them itself from the standard AWS variables (AWS_REGION, AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER, ...).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Mapping

from spanchain.config import env
from spanchain.config import resolve as R

from spanchain_sagemaker import sanitize as names

logger = logging.getLogger(__name__)

ENV_EXPERIMENT = env.OTEL_EXPORTER_SAGEMAKER_EXPERIMENT
ENV_RUN_NAME = env.OTEL_EXPORTER_SAGEMAKER_RUN_NAME
ENV_RUN_PER = env.OTEL_EXPORTER_SAGEMAKER_RUN_PER
ENV_BUCKET = env.OTEL_EXPORTER_SAGEMAKER_BUCKET
ENV_PREFIX = env.OTEL_EXPORTER_SAGEMAKER_PREFIX
ENV_SPOOL_DIR = env.OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR
# Resource attributes recorded as run parameters besides service name/version/namespace and
# deployment environment: comma-separated attribute names.
ENV_RESOURCE_PARAMETERS = env.OTEL_EXPORTER_SAGEMAKER_RESOURCE_PARAMETERS
ENV_SPOOL_DIR_GLOBAL = env.SPANCHAIN_SPOOL_DIR
ENV_SERVICE_NAME = env.OTEL_SERVICE_NAME
# Durations in milliseconds, like OpenTelemetry's OTEL_EXPORTER_OTLP_TIMEOUT: TIMEOUT is the most
# time one batch may take, every call, retry and wait included.
ENV_TIMEOUT = env.OTEL_EXPORTER_SAGEMAKER_TIMEOUT
ENV_CONNECT_TIMEOUT = env.OTEL_EXPORTER_SAGEMAKER_CONNECT_TIMEOUT
ENV_READ_TIMEOUT = env.OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT

RUN_PER_SESSION = "session"
RUN_PER_TRACE = "trace"
DEFAULT_PREFIX = "trial-component-artifacts"  # the SageMaker SDK's own default
DEFAULT_EXPERIMENT = "spanchain"
DEFAULT_TIMEOUT_S = 30.0  # per batch (and per tick, flush, close), retries included
DEFAULT_CONNECT_TIMEOUT_S = 5.0  # per HTTP connection attempt
DEFAULT_READ_TIMEOUT_S = 15.0  # per wait for response bytes (cut to what is left of the budget)


class ConfigError(ValueError):
    pass


def _first_env(r: R.Resolver, *variables: str) -> str | None:
    return next((r.raw(v) for v in variables if r.raw(v) is not None), None)


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
        r = R.Resolver(env, owner="sagemaker exporter")
        experiment = r.get(experiment_name, "experiment_name", None, R.text, None) or _first_env(
            r, ENV_EXPERIMENT, ENV_SERVICE_NAME)
        try:
            mode = r.get(run_per, "run_per", ENV_RUN_PER, R.choice(RUN_PER_SESSION, RUN_PER_TRACE), RUN_PER_SESSION)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        prefix = r.get(artifact_prefix, "artifact_prefix", ENV_PREFIX, R.text, None)
        return cls(
            experiment=names.entity_name_part(experiment) if experiment else None,
            run_name=r.get(run_name, "run_name", ENV_RUN_NAME, R.text, None),
            run_per=mode,
            bucket=r.get(artifact_bucket, "artifact_bucket", ENV_BUCKET, R.text, None),
            prefix=names.s3_prefix(DEFAULT_PREFIX if prefix is None else prefix),
            prefix_explicit=prefix is not None,
            spool_dir=r.get(spool_dir, "spool_dir", None, R.text, None) or _first_env(
                r, ENV_SPOOL_DIR, ENV_SPOOL_DIR_GLOBAL),
            timeout_s=r.get(timeout_s, "timeout_s", ENV_TIMEOUT, R.positive_seconds, DEFAULT_TIMEOUT_S,
                            R.millis_to_seconds),
            connect_timeout_s=r.get(connect_timeout_s, "connect_timeout_s", ENV_CONNECT_TIMEOUT,
                                    R.positive_seconds, None, R.millis_to_seconds),
            read_timeout_s=r.get(read_timeout_s, "read_timeout_s", ENV_READ_TIMEOUT, R.positive_seconds, None,
                                 R.millis_to_seconds),
            resource_parameters=r.get(resource_parameters, "resource_parameters", ENV_RESOURCE_PARAMETERS,
                                      R.comma_list, ()),
        )
