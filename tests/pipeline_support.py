"""An in-memory OTel pipeline around the handler, and langchain_core's own tracer as the oracle."""

from __future__ import annotations

from langchain_core.tracers.base import BaseTracer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanchain import OpenTelemetryCallbackHandler
from spanchain import semconv as sc


class OracleTracer(BaseTracer):
    """LangChain's own run-tree builder; we compare our span tree with what it builds."""

    def __init__(self) -> None:
        super().__init__(_schema_format="original+chat")
        self.roots = []

    def _persist_run(self, run) -> None:
        self.roots.append(run)

    def edges(self) -> set[tuple[str, str | None]]:
        out = set()
        stack = list(self.roots)
        while stack:
            run = stack.pop()
            out.add((str(run.id), str(run.parent_run_id) if run.parent_run_id else None))
            stack.extend(run.child_runs)
        return out


class Pipeline:
    def __init__(self, **handler_options) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.handler = OpenTelemetryCallbackHandler(self.provider, **handler_options)
        self.oracle = OracleTracer()

    @property
    def callbacks(self):
        return [self.handler, self.oracle]

    def config(self, **extra):
        return {"callbacks": self.callbacks, **extra}

    def spans(self):
        return self.exporter.get_finished_spans()

    def lc_spans(self):
        return [s for s in self.spans() if sc.LC_RUN_ID in (s.attributes or {})]

    def by_name(self, name):
        return [s for s in self.spans() if (s.attributes or {}).get(sc.LC_NAME) == name]

    def span_edges(self) -> set[tuple[str, str | None]]:
        """(run_id, parent run_id) as the *span* tree says it, not as the attributes say."""
        spans = self.lc_spans()
        by_span_id = {s.context.span_id: s for s in spans}
        out = set()
        for span in spans:
            parent = by_span_id.get(span.parent.span_id) if span.parent else None
            out.add(
                (span.attributes[sc.LC_RUN_ID], parent.attributes[sc.LC_RUN_ID] if parent else None)
            )
        return out

    def assert_same_tree(self, expected_roots: int | None = None) -> None:
        spans = self.lc_spans()
        oracle = self.oracle.edges()
        assert oracle, "the oracle saw no runs"
        assert self.span_edges() == oracle
        assert len(spans) == len(oracle), "one span per run, none duplicated"
        assert self.handler.open_runs == 0, "no span left un-ended"
        # one root run = one trace, and every span sits in its root's trace
        roots = [s for s in spans if sc.LC_PARENT_RUN_ID not in s.attributes]
        assert len({s.context.trace_id for s in roots}) == len(roots)
        root_trace = {s.attributes[sc.LC_RUN_ID]: s.context.trace_id for s in roots}
        for span in spans:
            assert span.context.trace_id == root_trace[span.attributes[sc.LC_ROOT_RUN_ID]]
        if expected_roots is not None:
            assert len(roots) == expected_roots


