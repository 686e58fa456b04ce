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
    """json.dumps `default=`: called only for types it does not know.

    Messages and prompt values, the commonest payloads, come back shallow: the encoder walks
    their (JSON-native, as a rule) content in C and calls back here only for what it does not
    know. Anything it refuses (NaN, a cycle) makes `to_json` take the total path instead.
    """
    kind, extras = kind_of(type(obj))
    if kind == "message":
        out = {"type": obj.type, "content": obj.content}
        for extra in extras:
            value = getattr(obj, extra, None)
            if value:
                out[extra] = value
        return out
    if kind == "prompt":
        messages = getattr(obj, "messages", None)
        if type(messages) is list:
            return {"messages": messages}
    return to_jsonable(obj, 0, set())


def _make_encode() -> Any:
    """`json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_fallback)`, minus its set-up.

    `json.dumps` with any option builds a new encoder per call, which costs more than encoding a
    small payload; content is encoded several times per run on the app's thread. One C encoder is
    kept instead. It runs without circular-reference markers, so a cycle ends in RecursionError,
    which `to_json` catches like any other refusal.
    """
    def dumps(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_fallback)

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (e.g. PyPy)
        return dumps
    try:  # the accelerator's signature is CPython's business: check it does what dumps does
        chunks = make(None, _fallback, json.encoder.encode_basestring, None, ": ", ", ", False, False, False)
        probe = {"k": ["é", 1, 2.5, None, True]}
        if "".join(chunks(probe, 0)) != dumps(probe):
            return dumps
    except Exception:
        return dumps
    return lambda obj: "".join(chunks(obj, 0))


# Raises ValueError (NaN, inf), TypeError or RecursionError (a cycle) where `to_json` would not.
encode = _make_encode()


def to_json(obj: Any) -> str:
    """JSON text for `obj`; strings pass through unchanged (no quoting)."""
    if isinstance(obj, str):
        return obj
    try:
        return encode(obj)
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


_MESSAGE_EXTRAS = ("name", "tool_calls", "tool_call_id", "invalid_tool_calls")
# What kind of object a class makes, decided once per class: probing an instance for absent
# attributes goes through pydantic's __getattr__ and an exception, which costs more than the
# whole conversion.
_KINDS: dict[type, tuple[str, tuple[str, ...]]] = {}


def kind_of(cls: type) -> tuple[str, tuple[str, ...]]:
    known = _KINDS.get(cls)
    if known is not None:
        return known
    fields = getattr(cls, "model_fields", None)
    fields = fields if isinstance(fields, dict) else {}
    if {"content", "type", "additional_kwargs"} <= fields.keys():
        kind = ("message", tuple(f for f in _MESSAGE_EXTRAS if f in fields))
    elif callable(getattr(cls, "to_messages", None)):
        kind = ("prompt", ())
    elif callable(getattr(cls, "model_dump", None)):
        kind = ("pydantic", ())
    elif callable(getattr(cls, "dict", None)):
        kind = ("dict", ())
    elif dataclasses.is_dataclass(cls):
        kind = ("dataclass", ())
    elif callable(getattr(cls, "isoformat", None)):
        kind = ("iso", ())
    else:
        kind = ("other", ())
    if len(_KINDS) < 4096:
        _KINDS[cls] = kind
    return kind


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
    kind, extras = kind_of(type(obj))
    try:
        if kind == "message":
            # A reader needs a message's type, content and tool calls; its usage and response
            # metadata are on the span's gen_ai.* attributes already.
            out = {"type": obj.type, "content": to_jsonable(obj.content, depth + 1, seen)}
            for extra in extras:
                value = getattr(obj, extra, None)
                if value:
                    out[extra] = to_jsonable(value, depth + 1, seen)
            return out
        if kind == "prompt":  # ChatPromptValue, StringPromptValue
            messages = getattr(obj, "messages", None)
            if isinstance(messages, list):
                return {"messages": [to_jsonable(m, depth + 1, seen) for m in messages]}
            return to_jsonable(obj.to_string(), depth + 1, seen)
        if kind == "pydantic":
            return to_jsonable(obj.model_dump(), depth + 1, seen)
        if kind == "dict" and not isinstance(obj, type):
            return to_jsonable(obj.dict(), depth + 1, seen)
        if kind == "dataclass" and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            return to_jsonable(fields, depth + 1, seen)
        if kind == "iso":  # datetime, date, time
            return obj.isoformat()
    except Exception:
        pass  # a broken model or property: fall back to its repr
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__}>"
    return text[:_MAX_REPR]
