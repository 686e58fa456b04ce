"""The one way every setting is resolved: argument, then environment variable, then default.

`Resolver.get` is that rule: a bad argument raises `ValueError` naming the argument (a programming
error, found in development); a bad environment value is logged with the variable's name and the
default used (a typo in a deployment must not stop the app). The parsers below are shared, so a
flag accepts the same true/false spellings everywhere and durations from the environment are in
milliseconds, as OpenTelemetry's own OTEL_EXPORTER_*_TIMEOUT variables are. Variable names come
from `spanchain.config.env`.
"""

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


_UNSET = object()


class Resolver:
    def __init__(self, env=None, owner: str = "spanchain") -> None:
        self.env = os.environ if env is None else env
        self.owner = owner

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value is not None and value.strip() else None

    def get(self, arg, arg_name: str, var: str | None, parse, default, env_parse=None):
        """`parse(value)` for the argument; `env_parse(text)` (default: `parse`) for the variable."""
        if arg is not None and arg is not _UNSET:
            try:
                value = parse(arg)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.owner}: {arg_name}={arg!r}: {exc}") from None
            return default if value is None else value
        raw = self.raw(var) if var else None
        if raw is None:
            return default
        try:
            value = (env_parse or parse)(raw)
        except (TypeError, ValueError) as exc:
            logger.error("%s: ignoring %s=%r (%s); using %r", self.owner, var, raw, exc, default)
            return default
        return default if value is None else value


# --- parsers (a value in, the setting out; ValueError when it cannot be one) -------------------


def text(value) -> str:
    return str(value)


def flag(value) -> bool:
    return value if isinstance(value, bool) else parse_bool(value)


def number(value, *, minimum: float | None = 0.0, integer: bool = False):
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    result = int(value) if integer else float(value)
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    if minimum is not None and result < minimum:
        raise ValueError(f"expected at least {minimum}")
    return result


def integer(value) -> int:
    return number(value, integer=True)


def positive_seconds(value) -> float:
    seconds = number(value)
    if seconds <= 0:
        raise ValueError("expected a positive duration")
    return seconds


def millis_to_seconds(value) -> float:
    """An environment duration in milliseconds, as seconds."""
    return positive_seconds(value) / 1000.0


def choice(*options: str):
    def parse(value) -> str:
        text_value = str(value).strip().lower()
        if text_value not in options:
            raise ValueError(f"expected one of {options}, got {value!r}")
        return text_value

    return parse


def comma_list(value) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())
