"""Reading numeric settings from the environment, with a default when unset or malformed."""

from __future__ import annotations

import logging
import os
from typing import Callable, TypeVar

logger = logging.getLogger(__name__)

N = TypeVar("N", int, float)


def _env_number(name: str, default: N, cast: Callable[[str], N]) -> N:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return cast(raw)
    except ValueError:
        logger.warning("spanchain: %s=%r is not a valid %s; using %s", name, raw, cast.__name__, default)
        return default


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)
