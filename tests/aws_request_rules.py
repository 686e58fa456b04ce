"""A strict checker of AWS request parameters against botocore's own service models (tests only).

botocore's client-side validation checks types, required members and `min`, but not `pattern`,
`max`, enums or list sizes; moto checks nothing. The real service checks all of them (and answers
400 ValidationException). This module applies every such rule of the operation's input shape, as
the service would:

- `pattern` as a FULL match, with Java's regex semantics where they differ from Python's: `.`
  matches no line terminator (`\\n`, `\\r`, U+0085, U+2028, U+2029), `\\w`/`\\d`/`\\s` are ASCII,
  `\\p{L}`-style classes are supported (the `regex` module);
- string `min`/`max` in code points AND in UTF-16 code units (services written in Java count the
  latter; a rule is broken if either count is outside it), blob lengths in bytes;
- list and map sizes, number ranges, finite doubles (JSON cannot carry NaN/inf), enums, required
  members, unknown members;
- rules the models do not carry: BatchPutMetrics timestamps within [now - 14 days, now + 2 h],
  S3 object keys at most 1,024 UTF-8 bytes.

`check(service, operation, params)` returns a list of `Violation`s naming the operation, the member
path, the value and the rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from dataclasses import dataclass

import regex

# Java's `.` (without DOTALL) stops at these; Python's only at "\n".
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"
METRIC_WINDOW_PAST_S = 14 * 24 * 3600
METRIC_WINDOW_FUTURE_S = 2 * 3600
MAX_S3_KEY_BYTES = 1024


@dataclass(frozen=True)
class Violation:
    service: str
    operation: str
    path: str
    value: object
    rule: str

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > 160:
            shown = shown[:120] + f"...({len(shown)} chars)"
        return f"{self.service} {self.operation}: {self.path} = {shown} breaks {self.rule}"


def java_pattern_to_python(pattern: str) -> str:
    """Rewrite the parts of a Java regex whose meaning differs in Python's `regex` module."""
    out = []
    in_class = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("\\u", i) and len(pattern) >= i + 6:
            # Java's \uXXXX takes exactly four hex digits ("\u10000" is U+1000 then "0"), and a
            # high surrogate escape followed by a low one is one supplementary code point.
            code = int(pattern[i + 2 : i + 6], 16)
            i += 6
            if 0xD800 <= code <= 0xDBFF and pattern.startswith("\\u", i) and len(pattern) >= i + 6:
                low = int(pattern[i + 2 : i + 6], 16)
                if 0xDC00 <= low <= 0xDFFF:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            out.append(f"\\U{code:08X}")
            continue
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class += 1
        elif ch == "]" and in_class:
            in_class -= 1
        elif ch == "." and not in_class:
            out.append(_JAVA_DOT)
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=None)
def compiled(pattern: str):
    # ASCII: Java's \w, \d, \s and \b are ASCII unless UNICODE_CHARACTER_CLASS is set.
    return regex.compile(java_pattern_to_python(pattern), regex.ASCII | regex.VERSION0)


@functools.lru_cache(maxsize=None)
def service_model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def check(service: str, operation: str, params: dict, now_s: float | None = None) -> list[Violation]:
    model = service_model(service)
    try:
        op = model.operation_model(operation)
    except Exception:
        return [Violation(service, operation, "", None, "unknown operation")]
    found: list[Violation] = []
    if op.input_shape is not None:
        _check_shape(op.input_shape, params, operation, service, found)
    found.extend(_extra_rules(service, operation, params, now_s if now_s is not None else time.time()))
    return found


