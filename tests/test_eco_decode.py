"""OTLP protobuf / JSON (+gzip) → ReadableSpan, against the official OTLP encoder."""

import base64
import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import SpanKind, StatusCode

from spanchain.otlp import decode as otlp
from spanchain.export.traces import span_to_dict

from eco_support import make_spans


def _spans():
    return make_spans(
        [
            ("root", {"s": "x", "i": 3, "f": 1.5, "b": True, "arr": ["a", "b"]}, None),
            ("child", {"n": 1}, 0),
        ]
    )


def _rich_spans():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, Status

    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("scope-a", "1.2.3")
    with tracer.start_as_current_span("other") as other:
        pass
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, links=[Link(other.get_span_context(), {"why": "x"})]) as root:
        root.add_event("something", {"k": "v"})
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
    return list(mem.get_finished_spans())


def _comparable(span):
    d = span_to_dict(span)
    d.pop("duration_s")
    return d


def test_protobuf_round_trip_keeps_every_field():
    original = _rich_spans()
    body = encode_spans(original).SerializeToString()
    batch = otlp.decode(body, "application/x-protobuf", None, 10**7)
    assert batch.rejected == 0
    got = {s.name: s for s in batch.spans}
    for span in original:
        assert _comparable(got[span.name]) == _comparable(span)
    root = got["root"]
    assert root.kind == SpanKind.SERVER and got["child"].kind == SpanKind.CLIENT
    assert got["child"].status.status_code == StatusCode.ERROR and got["child"].status.description == "boom"
    assert root.links[0].context.span_id == got["other"].context.span_id
    assert dict(root.links[0].attributes) == {"why": "x"}
    assert root.instrumentation_scope.name == "scope-a" and root.instrumentation_scope.version == "1.2.3"
    assert got["child"].parent.span_id == root.context.span_id
    assert root.resource.attributes["service.name"] == original[0].resource.attributes["service.name"]


def test_json_with_hex_ids_and_gzip_decode_like_protobuf():
    original = _rich_spans()
    doc = json_format.MessageToDict(encode_spans(original))
    # OTLP/JSON: ids are hex, not the base64 of proto3 JSON.
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    link["traceId"] = base64.b64decode(link["traceId"]).hex()
                    link["spanId"] = base64.b64decode(link["spanId"]).hex()
    body = gzip.compress(json.dumps(doc).encode())
    batch = otlp.decode(body, "application/json; charset=utf-8", "gzip", 10**7)
    got = {s.name: _comparable(s) for s in batch.spans}
    assert got == {s.name: _comparable(s) for s in original}


def test_any_value_kinds_become_attribute_values():
    doc = {
        "resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c",
            "spanId": "b7ad6b7169203331",
            "name": "values",
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000500000000",
            "attributes": [
                {"key": "int_as_string", "value": {"intValue": "42"}},
                {"key": "map", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": 1}}]}}},
                {"key": "mixed", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": 2}]}}},
                {"key": "bytes", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
                {"key": "empty", "value": {}},
            ],
        }]}]}]
    }
    [span] = otlp.decode(json.dumps(doc).encode(), "application/json", None, 10**6).spans
    assert span.attributes["int_as_string"] == 42
    assert json.loads(span.attributes["map"]) == {"a": 1}
    assert json.loads(span.attributes["mixed"]) == ["x", 2]
    assert span.attributes["bytes"] == "AAE="
    assert "empty" not in span.attributes
    assert span.end_time - span.start_time == 500_000_000


def test_spans_with_bad_ids_are_rejected_individually():
    good, bad = _spans()[0], _spans()[1]
    request = encode_spans([good, bad])
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01\x02"
    batch = otlp.decode(request.SerializeToString(), otlp.PROTOBUF, None, 10**6)
    assert len(batch.spans) == 1 and batch.rejected == 1
    assert "trace_id must be 16 bytes" in batch.problems[0]
    response = otlp.encode_response(otlp.JSON, batch)
    assert json.loads(response)["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    "body, content_type, encoding, reason",
    [
        (b"\xff\x00garbage", otlp.PROTOBUF, None, "not an OTLP ExportTraceServiceRequest"),
        (b"{not json", otlp.JSON, None, "not valid JSON"),
        (b"[1, 2]", otlp.JSON, None, "must be an object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', otlp.JSON, None, "is not hex"),
        (b'{"resourceSpans": 5}', otlp.JSON, None, "must be a list"),
        (b"{}", "text/plain", None, "unsupported Content-Type"),
        (b"not gzip", otlp.PROTOBUF, "gzip", "not valid gzip"),
        (gzip.compress(b"x" * 100)[:-10], otlp.PROTOBUF, "gzip", "truncated"),
        (b"{}", otlp.JSON, "br", "unsupported Content-Encoding"),
    ],
)
def test_unreadable_payloads_raise_with_a_reason(body, content_type, encoding, reason):
    with pytest.raises(otlp.OtlpDecodeError, match=reason):
        otlp.decode(body, content_type, encoding, 10**6)


def test_decompression_stops_at_the_limit():
    bomb = gzip.compress(b"\0" * (5 * 1024 * 1024))  # 5 MiB of zeros is ~5 KiB gzipped
    assert len(bomb) < 20_000
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.decode(bomb, otlp.PROTOBUF, "gzip", 1024 * 1024)
    deflated = zlib.compress(b"\0" * 100_000)
    with pytest.raises(otlp.PayloadTooLarge):
        otlp.decompress(deflated, "deflate", 1000)
    assert otlp.decompress(deflated, "deflate", 100_000) == b"\0" * 100_000
