"""A readable console exporter: each finished trace as a tree with durations, tokens and errors.

`OTEL_TRACES_EXPORTER=spanchain_console` (or `spanchain run --console`). The SDK's own `console`
exporter prints one JSON document per span, which is hard to read for a chain of twenty runs;
this one waits until a trace is complete and prints it at once:

    ── trace 5b8e…  RunnableSequence  4 spans  812.4 ms  tokens 21→9  0 errors
    RunnableSequence  [chain]  812.4 ms
    ├─ ChatPromptTemplate  [prompt]  0.3 ms
    └─ FakeListChatModel  [chat_model]  801.0 ms  tokens 21→9

Output: argument, else SPANCHAIN_CONSOLE_OUTPUT (`stderr`, `stdout` or a file path), else stderr,
so the app's own stdout (often piped into something) stays clean.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.config import env as envvars
from spanchain.export import DeliverySettings, EngineSpanExporter, Trace, TraceWriter
from spanchain.export.traces import render_tree, run_type, trace_id_hex, trace_summary, usage_unknown

ENV_OUTPUT = envvars.SPANCHAIN_CONSOLE_OUTPUT


def format_trace(spans: Sequence[ReadableSpan]) -> str:
    """One trace: a summary line, then the indented span tree."""
    if not spans:
        return ""
    summary = trace_summary(spans)
    trace_ids = {trace_id_hex(s.context.trace_id)[:8] for s in spans}
    errors = summary["errors"]
    header = "  ".join(
        part
        for part in [
            f"── trace {'/'.join(sorted(trace_ids))}…",
            str(summary["root_name"]),
            _plural(summary["span_count"], "span"),
            f"{summary['duration_s'] * 1000:.1f} ms",
            _tokens(spans, summary),
            _plural(errors, "error"),
        ]
        if part  # no tokens part for a trace without model calls
    )
    return header + "\n" + render_tree(spans) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _tokens(spans: Sequence[ReadableSpan], summary: dict) -> str:
    """Token totals; `tokens unknown` when the models reported no usage (not `0→0`)."""
    known = summary["input_tokens"] or summary["output_tokens"]
    unknown = sum(1 for s in spans if usage_unknown(s))
    if not known:
        if unknown:
            return "tokens unknown"
        return "" if not any(run_type(s) in ("llm", "chat_model") for s in spans) else "tokens 0→0"
    text = f"tokens {summary['input_tokens']}→{summary['output_tokens']}"
    return text + (f" (+{_plural(unknown, 'model call')} without usage)" if unknown else "")


def _open_output(output: str | IO[str] | None) -> tuple[IO[str], bool]:
    """(stream, whether we own it and must close it)."""
    if output is not None and not isinstance(output, str):
        return output, False
    target = output or os.environ.get(ENV_OUTPUT) or "stderr"
    if target == "stderr":
        return sys.stderr, False
    if target == "stdout":
        return sys.stdout, False
    return open(target, "a", encoding="utf-8"), True


class ConsoleTreeWriter(TraceWriter):
    """Prints each trace the engine releases as one tree."""

    def __init__(self, output: str | IO[str] | None = None) -> None:
        self._output_spec = output
        self._out: IO[str] | None = None
        self._owns_out = False
        self.traces_printed = 0

    def write_trace(self, trace: Trace) -> None:
        if self._out is None:
            self._out, self._owns_out = _open_output(self._output_spec)
        self._out.write(format_trace(trace.spans))
        self._out.flush()
        self.traces_printed += 1

    def close(self) -> None:
        if self._owns_out and self._out is not None:
            self._out.close()


class ConsoleTreeExporter(EngineSpanExporter):
    """Prints each trace once complete (or after a short grace); export() never waits on output."""

    def __init__(
        self,
        output: str | IO[str] | None = None,
        *,
        grace_s: float = 1.0,
        idle_s: float = 2.0,
    ) -> None:
        # A short grace: this is for watching a run locally, not for exact grouping.
        self._writer = ConsoleTreeWriter(output)
        settings = DeliverySettings(trace_grace_s=grace_s, trace_idle_s=idle_s, tick_interval_s=min(0.5, grace_s),
                                    retry_timeout_s=0.0)
        super().__init__(self._writer, name="console", settings=settings)

    @property
    def traces_printed(self) -> int:
        return self._writer.traces_printed
