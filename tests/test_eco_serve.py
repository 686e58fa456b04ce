"""`spanchain serve`'s receiver over real HTTP: OTLP exporters in, exporters out, limits, failures."""

import gzip
import json
import signal
import subprocess
import threading
import urllib.error
import urllib.request

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanchain import semconv as sc
from spanchain.export import DeliverySettings, EngineSpanExporter, TraceWriter
from spanchain.serve.app import start
from spanchain.serve.server import ServeOptions

from eco_support import JSONL_ENV, make_spans, python_env, read_jsonl, spanchain_cmd, wait_until


def post(url, body, content_type="application/x-protobuf", headers=None, method="POST"):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def pb(spans):
    return encode_spans(spans).SerializeToString()


@pytest.fixture
def served():
    mem = InMemorySpanExporter()
    receivers = []

    def _start(exporters=None, **options):
        queue = options.pop("queue_spans", 20_000)
        rx = start(exporters or {"mem": mem}, ServeOptions(port=0, **options), queue_spans=queue)
        receivers.append(rx)
        return rx

    _start.mem = mem
    yield _start
    for rx in receivers:
        rx.stop(5)


def test_sdk_otlp_exporter_with_gzip_reaches_the_exporters_translated(served):
    rx = served()
    exporter = OTLPSpanExporter(endpoint=rx.url, compression=Compression.Gzip)
    spans = make_spans([("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.token_count.prompt": 3}, None)])
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert rx.pipeline.flush(5)
    [got] = served.mem.get_finished_spans()
    assert got.context.span_id == spans[0].context.span_id
    assert got.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert got.resource.attributes["service.name"] == "eco-test"


