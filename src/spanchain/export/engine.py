"""The delivery engine: one component, owned by an exporter, that accounts for every span.

    export() ──► queue ──► [journal thread ──► spool records] ──► writer thread
                 (bounded)   (only with spool_dir)                 │ assemble traces
                                                                   │ write_traces() on the backend
                                                                   │ retry under a deadline
                                                                   └ acknowledge spool records

- `submit()` (the exporter's `export()`, on an app or SDK thread) only appends to a bounded
  queue under a lock; it never waits on disk or a backend.
- With a spool, a journal thread writes each batch to disk, one record per trace, before the
  writer ever sees it. A record is acknowledged only once its trace reached the backend (or was
  dropped for a counted reason), so whatever a crash or a timed-out shutdown leaves is on disk,
  and the next process delivers it; completed traces are never replayed.
- One writer thread assembles traces (assembly.py), hands ready ones to the backend's
  `TraceWriter`, and retries transient failures with jittered backoff and Retry-After until the
  trace's deadline (`retry_timeout_s` after it became ready). Past that a trace is dropped, or,
  with a spool, waits on disk while the writer probes the backend with the oldest trace at a
  growing interval. A trace that keeps failing while others get through is set aside (poison).
- `ConfigurationError` (and OS errors that cannot heal by waiting) stop the writing at once:
  reported once with the setting, never retried.
- `stats()` is a consistent snapshot: `accepted == written + waiting + dropped`, with
  `waiting` measured from the queue, the spool and the writer's memory.
- `force_flush()` is True only if every span accepted before it was written. `shutdown()` waits
  at most `shutdown_timeout_s`; spans it could not write stay on disk (spool) or are counted as
  dropped. After `os.fork()` the child starts with an empty engine of its own.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.export.assembly import Trace, TraceAssembler
from spanchain.export.backoff import next_delay
from spanchain.export.droplog import DropLog
from spanchain.export.errors import RejectedError, is_configuration_error, retry_after_s
from spanchain.export.settings import DeliverySettings
from spanchain.export.stats import ExportStats
from spanchain.export.writer import TraceWriter
from spanchain.logonce import LogOnce
from spanchain.content.redaction import Redactor, default_redactor
from spanchain.spool.codec import CodecError, decode_spans, encode_spans
from spanchain.spool.log import Spool, SpoolFull
from spanchain.export.traces import group_key

logger = logging.getLogger("spanchain.export")


@dataclass
class _Flush:
    deadline: float
    dropped_before: int
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


@dataclass
class _Call:
    fn: Callable[[], Any]
    write_first: bool
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass
class _Record:
    """Spans of one trace on their way to the writer: in memory, or only on disk (`spans` None)."""

    key: str
    spans: list[ReadableSpan] | None
    seq: int | None  # spool sequence number; None: memory only
    count: int


@dataclass
class _Pending:
    trace: Trace
    deadline: float  # memory-only traces are dropped past it; spooled ones wait on disk
    next_try_at: float = 0.0
    attempts: int = 0
    poison_strikes: int = 0
    successes_at_strike: int = -1
    others_succeeded: bool = False


class DeliveryEngine:
    def __init__(self, writer: TraceWriter, *, name: str, settings: DeliverySettings | None = None,
                 redactor: Redactor | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.writer = writer
        self.settings = settings or DeliverySettings()
        self._redactor = redactor if redactor is not None else default_redactor()
        self._clock = clock
        self._log = LogOnce(logger)
        self._init_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (lambda e: e and e._init_state())(ref()))
        try:
            writer.preflight()
        except Exception as exc:
            self._disable(exc)

    def _init_state(self) -> None:
        """(Re)initialise everything that lives in this process: locks, threads, queues, counts."""
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()  # span lists and _Flush markers
        self._input: collections.deque = collections.deque()  # _Record and _Flush (spool mode)
        self._calls: collections.deque[_Call] = collections.deque()
        self._stats = ExportStats()
        self._queue_spans = 0  # accepted, not yet taken by the journal or the writer
        self._transit_spans = 0  # taken by the journal thread, being written to disk
        self._input_memory_spans = 0  # spooled spans also kept in memory for the writer
        self._spooled_unsettled = 0  # on disk, not yet written or dropped
        self._memory_unsettled = 0  # held by the writer in memory only
        self._stopping = False
        self._abandoned = False  # shutdown gave up on a stuck writer: its late results don't count
        self._journal_done = False
        self._writer_thread: threading.Thread | None = None
        self._journal_thread: threading.Thread | None = None
        self._spool: Spool | None = None
        self._disabled: BaseException | None = getattr(self, "_disabled", None)
        self._assembler = TraceAssembler(self.settings.trace_grace_s, self.settings.trace_idle_s)
        self._pending: list[_Pending] = []
        self._successes = 0
        self._outage_until = 0.0
        self._outage_delay = self.settings.retry_backoff_s
        self._drops = DropLog(logger, self.name)
        self._opened = False
        self._started = False

    # --- app side ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads now (a spool left by an earlier process is replayed at once)."""
        with self._cond:
            self._ensure_threads()

    def submit(self, spans: Sequence[ReadableSpan]) -> bool:
        n = len(spans)
        with self._cond:
            if self._stopping:
                self._count_drop_locked("after_shutdown", n)
                return False
            self._stats.accepted += n
            if self._disabled is not None and not self.settings.spool_dir:
                self._count_drop_locked("misconfigured", n)
                return False
            if self._queue_spans + self._transit_spans + self._memory_unsettled + n > self.settings.max_queue_spans:
                self._count_drop_locked("queue_full", n)
                return False
            self._queue.append(list(spans))
            self._queue_spans += n
            self._ensure_threads()
            self._cond.notify_all()
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stats(self) -> ExportStats:
        with self._cond:
            s = ExportStats(**self._stats.as_dict())
            s.spool_pending = self._spooled_unsettled
            s.waiting = self._waiting_locked()
            return s

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        timeout = max(0.0, timeout_millis / 1000.0)
        with self._cond:
            if self._stopping:
                return self._waiting_locked() == 0
            request = _Flush(self._clock() + timeout, self._stats.dropped)
            self._queue.append(request)
            self._ensure_threads()
            self._cond.notify_all()
        request.done.wait(timeout)
        self._drops.report()
        return request.done.is_set() and request.ok

    def call(self, fn: Callable[[], Any], timeout_s: float = 10.0, *, write_first: bool = False) -> Any:
        """Run `fn` on the writer thread (the backend's only thread); its result, or None on
        timeout or error. `write_first`: write every ready and incomplete trace before it."""
        call = _Call(fn, write_first)
        with self._cond:
            if self._stopping:
                return None
            self._calls.append(call)
            self._ensure_threads()
            self._cond.notify_all()
        if not call.done.wait(timeout_s):
            return None
        if call.error is not None:
            self._log.warning(f"call:{type(call.error).__name__}", "%s exporter: %r", self.name, call.error)
            return None
        return call.result

    def shutdown(self, timeout_s: float | None = None) -> None:
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            started = self._writer_thread is not None
            self._cond.notify_all()
        if not started:
            self._safe("close", self.writer.close)  # never started: no writer thread to race
            return
        deadline = self._clock() + timeout
        for thread in (self._journal_thread, self._writer_thread):
            if thread is not None:
                thread.join(max(0.0, deadline - self._clock()))
        if self._writer_thread.is_alive() or (self._journal_thread is not None and self._journal_thread.is_alive()):
            self._abandon(timeout)
        self._drops.report()

    # --- threads -------------------------------------------------------------------------------
    def _ensure_threads(self) -> None:
        if self._writer_thread is not None:
            return
        self._writer_thread = threading.Thread(target=self._run_writer, name=f"spanchain-{self.name}-writer",
                                               daemon=True)
        if self.settings.spool_dir:
            self._journal_thread = threading.Thread(target=self._run_journal,
                                                    name=f"spanchain-{self.name}-journal", daemon=True)
            self._open_spool()
            self._journal_thread.start()
        self._writer_thread.start()

    def _open_spool(self) -> None:
        """Open this process's lane and queue what an earlier process left (called under the lock)."""
        directory = os.path.join(self.settings.spool_dir, self.name)
        try:
            spool = Spool(directory, max_bytes=self.settings.spool_max_bytes, fsync=self.settings.spool_fsync).open()
        except Exception as exc:
            self._stats.spool_errors += 1
            self._log.error("spool-open", "%s exporter: cannot open the spool %s (%r); delivering from memory "
                            "only (spans are lost if the process stops before they are written)",
                            self.name, directory, exc)
            return
        self._spool = spool
        left = spool.pending()
        for entry in left:
            self._input.append(_Record("", None, entry.seq, entry.spans))
        replayed = sum(e.spans for e in left)
        self._stats.accepted += replayed
        self._stats.replayed += replayed
        self._spooled_unsettled += replayed
        if left:
            logger.info("%s exporter: replaying %d spans left in the spool %s", self.name, replayed, spool.lane_dir)

    def _run_journal(self) -> None:
        """Queue → spool, one record per trace, before the writer sees any of it."""
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    self._journal_done = True
                    self._cond.notify_all()
                    return
                item = self._queue.popleft()
                if isinstance(item, _Flush):
                    self._input.append(item)
                    self._cond.notify_all()
                    continue
                self._queue_spans -= len(item)
                self._transit_spans += len(item)
            try:
                self._journal(item)
            except Exception as exc:  # the journal thread must never die
                self._log.error("journal", "%s exporter: journaling failed: %r", self.name, exc)
                with self._cond:
                    self._transit_spans -= len(item)
                    self._count_drop_locked("spool_full", len(item))
                    if self._abandoned and self._transit_spans == 0 and self._spool is not None:
                        self._spool.close()  # shutdown left the closing to this thread

    def _journal(self, spans: list[ReadableSpan]) -> None:
        groups = self._group(self._redacted(spans))
        spool = self._spool
        seqs: list[int | None]
        try:
            if spool is None:
                raise OSError("no spool")
            seqs = spool.append_many([(encode_spans(g), len(g)) for g in groups.values()])
        except Exception as exc:
            seqs = [None] * len(groups)
            with self._cond:
                self._stats.spool_errors += spool is not None
                self._stats.spool_bypassed += len(spans)
            what = "full" if isinstance(exc, SpoolFull) else "unwritable"
            self._log.warning(f"spool-{what}", "%s exporter: spool %s (%r); delivering spans from memory only "
                              "(counted in stats.spool_bypassed)", self.name, what, exc)
        with self._cond:
            self._transit_spans -= len(spans)
            if self._abandoned:
                self._settle_journaled_after_abandon(groups, seqs)
                return
            lazy = self._memory_unsettled + self._input_memory_spans > self.settings.max_queue_spans
            for (key, group), seq in zip(groups.items(), seqs):
                if seq is None:
                    self._memory_unsettled += len(group)
                    self._input.append(_Record(key, group, None, len(group)))
                else:
                    self._spooled_unsettled += len(group)
                    self._stats.spooled += len(group)
                    # Past the memory bound, the writer reads the record back from disk later.
                    self._input.append(_Record(key, None if lazy else group, seq, len(group)))
                    self._input_memory_spans += 0 if lazy else len(group)
            self._cond.notify_all()

    def _settle_journaled_after_abandon(self, groups: dict[str, list[ReadableSpan]], seqs) -> None:
        """Shutdown gave up while these spans were being journaled (called under the lock): what
        reached the disk waits there for the next process; the rest is dropped and counted.
        The journal thread closes the spool once its last append is settled."""
        lost = 0
        for group, seq in zip(groups.values(), seqs):
            if seq is None:
                lost += len(group)
            else:
                self._spooled_unsettled += len(group)
                self._stats.spooled += len(group)
        self._count_drop_locked("shutdown", lost)
        if lost:
            self._drops.add("shutdown", lost, 0, None)
        if self._transit_spans == 0 and self._spool is not None:
            self._spool.close()
        self._cond.notify_all()

    def _run_writer(self) -> None:
        try:
            self._writer_loop()
        except BaseException as exc:  # pragma: no cover - a bug; say so rather than die silently
            self._log.error("writer", "%s exporter: writer thread failed: %r", self.name, exc)
            raise

    def _writer_loop(self) -> None:
        next_tick = self._clock() + self.settings.tick_interval_s
        while True:
            records, flush, calls, stop = self._next_work(next_tick)
            for record in records:
                self._take(record)
            # Calls first: an app waiting on one (a run hash) should not wait for a whole batch
            # of writes; a call that needs them asks for `write_first`.
            for call in calls:
                self._handle_call(call)
            self._write_due()
            if flush is not None:
                self._handle_flush(flush)
            if stop:
                break
            now = self._clock()
            if now >= next_tick:
                next_tick = now + self.settings.tick_interval_s
                self._release(self._assembler.expire())
                self._write_due()
                self._safe("tick", self.writer.tick)
                self._drops.report(min_interval_s=10.0)
        self._finish()

    def _next_work(self, next_tick: float):
        """Wait for input, a flush, a call, a due retry, or the next tick; take one turn's worth."""
        spool_mode = self._journal_thread is not None
        with self._cond:
            while True:
                source = self._input if spool_mode else self._queue
                now = self._clock()
                can_take = bool(source) and (self._writer_has_room() or isinstance(source[0], _Flush))
                finished = self._stopping and not source and (not spool_mode or self._journal_done)
                if can_take or self._calls or finished or now >= next_tick or self._due_at() <= now:
                    break
                if self._stopping and spool_mode and not self._journal_done:
                    self._cond.wait(0.05)
                    continue
                self._cond.wait(max(0.001, min(next_tick, self._due_at()) - now))
            records: list[_Record] = []
            flush = None
            taken = 0
            while source and taken < self.settings.max_batch_spans:
                if isinstance(source[0], _Flush):
                    flush = source.popleft()
                    break
                if not self._writer_has_room() and not self._stopping:
                    break
                item = source.popleft()
                if spool_mode:
                    if item.spans is None and self._stopping:
                        source.appendleft(item)  # stays on disk for the next process
                        break
                    records.append(item)
                    taken += item.count
                    if item.spans is not None and item.seq is not None:
                        self._input_memory_spans -= item.count
                else:
                    self._queue_spans -= len(item)
                    self._memory_unsettled += len(item)
                    records.extend(_Record(k, g, None, len(g)) for k, g in self._group(self._redacted(item)).items())
                    taken += len(item)
            calls = list(self._calls)
            self._calls.clear()
            stop = self._stopping and not source and (not spool_mode or self._journal_done)
            return records, flush, calls, stop

    def _writer_has_room(self) -> bool:
        held = self._assembler.span_count + sum(len(p.trace.new_spans) for p in self._pending)
        return held < self.settings.max_queue_spans

    def _due_at(self) -> float:
        if not self._pending or self._disabled is not None:
            return float("inf")
        due = min(p.next_try_at for p in self._pending)
        return max(due, self._outage_until)

    # --- assembling ----------------------------------------------------------------------------
    def _take(self, record: _Record) -> None:
        spans = record.spans
        if spans is None:
            spans = self._read_record(record)
            if spans is None:
                return
        key = record.key or (group_key(spans[0]) if spans else "")
        released, duplicates = self._assembler.add(key, spans, record.seq)
        if duplicates:  # already written by this process (a replayed record): settled
            self._settle_written_duplicates(duplicates, spooled=record.seq is not None)
        if record.seq is not None and duplicates == len(spans):
            self._ack({record.seq})
        self._release(released)

    def _read_record(self, record: _Record) -> list[ReadableSpan] | None:
        assert self._spool is not None and record.seq is not None
        entry = next(iter(self._spool.pending(after_seq=record.seq - 1, limit=1)), None)
        if entry is None or entry.seq != record.seq:
            return None  # acknowledged meanwhile
        try:
            return decode_spans(self._spool.read(entry))
        except CodecError as exc:
            self._spool.drop(entry.seq)
            with self._cond:
                self._spooled_unsettled -= entry.spans
                self._count_drop_locked("corrupt", entry.spans)
            self._drops.add("corrupt", entry.spans, 0, exc)
            return None
        except OSError as exc:
            with self._cond:
                self._stats.spool_errors += 1
            self._log.error("spool-read", "%s exporter: spool read failed: %r", self.name, exc)
            return None

    def _release(self, traces: list[Trace]) -> None:
        deadline = self._clock() + self.settings.retry_timeout_s
        for trace in traces:
            self._pending.append(_Pending(trace, deadline, successes_at_strike=self._successes))

    # --- writing -------------------------------------------------------------------------------
    def _write_due(self, force: bool = False) -> None:
        """Write the traces whose (re)try is due; `force`: every trace, now (a flush)."""
        if self._disabled is not None or not self._pending or self._abandoned:
            return
        if not self._opened and not self._open_writer():
            return
        now = self._clock()
        if self._outage_until:
            # Traces held only in memory are not probed in an outage; their deadline still holds.
            for item in [p for p in self._pending if p.trace.unspooled and now >= p.deadline]:
                self._pending.remove(item)
                self._drop_trace(item.trace, "retries_exhausted", None)
            if not self._pending:
                return
            # The same "due" as _due_at (the earliest of all, not the first trace's): with a
            # narrower test here the writer woke for a due trace, did nothing, and spun.
            if not force and now < self._due_at():
                return
            # Probe with the oldest trace; if it fails, the next one tells whether the backend
            # is down or only that trace is bad (a success there ends the outage).
            probes = self._pending[:2]
            for probe in probes:
                self._write_chunk([probe])
                if probe not in self._pending or self._disabled is not None:
                    break
            if not any(p not in self._pending for p in probes):
                # Still down: nothing else is due before the probes' next try (otherwise a
                # trace due earlier wakes the writer, which probes the oldest again at once).
                later = min(p.next_try_at for p in probes)
                for item in self._pending:
                    item.next_try_at = max(item.next_try_at, later)
                return
            self._outage_until = 0.0
            self._outage_delay = self.settings.retry_backoff_s
            force = True
        due = [p for p in self._pending if force or p.next_try_at <= now]
        size = self.settings.max_traces_per_write
        for start in range(0, len(due), size):
            self._write_chunk(due[start:start + size])
            if self._disabled is not None or self._outage_until:
                break

    def _write_chunk(self, chunk: list[_Pending]) -> None:
        try:
            outcomes = self.writer.write_traces([p.trace for p in chunk])
        except Exception as exc:
            outcomes = [exc] * len(chunk)
        for item, exc in zip(chunk, outcomes):
            self._outcome(item, exc)

    def _open_writer(self) -> bool:
        try:
            self.writer.open()
            self._opened = True
            return True
        except Exception as exc:
            if is_configuration_error(exc):
                self._disable(exc)
            else:
                self._log.warning(f"open:{type(exc).__name__}", "%s exporter: backend not reachable yet: %r",
                                  self.name, exc)
                now = self._clock()
                for p in self._pending:
                    p.next_try_at = now + next_delay(1, self.settings.retry_backoff_s, self.settings.retry_backoff_max_s)
            return False

    def _outcome(self, item: _Pending, exc: BaseException | None) -> None:
        if self._abandoned:
            return
        trace = item.trace
        if exc is None:
            self._pending.remove(item)
            self._successes += 1
            self._assembler.written(trace)
            self._settle_trace(trace, written=True)
            return
        if is_configuration_error(exc):
            self._disable(exc)
            return
        if isinstance(exc, RejectedError):
            self._pending.remove(item)
            self._drop_trace(trace, "rejected", exc, quarantine=True)
            return
        now = self._clock()
        item.attempts += 1
        delay = next_delay(item.attempts, self.settings.retry_backoff_s, self.settings.retry_backoff_max_s,
                           retry_after_s(exc))
        self._log.warning(f"write:{type(exc).__name__}", "%s exporter: write failed (will retry): %r", self.name, exc)
        if now + delay < item.deadline and not self._stopping:
            item.next_try_at = now + delay
            with self._cond:
                self._stats.retries += 1
            return
        if trace.unspooled == 0 and self._spool is not None:
            if self._is_poison(item):
                self._pending.remove(item)
                self._drop_trace(trace, "rejected", exc, quarantine=True)
                return
            item.attempts = 0
            item.deadline = now + self.settings.retry_timeout_s
            if item.others_succeeded:
                item.next_try_at = now + delay  # the backend works for other traces: keep trying
                return
            # Out of time but safe on disk: wait for the backend, probing at a growing interval.
            self._outage_delay = min(self.settings.outage_backoff_max_s, self._outage_delay * 2)
            self._outage_until = now + self._outage_delay
            item.next_try_at = self._outage_until
            item.deadline = self._outage_until + self.settings.retry_timeout_s
            self._log.warning("outage", "%s exporter: backend failing (%r); spans wait in the spool %s",
                              self.name, exc, self._spool.lane_dir)
            return
        self._pending.remove(item)
        self._drop_trace(trace, "retries_exhausted", exc)

    def _is_poison(self, item: _Pending) -> bool:
        """A strike counts only if some other trace got through since the last one: in an
        outage nothing does, so nothing is poison."""
        item.others_succeeded = self._successes > item.successes_at_strike
        if item.others_succeeded:
            item.poison_strikes += 1
        item.successes_at_strike = self._successes
        return item.poison_strikes >= self.settings.poison_after


    def _drop_trace(self, trace: Trace, reason: str, exc: BaseException | None, quarantine: bool = False) -> None:
        if quarantine and self._spool is not None:
            for seq in trace.tickets:
                self._spool.quarantine(seq)
            trace.tickets = set()
        self._settle_trace(trace, written=False, reason=reason)
        self._drops.add(reason, len(trace.new_spans), 1, exc)

    def _settle_trace(self, trace: Trace, *, written: bool, reason: str = "") -> None:
        spooled = len(trace.new_spans) - trace.unspooled
        with self._cond:
            if self._abandoned:
                return
            self._memory_unsettled -= trace.unspooled
            self._spooled_unsettled -= spooled
            if written:
                self._stats.written += len(trace.new_spans)
                self._stats.traces_written += 1
            else:
                self._count_drop_locked(reason, len(trace.new_spans))
                self._stats.traces_dropped += 1
            self._ack_locked(trace.tickets)

    def _settle_written_duplicates(self, n: int, *, spooled: bool) -> None:
        """Spans delivered again that this process already wrote: settled as written."""
        with self._cond:
            if spooled:
                self._spooled_unsettled -= n
            else:
                self._memory_unsettled -= n
            self._stats.written += n

    def _ack(self, seqs) -> None:
        with self._cond:
            self._ack_locked(seqs)

    def _ack_locked(self, seqs) -> None:
        if self._spool is not None:
            for seq in seqs:
                self._spool.ack(seq)

    def _disable(self, exc: BaseException) -> None:
        """A setting can never work: stop writing, say so once, keep or drop what is held."""
        first = self._disabled is None
        self._disabled = exc
        keep = bool(self.settings.spool_dir)
        if first:
            logger.error("%s exporter: %s; not retrying. %s", self.name, exc,
                         "Spans stay in the spool for a process whose configuration works."
                         if keep else "Spans are dropped (counted in stats.dropped_misconfigured).")
        if keep:
            return
        for item in list(self._pending):
            if item.trace.unspooled == len(item.trace.new_spans):
                self._pending.remove(item)
                self._settle_trace(item.trace, written=False, reason="misconfigured")
        for trace in self._assembler.drain():
            self._settle_trace(trace, written=False, reason="misconfigured")

    # --- flush, calls, finish ------------------------------------------------------------------
    def _handle_flush(self, request: _Flush) -> None:
        self._release(self._assembler.drain())
        self._write_due(force=True)
        # Retry within the flush's time while traces are only failing transiently; in an outage
        # (spool mode) the spans are safe on disk and the flush reports False at once.
        while self._pending and self._disabled is None and not self._stopping and not self._outage_until:
            now = self._clock()
            due = self._due_at()
            if now >= request.deadline or due >= request.deadline:
                break
            if due > now:
                with self._cond:
                    self._cond.wait(due - now)
                continue
            self._write_due()
        flushed = self._safe("flush", self.writer.flush)
        with self._cond:
            request.ok = flushed and not self._pending and self._stats.dropped == request.dropped_before
        request.done.set()

    def _handle_call(self, call: _Call) -> None:
        if call.write_first:
            self._release(self._assembler.drain())
            self._write_due(force=True)
        try:
            call.result = call.fn()
        except Exception as exc:
            call.error = exc
        call.done.set()

    def _finish(self) -> None:
        """Stopping: write what can be written once more, then close; account for the rest."""
        self._release(self._assembler.drain())
        if self._outage_until == 0.0:
            self._write_due(force=True)
        self._safe("flush", self.writer.flush)
        self._safe("close", self.writer.close)
        left = [p.trace for p in self._pending]
        self._pending.clear()
        with self._cond:
            if not self._abandoned:
                for trace in left:
                    self._memory_unsettled -= trace.unspooled
                    self._count_drop_locked("shutdown", trace.unspooled)
                    if trace.unspooled:
                        self._drops.add("shutdown", trace.unspooled, 1, None)
            pending_flushes = [i for i in self._queue if isinstance(i, _Flush)]
            pending_flushes += [i for i in self._input if isinstance(i, _Flush)]
            calls = list(self._calls)
            self._calls.clear()
            if self._spool is not None:
                self._spool.close()
        for request in pending_flushes:
            request.done.set()
        for call in calls:
            call.done.set()

    def _abandon(self, timeout: float) -> None:
        """Shutdown's wait ran out with the writer stuck in a backend call: stop counting its
        results, release the spool lane (everything unwritten is on disk), drop the rest."""
        with self._cond:
            self._abandoned = True
            # Spans the journal thread has not taken yet will not reach the disk now: take them
            # out of its queue (it would otherwise count them again). Spans it is writing at
            # this moment (transit) are settled by it when its append returns: on disk they
            # wait for the next process, and counting them as dropped here would count them
            # twice (dropped here, written by the next process).
            flushes = [i for i in self._queue if isinstance(i, _Flush)]
            self._queue.clear()
            lost = self._queue_spans + self._memory_unsettled
            kept = self._spooled_unsettled
            if self._spool is None:
                lost += kept
                kept = 0
                self._spooled_unsettled = 0
            self._queue_spans = self._memory_unsettled = 0
            self._count_drop_locked("shutdown", lost)
            journaling = self._transit_spans
            if self._spool is not None and not journaling:
                self._spool.close()
        for request in flushes:
            request.done.set()
        logger.warning("%s exporter: writer still busy after %.1fs; %d spans left in the spool for the next "
                       "process, %d being written to it, %d dropped", self.name, timeout, kept, journaling, lost)

    # --- helpers -------------------------------------------------------------------------------
    def _group(self, spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
        groups: dict[str, list[ReadableSpan]] = {}
        for span in spans:
            groups.setdefault(group_key(span), []).append(span)
        return groups

    def _redacted(self, spans: list[ReadableSpan]) -> list[ReadableSpan]:
        out = []
        redacted = 0
        for span in spans:
            try:
                clean = self._redactor.span(span)
            except Exception as exc:  # a redactor bug must not lose the span
                self._log.error("redact", "%s exporter: redaction failed: %r", self.name, exc)
                clean = span
            redacted += clean is not span
            out.append(clean)
        if redacted:
            with self._cond:
                self._stats.redacted_spans += redacted
        return out

    def _count_drop_locked(self, reason: str, n: int) -> None:
        if n:
            setattr(self._stats, f"dropped_{reason}", getattr(self._stats, f"dropped_{reason}") + n)
            self._stats.dropped += n
            if reason in ("queue_full", "after_shutdown", "misconfigured", "corrupt", "spool_full"):
                self._drops.add(reason, n, 0, None)

    def _waiting_locked(self) -> int:
        """Spans accepted and not yet written or dropped: queued, in transit to disk, on disk, in memory."""
        return self._queue_spans + self._transit_spans + self._spooled_unsettled + self._memory_unsettled

    def _safe(self, what: str, fn) -> bool:
        try:
            fn()
            return True
        except Exception as exc:
            self._log.error(f"{what}:{type(exc).__name__}", "%s exporter: %s failed: %r", self.name, what, exc)
            return False
