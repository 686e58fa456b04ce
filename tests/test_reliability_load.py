"""Load: 1,000 concurrent `ainvoke` plus 8 threads of `batch` at the same time.

Checked against langchain_core's own BaseTracer (which builds the run tree from the same
callbacks): every LangChain run becomes exactly one span, under exactly the span of its parent
run, in its root's trace; nothing stays open; memory does not grow from round to round.
The overhead figures printed here are a smoke figure; `spanchain bench` makes the real table.
"""

import asyncio
import gc
import threading
import time

import sys
from pathlib import Path

import psutil
import pytest
from langchain_core.tracers.base import BaseTracer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.app import chain as _chain  # noqa: E402
from spanchain import OpenTelemetryCallbackHandler  # noqa: E402
from spanchain import semconv as sc  # noqa: E402

ASYNC_CALLS = 1000
THREADS = 8
BATCH_PER_THREAD = 25


class RunTreeCollector(BaseTracer):
    """LangChain's reference view: the finished root runs with their child runs."""

    def __init__(self):
        super().__init__()
        self.roots = []
        self._lock = threading.Lock()

    def _persist_run(self, run):
        with self._lock:
            self.roots.append(run)


def _run_load(chain, callbacks):
    errors = []

    def batch_worker(t):
        try:
            chain.batch([f"t{t}q{i}" for i in range(BATCH_PER_THREAD)], config={"callbacks": callbacks})
        except Exception as exc:  # the app must never see one
            errors.append(exc)

    threads = [threading.Thread(target=batch_worker, args=(t,)) for t in range(THREADS)]
    longest = [0.0]

    async def one(i):
        t0 = time.perf_counter()
        await chain.ainvoke(f"a{i}", config={"callbacks": callbacks})
        longest[0] = max(longest[0], time.perf_counter() - t0)

    async def main():
        await asyncio.gather(*(one(i) for i in range(ASYNC_CALLS)))

    t0 = time.perf_counter()
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join(120)
    return time.perf_counter() - t0, errors, longest[0]


def _flatten(run, out):
    out.append(run)
    for child in run.child_runs:
        _flatten(child, out)
    return out


@pytest.mark.timeout(600)
def test_concurrent_async_and_threaded_batch_give_exact_trees_and_bounded_memory():
    chain = _chain()
    proc = psutil.Process()
    rss = []
    for round_no in range(3):
        mem = InMemorySpanExporter()
        # shutdown_on_exit=False: the default atexit hook would keep every round's provider,
        # and with it every span, alive until exit, and measure the test, not the handler.
        tp = TracerProvider(shutdown_on_exit=False)
        tp.add_span_processor(SimpleSpanProcessor(mem))
        handler = OpenTelemetryCallbackHandler(tracer_provider=tp)
        reference = RunTreeCollector()
        elapsed, errors, longest = _run_load(chain, [handler, reference])
        assert errors == []
        assert handler.open_runs == 0
        assert not trace.get_current_span().get_span_context().is_valid

        runs = [r for root in reference.roots for r in _flatten(root, [])]
        spans = mem.get_finished_spans()
        assert len(reference.roots) == ASYNC_CALLS + THREADS * BATCH_PER_THREAD
        assert len(spans) == len(runs)  # one span per run, no more, no less

        by_run = {s.attributes[sc.LC_RUN_ID]: s for s in spans}
        by_span = {s.context.span_id: s for s in spans}
        assert len(by_run) == len(spans)
        for root in reference.roots:
            root_span = by_run[str(root.id)]
            assert root_span.parent is None
            for run in _flatten(root, []):
                span = by_run[str(run.id)]
                assert span.attributes[sc.LC_NAME] == run.name
                assert span.context.trace_id == root_span.context.trace_id
                assert span.attributes[sc.LC_ROOT_RUN_ID] == str(root.id)
                if run.parent_run_id is not None:
                    parent = by_span[span.parent.span_id]
                    assert parent.attributes[sc.LC_RUN_ID] == str(run.parent_run_id)
        del spans, runs, by_run, by_span, reference, mem, tp, handler
        gc.collect()
        rss.append(proc.memory_info().rss)
        print(f"round {round_no}: {elapsed:.1f}s for {ASYNC_CALLS} ainvoke + {THREADS}x{BATCH_PER_THREAD} batch, "
              f"longest ainvoke {longest * 1000:.0f} ms, rss {rss[-1] / 2**20:.0f} MiB")
    # Round 0 warms caches and imports; later rounds must not keep growing.
    assert rss[2] - rss[1] < 20 * 2**20, [r / 2**20 for r in rss]


@pytest.mark.timeout(600)
def test_overhead_smoke_figure():
    chain = _chain()
    base, _, _ = _run_load(chain, [])
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    handler = OpenTelemetryCallbackHandler(tracer_provider=tp)
    traced, errors, _ = _run_load(chain, [handler])
    calls = ASYNC_CALLS + THREADS * BATCH_PER_THREAD
    print(f"\n| load | calls | plain s | with spanchain s | overhead per call ms |\n"
          f"| 1000 ainvoke + 8x25 batch | {calls} | {base:.2f} | {traced:.2f} | {(traced - base) / calls * 1000:.2f} |")
    assert errors == []
