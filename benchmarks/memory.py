"""`spanchain bench memory`: does the handler retain memory as invocations go by?

Runs a small chain (two RunnableLambda steps and their sequence: three runs, content and
context attach as usual), or any workload of `bench core`, sequentially with spanchain's handler,
through the same SDK pipeline (spans dropped by the exporter). Tracing every allocation of
100,000 invocations with tracemalloc would take most of an hour, so the run is measured two ways:

- tracemalloc in windows: at each checkpoint, the next WINDOW invocations run with tracemalloc on,
  and the bytes they leave allocated after a full collection are printed (a handler keeping
  anything per run leaves WINDOW times that; one that keeps nothing leaves a few hundred bytes
  of interpreter noise), with the allocation sites that grew most in the last window;
- allocated blocks over the whole run: `sys.getallocatedblocks()` after a full collection at
  every checkpoint, which costs nothing while the invocations run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from typing import Optional, Sequence

from benchmarks.core import TARGETS, Workload, _build_workloads, _pipeline

WARM_UP = 1_000
WINDOW = 1_000
CHECKPOINTS = (0.1, 0.25, 0.5, 0.75, 1.0)
# What a traced window may leave allocated: per run the handler allocates kilobytes, so keeping
# even a few bytes per invocation shows as several times this.
WINDOW_LIMIT_BYTES = 8 * 1024
# Allocated blocks the whole run may add (interpreter caches, the checkpoints' own records).
BLOCKS_LIMIT = 2_000


def _lambda_chain() -> Workload:
    """Three runs per invocation at little cost of its own, so 100,000 invocations stay quick."""
    from langchain_core.runnables import RunnableLambda

    chain = RunnableLambda(lambda q: {"question": q, "n": len(q)}, name="parse") | RunnableLambda(
        lambda d: f"{d['question']} ({d['n']} characters)", name="answer"
    )

    def run_lambda(config: dict) -> None:
        chain.invoke("What does spanchain do with a LangChain run?", config=config)

    return Workload("lambda", "RunnableLambda | RunnableLambda, .invoke", run_lambda, batch=1)


def _collected() -> None:
    gc.collect()


def run(workload_key: str, invocations: int, progress, warm_up: int = WARM_UP, window: int = WINDOW) -> dict:
    from spanchain.bridge.handler import OpenTelemetryCallbackHandler

    provider, _ = _pipeline()
    workload = _lambda_chain() if workload_key == "lambda" else next(w for w in _build_workloads() if w.key == workload_key)
    handler = OpenTelemetryCallbackHandler(tracer_provider=provider)
    config = {"callbacks": [handler]}
    loop = asyncio.new_event_loop()

    def invoke(n: int) -> None:
        for _ in range(n):
            if workload.is_async:
                loop.run_until_complete(workload.run(config))
            else:
                workload.run(config)

    points = []
    top: list = []
    try:
        invoke(warm_up)
        _collected()
        blocks_before = sys.getallocatedblocks()
        marks = sorted({max(window, round(invocations * c)) for c in CHECKPOINTS})
        started = time.perf_counter()
        done = 0
        for i, mark in enumerate(marks):
            invoke(max(0, mark - window - done))  # untraced, up to the window
            done = max(done, mark - window)
            _collected()
            tracemalloc.start(1)  # one frame per allocation: deeper tracebacks cost several times more
            try:
                base = tracemalloc.get_traced_memory()[0]
                first = tracemalloc.take_snapshot() if i == len(marks) - 1 else None
                invoke(window)
                done += window
                _collected()
                left = tracemalloc.get_traced_memory()[0] - base
                if first is not None:
                    top = [
                        {"where": str(stat.traceback[0]), "growth_bytes": stat.size_diff, "blocks": stat.count_diff}
                        for stat in tracemalloc.take_snapshot().compare_to(first, "lineno")[:5]
                    ]
            finally:
                tracemalloc.stop()
            _collected()
            blocks = sys.getallocatedblocks() - blocks_before
            points.append({"invocations": done, "window_bytes": left, "blocks_growth": blocks})
            progress(f"{done:,} invocations ({time.perf_counter() - started:.0f} s): window {left:+,} bytes, blocks {blocks:+,}")
    finally:
        loop.close()
        provider.shutdown()
    worst_window = max(p["window_bytes"] for p in points)
    blocks_growth = points[-1]["blocks_growth"]
    return {
        "warm_up": warm_up,
        "window": window,
        "workload": workload.key,
        "title": workload.title,
        "invocations": done,
        "open_runs_after": handler.open_runs,
        "points": points,
        "top_growth": top,
        "worst_window_bytes": worst_window,
        "blocks_growth": blocks_growth,
        "pass": worst_window <= WINDOW_LIMIT_BYTES and blocks_growth <= BLOCKS_LIMIT and handler.open_runs == 0,
    }


def format_result(result: dict) -> str:
    lines = [
        f"spanchain bench memory: {result['workload']} ({result['title']}), {result['invocations']:,} sequential "
        f"invocations with spanchain's handler (defaults), after {result['warm_up']:,} warm-up ones",
        f"window: bytes that {result['window']:,} invocations traced by tracemalloc leave allocated after a full "
        "collection; blocks: sys.getallocatedblocks() growth since the warm-up, after a full collection",
        "",
        f"  {'invocations':>12}  {'window bytes':>13}  {'blocks':>9}",
    ]
    for p in result["points"]:
        lines.append(f"  {p['invocations']:>12,}  {p['window_bytes']:>+13,}  {p['blocks_growth']:>+9,}")
    lines.append("")
    lines.append("allocation sites that grew most in the last window:")
    for t in result["top_growth"]:
        lines.append(f"  {t['growth_bytes']:>+10,} bytes {t['blocks']:>+7,} blocks  {t['where']}")
    lines.append(f"open runs left in the handler: {result['open_runs_after']}")
    lines.append(
        f"target: every window <= {WINDOW_LIMIT_BYTES:,} bytes, blocks <= {BLOCKS_LIMIT:,}, no open run: "
        f"{result['worst_window_bytes']:+,} bytes, {result['blocks_growth']:+,} blocks -> {'PASS' if result['pass'] else 'FAIL'}"
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
    parser.add_argument("--warm-up", type=int, default=WARM_UP, help=f"untraced invocations first (default {WARM_UP})")
    parser.add_argument(
        "--window", type=int, default=WINDOW, help=f"invocations traced by tracemalloc at each checkpoint (default {WINDOW})"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    def progress(message: str) -> None:
        print(f"[bench memory] {message}", file=sys.stderr, flush=True)

    window = max(1, args.window)
    result = run(args.workload, max(window, args.invocations), progress, max(0, args.warm_up), window)
    print(format_result(result))
    return 0 if result["pass"] else 1
