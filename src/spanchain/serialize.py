"""Turn any Python object into JSON text without raising.

LangChain hands callbacks pydantic models, messages, Documents, dataclasses, bytes, generators,
objects with cycles, NaN floats and sometimes None. The fast path is `json.dumps` (C code); only
when it refuses do we walk the object ourselves, bounded in depth and width so a pathological
payload costs bounded time.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from enum import Enum
from typing import Any

_MAX_DEPTH = 12
_MAX_ITEMS = 2_000
_MAX_REPR = 2_000


def _fallback(obj: Any) -> Any:
    """json.dumps `default=`: called only for types it does not know."""
    return to_jsonable(obj, 0, set())


def to_json(obj: Any) -> str:
    """JSON text for `obj`; strings pass through unchanged (no quoting)."""
    if isinstance(obj, str):
        return obj
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_fallback)
    except (ValueError, TypeError, RecursionError):
        # NaN/inf, cycles, non-string keys: take the slow, total path.
        try:
            return json.dumps(to_jsonable(obj, 0, set()), ensure_ascii=False, allow_nan=False)
        except Exception as exc:  # the converter is total; this is a last line of defence
            return f"<unserializable {type(obj).__name__}: {exc!r}>"


def _float(value: float) -> Any:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return value


def to_jsonable(obj: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-compatible copy of `obj`: dicts with str keys, lists, str, finite numbers, None."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if depth >= _MAX_DEPTH:
        return f"<{type(obj).__name__}: too deep>"
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raw = bytes(obj)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw[:_MAX_REPR]).decode("ascii")
    if isinstance(obj, Enum):
        return to_jsonable(obj.value, depth + 1, seen)
    oid = id(obj)
    if oid in seen:
        return f"<cycle: {type(obj).__name__}>"
    seen.add(oid)
    try:
        return _container(obj, depth, seen)
    finally:
        seen.discard(oid)


def _container(obj: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(obj, dict):
        out = {}
        for i, (key, value) in enumerate(obj.items()):
            if i >= _MAX_ITEMS:
                out["…"] = f"{len(obj) - _MAX_ITEMS} more items"
                break
            out[key if isinstance(key, str) else str(key)] = to_jsonable(value, depth + 1, seen)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)[: _MAX_ITEMS + 1] if not isinstance(obj, (list, tuple)) else obj
        out_list = [to_jsonable(v, depth + 1, seen) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            out_list.append(f"… {len(obj) - _MAX_ITEMS} more items")
        return out_list
    # pydantic v2 / v1 models (LangChain messages, Documents, ...)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        try:
            return to_jsonable(dump(), depth + 1, seen)
        except Exception:
            pass
    as_dict = getattr(obj, "dict", None)
    if callable(as_dict) and not isinstance(obj, type):
        try:
            return to_jsonable(as_dict(), depth + 1, seen)
        except Exception:
            pass
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        try:
            fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            return to_jsonable(fields, depth + 1, seen)
        except Exception:
            pass
    iso = getattr(obj, "isoformat", None)  # datetime, date, time
    if callable(iso):
        try:
            return iso()
        except Exception:
            pass
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__}>"
    return text[:_MAX_REPR]
