"""Synthetic LangChain-shaped spans for exporter tests (built with a real SDK TracerProvider)."""

from __future__ import annotations

import json
import uuid

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from spanchain import semconv as sc


class TraceFactory:
    """Builds finished spans shaped like the handler's: chain → llm (+tool), with run ids."""

    def __init__(self, service: str = "svc-under-test") -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("tests")

    def take(self):
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return spans

    def trace(
        self,
        *,
        input_tokens: int = 10,
        output_tokens: int = 5,
        model: str = "fake-model",
        temperature: float = 0.25,
        tool: str | None = None,
        fail: bool = False,
        ttfc: float | None = None,
        chain_name: str = "MyChain",
        rollup: bool = True,
    ):
        """One trace; returns (root run id, spans)."""
        root = str(uuid.uuid4())
        children = 1 + (1 if tool else 0)
        with self.tracer.start_as_current_span(chain_name) as chain:
            chain.set_attributes(
                {
                    sc.LC_RUN_ID: root,
                    sc.LC_RUN_TYPE: "chain",
                    sc.LC_NAME: chain_name,
                    sc.LC_DESCENDANTS: children,
                    sc.LC_INPUT: json.dumps({"question": "q"}),
                }
            )
            if rollup:  # roll-ups must never be counted as usage
                chain.set_attribute(sc.ROLLUP_INPUT_TOKENS, input_tokens)
                chain.set_attribute(sc.ROLLUP_OUTPUT_TOKENS, output_tokens)
            with self.tracer.start_as_current_span(f"chat {model}") as llm:
                attrs = {
                    sc.LC_RUN_ID: str(uuid.uuid4()),
                    sc.LC_PARENT_RUN_ID: root,
                    sc.LC_ROOT_RUN_ID: root,
                    sc.LC_RUN_TYPE: "chat_model",
                    sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                    sc.GEN_AI_REQUEST_MODEL: model,
                    sc.GEN_AI_PROVIDER_NAME: "fake",
                    sc.GEN_AI_REQUEST_TEMPERATURE: temperature,
                    sc.GEN_AI_REQUEST_MAX_TOKENS: 64,
                    sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                    sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]
                    ),
                }
                if ttfc is not None:
                    attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
                    attrs[sc.LC_STREAM_CHUNKS] = 3
                llm.set_attributes(attrs)
            if tool:
                with self.tracer.start_as_current_span(f"execute_tool {tool}") as t:
                    t.set_attributes(
                        {
                            sc.LC_RUN_ID: str(uuid.uuid4()),
                            sc.LC_PARENT_RUN_ID: root,
                            sc.LC_ROOT_RUN_ID: root,
                            sc.LC_RUN_TYPE: "tool",
                            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                            sc.GEN_AI_TOOL_NAME: tool,
                            sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"a": 2}',
                            sc.GEN_AI_TOOL_CALL_RESULT: "4",
                        }
                    )
            if fail:
                chain.set_attribute(sc.ERROR_TYPE, "ValueError")
                chain.set_status(Status(StatusCode.ERROR, "chain exploded"))
        return root, self.take()


def metric_summaries(description: dict) -> dict:
    return {m["MetricName"]: m for m in description.get("Metrics", []) if "MetricName" in m}


def parameters(description: dict) -> dict:
    out = {}
    for key, value in description.get("Parameters", {}).items():
        out[key] = value.get("NumberValue", value.get("StringValue"))
    return out


# --- a fault-injecting HTTP proxy in front of the emulator ----------------------------------

import http.client  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from testkit.loopback import serve_on_loopback, stop  # noqa: E402


class FaultProxy:
    """Forwards HTTP to the emulator; answers chosen operations with injected faults first.

    `throttle[op] = n`: the next n requests of `op` get HTTP 400 ThrottlingException.
    `metric_conflicts = n`: the next n BatchPutMetrics responses report their first point as
    CONFLICT_ERROR (the request is still forwarded, so the other points are stored).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.throttle: dict[str, int] = {}
        self.metric_conflicts = 0
        self.seen: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._handle()

            def do_PUT(self):
                self._handle()

            def do_POST(self):
                self._handle()

            def do_HEAD(self):
                self._handle()

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                op = target.rsplit(".", 1)[-1] if target else ""
                if not op and "BatchPutMetrics" in self.path:
                    op = "BatchPutMetrics"
                with proxy._lock:
                    proxy.seen.append(op or self.command)
                    throttled = proxy.throttle.get(op, 0) > 0
                    if throttled:
                        proxy.throttle[op] -= 1
                    conflict = op == "BatchPutMetrics" and proxy.metric_conflicts > 0
                    if conflict:
                        proxy.metric_conflicts -= 1
                if throttled:
                    payload = json.dumps(
                        {"__type": "ThrottlingException", "message": "Rate exceeded"}
                    ).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if conflict and response.status == 200:
                    doc = json.loads(data or b"{}")
                    doc["Errors"] = [{"Code": "CONFLICT_ERROR", "MetricIndex": 0}]
                    data = json.dumps(doc).encode()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

        self.server, self.url = serve_on_loopback(Handler)

    def close(self) -> None:
        stop(self.server)
