"""`spanchain bench serve`: spans/s ingested by `spanchain serve`, end to end into Aim.

A real `spanchain serve --exporters aim` process on loopback, writing a fresh Aim repository;
client threads post pre-encoded OTLP/HTTP protobuf batches of LangChain-shaped traces over
keep-alive connections, honouring 429/503 + Retry-After as a collector would. The clock runs from
the first request until the Aim exporter reports every span written (read from `/health`).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    requests: int = 0
    refused: int = 0  # 429/503 answers (retried)
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build_bodies(total_spans: int, batch_spans: int, spans_per_trace: int, compress: bool) -> list[bytes]:
    """OTLP protobuf request bodies holding `total_spans` spans in whole LangChain-like traces."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from spanchain import semconv as sc

    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "spanchain-bench"}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("spanchain-bench")
    traces = max(1, total_spans // spans_per_trace)
    bodies: list[bytes] = []
    batch: list = []
    for t in range(traces):
        trace_spans = []
        root_id = f"bench-{t}"
        with tracer.start_as_current_span(
            "invoke_workflow bench_chain",
            attributes={sc.LC_RUN_ID: root_id, sc.LC_RUN_TYPE: "chain", sc.LC_NAME: "bench_chain",
                        sc.LC_DESCENDANTS: spans_per_trace - 1, sc.LC_INPUT: f'{{"question": "q{t}"}}'},
        ):
            for c in range(spans_per_trace - 1):
                chat = c % 2 == 0
                attrs = {
                    sc.LC_RUN_ID: f"{root_id}-{c}", sc.LC_PARENT_RUN_ID: root_id, sc.LC_ROOT_RUN_ID: root_id,
                    sc.LC_RUN_TYPE: "chat_model" if chat else "tool",
                    sc.LC_NAME: "FakeChat" if chat else "lookup",
                }
                if chat:
                    attrs.update({sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: "fake-1",
                                  sc.GEN_AI_USAGE_INPUT_TOKENS: 20 + c, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
                                  sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"prompt {t}.{c}"}]}])})
                with tracer.start_as_current_span("chat fake-1" if chat else "execute_tool lookup", attributes=attrs):
                    pass
        trace_spans = list(mem.get_finished_spans())
        mem.clear()
        batch.extend(trace_spans)
        if len(batch) >= batch_spans:
            bodies.append(encode_spans(batch).SerializeToString())
            batch = []
    if batch:
        bodies.append(encode_spans(batch).SerializeToString())
    if compress:
        bodies = [gzip.compress(b) for b in bodies]
    return bodies


def _client(port: int, path: str, bodies: list[bytes], next_index, stats: ClientStats, gzip_body: bool) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
    while True:
        i = next_index()
        if i is None:
            break
        body = bodies[i]
        while True:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                stats.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                time.sleep(0.05)
                continue
            stats.requests += 1
            if resp.status in (429, 503):
                stats.refused += 1
                # As a collector would, but capped: the benchmark measures throughput, not patience.
                time.sleep(min(float(resp.getheader("Retry-After") or 1), 0.2))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            stats.latencies_s.append(time.perf_counter() - t0)
            if resp.status != 200:
                stats.errors.append(f"HTTP {resp.status}")
            break
    conn.close()


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


def _written(health: dict) -> int:
    aim = health.get("exporters", {}).get("aim", {})
    return int(aim.get("written", 0))


