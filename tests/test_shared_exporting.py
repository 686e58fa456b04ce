"""The exporter base and trace helpers every backend shares."""

import threading
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanchain import semconv as sc
from spanchain.exporting import BackgroundSpanExporter
from spanchain.traces import TraceAssembler, render_tree, seed_counters


class SlowExporter(BackgroundSpanExporter):
    def __init__(self, delay, fail_times=0, **kw):
        super().__init__(name="slow", retry_backoff_s=0.01, **kw)
        self.delay = delay
        self.fail_times = fail_times
        self.written = []
        self.threads = set()
        self.closed = False

    def _write(self, spans):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("backend down")
        self.written.extend(spans)

    def _close(self):
        self.closed = True


def _spans(n):
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    return mem.get_finished_spans()


def test_export_returns_without_waiting_for_the_backend():
    exp = SlowExporter(delay=0.5)
    spans = _spans(3)
    t0 = time.monotonic()
    assert exp.export(spans) == SpanExportResult.SUCCESS
    assert time.monotonic() - t0 < 0.1
    assert exp.force_flush(5000)
    assert len(exp.written) == 3
    assert exp.threads == {"spanchain-slow-writer"}
    exp.shutdown()
    assert exp.closed


def test_failed_writes_are_retried_then_counted():
    exp = SlowExporter(delay=0, fail_times=2, retry_attempts=3)
    exp.export(_spans(2))
    assert exp.force_flush(5000)
    assert len(exp.written) == 2 and exp.stats.retries == 2
    exp.fail_times = 10
    exp.export(_spans(1))
    assert exp.force_flush(5000)
    assert exp.stats.dropped_after_retries == 1
    exp.shutdown()


def test_full_queue_drops_and_counts_instead_of_blocking():
    exp = SlowExporter(delay=0.3, max_queue_spans=2)
    assert exp.export(_spans(2)) == SpanExportResult.SUCCESS
    time.sleep(0.05)  # writer picks the batch up
    exp.export(_spans(2))
    assert exp.export(_spans(1)) == SpanExportResult.FAILURE
    assert exp.stats.dropped_queue_full == 1
    exp.shutdown()


def test_shutdown_is_bounded_when_the_backend_hangs():
    exp = SlowExporter(delay=5, shutdown_timeout_s=0.2)
    exp.export(_spans(1))
    time.sleep(0.05)
    t0 = time.monotonic()
    exp.shutdown()
    assert time.monotonic() - t0 < 1.0
    assert exp.export(_spans(1)) == SpanExportResult.FAILURE


def _lc_spans():
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        root.set_attribute(sc.LC_RUN_ID, "r")
        root.set_attribute(sc.LC_ROOT_RUN_ID, "r")
        root.set_attribute(sc.LC_RUN_TYPE, "chain")
        root.set_attribute(sc.LC_DESCENDANTS, 2)
        with tracer.start_as_current_span("chat fake") as llm:
            llm.set_attributes({sc.LC_RUN_ID: "a", sc.LC_PARENT_RUN_ID: "r", sc.LC_ROOT_RUN_ID: "r",
                                sc.LC_RUN_TYPE: "chat_model", sc.GEN_AI_USAGE_INPUT_TOKENS: 3,
                                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 4, sc.LC_STREAM_CHUNKS: 5})
        with tracer.start_as_current_span("execute_tool t") as tool:
            tool.set_attributes({sc.LC_RUN_ID: "b", sc.LC_PARENT_RUN_ID: "r", sc.LC_ROOT_RUN_ID: "r",
                                 sc.LC_RUN_TYPE: "tool"})
    return mem.get_finished_spans()


def test_assembler_releases_a_trace_when_all_counted_spans_arrived():
    spans = _lc_spans()
    asm = TraceAssembler()
    released = []
    for span in spans:  # children end first, the root last
        released += asm.add(span)
    assert len(released) == 1 and len(released[0]) == 3
    assert len(asm) == 0


def test_assembler_grace_releases_incomplete_groups():
    now = [0.0]
    asm = TraceAssembler(grace_s=1, clock=lambda: now[0])
    spans = _lc_spans()
    assert asm.add(spans[-1]) == []  # the root alone, two descendants missing
    assert asm.expire() == []
    now[0] = 2
    assert [len(g) for g in asm.expire()] == [1]


def test_tree_and_counters():
    spans = _lc_spans()
    text = render_tree(spans)
    lines = text.splitlines()
    assert lines[0].startswith("root  [chain]")
    assert lines[1].startswith("├─ chat fake  [chat_model]") and "tokens 3→4" in lines[1]
    assert lines[2].startswith("└─ execute_tool t  [tool]")
    c = seed_counters(spans)
    assert (c["chain_starts"], c["llm_starts"], c["tool_starts"], c["llm_streams"]) == (1, 1, 1, 5)
    assert c["starts"] == 3 and c["ends"] == 3 and c["errors"] == 0


def test_tick_runs_while_the_exporter_is_busy():
    class Busy(SlowExporter):
        ticks = 0

        def _tick(self):
            Busy.ticks += 1

    exp = Busy(delay=0.02, tick_interval_s=0.05, max_batch_spans=1)
    for _ in range(20):  # ~0.4 s of back-to-back writes: never idle for a whole interval
        exp.export(_spans(1))
    assert exp.force_flush(5000)
    assert Busy.ticks >= 2
    exp.shutdown()
