"""Between the HTTP receiver and the exporters: a bounded queue, translation, fan-out.

HTTP threads only decode and `offer()`; one worker translates foreign conventions and calls each
exporter's `export()` (which, for our exporters, only enqueues). When this queue, or the queue of
an exporter downstream, is close to full, `offer()` says FULL and the receiver answers 429 with
Retry-After, so a collector backs off instead of us accepting spans we would have to drop.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanchain.logonce import LogOnce
from spanchain.serve.translate import translate_span

logger = logging.getLogger(__name__)

# Push back once a downstream exporter's queue is this full: the remaining room absorbs the
# requests already past the check, so the exporter itself never has to drop.
DOWNSTREAM_HIGH_WATER = 0.8


class Offer(enum.Enum):
    ACCEPTED = "accepted"
    FULL = "full"  # → 429
    CLOSED = "closed"  # shutting down → 503


@dataclass
class PipelineStats:
    accepted_spans: int = 0
    exported_spans: int = 0
    throttled_requests: int = 0
    export_failures: dict = field(default_factory=dict)  # exporter name → spans it refused

    def as_dict(self) -> dict:
        return dict(self.__dict__, export_failures=dict(self.export_failures))


def downstream_pending(exporter: SpanExporter) -> tuple[int, int] | None:
    """(spans waiting in memory, queue capacity) of an exporter driven by a delivery engine,
    else None. Spans already journaled to a spool are safe and not counted."""
    engine = getattr(exporter, "engine", None)
    if engine is None or not hasattr(engine, "stats"):
        return None
    stats = engine.stats()
    return max(0, stats.waiting - stats.spool_pending), engine.settings.max_queue_spans


class Pipeline:
    def __init__(
        self,
        exporters: Mapping[str, SpanExporter],
        *,
        max_queue_spans: int = 20_000,
        translate: bool = True,
    ) -> None:
        self.exporters = dict(exporters)
        self.max_queue_spans = max_queue_spans
        self.translate = translate
        self.stats = PipelineStats()
        self._queue: Deque[list[ReadableSpan]] = collections.deque()
        self._queued = 0
        self._busy = False
        self._closing = False
        self._cond = threading.Condition()
        self._log = LogOnce(logger)
        self._thread = threading.Thread(target=self._run, name="spanchain-serve-pipeline", daemon=True)
        self._thread.start()

    # --- called from HTTP threads ------------------------------------------------------------
    def pressure(self, extra: int = 0) -> Offer:
        """Would `extra` more spans fit? Cheap: the receiver asks before reading a body."""
        with self._cond:
            if self._closing:
                return Offer.CLOSED
            if self._queued + extra > self.max_queue_spans:
                return Offer.FULL
        for exporter in self.exporters.values():
            pending = downstream_pending(exporter)
            if pending is not None and pending[0] + self._queued + extra > pending[1] * DOWNSTREAM_HIGH_WATER:
                return Offer.FULL
        return Offer.ACCEPTED

    def offer(self, spans: Sequence[ReadableSpan]) -> Offer:
        verdict = self.pressure(len(spans))
        if verdict is not Offer.ACCEPTED:
            if verdict is Offer.FULL:
                with self._cond:
                    self.stats.throttled_requests += 1
            return verdict
        with self._cond:
            if self._closing:
                return Offer.CLOSED
            self._queue.append(list(spans))
            self._queued += len(spans)
            self.stats.accepted_spans += len(spans)
            self._cond.notify()
        return Offer.ACCEPTED

    @property
    def queued_spans(self) -> int:
        return self._queued

    # --- worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    self._cond.notify_all()
                    return
                batch = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(batch)
            except Exception as exc:  # the worker must outlive any bug, or the queue never drains
                self._log.error(f"deliver:{type(exc).__name__}", "serve: delivering a batch failed: %r", exc)
            finally:
                with self._cond:
                    self._queued -= len(batch)
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, spans: list[ReadableSpan]) -> None:
        if self.translate:
            translated = []
            for span in spans:
                try:
                    translated.append(translate_span(span))
                except Exception as exc:  # a translation bug must not lose the span
                    self._log.warning(f"translate:{type(exc).__name__}", "serve: translation failed: %r", exc)
                    translated.append(span)
            spans = translated
        for name, exporter in self.exporters.items():
            try:
                result = exporter.export(spans)
            except Exception as exc:
                self._log.error(f"export:{name}", "serve: exporter %s raised: %r", name, exc)
                result = SpanExportResult.FAILURE
            if result is not SpanExportResult.SUCCESS:
                self.stats.export_failures[name] = self.stats.export_failures.get(name, 0) + len(spans)
        self.stats.exported_spans += len(spans)

    # --- lifecycle -------------------------------------------------------------------------------
    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Everything accepted so far reached the exporters and they flushed it."""
        deadline = time.monotonic() + timeout_s
        ok = self.wait_idle(timeout_s)
        for exporter in self.exporters.values():
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                # The SDK's base class returns None: only an explicit False is a failure.
                ok = exporter.force_flush(remaining_ms) is not False and ok
            except Exception as exc:
                self._log.error("flush", "serve: flush failed: %r", exc)
                ok = False
        return ok

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop accepting, deliver what was accepted, flush and close every exporter (bounded)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        ok = self.flush(timeout_s)
        self._thread.join(max(0.0, timeout_s))
        for exporter in self.exporters.values():
            try:
                exporter.shutdown()
            except Exception as exc:
                self._log.error("shutdown", "serve: exporter shutdown failed: %r", exc)
                ok = False
        return ok
