"""Helpers for the ecosystem tests: real receivers, a real collector (rotel), span files."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanchain.export.traces import span_to_dict
from testkit.spans import spans_from_specs
from testkit.ports import free_port  # noqa: F401  (re-exported for callers)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
EXAMPLE_APP = ROOT / "examples" / "app.py"
JSONL_ENV = "SPANCHAIN_TEST_JSONL"




def wait_until(predicate, timeout_s: float = 10.0, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return predicate()


def wait_for_port(port: int, timeout_s: float = 10.0) -> bool:
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return False

    return wait_until(up, timeout_s)


class JsonlFileExporter(SpanExporter):
    """Appends each span (span_to_dict) as a JSON line to $SPANCHAIN_TEST_JSONL: lets a test read
    back what a subprocess (`spanchain serve`, an app) exported, with `module:Class` loading."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.environ[JSONL_ENV]
        self._lock = threading.Lock()

    def export(self, spans) -> SpanExportResult:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            for span in spans:
                fh.write(json.dumps(span_to_dict(span), default=str) + "\n")
        return SpanExportResult.SUCCESS


def read_jsonl(path) -> list[dict]:
    p = pathlib.Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


make_spans = spans_from_specs  # the name the eco tests use


@pytest.fixture
def receiver():
    """A real OTLP/HTTP receiver (spanchain serve's, no translation) on a free port; what it
    receives is in `.mem`. Import it into a test module to use it as a fixture."""
    from spanchain.serve.app import start
    from spanchain.serve.server import ServeOptions

    mem = InMemorySpanExporter()
    rx = start({"mem": mem}, ServeOptions(port=0), translate=False)
    rx.mem = mem
    yield rx
    rx.stop(5)


def rotel_binary() -> str:
    import rotel

    path = pathlib.Path(rotel.__file__).parent / "rotel-agent"
    assert path.exists(), f"rotel's collector binary is missing at {path}"
    return str(path)


@contextlib.contextmanager
def rotel_collector(tmp_path, export_to: str, headers: str | None = None):
    """A real OpenTelemetry collector (rotel) receiving OTLP/HTTP and exporting OTLP/HTTP
    (gzip, rotel's default) to `export_to` (base URL). Yields its OTLP/HTTP base URL."""
    http_port, grpc_port = free_port(), free_port()
    cmd = [
        rotel_binary(), "start",
        "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
        "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
        "--exporter", "otlp",
        "--otlp-exporter-endpoint", export_to,
        "--otlp-exporter-protocol", "http",
        "--otlp-exporter-retry-initial-backoff", "100ms",
        "--batch-timeout", "50ms",
        "--pid-file", str(tmp_path / "rotel.pid"),
        "--log-file", str(tmp_path / "rotel.log"),
    ]
    if headers:
        cmd += ["--otlp-exporter-custom-headers", headers]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(http_port), "rotel did not start listening"
        yield f"http://127.0.0.1:{http_port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def python_env(**extra: str) -> dict:
    """Environment for a child Python: tests/ importable, no stray OTEL_* from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANCHAIN_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def spanchain_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spanchain.cli", *args]


class _SinkWriter:
    """A TraceWriter over a JsonlFileExporter; `delay_s` makes the backend slow, `pool` sends
    each write through a concurrent.futures pool, as boto3's S3 uploads do."""

    def __new__(cls, sink, delay_s=0.0, pool=None):
        from spanchain.export import TraceWriter

        class _Writer(TraceWriter):
            def write_trace(self, trace):
                time.sleep(delay_s)
                if pool is not None:
                    pool.submit(sink.export, trace.new_spans).result(10)
                else:
                    sink.export(trace.new_spans)

        return _Writer()


class SlowJsonlExporter(JsonlFileExporter):
    """Like JsonlFileExporter, behind the delivery engine with a slow backend: at any moment
    most spans are still queued, so only a real drain on shutdown gets them all out."""

    def __new__(cls, path=None):
        from spanchain.export import DeliverySettings, EngineSpanExporter

        sink = JsonlFileExporter(path)
        exporter = EngineSpanExporter(_SinkWriter(sink, delay_s=0.1), name="slow-jsonl",
                                      settings=DeliverySettings(max_batch_spans=2, max_traces_per_write=1))
        exporter.sink = sink
        return exporter


def futures_jsonl_exporter(path=None):
    """An engine-driven exporter whose writes go through a concurrent.futures pool, and whose
    traces are held until flushed (a long grace, as an exporter waiting for whole traces)."""
    from concurrent.futures import ThreadPoolExecutor

    from spanchain.export import DeliverySettings, EngineSpanExporter

    sink = JsonlFileExporter(path)
    exporter = EngineSpanExporter(_SinkWriter(sink, pool=ThreadPoolExecutor(1)), name="futures-jsonl",
                                  settings=DeliverySettings(trace_grace_s=600, trace_idle_s=600))
    exporter.sink = sink
    return exporter
