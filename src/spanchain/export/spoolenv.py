"""Spool defaults shared by every exporter: SPANCHAIN_SPOOL_MAX_BYTES, SPANCHAIN_SPOOL_FSYNC."""

from __future__ import annotations

from spanchain.config import env as envvars
from spanchain.config.resolve import env_bool, env_int

ENV_SPOOL_MAX_BYTES = envvars.SPANCHAIN_SPOOL_MAX_BYTES
ENV_SPOOL_FSYNC = envvars.SPANCHAIN_SPOOL_FSYNC


def spool_max_bytes_default() -> int:
    return env_int(ENV_SPOOL_MAX_BYTES, 256 * 1024 * 1024)


def spool_fsync_default() -> bool:
    return env_bool(ENV_SPOOL_FSYNC, True)
