"""Exporter settings: constructor argument, then environment variable, then documented default.

Every variable is listed in docs/sagemaker.md. AWS region, credentials and endpoint are not read
here: boto3 resolves them itself from the standard AWS variables (AWS_REGION, AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SAGEMAKER, ...).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Mapping

from spanchain_sagemaker import names

ENV_EXPERIMENT = "OTEL_EXPORTER_SAGEMAKER_EXPERIMENT"
ENV_RUN_NAME = "OTEL_EXPORTER_SAGEMAKER_RUN_NAME"
ENV_RUN_PER = "OTEL_EXPORTER_SAGEMAKER_RUN_PER"
ENV_BUCKET = "OTEL_EXPORTER_SAGEMAKER_BUCKET"
ENV_PREFIX = "OTEL_EXPORTER_SAGEMAKER_PREFIX"
ENV_SPOOL_DIR = "OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR"
ENV_SPOOL_DIR_GLOBAL = "SPANCHAIN_SPOOL_DIR"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"

RUN_PER_SESSION = "session"
RUN_PER_TRACE = "trace"
DEFAULT_PREFIX = "trial-component-artifacts"  # the SageMaker SDK's own default
DEFAULT_EXPERIMENT = "spanchain"


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

    @classmethod
    def resolve(
        cls,
        experiment_name=None,
        run_name=None,
        run_per=None,
        artifact_bucket=None,
        artifact_prefix=None,
        spool_dir=None,
        env: Mapping[str, str] | None = None,
    ) -> "Settings":
        env = os.environ if env is None else env
        experiment = _pick(experiment_name, env, ENV_EXPERIMENT, ENV_SERVICE_NAME)
        mode = str(_pick(run_per, env, ENV_RUN_PER) or RUN_PER_SESSION).strip().lower()
        if mode not in (RUN_PER_SESSION, RUN_PER_TRACE):
            raise ConfigError(f"run_per must be 'session' or 'trace', not {mode!r}")
        prefix = _pick(artifact_prefix, env, ENV_PREFIX)
        return cls(
            experiment=names.entity_name_part(experiment) if experiment else None,
            run_name=_pick(run_name, env, ENV_RUN_NAME),
            run_per=mode,
            bucket=_pick(artifact_bucket, env, ENV_BUCKET),
            prefix=names.s3_prefix(DEFAULT_PREFIX if prefix is None else prefix),
            prefix_explicit=prefix is not None,
            spool_dir=_pick(spool_dir, env, ENV_SPOOL_DIR, ENV_SPOOL_DIR_GLOBAL),
        )