def test_json_requests_get_json_answers(served):
    rx = served()
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "from-json", "kind": 1, "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
    status, headers, body = post(rx.url, json.dumps(doc).encode(), "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json" and json.loads(body) == {}
    assert rx.pipeline.flush(5)
    assert [s.name for s in served.mem.get_finished_spans()] == ["from-json"]


def test_bad_payloads_get_400_with_a_reason_and_break_nothing(served):
    rx = served()
    status, _, body = post(rx.url, b"\x0a\xff\xff garbage")
    assert status == 400 and b"not an OTLP ExportTraceServiceRequest" in body
    status, headers, body = post(rx.url, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', "application/json")
    assert status == 400 and "is not hex" in json.loads(body)["message"]
    status, _, body = post(rx.url, b"not gzip", headers={"Content-Encoding": "gzip"})
    assert status == 400 and b"gzip" in body
    status, _, body = post(rx.url, b"{}", "text/xml")
    assert status == 415
    # the receiver keeps working
    status, _, _ = post(rx.url, pb(make_spans([("after", {}, None)])))
    assert status == 200 and rx.pipeline.flush(5)
    assert [s.name for s in served.mem.get_finished_spans()] == ["after"]
    assert rx.stats.bad_requests == 4


def test_partial_success_for_spans_with_invalid_ids(served):
    rx = served()
    request = encode_spans(make_spans([("good", {}, None), ("bad", {}, None)]))
    [bad] = [s for s in request.resource_spans[0].scope_spans[0].spans if s.name == "bad"]
    bad.span_id = b"\x00" * 8
    status, _, body = post(rx.url, request.SerializeToString())
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse.FromString(body)
    assert status == 200 and response.partial_success.rejected_spans == 1
    assert "span_id is all zeros" in response.partial_success.error_message
    assert rx.pipeline.flush(5) and [s.name for s in served.mem.get_finished_spans()] == ["good"]


def test_size_limits_answer_413(served):
    rx = served(max_request_bytes=2000, max_decompressed_bytes=50_000)
    status, _, body = post(rx.url, b"\0" * 5000)
    assert status == 413 and b"limit is 2000" in body
    # a body far over the limit still gets the answer, not a reset while it is being sent
    status, _, body = post(rx.url, b"\0" * 3_000_000)
    assert status == 413 and b"limit is 2000" in body
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2000
    status, _, body = post(rx.url, bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413 and b"exceeds the limit" in body
    assert served.mem.get_finished_spans() == ()


def test_bearer_token(served):
    rx = served(bearer_token="s3cret")
    body = pb(make_spans([("authed", {}, None)]))
    assert post(rx.url, body)[0] == 401
    status, headers, _ = post(rx.url, body, headers={"Authorization": "Bearer wrong"})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    exporter = OTLPSpanExporter(endpoint=rx.url, headers={"Authorization": "Bearer s3cret"})
    assert exporter.export(make_spans([("authed", {}, None)])) == SpanExportResult.SUCCESS
    assert rx.pipeline.flush(5) and len(served.mem.get_finished_spans()) == 1


def test_health_paths_and_methods(served):
    rx = served()
    base = rx.url.rsplit("/v1/traces", 1)[0]
    with urllib.request.urlopen(base + "/health", timeout=5) as resp:
        health = json.loads(resp.read())
    assert resp.status == 200 and health["status"] == "ok" and "receiver" in health
    assert post(base + "/v1/metrics", b"")[0] == 404
    assert post(rx.url, b"", method="PUT")[0] == 405


class GatedExporter(SpanExporter):
    """Blocks inside export() until released: a backend that stopped answering."""

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.spans = []

    def export(self, spans):
        self.entered.set()
        self.gate.wait(10)
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_full_queue_answers_429_with_retry_after_then_recovers(served):
    gated = GatedExporter()
    rx = served({"gated": gated}, queue_spans=6, retry_after_s=3)
    three = lambda: pb(make_spans([("a", {}, None), ("b", {}, None), ("c", {}, None)]))  # noqa: E731
    assert post(rx.url, three())[0] == 200
    assert gated.entered.wait(5)  # the worker holds batch 1 inside export()
    assert post(rx.url, three())[0] == 200  # batch 2 waits (6 of 6 spans held)
    status, headers, _ = post(rx.url, three())
    assert status == 429 and headers["Retry-After"] == "3"
    gated.gate.set()
    assert rx.pipeline.flush(5)
    assert len(gated.spans) == 6
    assert post(rx.url, three())[0] == 200


def test_a_slow_exporter_downstream_causes_429_before_it_drops(served):
    class SlowWriter(TraceWriter):
        def __init__(self):
            self.gate = threading.Event()
            self.written = 0

        def write_trace(self, trace):
            self.gate.wait(10)
            self.written += len(trace.new_spans)

    writer = SlowWriter()
    slow = EngineSpanExporter(writer, name="slow", settings=DeliverySettings(max_queue_spans=10, trace_grace_s=0))
    slow.gate = writer.gate
    rx = served({"slow": slow})
    statuses = [post(rx.url, pb(make_spans([("s", {}, None), ("t", {}, None)])))[0] for _ in range(8)]
    assert 429 in statuses
    assert slow.stats.dropped_queue_full == 0  # we pushed back instead
    slow.gate.set()
    accepted = 2 * statuses.count(200)
    assert wait_until(lambda: writer.written == accepted, 5)


def test_graceful_stop_refuses_with_503_and_delivers_what_it_accepted(served):
    gated = GatedExporter()
    rx = served({"gated": gated})
    assert post(rx.url, pb(make_spans([("first", {}, None)])))[0] == 200
    assert gated.entered.wait(5)
    stopper = threading.Thread(target=rx.stop, args=(10,))
    stopper.start()
    assert wait_until(lambda: rx.health()["status"] == "draining", 5)
    status, headers, _ = post(rx.url, pb(make_spans([("late", {}, None)])))
    assert status == 503 and "Retry-After" in headers
    gated.gate.set()
    stopper.join(10)
    assert [s.name for s in gated.spans] == ["first"]


def test_sigterm_drains_the_queue_into_the_exporters(tmp_path):
    out, ready = tmp_path / "spans.jsonl", tmp_path / "port"
    proc = subprocess.Popen(
        spanchain_cmd("serve", "--exporters", "eco_support:SlowJsonlExporter", "--port", "0", "--ready-file", str(ready)),
        env=python_env(**{JSONL_ENV: str(out)}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(lambda: ready.exists() and ready.read_text(), 20), proc.stdout.read1().decode() if proc.poll() is not None else "not ready"
        url = f"http://127.0.0.1:{ready.read_text()}/v1/traces"
        for i in range(10):
            assert post(url, pb(make_spans([(f"s{i}", {}, None), (f"t{i}", {}, 0)])))[0] == 200
        assert len(read_jsonl(out)) < 20  # the slow exporter is far behind
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert len(read_jsonl(out)) == 20
    assert "final: received 20 spans" in output


def test_connections_past_the_limit_get_503_at_once(served):
    import socket
    import time

    rx = served(max_connections=1, read_timeout_s=5)
    slow = socket.create_connection(("127.0.0.1", rx.port))
    try:  # a client that sends headers and then stalls holds the only slot
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        status, headers, _ = post(rx.url, pb(make_spans([("x", {}, None)])))
        assert status == 503 and "Retry-After" in headers and time.monotonic() - t0 < 2
    finally:
        slow.close()
    # the stalled request times out and frees its slot; the receiver serves again
    assert wait_until(lambda: post(rx.url, pb(make_spans([("y", {}, None)])))[0] == 200, 10)


def test_arbitrary_bodies_get_an_answer_and_never_break_the_receiver(served):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    rx = served()
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(
            st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "name", "attributes",
                             "key", "value", "stringValue", "kvlistValue", "values", "kind", "x"]), children, max_size=4),
        max_leaves=30,
    )
    bodies = st.one_of(
        st.binary(max_size=300).map(lambda b: (b, "application/x-protobuf")),
        json_values.map(lambda v: (json.dumps(v).encode(), "application/json")),
        st.just((b"[" * 5000 + b"]" * 5000, "application/json")),
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body_and_type):
        body, content_type = body_and_type
        status = post(rx.url, body, content_type)[0]
        assert status in (200, 400), status

    check()
    assert post(rx.url, pb(make_spans([("still-alive", {}, None)])))[0] == 200
    assert rx.health()["status"] == "ok"
