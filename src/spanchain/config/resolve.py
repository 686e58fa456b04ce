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


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def parse_bool(raw: str) -> bool:
    """The one true/false spelling every setting accepts (case-insensitive)."""
    text = str(raw).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {sorted(TRUE_WORDS | FALSE_WORDS)}, got {raw!r}")


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return parse_bool(raw)
    except ValueError as exc:
        logger.warning("spanchain: %s: %s; using %s", name, exc, default)
        return default
