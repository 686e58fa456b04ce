"""Finished spans to bytes and back, losslessly, for the durable spool.

What survives a round trip: name, trace/span ids, trace flags and state, remote flags, parent,
kind, start/end times, status, attributes (str, bool, int, float incl. NaN/±inf, bytes, sequences,
nested mappings, None), events, links, resource (+ schema URL), instrumentation scope (+ version,
schema URL, attributes) and the SDK's dropped-attribute/event/link counts.

Why JSON and not pickle: the spool is a file on disk that outlives the process; decoding it must
never execute code, whoever wrote it. Values are tagged only where JSON cannot say the type itself
(bytes, sequences, mappings), so a str stays a str and an int stays an int. `ensure_ascii` keeps
lone surrogates (which LangChain payloads can carry) representable.
"""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

FORMAT_VERSION = 1


class CodecError(ValueError):
    """The bytes are not a span batch this codec wrote."""


class DecodedSpan(ReadableSpan):
    """A ReadableSpan rebuilt from the spool; remembers the original's dropped counts."""

    def __init__(self, *args, dropped: tuple[int, int, int] = (0, 0, 0), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._dropped_counts = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_counts[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped_counts[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped_counts[2]


# --- values -----------------------------------------------------------------------------------


def _enc_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {"m": [[str(k), _enc_value(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"s": [_enc_value(v) for v in value]}
    # Anything else never passed the SDK's attribute checks; keep its text rather than fail.
    return str(value)


def _dec_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "s" in value:
            return tuple(_dec_value(v) for v in value["s"])
        if "b" in value:
            return base64.b64decode(value["b"])
        if "m" in value:
            return {k: _dec_value(v) for k, v in value["m"]}
        raise CodecError(f"unknown value tag {sorted(value)!r}")
    return value


def _enc_attrs(attrs: Mapping | None) -> list | None:
    if attrs is None:
        return None
    return [[str(k), _enc_value(v)] for k, v in attrs.items()]


def _dec_attrs(pairs: list | None) -> dict | None:
    if pairs is None:
        return None
    return {k: _dec_value(v) for k, v in pairs}


# --- contexts ---------------------------------------------------------------------------------


def _enc_ctx(ctx: SpanContext | None) -> list | None:
    if ctx is None:
        return None
    state = list(ctx.trace_state.items()) if ctx.trace_state else []
    return [ctx.trace_id, ctx.span_id, bool(ctx.is_remote), int(ctx.trace_flags), state]


def _dec_ctx(raw: list | None) -> SpanContext | None:
    if raw is None:
        return None
    trace_id, span_id, is_remote, flags, state = raw
    return SpanContext(
        trace_id=int(trace_id),
        span_id=int(span_id),
        is_remote=bool(is_remote),
        trace_flags=TraceFlags(int(flags)),
        trace_state=TraceState([tuple(kv) for kv in state]),
    )


# --- spans ------------------------------------------------------------------------------------


def span_to_record(span: ReadableSpan) -> dict:
    scope = span.instrumentation_scope
    resource = span.resource
    status = span.status
    return {
        "n": span.name,
        "c": _enc_ctx(span.context),
        "p": _enc_ctx(span.parent),
        "k": span.kind.value if span.kind is not None else None,
        "t0": span.start_time,
        "t1": span.end_time,
        "st": [status.status_code.value, status.description] if status is not None else None,
        "a": _enc_attrs(span.attributes),
        "e": [[e.name, e.timestamp, _enc_attrs(e.attributes)] for e in span.events],
        "l": [[_enc_ctx(link.context), _enc_attrs(link.attributes)] for link in span.links],
        "r": [_enc_attrs(resource.attributes), resource.schema_url] if resource is not None else None,
        "s": [scope.name, scope.version, scope.schema_url, _enc_attrs(scope.attributes)]
        if scope is not None
        else None,
        "d": [span.dropped_attributes, span.dropped_events, span.dropped_links],
    }


def span_from_record(rec: dict) -> DecodedSpan:
    status = rec.get("st")
    resource = rec.get("r")
    scope = rec.get("s")
    attrs = _dec_attrs(rec.get("a"))
    return DecodedSpan(
        name=rec["n"],
        context=_dec_ctx(rec.get("c")),
        parent=_dec_ctx(rec.get("p")),
        resource=Resource(_dec_attrs(resource[0]) or {}, resource[1]) if resource else None,
        attributes=MappingProxyType(attrs) if attrs is not None else None,
        events=tuple(
            Event(name, attributes=_dec_attrs(a), timestamp=ts) for name, ts, a in rec.get("e", ())
        ),
        links=tuple(Link(_dec_ctx(c), attributes=_dec_attrs(a)) for c, a in rec.get("l", ())),
        kind=SpanKind(rec["k"]) if rec.get("k") is not None else SpanKind.INTERNAL,
        status=Status(StatusCode(status[0]), status[1]) if status else Status(StatusCode.UNSET),
        start_time=rec.get("t0"),
        end_time=rec.get("t1"),
        instrumentation_scope=InstrumentationScope(scope[0], scope[1], scope[2], _dec_attrs(scope[3]))
        if scope
        else None,
        dropped=tuple(rec.get("d") or (0, 0, 0)),
    )


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    doc = {"v": FORMAT_VERSION, "spans": [span_to_record(s) for s in spans]}
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def decode_spans(data: bytes) -> list[DecodedSpan]:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
            raise CodecError(f"unsupported spool record version {doc.get('v') if isinstance(doc, dict) else doc!r}")
        return [span_from_record(rec) for rec in doc["spans"]]
    except CodecError:
        raise
    except Exception as exc:  # malformed JSON, missing keys, bad enum values
        raise CodecError(f"undecodable spool record: {exc!r}") from exc
