"""The durable-spool half of the exporter base: journal, deliver in order, acknowledge, replay.

`BackgroundSpanExporter` (exporting.py) mixes this in; with `spool_dir` set, its writer thread
runs `_run_spooled` instead of writing straight from the queue:

- a journal thread moves spans from the in-memory queue to the on-disk spool (spool.py), after
  secret redaction, and never talks to the backend, so a slow or hung backend call never leaves
  spans in memory only;
- the writer thread delivers journaled batches oldest first and acknowledges each once the
  backend has it (subclasses that hold spans after `_write` acknowledge via `_spans_durable`);
  a failing backend leaves batches on disk, retried with backoff; a batch the backend keeps
  rejecting while later ones go through is quarantined (`_probe_past`, `_poisoned`).

See docs/reliability.md for the guarantees and the fsync policy.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.spancodec import CodecError, decode_spans, encode_spans
from spanchain.spool import Spool, SpoolFull

logger = logging.getLogger("spanchain.exporting")

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


class SpooledDelivery:
    """Mixin for BackgroundSpanExporter; uses its queue, condition, stats, log and hooks."""

    def _init_spool_state(self, spool_max_bytes, spool_fsync, spool_retry_max_s, poison_after, retry_backoff_s) -> None:
        """Spool settings (argument, else environment, else default) and delivery state."""
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
        self._flushes: list = []  # handed from the journal thread to the writer
        self._bypass: list[list[ReadableSpan]] = []  # batches the spool refused, for the writer
        self._journal_done = False
        self._span_seq: dict[tuple[int, int], int] = {}  # held span -> its spool seq
        # Poison detection: a batch that failed `poison_after` times while later batches reached
        # the backend is quarantined instead of blocking the spool forever.
        self._poison_after = max(2, poison_after)
        self._failures: dict[int, list[int]] = {}  # seq -> [failures, successes at first failure]
        self._successes = 0
        self._seq_outstanding: dict[int, int] = {}
        # Batches `_keep_in_spool` sent back for re-delivery. Until they are re-delivered, spans
        # of theirs that are still held (other traces) neither acknowledge them when written nor
        # count as lost when they fail: the re-delivery registers every span of the batch again.
        self._rewound: set[int] = set()
        self._rewinds = 0  # bumped whenever `_keep_in_spool` moves delivery back

    def _spans_durable(self, spans: Sequence[ReadableSpan]) -> None:
        """For `_acks_own_spans` subclasses: these spans reached the backend; free their batch."""
        if self._spool is None:
            return
        for span in spans:
            ctx = span.context
            seq = self._span_seq.pop((ctx.trace_id, ctx.span_id), None) if ctx is not None else None
            if seq is None or seq in self._rewound:
                continue
            left = self._seq_outstanding.get(seq, 1) - 1
            if left <= 0:
                self._seq_outstanding.pop(seq, None)
                self._acknowledge(seq)
            else:
                self._seq_outstanding[seq] = left

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
            elif seq not in self._rewound:  # else already due for re-delivery
                seqs[seq] = seqs.get(seq, 0) + 1
        for seq in seqs:
            self._seq_outstanding.pop(seq, None)
        retry = [seq for seq, failed in seqs.items() if not self._poisoned(seq, failed)]
        if retry:
            self._rewound.update(retry)
            # Batches are re-delivered from the oldest affected one on (subclasses skip spans
            # they still hold, and rewrite the rest idempotently).
            self._delivered_seq = min(self._delivered_seq, min(retry) - 1)
            self._rewinds += 1
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
        self._rewound.discard(seq)
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
            # Registered before `_write`: a subclass may finish (and report) spans inside it.
            self._register(entry.seq, spans)
            rewinds = self._rewinds
            exc = self._write_with_retries(spans)
            if exc is None and self._rewinds != rewinds:
                # Writing this batch made the subclass give up on spans of this or an earlier
                # batch (`_keep_in_spool`): delivery restarts there once the retry is due, so
                # this batch must not count as delivered.
                self._update_pending()
                return
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
        self._register(probe.seq, spans)
        if self._write_with_retries(spans) is None:
            self._successes += 1
            if not self._acks_own_spans:
                self._acknowledge(probe.seq)
                return False
        self._cache_put(probe.seq, spans)
        return False

    def _register(self, seq: int, spans: list[ReadableSpan]) -> None:
        """For `_acks_own_spans` subclasses: batch `seq` is being delivered; its spans
        acknowledge it once all are durable."""
        if not self._acks_own_spans:
            return
        self._rewound.discard(seq)
        self._seq_outstanding[seq] = len(spans)
        for span in spans:
            if span.context is not None:
                self._span_seq[(span.context.trace_id, span.context.span_id)] = seq

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
            spans = [i for i in self._queue if isinstance(i, ReadableSpan)]
            self._queue = collections.deque(i for i in self._queue if not isinstance(i, ReadableSpan))
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
