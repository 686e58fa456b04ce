"""`spanchain bench serve`: spans/s ingested by `spanchain serve`, end to end into Aim.

A real `spanchain serve --exporters aim` process on loopback, writing a fresh Aim repository;
client threads post pre-encoded OTLP/HTTP protobuf batches of LangChain-shaped traces over
keep-alive connections, honouring 429/503 + Retry-After as a collector would. The clock runs from
the first request until the Aim exporter reports every span written (read from `/health`).

`--replicas N` starts N serve processes writing to one `aim server` (`--aim-server`, implied when
N > 1) and sends each trace to replica `trace_id % N`, as a Collector's `loadbalancing` exporter
with `routing_key: traceID` would; the figure is the sum over the replicas.
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


def build_bodies(total_spans: int, batch_spans: int, spans_per_trace: int, compress: bool,
                 replicas: int = 1) -> list[tuple[int, bytes]]:
    """(replica, OTLP protobuf request body) pairs holding `total_spans` spans in whole
    LangChain-like traces; every trace goes to replica `trace_id % replicas`."""
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
    bodies: list[tuple[int, bytes]] = []
    batches: dict[int, list] = {r: [] for r in range(replicas)}
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
        replica = trace_spans[0].context.trace_id % replicas
        batch = batches[replica]
        batch.extend(trace_spans)
        if len(batch) >= batch_spans:
            bodies.append((replica, encode_spans(batch).SerializeToString()))
            batches[replica] = []
    for replica, batch in batches.items():
        if batch:
            bodies.append((replica, encode_spans(batch).SerializeToString()))
    if compress:
        bodies = [(r, gzip.compress(b)) for r, b in bodies]
    return bodies


def _client(ports: list[int], path: str, bodies: list[tuple[int, bytes]], next_index, stats: ClientStats,
            gzip_body: bool) -> None:
    connections: dict[int, http.client.HTTPConnection] = {}
    headers = {"Content-Type": "application/x-protobuf"}
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
    while True:
        i = next_index()
        if i is None:
            break
        replica, body = bodies[i]
        port = ports[replica]
        conn = connections.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connections[port] = conn
        while True:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                stats.errors.append(repr(exc))
                conn.close()
                conn = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                time.sleep(0.05)
                continue
            stats.requests += 1
            if resp.status in (429, 503):
                stats.refused += 1
                # As a collector would, but capped: the benchmark measures throughput, not patience.
                time.sleep(min(float(resp.getheader("Retry-After") or 1), 0.2))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            stats.latencies_s.append(time.perf_counter() - t0)
            if resp.status != 200:
                stats.errors.append(f"HTTP {resp.status}")
            break
    for conn in connections.values():
        conn.close()


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


def _written(health: dict) -> int:
    aim = health.get("exporters", {}).get("aim", {})
    return int(aim.get("written", 0))


def _start_serve(env: dict, ready: str, queue_spans: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "spanchain.cli", "serve", "--exporters", "aim", "--port", "0", "--ready-file", ready,
         "--queue-spans", str(queue_spans)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def _wait_ready(serve: subprocess.Popen, ready: str, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not (os.path.exists(ready) and open(ready).read().strip()):
        if serve.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"spanchain serve did not start: {serve.stderr.read() if serve.poll() is not None else 'timeout'}")
        time.sleep(0.05)
    return int(open(ready).read())


def run(args: argparse.Namespace) -> dict:
    workdir = tempfile.mkdtemp(prefix="spanchain-bench-serve-")
    replicas = max(1, args.replicas)
    use_server = args.aim_server or replicas > 1
    print(f"building {args.spans} spans in traces of {args.spans_per_trace}, {args.batch} per request, "
          f"{replicas} replica(s)…", file=sys.stderr)
    bodies = build_bodies(args.spans, args.batch, args.spans_per_trace, args.gzip, replicas)
    total = (args.spans // args.spans_per_trace) * args.spans_per_trace
    aim_server = None
    servers: list[subprocess.Popen] = []
    try:
        if use_server:
            from testkit.aim_server import AimServer

            aim_server = AimServer(args.aim_repo or os.path.join(workdir, "aim")).start()
            repo = aim_server.uri
        else:
            repo = args.aim_repo or os.path.join(workdir, "aim")
        env = dict(os.environ, OTEL_EXPORTER_AIM_REPO=repo, SPANCHAIN_SERVE_SPOOL_DIR=os.path.join(workdir, "spool"))
        readies = [os.path.join(workdir, f"port-{n}") for n in range(replicas)]
        servers = [_start_serve(env, ready, args.queue_spans) for ready in readies]
        ports = [_wait_ready(serve, ready) for serve, ready in zip(servers, readies)]
        lock = threading.Lock()
        cursor = iter(range(len(bodies)))

        def next_index():
            with lock:
                return next(cursor, None)

        clients = [ClientStats() for _ in range(args.clients)]
        threads = [threading.Thread(target=_client, args=(ports, "/v1/traces", bodies, next_index, s, args.gzip)) for s in clients]
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
            healths = [_health(port) for port in ports]
            written = sum(_written(h) for h in healths)
            if now - last_print >= 1.0:
                last_print = now
                received = sum(h["receiver"]["received_spans"] for h in healths)
                print(f"  {now - started:5.1f}s  received {received:>7}  "
                      f"written to Aim {written:>7} / {total}  refused {sum(c.refused for c in clients)}",
                      file=sys.stderr, flush=True)
            if written >= total or now - started > args.timeout:
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        for t in threads:
            t.join(5)
        for serve in servers:
            serve.send_signal(signal.SIGTERM)
        for serve in servers:
            serve.wait(60)
    finally:
        for serve in servers:
            if serve.poll() is None:
                serve.kill()
        if aim_server is not None:
            aim_server.stop()
        if not args.aim_repo and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    latencies = sorted(x for c in clients for x in c.latencies_s)
    ingest_s = (ingested_at or finished) - started
    e2e_s = finished - started
    return {
        "spans": total,
        "requests": len(bodies),
        "batch_spans": args.batch,
        "replicas": replicas,
        "aim": "aim server" if use_server else "local repo",
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
    parser.add_argument("--replicas", type=int, default=1, help="serve processes, traces split by trace id (default 1)")
    parser.add_argument("--aim-server", action="store_true", help="write through a local `aim server` (aim://), "
                        "as replicas must; implied by --replicas > 1")
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
            f"spanchain serve ×{result['replicas']} → Aim ({result['aim']}), {result['spans']} spans in {result['requests']} requests "
            f"({result['batch_spans']}/request, {result['clients']} clients, gzip={result['gzip']}, {result['cpus']} CPUs)\n"
            f"  ingested:    {result['ingest_spans_per_s']:>10} spans/s  ({result['ingest_s']} s)\n"
            f"  end to end:  {result['end_to_end_spans_per_s']:>10} spans/s  ({result['end_to_end_s']} s, "
            f"{result['written_to_aim']} written to Aim)\n"
            f"  requests:    p50 {result['request_p50_ms']} ms, p99 {result['request_p99_ms']} ms, "
            f"{result['refused_429_503']} refused (429/503, retried)"
            + (f"\n  errors: {result['errors']}" if result["errors"] else "")
        )
    return 0 if result["written_to_aim"] >= result["spans"] and not result["errors"] else 1