def run(args: argparse.Namespace) -> dict:
    workdir = tempfile.mkdtemp(prefix="spanchain-bench-serve-")
    repo = args.aim_repo or os.path.join(workdir, "aim")
    ready = os.path.join(workdir, "port")
    print(f"building {args.spans} spans in traces of {args.spans_per_trace}, {args.batch} per request…", file=sys.stderr)
    bodies = build_bodies(args.spans, args.batch, args.spans_per_trace, args.gzip)
    total = (args.spans // args.spans_per_trace) * args.spans_per_trace
    env = dict(os.environ, OTEL_EXPORTER_AIM_REPO=repo)
    serve = subprocess.Popen(
        [sys.executable, "-m", "spanchain.cli", "serve", "--exporters", "aim", "--port", "0", "--ready-file", ready,
         "--queue-spans", str(args.queue_spans)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(ready) and open(ready).read().strip()):
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"spanchain serve did not start: {serve.stderr.read() if serve.poll() is not None else 'timeout'}")
            time.sleep(0.05)
        port = int(open(ready).read())
        lock = threading.Lock()
        cursor = iter(range(len(bodies)))

        def next_index():
            with lock:
                return next(cursor, None)

        clients = [ClientStats() for _ in range(args.clients)]
        threads = [threading.Thread(target=_client, args=(port, "/v1/traces", bodies, next_index, s, args.gzip)) for s in clients]
        started = time.perf_counter()
        for t in threads:
            t.start()
        ingested_at = None
        last_print = 0.0
        written = 0
        while True:
            now = time.perf_counter()
            if ingested_at is None and not any(t.is_alive() for t in threads):
                ingested_at = now
            health = _health(port)
            written = _written(health)
            if now - last_print >= 1.0:
                last_print = now
                print(f"  {now - started:5.1f}s  received {health['receiver']['received_spans']:>7}  "
                      f"written to Aim {written:>7} / {total}  refused {sum(c.refused for c in clients)}",
                      file=sys.stderr, flush=True)
            if written >= total or now - started > args.timeout:
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        for t in threads:
            t.join(5)
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    finally:
        if serve.poll() is None:
            serve.kill()
        if not args.aim_repo and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    latencies = sorted(x for c in clients for x in c.latencies_s)
    ingest_s = (ingested_at or finished) - started
    e2e_s = finished - started
    return {
        "spans": total,
        "requests": len(bodies),
        "batch_spans": args.batch,
        "clients": args.clients,
        "gzip": args.gzip,
        "ingest_s": round(ingest_s, 3),
        "ingest_spans_per_s": round(total / ingest_s, 1) if ingest_s else None,
        "end_to_end_s": round(e2e_s, 3),
        "end_to_end_spans_per_s": round(written / e2e_s, 1) if e2e_s else None,
        "written_to_aim": written,
        "refused_429_503": sum(c.refused for c in clients),
        "request_p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "request_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2) if latencies else None,
        "errors": [e for c in clients for e in c.errors][:5],
        "cpus": os.cpu_count(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="spanchain bench serve", description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000, help="spans to send (default 10000)")
    parser.add_argument("--batch", type=int, default=500, help="spans per request (default 500)")
    parser.add_argument("--spans-per-trace", type=int, default=10, help="spans per trace (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--gzip", action="store_true", help="gzip the request bodies")
    parser.add_argument("--queue-spans", type=int, default=20_000, help="serve's queue (default 20000)")
    parser.add_argument("--aim-repo", help="write here instead of a temporary repository")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.spans_per_trace < 2 or args.spans < args.spans_per_trace:
        parser.error("need --spans-per-trace >= 2 and --spans >= --spans-per-trace")
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"spanchain serve → Aim, {result['spans']} spans in {result['requests']} requests "
            f"({result['batch_spans']}/request, {result['clients']} clients, gzip={result['gzip']}, {result['cpus']} CPUs)\n"
            f"  ingested:    {result['ingest_spans_per_s']:>10} spans/s  ({result['ingest_s']} s)\n"
            f"  end to end:  {result['end_to_end_spans_per_s']:>10} spans/s  ({result['end_to_end_s']} s, "
            f"{result['written_to_aim']} written to Aim)\n"
            f"  requests:    p50 {result['request_p50_ms']} ms, p99 {result['request_p99_ms']} ms, "
            f"{result['refused_429_503']} refused (429/503, retried)"
            + (f"\n  errors: {result['errors']}" if result["errors"] else "")
        )
    return 0 if result["written_to_aim"] >= result["spans"] and not result["errors"] else 1
