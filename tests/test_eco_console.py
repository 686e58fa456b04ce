"""The readable console exporter: one tree per finished trace, with durations, tokens and errors."""

import io

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from spanchain import semconv as sc
from spanchain.export.console import ConsoleTreeExporter

from eco_support import wait_until


def _trace(tp):
    tracer = tp.get_tracer("t")
    root_attrs = {sc.LC_RUN_ID: "r0", sc.LC_RUN_TYPE: "chain", sc.LC_DESCENDANTS: 2}
    with tracer.start_as_current_span("answer_question", attributes=root_attrs):
        with tracer.start_as_current_span("chat fake", attributes={
            sc.LC_RUN_ID: "r1", sc.LC_PARENT_RUN_ID: "r0", sc.LC_ROOT_RUN_ID: "r0", sc.LC_RUN_TYPE: "chat_model",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 12, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7}):
            pass
        with tracer.start_as_current_span("execute_tool calc", attributes={
            sc.LC_RUN_ID: "r2", sc.LC_PARENT_RUN_ID: "r0", sc.LC_ROOT_RUN_ID: "r0", sc.LC_RUN_TYPE: "tool",
            sc.ERROR_TYPE: "ValueError"}) as tool:
            tool.set_status(Status(StatusCode.ERROR, "bad input"))


def test_prints_each_complete_trace_as_a_tree():
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out, grace_s=30)
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    _trace(tp)
    assert wait_until(lambda: exporter.traces_printed == 1, 5)  # complete: no grace wait
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("── trace ") and "3 spans" in lines[0] and "tokens 12→7" in lines[0] and "1 error" in lines[0]
    assert lines[1].startswith("answer_question  [chain]")
    assert lines[2].startswith("├─ chat fake  [chat_model]") and "tokens 12→7" in lines[2]
    assert lines[3].startswith("└─ execute_tool calc  [tool]") and "ERROR ValueError" in lines[3]
    exporter.shutdown()


def test_incomplete_traces_wait_for_the_grace_period_or_shutdown(tmp_path, monkeypatch):
    target = tmp_path / "trees.txt"
    monkeypatch.setenv("SPANCHAIN_CONSOLE_OUTPUT", str(target))
    exporter = ConsoleTreeExporter(grace_s=30, idle_s=30)
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    with tp.get_tracer("t").start_as_current_span("plain span"):  # no LangChain root count
        pass
    assert exporter.force_flush(5000)
    assert "plain span  [other]" in target.read_text()
    exporter.shutdown()


def test_export_does_not_wait_for_the_output():
    class Stuck(io.StringIO):
        def write(self, s):
            import time

            time.sleep(0.3)
            return super().write(s)

    exporter = ConsoleTreeExporter(Stuck(), grace_s=0.01, idle_s=0.01)
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    import time

    t0 = time.monotonic()
    for _ in range(3):
        _trace(tp)
    assert time.monotonic() - t0 < 0.25  # printing one trace takes 0.3 s
    exporter.shutdown()
