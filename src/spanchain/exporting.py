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

With `spool_dir` set, every batch is journaled to a durable on-disk spool before `_write` and
acknowledged after it (spooled.py, spool.py), so spans survive a backend outage, a crash or a
restart and are delivered in order. A subclass that holds spans in memory
after `_write` returns (to assemble whole traces) sets `_acks_own_spans = True` and calls
`_spans_durable(spans)` once they really reached its backend. Everything is also passed through
the secret redactor (redaction.py) before it is spooled or written. See docs/reliability.md.
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
from spanchain.redaction import Redactor, default_redactor
from spanchain.spooled import SpooledDelivery

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
    # Durable spool (zero unless spool_dir is set).
    spooled: int = 0  # spans journaled to disk before their first write attempt
    replayed: int = 0  # spans a previous process left in the spool, written by this one
    spool_pending: int = 0  # spans on disk not yet written (a gauge, updated by the writer)
    dropped_spool_full: int = 0  # spans neither written nor saved by a shutdown that timed out
    spool_bypassed: int = 0  # spans written directly because the spool was full or unwritable
    dropped_corrupt: int = 0  # spans in spool records that could not be decoded
    dropped_poison: int = 0  # spans of batches the backend kept rejecting while later ones went
    # through (copied to the spool's quarantine/ directory)
    spool_errors: int = 0  # spool open/append failures (the exporter then writes without it)
    redacted_spans: int = 0  # spans that carried secret-looking values, masked before export

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = True  # False: spans are still waiting in the spool (backend unreachable)


_Item = Union[ReadableSpan, _FlushRequest]


class _StartsAfterInit(type):
    """Runs `_after_init` once the most derived `__init__` has finished.

    A spool left by a previous process must be replayed even if this process never exports, but
    the writer thread may only call `_write` after the subclass has set itself up.
    """

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        obj._after_init()
        return obj


class BackgroundSpanExporter(SpooledDelivery, SpanExporter, metaclass=_StartsAfterInit):
    """Queue in `export()`, write on one background thread, bound every wait."""

    # Set by subclasses that keep spans after `_write` returns; they call `_spans_durable`.
    _acks_own_spans = False

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
        spool_max_bytes: int | None = None,
        spool_fsync: bool | None = None,
        spool_retry_max_s: float = 30.0,
        poison_after: int = 5,
        redactor: Redactor | None = None,
    ) -> None:
        self._name = name
        # Durable spool for spans that could not be written (see docs/reliability.md). None: off.
        self._spool_dir = spool_dir
        self._init_spool_state(spool_max_bytes, spool_fsync, spool_retry_max_s, poison_after, retry_backoff_s)
        self._redactor = redactor if redactor is not None else default_redactor()
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

    @property
    def queued_spans(self) -> int:
        """Spans accepted by `export()` and still only in memory (not yet written or spooled)."""
        return self._queued_spans

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
                self._cond.notify_all()
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
            self._cond.notify_all()
        return request.done.wait(max(0.0, timeout_millis / 1000.0)) and request.ok

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
            spilled = self._spill_queue_to_spool()
            self._log.warning(
                "shutdown-timeout",
                "%s exporter: writer still busy after %.1fs; giving up (%d spans unwritten, "
                "%d of them saved to the spool)",
                self._name,
                self._shutdown_timeout_s,
                self._queued_spans + spilled,
                spilled,
            )

    def _after_init(self) -> None:
        if self._spool_dir:
            # Replay what a previous process left behind without waiting for a first export.
            with self._cond:
                if not self._stopping:
                    self._ensure_thread()

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
        """A batch failed every retry. Spooled spans stay on disk and are retried; others are
        counted and logged as dropped."""
        spans = self._keep_in_spool(spans)
        if not spans:
            self._log.warning(
                "kept-in-spool",
                "%s exporter: a write failed (%r); its spans stay in the spool for a later retry",
                self._name,
                exc,
            )
            return
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
            return self._take_batch_locked()

    def _take_batch_locked(self) -> tuple[list[ReadableSpan], _FlushRequest | None, bool]:
        """Pop up to one batch of spans, stopping at a flush request; (spans, flush, stop)."""
        batch: list[ReadableSpan] = []
        flush = None
        while self._queue and len(batch) < self._max_batch_spans:
            item = self._queue.popleft()
            if isinstance(item, _FlushRequest):
                flush = item
                break
            batch.append(item)
        self._queued_spans -= len(batch)
        return batch, flush, self._stopping and not self._queue

    def _run(self) -> None:
        if self._spool_dir:
            self._open_spool()
        if self._spool is not None:
            self._run_spooled()
        else:
            self._run_direct()
        with self._cond:
            self._is_shutdown = True
            pending = [i for i in self._queue if isinstance(i, _FlushRequest)] + self._flushes
            self._flushes = []
        for request in pending:
            request.done.set()

    def _run_direct(self) -> None:
        next_tick = time.monotonic() + self._tick_interval_s
        while True:
            batch, flush, stop = self._next_batch()
            if batch:
                self._deliver(self._redacted(batch))
            if flush is not None:
                self._safe_call("flush", self._flush)
                flush.done.set()
            if stop:
                break
            # Tick when idle, and also every interval while busy: a constantly fed exporter
            # must still release traces whose grace period ran out.
            now = time.monotonic()
            if (not batch and flush is None) or now >= next_tick:
                next_tick = now + self._tick_interval_s
                self._safe_call("tick", self._tick)
        self._safe_call("flush", self._flush)
        self._safe_call("close", self._close)

    def _redacted(self, batch: list[ReadableSpan]) -> list[ReadableSpan]:
        out = []
        for span in batch:
            try:
                clean = self._redactor.span(span)
            except Exception as exc:  # a redactor bug must not lose the span
                self._log.error("redact", "%s exporter: redaction failed: %r", self._name, exc)
                clean = span
            if clean is not span:
                self.stats.redacted_spans += 1
            out.append(clean)
        return out

    def _write_with_retries(self, batch: list[ReadableSpan]) -> BaseException | None:
        """Call `_write` up to retry_attempts times; None on success, else the last error."""
        last_exc: BaseException | None = None
        for attempt in range(self._retry_attempts):
            try:
                self._write(batch)
                self.stats.written += len(batch)
                return None
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
        return last_exc

    def _deliver(self, batch: list[ReadableSpan]) -> None:
        exc = self._write_with_retries(batch)
        if exc is not None:
            self._safe_call("write-failed", self._on_write_failed, batch, exc)

    def _backoff(self, attempt: int) -> None:
        # Full jitter; a pending shutdown cuts the wait short so shutdown stays bounded. New
        # exports also notify the condition, so wait out the remainder after each wake-up.
        delay = random.uniform(0, self._retry_backoff_s * (2**attempt))
        deadline = time.monotonic() + delay
        with self._cond:
            while not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def _safe_call(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._log.error(what, "%s exporter: %s failed: %r", self._name, what, exc)
