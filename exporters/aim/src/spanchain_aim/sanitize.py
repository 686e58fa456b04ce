"""Make user-derived values safe for Aim: plain types, bounded sizes, no secrets.

Aim stores params as nested AimObjects (None, bool, int, float, str, bytes, list, dict) and
raises on anything else (datetime, numpy scalars, pydantic models). Texts must be `str`.
Everything that reaches a Run goes through here first, so odd payloads from a LangChain app or a
foreign OTLP source can never break a write.
"""

from __future__ import annotations

import math
import re
from typing import Any

from spanchain.content.serialize import to_jsonable

MAX_KEY_CHARS = 128
MAX_PARAM_STR_CHARS = 4_000
MAX_CONTEXT_VALUE_CHARS = 100
MAX_COLLECTION_ITEMS = 200
MAX_DEPTH = 6
REDACTED = "<redacted>"

# Substrings that mark a name as secret wherever they appear ("PGPASSWORD", "client_secret").
_SECRET_SUBSTRINGS = ("secret", "passw", "credential", "private", "apikey", "api_key", "signature",
                      "cookie", "bearer")
# Name segments that mark a secret only as a whole word, so that "max_tokens" survives while
# "GITHUB_TOKEN", "access_token" and "openai_api_key" do not.
_SECRET_SEGMENTS = frozenset({"key", "token", "auth", "authorization", "pwd", "pat", "jwt", "dsn",
                              "session", "sas"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def looks_secret(name: str) -> bool:
    """True for names of API keys, tokens, passwords, credentials and the like."""
    lowered = str(name).lower()
    if any(s in lowered for s in _SECRET_SUBSTRINGS):
        return True
    for segment in re.split(r"[^a-z0-9]+", _CAMEL_BOUNDARY.sub("_", str(name)).lower()):
        if segment in _SECRET_SEGMENTS or segment.endswith("key") or segment.endswith("token"):
            return True
    return False


def scrub_url_credentials(text: str) -> str:
    """`postgres://user:pw@host` → `postgres://<redacted>@host`."""
    return _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", text)


def clip(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} more characters cut by spanchain]"
    keep = max(0, limit - len(marker))
    return text[:keep] + marker


def clean_text(value: Any, limit: int) -> str:
    """Any value as a bounded `str` for `aim.Text` (control characters removed)."""
    text = value if isinstance(value, str) else _to_str(value)
    return clip(_CONTROL_CHARS.sub("", text), limit)


def context_value(value: Any) -> str:
    """A short, single-line string for an Aim sequence context."""
    text = _CONTROL_CHARS.sub("", " ".join(_to_str(value).split()))
    return text[:MAX_CONTEXT_VALUE_CHARS] or "-"


def param_key(key: Any) -> str:
    return _CONTROL_CHARS.sub("", _to_str(key))[:MAX_KEY_CHARS] or "_"


def param_value(value: Any) -> Any:
    """A value Aim can store as a param; secrets under dict keys are redacted.

    spanchain.content.serialize makes any object (pydantic models, dataclasses, datetimes, cycles)
    JSON-able; on top of that Aim needs ints within 64 bits, bounded strings and sizes.
    """
    return _bounded(to_jsonable(value, 0, set()), 0)


def _bounded(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        # Aim stores ints natively, but far-out values overflow its 64-bit encoding.
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, str):
        return clip(scrub_url_credentials(value), MAX_PARAM_STR_CHARS)
    if depth >= MAX_DEPTH:
        return clip(_to_str(value), MAX_PARAM_STR_CHARS)
    if isinstance(value, dict):
        out = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= MAX_COLLECTION_ITEMS:
                out["…"] = f"{len(value) - i} more entries cut by spanchain"
                break
            key = param_key(k)
            out[key] = REDACTED if looks_secret(key) else _bounded(v, depth + 1)
        return out
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value[:MAX_COLLECTION_ITEMS]]
    return clip(_to_str(value), MAX_PARAM_STR_CHARS)


def finite_number(value: Any) -> float | None:
    """A metric value, or None when `value` is not a finite number."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
