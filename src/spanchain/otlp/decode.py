"""OTLP/HTTP trace payloads (protobuf or JSON, optionally gzip) into SDK `ReadableSpan`s.

`spanchain serve` hands the result to the same exporters the in-process bridge uses, so the Aim
and SageMaker exporters cannot tell a received span from a local one.

Two kinds of bad input, two answers (as the OTLP spec asks):
- a payload that cannot be read at all (bad gzip, bad protobuf, bad JSON, wrong shape) raises
  `OtlpDecodeError`; the receiver answers 400 with the reason;
- a readable payload with some unusable spans (ids of the wrong length, all-zero ids) keeps the
  good spans and reports the others as rejected (OTLP "partial success").

OTLP/JSON is not plain proto3 JSON: trace and span ids are hex, not base64. We convert the ids and
then let protobuf's own JSON parser do the rest, so both encodings share one decoding path.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

# Protobuf is an optional dependency (spanchain[otel]); importing this module needs it.
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# OTLP span flags: bit 8 says whether bit 9 (parent is remote) is known.
_FLAG_HAS_PARENT_REMOTE = 0x100
_FLAG_PARENT_IS_REMOTE = 0x200

# proto SpanKind starts at UNSPECIFIED=0; the SDK enum starts at INTERNAL=0.
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}


class OtlpDecodeError(ValueError):
    """The payload cannot be read; `str(err)` is the reason sent back with the 400."""


class PayloadTooLarge(OtlpDecodeError):
    """The payload grows past the decompressed-size limit (413, not 400)."""


@dataclass
class DecodedBatch:
    spans: list[ReadableSpan] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)  # first few reasons, for the response


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`; anything unknown is an error."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    if value in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if value == JSON:
        return JSON
    raise OtlpDecodeError(
        f"unsupported Content-Type {content_type!r}: send {PROTOBUF} or {JSON}"
    )


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo Content-Encoding, never producing more than `max_bytes` (zip bombs stop early)."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"payload is {len(body)} bytes, limit is {max_bytes}")
        return body
    if enc not in ("gzip", "deflate"):
        raise OtlpDecodeError(f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    # wbits: 16+MAX for a gzip header, MAX for a zlib (deflate) header.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise OtlpDecodeError(f"body is not valid {enc}: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed payload exceeds the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise OtlpDecodeError(f"body is truncated {enc} data")
    return out


def parse_request(payload: bytes, kind: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(payload)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpDecodeError(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None
        return request
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError("JSON body is nested too deeply") from None
    if not isinstance(doc, dict):
        raise OtlpDecodeError("JSON body must be an object with 'resourceSpans'")
    _hex_ids_to_base64(doc)
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        raise OtlpDecodeError(f"JSON body is not an OTLP ExportTraceServiceRequest: {str(exc)[:300]}") from None
    return request


def _items(obj: Any, *names: str) -> list:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else None
        if value is not None:
            if not isinstance(value, list):
                raise OtlpDecodeError(f"'{name}' must be a list")
            return value
    return []


def _hex_field(obj: dict, where: str, *names: str) -> None:
    for name in names:
        value = obj.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise OtlpDecodeError(f"{where}: '{name}' must be a hex string")
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            raise OtlpDecodeError(f"{where}: '{name}' is not hex: {value[:40]!r}") from None
        obj[name] = base64.b64encode(raw).decode("ascii")


def _hex_ids_to_base64(doc: dict) -> None:
    """OTLP/JSON carries ids as hex; protobuf's JSON parser expects base64 for bytes."""
    for r, rs in enumerate(_items(doc, "resourceSpans", "resource_spans")):
        for s, ss in enumerate(_items(rs, "scopeSpans", "scope_spans")):
            for n, span in enumerate(_items(ss, "spans")):
                if not isinstance(span, dict):
                    raise OtlpDecodeError(f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}] must be an object")
                where = f"span {n}"
                _hex_field(span, where, "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
                for link in _items(span, "links"):
                    if isinstance(link, dict):
                        _hex_field(link, f"{where} link", "traceId", "trace_id", "spanId", "span_id")


# --- protobuf messages → SDK objects ----------------------------------------------------------


def _plain(value) -> Any:
    """An OTLP AnyValue as plain Python: str/bool/int/float/None, list, dict; bytes as base64."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which)


def any_value(value) -> Any:
    """An OTLP AnyValue as an attribute value the SDK exporters understand.

    Homogeneous arrays of primitives stay sequences (tuples); maps and mixed arrays, which SDK
    attributes cannot hold, become JSON text; bytes become base64 text.
    """
    plain = _plain(value)
    if isinstance(plain, dict):
        return json.dumps(plain, ensure_ascii=False)
    if isinstance(plain, list):
        items = [v for v in plain if v is not None]
        kinds = {type(v) for v in items}
        if len(kinds) <= 1 and not kinds & {dict, list}:
            return tuple(items)
        return json.dumps(plain, ensure_ascii=False)
    return plain


def attributes(pairs) -> dict:
    out = {}
    for kv in pairs:
        v = any_value(kv.value)
        if v is not None and kv.key:
            out[kv.key] = v
    return out


def _span_id(raw: bytes, what: str, required: bool) -> int | None:
    if not raw:
        if required:
            raise _SpanRejected(f"{what} is missing")
        return None
    if len(raw) != 8:
        raise _SpanRejected(f"{what} must be 8 bytes, got {len(raw)}")
    value = int.from_bytes(raw, "big")
    if value == 0:
        if required:
            raise _SpanRejected(f"{what} is all zeros")
        return None
    return value


def _trace_id(raw: bytes) -> int:
    if len(raw) != 16:
        raise _SpanRejected(f"trace_id must be 16 bytes, got {len(raw)}")
    value = int.from_bytes(raw, "big")
    if value == 0:
        raise _SpanRejected("trace_id is all zeros")
    return value


class _SpanRejected(Exception):
    pass


def _trace_state(header: str) -> TraceState:
    if not header:
        return TraceState()
    try:
        return TraceState.from_header([header])
    except Exception:  # a malformed tracestate is not worth rejecting the span for
        return TraceState()


def _span(pb, resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    trace_id = _trace_id(pb.trace_id)
    span_id = _span_id(pb.span_id, "span_id", required=True)
    parent_id = _span_id(pb.parent_span_id, "parent_span_id", required=False)
    state = _trace_state(pb.trace_state)
    # A span that reached us was recorded, so it was sampled, whatever its flags field says.
    flags = TraceFlags((pb.flags & 0xFF) | TraceFlags.SAMPLED)
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)
    parent = None
    if parent_id is not None:
        remote = bool(pb.flags & _FLAG_HAS_PARENT_REMOTE and pb.flags & _FLAG_PARENT_IS_REMOTE)
        parent = SpanContext(trace_id, parent_id, is_remote=remote, trace_flags=flags, trace_state=state)
    events = [Event(e.name, attributes(e.attributes), timestamp=e.time_unix_nano or None) for e in pb.events]
    links = []
    for link in pb.links:
        try:
            ctx = SpanContext(
                _trace_id(link.trace_id),
                _span_id(link.span_id, "link span_id", required=True),
                is_remote=True,
                trace_flags=TraceFlags(link.flags & 0xFF),
                trace_state=_trace_state(link.trace_state),
            )
        except _SpanRejected:
            continue  # a bad link is dropped; the span itself is still good
        links.append(Link(ctx, attributes(link.attributes)))
    code = _STATUS.get(pb.status.code, StatusCode.UNSET)
    # The SDK only keeps a description on ERROR statuses.
    status = Status(code, pb.status.message or None) if code == StatusCode.ERROR else Status(code)
    return ReadableSpan(
        name=pb.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes(pb.attributes),
        events=events,
        links=links,
        kind=_KINDS.get(pb.kind, SpanKind.INTERNAL),
        status=status,
        start_time=pb.start_time_unix_nano or None,
        end_time=pb.end_time_unix_nano or None,
        instrumentation_scope=scope,
    )


def request_to_spans(request: ExportTraceServiceRequest, max_problems: int = 5) -> DecodedBatch:
    batch = DecodedBatch()
    for rs in request.resource_spans:
        # Resource(...) directly: Resource.create() would run detectors and add *our* host/process.
        resource = Resource(attributes(rs.resource.attributes), rs.schema_url or None)
        for ss in rs.scope_spans:
            scope = InstrumentationScope(
                ss.scope.name,
                ss.scope.version or None,
                ss.schema_url or None,
                attributes(ss.scope.attributes) or None,
            )
            for pb in ss.spans:
                try:
                    batch.spans.append(_span(pb, resource, scope))
                except _SpanRejected as exc:
                    batch.rejected += 1
                    if len(batch.problems) < max_problems:
                        batch.problems.append(f"span {pb.name!r}: {exc}")
    return batch


def decode(body: bytes, content_type: str | None, content_encoding: str | None, max_decompressed_bytes: int) -> DecodedBatch:
    """One OTLP/HTTP request body → spans. Raises OtlpDecodeError for unreadable payloads."""
    kind = media_type(content_type)
    payload = decompress(body, content_encoding, max_decompressed_bytes)
    return request_to_spans(parse_request(payload, kind))


def encode_response(kind: str, batch: DecodedBatch) -> bytes:
    """The ExportTraceServiceResponse in the request's own encoding (partial success if any)."""
    response = ExportTraceServiceResponse()
    if batch.rejected:
        response.partial_success.rejected_spans = batch.rejected
        response.partial_success.error_message = "; ".join(batch.problems)
    if kind == PROTOBUF:
        return response.SerializeToString()
    return json.dumps(json_format.MessageToDict(response)).encode()


def encode_error(kind: str, code: int, message: str) -> tuple[bytes, str]:
    """A google.rpc.Status body, as OTLP/HTTP asks for on 4xx/5xx; (body, content type)."""
    try:
        from google.rpc import status_pb2
    except ImportError:  # googleapis-common-protos missing: plain text still tells the reason
        return message.encode(), "text/plain; charset=utf-8"
    status = status_pb2.Status(code=code, message=message)
    if kind == PROTOBUF:
        return status.SerializeToString(), PROTOBUF
    return json.dumps(json_format.MessageToDict(status)).encode(), JSON
