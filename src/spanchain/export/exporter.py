"""`EngineSpanExporter`: an OpenTelemetry SpanExporter that hands everything to its engine.

It adds nothing to delivery: `export()` submits, `force_flush()` and `shutdown()` delegate, and
`stats` is the engine's snapshot. Backends subclass it only to add their own public helpers;
what they implement is a `TraceWriter`.
"""

from __future__ import annotations

from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanchain.export.engine import DeliveryEngine
from spanchain.export.settings import DeliverySettings
from spanchain.export.stats import ExportStats
from spanchain.export.writer import TraceWriter


class EngineSpanExporter(SpanExporter):
    def __init__(self, writer: TraceWriter, *, name: str, settings: DeliverySettings | None = None,
                 redactor=None, start: bool = False) -> None:
        self._engine = DeliveryEngine(writer, name=name, settings=settings, redactor=redactor)
        if start or (settings is not None and settings.spool_dir):
            self._engine.start()  # replay what an earlier process left without waiting for spans

    @property
    def engine(self) -> DeliveryEngine:
        return self._engine

    @property
    def stats(self) -> ExportStats:
        """Where every span went: accepted == written + waiting + dropped."""
        return self._engine.stats()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            return SpanExportResult.SUCCESS if self._engine.submit(spans) else SpanExportResult.FAILURE
        except Exception:  # never raise into the SDK or the app
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """True only if every span exported before this call reached the backend."""
        return self._engine.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._engine.shutdown()