def _check_shape(shape, value, path: str, service: str, found: list) -> None:
    operation = path.split(".", 1)[0].split("[", 1)[0]

    def bad(rule: str, at: str = path, shown=value) -> None:
        found.append(Violation(service, operation, at, shown, rule))

    meta = shape.metadata
    kind = shape.type_name
    if value is None:
        bad("a value (None is not sent)")
        return
    if kind == "structure":
        if not isinstance(value, dict):
            bad(f"type structure (got {type(value).__name__})")
            return
        for name in meta.get("required", []):
            if name not in value:
                bad(f"required member {name!r} missing", f"{path}.{name}", None)
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                bad(f"unknown member of {shape.name}", f"{path}.{name}", member_value)
                continue
            _check_shape(member, member_value, f"{path}.{name}", service, found)
    elif kind == "list":
        if not isinstance(value, (list, tuple)):
            bad(f"type list (got {type(value).__name__})")
            return
        _check_size(meta, len(value), f"{shape.name} size", bad)
        for index, item in enumerate(value):
            _check_shape(shape.member, item, f"{path}[{index}]", service, found)
    elif kind == "map":
        if not isinstance(value, dict):
            bad(f"type map (got {type(value).__name__})")
            return
        _check_size(meta, len(value), f"{shape.name} size", bad)
        for key, item in value.items():
            _check_shape(shape.key, key, f"{path}{{key {key!r}}}", service, found)
            _check_shape(shape.value, item, f"{path}[{key!r}]", service, found)
    elif kind == "string":
        if not isinstance(value, str):
            bad(f"type string (got {type(value).__name__})")
            return
        for unit, length in (("code points", len(value)), ("UTF-16 units", utf16_units(value))):
            if "min" in meta and length < meta["min"]:
                bad(f"{shape.name} min length {meta['min']} ({length} {unit})")
                break
            if "max" in meta and length > meta["max"]:
                bad(f"{shape.name} max length {meta['max']} ({length} {unit})")
                break
        if shape.enum and value not in shape.enum:
            bad(f"{shape.name} enum {list(shape.enum)}")
        pattern = meta.get("pattern")
        if pattern and compiled(pattern).fullmatch(value) is None:
            bad(f"{shape.name} pattern {pattern!r} (full match, Java semantics)")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            bad(f"type {kind} (got {type(value).__name__})")
            return
        _check_size(meta, value, f"{shape.name} range", bad)
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(f"type {kind} (got {type(value).__name__})")
            return
        if not math.isfinite(float(value)):
            bad(f"{shape.name} finite number (JSON has no NaN/Infinity)")
    elif kind == "boolean":
        if not isinstance(value, bool):
            bad(f"type boolean (got {type(value).__name__})")
    elif kind == "timestamp":
        if _epoch_s(value) is None:
            bad(f"type timestamp (got {type(value).__name__})")
    elif kind == "blob":
        if isinstance(value, str):
            size = len(value.encode("utf-8"))
        elif isinstance(value, (bytes, bytearray)):
            size = len(value)
        else:
            return  # a stream: its length is not known up front
        _check_size(meta, size, f"{shape.name} bytes", bad)


def _check_size(meta: dict, size: float, what: str, bad) -> None:
    if "min" in meta and size < meta["min"]:
        bad(f"{what} min {meta['min']} (got {size})")
    elif "max" in meta and size > meta["max"]:
        bad(f"{what} max {meta['max']} (got {size})")


def _epoch_s(value) -> float | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _extra_rules(service: str, operation: str, params: dict, now_s: float) -> list[Violation]:
    found = []
    if service == "sagemaker-metrics" and operation == "BatchPutMetrics":
        for index, point in enumerate(params.get("MetricData") or []):
            stamp = _epoch_s(point.get("Timestamp")) if isinstance(point, dict) else None
            if stamp is None:
                continue
            if not now_s - METRIC_WINDOW_PAST_S <= stamp <= now_s + METRIC_WINDOW_FUTURE_S:
                found.append(
                    Violation(
                        service,
                        operation,
                        f"{operation}.MetricData[{index}].Timestamp",
                        point.get("Timestamp"),
                        "timestamp within [now - 14 days, now + 2 hours]",
                    )
                )
    if service == "s3" and isinstance(params.get("Key"), str):
        size = len(params["Key"].encode("utf-8", "surrogatepass"))
        if size > MAX_S3_KEY_BYTES:
            found.append(
                Violation(service, operation, f"{operation}.Key", params["Key"], f"S3 key at most {MAX_S3_KEY_BYTES} UTF-8 bytes (got {size})")
            )
    return found
