"""A SpanExporter base whose `export()` never waits on a backend.

`export()` only appends spans to a bounded in-memory queue; one writer thread per exporter drains
it and calls the subclass's `_write()`. Every backend call (Aim's non-thread-safe Repo, the
SageMaker SDK's process-wide run context) therefore happens on that one thread, and the app thread
that ends a span (SimpleSpanProcessor) or the SDK's batch worker never blocks on I/O.

Subclasses implement:
- `_write(spans)`: deliver a batch; raise to signal failure (the batch is retried with jittered
  backoff, then handed to `_on_write_failed`).
- `_flush()`: push out anything the subclass buffers (called on force_flush, on the writer thread).
- `_tick()`: periodic housekeeping on the writer thread (idle runs, trace grace timers).
- `_close()`: release backend resources; runs once, last, on the writer thread.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Sequence, Union

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanchain.logonce import LogOnce

logger = logging.getLogger(__name__)


@dataclass
class ExporterStats:
    """Counters a user (or the fault suite) can read to see where every span went."""

    accepted: int = 0
    written: int = 0
    dropped_queue_full: int = 0
    dropped_after_retries: int = 0
    dropped_after_shutdown: int = 0
    retries: int = 0
    failed_batches: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)


_Item = Union[ReadableSpan, _FlushRequest]


class BackgroundSpanExporter(SpanExporter):
    """Queue in `export()`, write on one background thread, bound every wait."""

    def __init__(
        self,
        *,
        name: str,
        max_queue_spans: int = 50_000,
        max_batch_spans: int = 512,
        retry_attempts: int = 3,
        retry_backoff_s: float = 0.5,
        tick_interval_s: float = 1.0,
        shutdown_timeout_s: float = 10.0,
        spool_dir: str | None = None,
    ) -> None:
        self._name = name
        # Durable spool for spans that could not be written (see docs/reliability.md). None: off.
        self._spool_dir = spool_dir
        self._max_queue_spans = max_queue_spans
        self._max_batch_spans = max_batch_spans
        self._retry_attempts = max(1, retry_attempts)
        self._retry_backoff_s = retry_backoff_s
        self._tick_interval_s = tick_interval_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._queue: Deque[_Item] = collections.deque()
        self._queued_spans = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._is_shutdown = False
        self._thread: threading.Thread | None = None
        self.stats = ExporterStats()
        self._log = LogOnce(logger)

    # --- SpanExporter API (called from app / SDK threads) ---------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            with self._cond:
                if self._stopping:
                    self.stats.dropped_after_shutdown += len(spans)
                    return SpanExportResult.FAILURE
                if self._queued_spans + len(spans) > self._max_queue_spans:
                    self._record_queue_full(spans)
                    return SpanExportResult.FAILURE
                self._queue.extend(spans)
                self._queued_spans += len(spans)
                self.stats.accepted += len(spans)
                self._ensure_thread()
                self._cond.notify()
            return SpanExportResult.SUCCESS
        except Exception as exc:  # never raise into the SDK or the app
            self._log.warning("export", "%s exporter: export failed: %r", self._name, exc)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        request = _FlushRequest()
        with self._cond:
            if self._is_shutdown:
                return True
            self._queue.append(request)
            self._ensure_thread()
            self._cond.notify()
        return request.done.wait(max(0.0, timeout_millis / 1000.0))

    def shutdown(self) -> None:
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            thread = self._thread
            if thread is None:
                # Never exported anything: close on this thread, there is no writer to race.
                self._is_shutdown = True
            self._cond.notify_all()
        if thread is None:
            self._safe_call("close", self._close)
            return
        thread.join(self._shutdown_timeout_s)
        if thread.is_alive():
            self._log.warning(
                "shutdown-timeout",
                "%s exporter: writer still busy after %.1fs; giving up (%d spans unwritten)",
                self._name,
                self._shutdown_timeout_s,
                self._queued_spans,
            )

    # --- subclass hooks ----------------------------------------------------------------------
    def _write(self, spans: list[ReadableSpan]) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """Push out buffered backend records. Default: nothing buffered."""

    def _tick(self) -> None:
        """Periodic housekeeping on the writer thread. Default: nothing."""

    def _close(self) -> None:
        """Release backend resources. Default: nothing."""

    def _on_write_failed(self, spans: list[ReadableSpan], exc: BaseException) -> None:
        """A batch failed every retry. Default: count and log; a spool overrides this."""
        self.stats.dropped_after_retries += len(spans)
        self._log.error(
            "dropped",
            "%s exporter: dropped %d spans after %d attempts: %r",
            self._name,
            len(spans),
            self._retry_attempts,
            exc,
        )

    # --- writer thread ------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"spanchain-{self._name}-writer", daemon=True
            )
            self._thread.start()

    def _record_queue_full(self, spans: Sequence[ReadableSpan]) -> None:
        self.stats.dropped_queue_full += len(spans)
        self._log.warning(
            "queue-full",
            "%s exporter: queue full (%d spans); dropping new spans (counted in .stats)",
            self._name,
            self._max_queue_spans,
        )

    def _next_batch(self) -> tuple[list[ReadableSpan], _FlushRequest | None, bool]:
        """Wait for work; return (spans, flush request, stop)."""
        with self._cond:
            deadline = time.monotonic() + self._tick_interval_s
            while not self._queue and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return [], None, False
                self._cond.wait(remaining)
            batch: list[ReadableSpan] = []
            flush = None
            while self._queue and len(batch) < self._max_batch_spans:
                item = self._queue.popleft()
                if isinstance(item, _FlushRequest):
                    flush = item
                    break
                batch.append(item)
            self._queued_spans -= len(batch)
            stop = self._stopping and not self._queue
            return batch, flush, stop

    def _run(self) -> None:
        while True:
            batch, flush, stop = self._next_batch()
            if batch:
                self._deliver(batch)
            if flush is not None:
                self._safe_call("flush", self._flush)
                flush.done.set()
            if stop:
                break
            if not batch and flush is None:
                self._safe_call("tick", self._tick)
        self._safe_call("flush", self._flush)
        self._safe_call("close", self._close)
        with self._cond:
            self._is_shutdown = True
            pending = [i for i in self._queue if isinstance(i, _FlushRequest)]
        for request in pending:
            request.done.set()

    def _deliver(self, batch: list[ReadableSpan]) -> None:
        last_exc: BaseException | None = None
        for attempt in range(self._retry_attempts):
            try:
                self._write(batch)
                self.stats.written += len(batch)
                return
            except Exception as exc:
                last_exc = exc
                self._log.warning(
                    f"write:{type(exc).__name__}",
                    "%s exporter: write failed (will retry): %r",
                    self._name,
                    exc,
                )
                if attempt + 1 < self._retry_attempts:
                    self.stats.retries += 1
                    self._backoff(attempt)
        self.stats.failed_batches += 1
        assert last_exc is not None
        self._safe_call("write-failed", self._on_write_failed, batch, last_exc)

    def _backoff(self, attempt: int) -> None:
        # Full jitter; a pending shutdown cuts the wait short so shutdown stays bounded.
        delay = random.uniform(0, self._retry_backoff_s * (2**attempt))
        with self._cond:
            if not self._stopping:
                self._cond.wait(delay)

    def _safe_call(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._log.error(what, "%s exporter: %s failed: %r", self._name, what, exc)
