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

With `spool_dir` set, the writer journals every batch to a durable on-disk spool (spool.py)
before calling `_write`, and acknowledges it after `_write` returns, so spans survive a backend
outage, a crash or a restart and are delivered in order. A subclass that holds spans in memory
after `_write` returns (to assemble whole traces) sets `_acks_own_spans = True` and calls
`_spans_durable(spans)` once they really reached its backend. Everything is also passed through
the secret redactor (redaction.py) before it is spooled or written. See docs/reliability.md.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Sequence, Union

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanchain.logonce import LogOnce
from spanchain.redaction import Redactor, default_redactor
from spanchain.spancodec import CodecError, decode_spans, encode_spans
from spanchain.spool import Spool, SpoolFull

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


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() not in {"0", "false", "no", "off"}


class BackgroundSpanExporter(SpanExporter, metaclass=_StartsAfterInit):
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
        self._spool_max_bytes = (
            spool_max_bytes
            if spool_max_bytes is not None
            else _env_int("SPANCHAIN_SPOOL_MAX_BYTES", 256 * 1024 * 1024)
        )
        self._spool_fsync = spool_fsync if spool_fsync is not None else _env_bool("SPANCHAIN_SPOOL_FSYNC", True)
        self._spool_retry_max_s = spool_retry_max_s
        self._spool: Spool | None = None
        self._delivered_seq = 0  # highest spool seq handed to `_write` successfully
        self._replay_through_seq = 0  # seqs up to here were left by a previous process
        self._retry_at = 0.0  # monotonic time before which the spool is not retried
        self._retry_delay = retry_backoff_s
        self._cache: dict[int, list[ReadableSpan]] = {}  # seq -> spans journaled by this process
        self._cache_spans = 0
        self._cache_lock = threading.Lock()
        # With a spool, a journal thread moves spans from the queue to disk while the writer
        # thread delivers from disk: a slow or hung backend never holds spans in memory only.
        self._journaled_seq = 0  # highest seq on disk (journal thread; read by the writer)
        self._flushes: list[_FlushRequest] = []  # handed from the journal thread to the writer
        self._bypass: list[list[ReadableSpan]] = []  # batches the spool refused, for the writer
        self._journal_done = False
        self._span_seq: dict[tuple[int, int], int] = {}  # held span -> its spool seq
        # Poison detection: a batch that failed `poison_after` times while later batches reached
        # the backend is quarantined instead of blocking the spool forever.
        self._poison_after = max(2, poison_after)
        self._failures: dict[int, list[int]] = {}  # seq -> [failures, successes at first failure]
        self._successes = 0
        self._seq_outstanding: dict[int, int] = {}
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

    def _spans_durable(self, spans: Sequence[ReadableSpan]) -> None:
        """For `_acks_own_spans` subclasses: these spans reached the backend; free their batch."""
        if self._spool is None:
            return
        for span in spans:
            ctx = span.context
            seq = self._span_seq.pop((ctx.trace_id, ctx.span_id), None) if ctx is not None else None
            if seq is None:
                continue
            left = self._seq_outstanding.get(seq, 1) - 1
            if left <= 0:
                self._seq_outstanding.pop(seq, None)
                self._acknowledge(seq)
            else:
                self._seq_outstanding[seq] = left

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

    def _keep_in_spool(self, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
        """Held spans a subclass failed to write: rewind delivery to their spooled batches.
        Returns the spans the spool does not hold (those are really lost)."""
        if self._spool is None or not self._acks_own_spans:
            return list(spans)
        seqs: dict[int, int] = {}  # seq -> failed spans of it
        rest = []
        for span in spans:
            ctx = span.context
            seq = self._span_seq.pop((ctx.trace_id, ctx.span_id), None) if ctx is not None else None
            if seq is None:
                rest.append(span)
            else:
                seqs[seq] = seqs.get(seq, 0) + 1
        for seq in seqs:
            self._seq_outstanding.pop(seq, None)
        retry = [seq for seq, failed in seqs.items() if not self._poisoned(seq, failed)]
        if retry:
            # Batches are re-delivered from the oldest affected one on (subclasses skip spans
            # they still hold, and rewrite the rest idempotently).
            self._delivered_seq = min(self._delivered_seq, min(retry) - 1)
            self._schedule_retry()
        return rest

    def _acknowledge(self, seq: int) -> None:
        assert self._spool is not None
        self._spool.ack(seq)
        self._failures.pop(seq, None)
        self._successes += 1

    def _poisoned(self, seq: int, failed: int) -> bool:
        """Count a failure of `failed` spans of batch `seq`; quarantine it if it is poison."""
        if self._count_failure(seq) < self._poison_after:
            return False
        self._quarantine(seq, failed)
        return True

    def _count_failure(self, seq: int) -> int:
        """Failures of batch `seq` that count as evidence of poison: only those after some
        other batch reached the backend since its previous failure. In an outage nothing
        succeeds, so nothing counts; right after one, the batch's next try succeeds."""
        record = self._failures.get(seq)
        if record is None:
            self._failures[seq] = [0, self._successes]
            return 0
        if self._successes > record[1]:
            record[0] += 1
            record[1] = self._successes
        return record[0]

    def _quarantine(self, seq: int, spans: int) -> None:
        """Set batch `seq` aside; `spans` of it are lost (the rest already reached the backend
        or are still held by the subclass, which reports them itself)."""
        assert self._spool is not None
        path = self._spool.quarantine(seq)
        self._failures.pop(seq, None)
        self._cache_take(seq)
        for key in [k for k, s in self._span_seq.items() if s == seq]:
            del self._span_seq[key]  # a later failure of these is then counted, not retried
        self._seq_outstanding.pop(seq, None)
        self.stats.dropped_poison += spans
        self._log.error(
            "poison",
            "%s exporter: the backend rejected a batch of %d spans %d times while later batches "
            "went through; set aside in %s (counted in .stats.dropped_poison)",
            self._name,
            spans,
            self._poison_after,
            path or "(nowhere: quarantine full or unwritable)",
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

    def _run_spooled(self) -> None:
        journal = threading.Thread(target=self._journal_loop, name=f"spanchain-{self._name}-journal", daemon=True)
        journal.start()
        next_tick = time.monotonic() + self._tick_interval_s
        while True:
            flushes, bypass, done = self._wait_for_work(next_tick)
            for batch in bypass:
                self._deliver(batch)
            self._drain(force=bool(flushes) or done)
            for request in flushes:
                self._safe_call("flush", self._flush)
                request.ok = self._undelivered() == 0
                request.done.set()
            if done:
                break
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self._tick_interval_s
                self._safe_call("tick", self._tick)
        self._safe_call("flush", self._flush)
        self._safe_call("close", self._close)
        assert self._spool is not None
        self._update_pending()
        self._spool.close()

    def _wait_for_work(self, next_tick: float):
        """Writer thread: sleep until there is something to deliver, a flush, or a tick."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._flushes or self._bypass or self._journal_done or now >= next_tick:
                    break
                backlog = self._journaled_seq > self._delivered_seq
                if backlog and now >= self._retry_at:
                    break
                deadline = min(next_tick, self._retry_at) if backlog else next_tick
                self._cond.wait(max(0.001, deadline - now))
            flushes, self._flushes = self._flushes, []
            bypass, self._bypass = self._bypass, []
            return flushes, bypass, self._journal_done

    def _journal_loop(self) -> None:
        """Journal thread: queue → spool, never touching the backend."""
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                batch, flush, finished = self._take_batch_locked()
            if batch:
                try:
                    self._journal(batch)
                except Exception as exc:  # never let the journal thread die
                    self._log.error("journal", "%s exporter: journaling failed: %r", self._name, exc)
            with self._cond:
                if flush is not None:
                    self._flushes.append(flush)
                if finished:
                    self._journal_done = True
                self._cond.notify_all()
            if finished:
                return

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

    # --- durable spool (writer thread, except _spill_queue_to_spool) ---------------------------
    def _open_spool(self) -> None:
        assert self._spool_dir
        try:
            spool = Spool(
                os.path.join(self._spool_dir, self._name),
                max_bytes=self._spool_max_bytes,
                fsync=self._spool_fsync,
            ).open()
        except Exception as exc:
            self.stats.spool_errors += 1
            self._log.error(
                "spool-open",
                "%s exporter: cannot open spool under %s (%r); continuing without it",
                self._name,
                self._spool_dir,
                exc,
            )
            return
        left = spool.pending()
        self._replay_through_seq = left[-1].seq if left else 0
        self._journaled_seq = self._replay_through_seq
        if spool.stats.torn_tail_bytes or spool.stats.corrupt_records:
            self._log.warning(
                "spool-torn",
                "%s exporter: spool recovery cut %d torn bytes, skipped %d corrupt segment tails",
                self._name,
                spool.stats.torn_tail_bytes,
                spool.stats.corrupt_records,
            )
        if left:
            logger.info(
                "%s exporter: replaying %d spans left in the spool %s",
                self._name,
                sum(e.spans for e in left),
                spool.lane_dir,
            )
        self._spool = spool
        self._update_pending()

    def _journal(self, batch: list[ReadableSpan]) -> None:
        """Put a batch on disk before any write attempt; keep it in memory to skip re-decoding."""
        assert self._spool is not None
        batch = self._redacted(batch)
        try:
            seq = self._spool.append(encode_spans(batch), len(batch))
        except Exception as exc:
            self._journal_failed(batch, exc)
            return
        self.stats.spooled += len(batch)
        self._cache_put(seq, batch)
        with self._cond:
            self._journaled_seq = max(self._journaled_seq, seq)
            self._cond.notify_all()
        self._update_pending()

    def _cache_put(self, seq: int, spans: list[ReadableSpan]) -> None:
        with self._cache_lock:
            if seq not in self._cache and self._cache_spans + len(spans) <= self._max_queue_spans:
                self._cache[seq] = spans
                self._cache_spans += len(spans)

    def _cache_take(self, seq: int) -> list[ReadableSpan] | None:
        with self._cache_lock:
            spans = self._cache.pop(seq, None)
            if spans is not None:
                self._cache_spans -= len(spans)
            return spans

    def _journal_failed(self, batch: list[ReadableSpan], exc: BaseException) -> None:
        """The spool cannot take this batch (full, disk error): write it directly, undurably,
        possibly ahead of older spooled batches. If that fails too, the spans are counted as
        dropped like any failed write (`_on_write_failed`)."""
        self.stats.spool_errors += 1
        self.stats.spool_bypassed += len(batch)
        what = "full" if isinstance(exc, SpoolFull) else "unwritable"
        self._log.warning(
            f"spool-{what}",
            "%s exporter: spool %s (%r); writing spans directly, without the safety net "
            "(counted in .stats.spool_bypassed)",
            self._name,
            what,
            exc,
        )
        with self._cond:
            self._bypass.append(batch)  # the writer thread delivers it: one thread per backend
            self._cond.notify_all()

    def _undelivered(self) -> int:
        return len(self._spool.pending(after_seq=self._delivered_seq, limit=1)) if self._spool else 0

    def _update_pending(self) -> None:
        if self._spool is not None:
            self.stats.spool_pending = self._spool.pending_spans

    def _drain(self, force: bool) -> None:
        """Write spooled batches oldest first until the spool is empty or the backend fails."""
        assert self._spool is not None
        if not force and time.monotonic() < self._retry_at:
            return
        while True:
            journaled = self._journaled_seq  # read before the query: all up to here are in it
            entries = self._spool.pending(after_seq=self._delivered_seq, limit=1)
            if not entries:
                with self._cond:
                    self._delivered_seq = max(self._delivered_seq, journaled)
                self._retry_delay = self._retry_backoff_s
                self._update_pending()
                return
            entry = entries[0]
            spans = self._cache_take(entry.seq)
            if spans is None:
                try:
                    spans = decode_spans(self._spool.read(entry))
                except CodecError as exc:
                    self.stats.dropped_corrupt += entry.spans
                    self._log.error(
                        "spool-corrupt",
                        "%s exporter: dropping undecodable spool batch (%d spans): %r",
                        self._name,
                        entry.spans,
                        exc,
                    )
                    self._spool.drop(entry.seq)
                    continue
                except OSError as exc:
                    self.stats.spool_errors += 1
                    self._log.error("spool-read", "%s exporter: spool read failed: %r", self._name, exc)
                    self._schedule_retry()
                    return
            if self._acks_own_spans:
                # Registered before `_write`: a subclass may finish (and report) spans inside it.
                self._seq_outstanding[entry.seq] = len(spans)
                for span in spans:
                    if span.context is not None:
                        self._span_seq[(span.context.trace_id, span.context.span_id)] = entry.seq
            exc = self._write_with_retries(spans)
            if exc is not None and self._probe_past(entry):
                continue  # the head was poison and is set aside; the next batch went through
            if exc is not None:
                self._cache_put(entry.seq, spans)
                self._log.warning(
                    "spool-backlog",
                    "%s exporter: backend failing (%r); %d spans wait in the spool",
                    self._name,
                    exc,
                    self._spool.pending_spans,
                )
                self._schedule_retry()
                self._update_pending()
                return
            self._delivered_seq = entry.seq
            if entry.seq <= self._replay_through_seq:
                self.stats.replayed += len(spans)
            if not self._acks_own_spans:
                self._acknowledge(entry.seq)
            self._update_pending()

    def _probe_past(self, head) -> bool:
        """The head batch failed again. If it has failed `poison_after` times while other
        batches went through, set it aside (True: go on with the next batch). Otherwise try the
        batch behind it once, out of order: its success is the evidence that the backend is up
        and the head is what is wrong (it is delivered again in order later; harmless, keys are
        idempotent)."""
        assert self._spool is not None
        if self._count_failure(head.seq) >= self._poison_after:
            self._quarantine(head.seq, head.spans)
            return True
        after = self._spool.pending(after_seq=head.seq, limit=1)
        if not after:
            return False
        probe = after[0]
        spans = self._cache_take(probe.seq)
        if spans is None:
            try:
                spans = decode_spans(self._spool.read(probe))
            except (CodecError, OSError):
                return False
        if self._acks_own_spans:
            self._seq_outstanding[probe.seq] = len(spans)
            for span in spans:
                if span.context is not None:
                    self._span_seq[(span.context.trace_id, span.context.span_id)] = probe.seq
        if self._write_with_retries(spans) is None:
            self._successes += 1
            if not self._acks_own_spans:
                self._acknowledge(probe.seq)
                return False
        self._cache_put(probe.seq, spans)
        return False

    def _schedule_retry(self) -> None:
        delay = self._retry_delay * random.uniform(0.5, 1.0)
        self._retry_at = time.monotonic() + delay
        self._retry_delay = min(self._spool_retry_max_s, self._retry_delay * 2)

    def _spill_queue_to_spool(self) -> int:
        """Shutdown timed out with the writer stuck in the backend: save the queue from here."""
        spool = self._spool
        if spool is None:
            return 0
        with self._cond:
            spans = [i for i in self._queue if not isinstance(i, _FlushRequest)]
            self._queue = collections.deque(i for i in self._queue if isinstance(i, _FlushRequest))
            self._queued_spans = 0
        saved = 0
        for start in range(0, len(spans), self._max_batch_spans):
            chunk = self._redacted(spans[start : start + self._max_batch_spans])
            try:
                spool.append(encode_spans(chunk), len(chunk))
                saved += len(chunk)
                self.stats.spooled += len(chunk)
            except Exception as exc:
                self.stats.dropped_spool_full += len(chunk)
                self._log.error("spool-spill", "%s exporter: could not save spans at shutdown: %r", self._name, exc)
        self._update_pending()
        return saved

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
