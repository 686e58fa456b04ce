"""`spanchain bench memory`: does the handler retain memory as invocations go by?

Runs a small chain (two RunnableLambda steps and their sequence: three runs, content and
context attach as usual), or any workload of `bench core`, sequentially with spanchain's handler,
through the same SDK pipeline (spans dropped by the exporter), and traces Python allocations with
tracemalloc. After a warm-up (caches filled, first-use imports done) it takes a baseline, then
prints the memory still allocated (after a full garbage collection) at checkpoints up to the last
invocation, and the allocation sites that grew most. A handler that keeps anything per run
(registry entries, contexts, spans) grows linearly with the invocations; one that does not stays
flat within a few kilobytes (allocator and interpreter noise).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from typing import Optional, Sequence

from spanchain.bench.core import TARGETS, Workload, _build_workloads, _pipeline

WARM_UP = 1_000
CHECKPOINTS = (0.1, 0.25, 0.5, 0.75, 1.0)
# Growth over the measured invocations above which the run is reported as growing. Per run the
# handler allocates kilobytes; retaining even 1% of that over 100,000 runs exceeds this by far.
GROWTH_LIMIT_BYTES = 256 * 1024


def _lambda_chain() -> Workload:
    """Three runs per invocation at little cost of its own, so 100,000 invocations stay quick."""
    from langchain_core.runnables import RunnableLambda

    chain = RunnableLambda(lambda q: {"question": q, "n": len(q)}, name="parse") | RunnableLambda(
        lambda d: f"{d['question']} ({d['n']} characters)", name="answer"
    )

    def run_lambda(config: dict) -> None:
        chain.invoke("What does spanchain do with a LangChain run?", config=config)

    return Workload("lambda", "RunnableLambda | RunnableLambda, .invoke", run_lambda, batch=1)


def _retained() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def run(workload_key: str, invocations: int, progress) -> dict:
    from spanchain.handler import OpenTelemetryCallbackHandler

    provider, _ = _pipeline()
    workload = _lambda_chain() if workload_key == "lambda" else next(w for w in _build_workloads() if w.key == workload_key)
    handler = OpenTelemetryCallbackHandler(tracer_provider=provider)
    config = {"callbacks": [handler]}
    loop = asyncio.new_event_loop()

    def invoke() -> None:
        if workload.is_async:
            loop.run_until_complete(workload.run(config))
        else:
            workload.run(config)

    try:
        for _ in range(WARM_UP):
            invoke()
        tracemalloc.start(1)  # one frame per allocation: deeper tracebacks cost several times more
        baseline = _retained()
        first = tracemalloc.take_snapshot()
        marks = sorted({max(1, round(invocations * c)) for c in CHECKPOINTS})
        points = []
        started = time.perf_counter()
        done = 0
        for mark in marks:
            while done < mark:
                invoke()
                done += 1
            retained = _retained()
            points.append({"invocations": done, "retained_bytes": retained, "growth_bytes": retained - baseline})
            progress(f"{done:,} invocations ({time.perf_counter() - started:.0f} s): {retained - baseline:+,} bytes")
        last = tracemalloc.take_snapshot()
        top = [
            {"where": str(stat.traceback[0]), "growth_bytes": stat.size_diff, "blocks": stat.count_diff}
            for stat in last.compare_to(first, "lineno")[:5]
        ]
    finally:
        tracemalloc.stop()
        loop.close()
        provider.shutdown()
    growth = points[-1]["growth_bytes"]
    return {
        "workload": workload.key,
        "title": workload.title,
        "invocations": invocations,
        "open_runs_after": handler.open_runs,
        "baseline_bytes": baseline,
        "points": points,
        "top_growth": top,
        "growth_bytes": growth,
        "limit_bytes": GROWTH_LIMIT_BYTES,
        "pass": growth <= GROWTH_LIMIT_BYTES and handler.open_runs == 0,
    }


def format_result(result: dict) -> str:
    lines = [
        f"spanchain bench memory: {result['workload']} ({result['title']}), {result['invocations']:,} sequential "
        f"invocations with spanchain's handler (defaults), after {WARM_UP:,} warm-up ones",
        f"memory traced by tracemalloc after a full collection, baseline {result['baseline_bytes']:,} bytes",
        "",
        f"  {'invocations':>12}  {'retained':>14}  {'growth':>12}",
    ]
    for p in result["points"]:
        lines.append(f"  {p['invocations']:>12,}  {p['retained_bytes']:>14,}  {p['growth_bytes']:>+12,}")
    lines.append("")
    lines.append("allocation sites that grew most since the baseline:")
    for t in result["top_growth"]:
        lines.append(f"  {t['growth_bytes']:>+10,} bytes {t['blocks']:>+7,} blocks  {t['where']}")
    lines.append(f"open runs left in the handler: {result['open_runs_after']}")
    lines.append(
        f"target: growth <= {result['limit_bytes']:,} bytes over the run and no open run: "
        f"{result['growth_bytes']:+,} bytes -> {'PASS' if result['pass'] else 'FAIL'}"
    )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spanchain bench memory",
        description="Memory retained by spanchain's handler over many sequential invocations (tracemalloc).",
    )
    parser.add_argument("--invocations", type=int, default=100_000, help="invocations measured (default 100000)")
    parser.add_argument(
        "--workload",
        default="lambda",
        choices=["lambda", *sorted(TARGETS)],
        help="a two-step RunnableLambda chain (default), or a `bench core` workload",
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    def progress(message: str) -> None:
        print(f"[bench memory] {message}", file=sys.stderr, flush=True)

    result = run(args.workload, max(10, args.invocations), progress)
    print(format_result(result))
    return 0 if result["pass"] else 1
