"""`spanchain bench sagemaker` / `python -m benchmarks.sagemaker`: SageMaker exporter cost.

Exports synthetic LangChain-shaped traces through `SageMakerSpanExporter` and reports spans/s
(first export → everything delivered) and SageMaker/S3 API calls per 1,000 spans, by operation.
Without --endpoint it starts a local moto server and says so; it never talks to AWS unless you
point it there explicitly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Sequence


def synthetic_spans(total_spans: int, spans_per_trace: int) -> list:
    """Finished spans shaped like the handler's: a chain root over alternating model/tool runs."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from spanchain import semconv as sc

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "spanchain-bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("spanchain-bench")
    per_trace = max(1, spans_per_trace)
    for _ in range(max(1, total_spans // per_trace)):
        root = str(uuid.uuid4())
        with tracer.start_as_current_span("invoke_agent bench-agent") as chain:
            chain.set_attributes(
                {
                    sc.LC_RUN_ID: root,
                    sc.LC_RUN_TYPE: "chain",
                    sc.LC_NAME: "bench-agent",
                    sc.LC_DESCENDANTS: per_trace - 1,
                    sc.GEN_AI_AGENT_NAME: "bench-agent",
                }
            )
            for i in range(per_trace - 1):
                model_turn = i % 2 == 0
                name = "chat bench-model" if model_turn else "execute_tool multiply"
                with tracer.start_as_current_span(name) as child:
                    attrs = {
                        sc.LC_RUN_ID: str(uuid.uuid4()),
                        sc.LC_PARENT_RUN_ID: root,
                        sc.LC_ROOT_RUN_ID: root,
                        sc.LC_RUN_TYPE: "chat_model" if model_turn else "tool",
                    }
                    if model_turn:
                        attrs.update(
                            {
                                sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                                sc.GEN_AI_REQUEST_MODEL: "bench-model",
                                sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
                                sc.GEN_AI_USAGE_INPUT_TOKENS: 120,
                                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
                                sc.GEN_AI_OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"ok"}]}]',
                            }
                        )
                    else:
                        attrs.update(
                            {
                                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                                sc.GEN_AI_TOOL_NAME: "multiply",
                                sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"a": 6, "b": 7}',
                                sc.GEN_AI_TOOL_CALL_RESULT: "42",
                            }
                        )
                    child.set_attributes(attrs)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def run_benchmark(spans: list, run_per: str, experiment: str) -> dict:
    from spanchain_sagemaker.exporter import SageMakerSpanExporter

    exporter = SageMakerSpanExporter(
        experiment_name=experiment,
        run_name=f"bench-{run_per}-{uuid.uuid4().hex[:6]}",
        run_per=run_per,
        artifact_bucket=os.environ.get("OTEL_EXPORTER_SAGEMAKER_BUCKET") or "spanchain-bench",
        max_queue_spans=max(50_000, len(spans) * 2),
    )
    started = time.perf_counter()
    for start in range(0, len(spans), 512):  # as a BatchSpanProcessor would hand them over
        exporter.export(spans[start : start + 512])
    delivered = exporter.force_flush(600_000)
    elapsed = time.perf_counter() - started
    exporter.shutdown()
    stats = exporter.api_stats
    calls = stats["calls"]
    per_1000 = {op: round(n * 1000 / len(spans), 1) for op, n in sorted(calls.items())}
    return {
        "run_per": run_per,
        "spans": len(spans),
        "traces": len({s.attributes.get("langchain.root_run_id") or s.attributes.get("langchain.run_id") for s in spans}),
        "delivered": delivered and exporter.stats.dropped_retries_exhausted == 0,
        "seconds": round(elapsed, 3),
        "spans_per_s": round(len(spans) / elapsed, 1) if elapsed > 0 else None,
        "api_calls": sum(calls.values()),
        "api_calls_per_1000_spans": round(sum(calls.values()) * 1000 / len(spans), 1),
        "per_1000_spans_by_operation": per_1000,
        "http_attempts": sum(stats["http_attempts"].values()),
        "throttled": stats.get("throttled", 0),
        "location": exporter.location().as_dict() if exporter.location() else None,
    }


def format_report(result: dict, target: str) -> str:
    lines = [
        f"SageMaker exporter, run_per={result['run_per']} against {target}",
        f"  {result['spans']} spans in {result['traces']} traces: {result['seconds']} s, "
        f"{result['spans_per_s']} spans/s, delivered={result['delivered']}",
        f"  API calls: {result['api_calls']} ({result['api_calls_per_1000_spans']} per 1,000 spans; "
        f"{result['http_attempts']} HTTP attempts, {result['throttled']} throttled)",
        "  per 1,000 spans by operation:",
    ]
    for op, n in result["per_1000_spans_by_operation"].items():
        lines.append(f"    {op:<26} {n:>8}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spanchain bench sagemaker",
        description="spans/s and SageMaker API calls per 1,000 spans through the SageMaker exporter",
    )
    parser.add_argument("--spans", type=int, default=2000, help="spans to export (default 2000)")
    parser.add_argument("--spans-per-trace", type=int, default=10, help="trace size (default 10)")
    parser.add_argument(
        "--run-per", choices=("session", "trace", "both"), default="both", help="run layout (default both)"
    )
    parser.add_argument(
        "--endpoint",
        help="an AWS endpoint URL (an emulator you run); default: start a local moto server",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(list(argv) if argv is not None else None)

    emulator = None
    saved = dict(os.environ)
    try:
        if args.endpoint:
            os.environ["AWS_ENDPOINT_URL"] = args.endpoint
            target = args.endpoint
        else:
            from testkit.moto_server import start_emulator

            emulator = start_emulator()
            os.environ.update(emulator.aws_env())
            target = f"a local moto server (emulator) at {emulator.endpoint_url}"
        spans = synthetic_spans(args.spans, args.spans_per_trace)
        modes = ("session", "trace") if args.run_per == "both" else (args.run_per,)
        experiment = f"spanchain-bench-{uuid.uuid4().hex[:6]}"
        results = [run_benchmark(spans, mode, experiment) for mode in modes]
        if args.json:
            print(json.dumps({"target": target, "results": results}, indent=2))
        else:
            print("\n\n".join(format_report(r, target) for r in results))
        return 0 if all(r["delivered"] for r in results) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if emulator is not None:
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
