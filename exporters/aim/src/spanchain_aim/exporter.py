"""`AimSpanExporter`: finished LangChain spans → Aim runs (Texts, metrics, params).

`export()` only queues (see spanchain.exporting). On the one writer thread, spans are grouped
per LangChain root run; when a trace is complete (or its grace period is over, or on flush)
it is translated (spanchain_aim.translate) and written either into the exporter's one session
run or into a run of its own (`run_per="trace"`).

A trace that fails to write stays pending and is tried again on the next writer wake-up; after
`retry_attempts` failures it goes to `_on_write_failed` (counted, logged once, spooled when a
spool is configured). Every write is idempotent (a point keeps the dense step its span got in
its run, see spanchain_aim.steps), so a retry or a late span of an already written trace
rewrites the same points.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.exporting import BackgroundSpanExporter
from spanchain.traces import TraceAssembler, group_key

from spanchain_aim.config import AimExporterConfig, experiment_for, resolve_config
from spanchain_aim.runs import RemoteWriteError, RunWriter, open_aim_run
from spanchain_aim.translate import (
    run_params,
    session_run_name,
    span_records,
    trace_params,
    trace_records,
    trace_run_description,
    trace_run_name,
)

logger = logging.getLogger(__name__)

_RECENT_TRACES = 128  # traces kept after writing, so late spans re-render the whole tree
_MAX_LISTED_HASHES = 1_000
_BASE_OPTIONS = ("max_queue_spans", "max_batch_spans", "retry_attempts", "retry_backoff_s", "tick_interval_s",
                 "spool_max_bytes", "spool_fsync", "spool_retry_max_s", "redactor")


@dataclass
class _Written:
    spans: list[ReadableSpan]
    run_hash: str | None = None
    keys: set[tuple[int, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.keys = {_span_key(s) for s in self.spans}


@dataclass
class _Pending:
    key: str
    spans: list[ReadableSpan]
    attempts: int = 0


@dataclass
class _Command:
    fn: Callable[[], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@functools.lru_cache(maxsize=1)
def _spanchain_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("spanchain")
    except metadata.PackageNotFoundError:
        return "unknown"


def base_params(run_per: str) -> dict:
    """The `spanchain` param every run the exporter opens gets."""
    return {"spanchain": {"version": _spanchain_version(), "exporter": "aim", "run_per": run_per}}


def _span_key(span: ReadableSpan) -> tuple[int, int]:
    return span.context.trace_id, span.context.span_id


class AimSpanExporter(BackgroundSpanExporter):
    """OpenTelemetry SpanExporter writing LangChain spans into Aim.

    Args:
        repo: local repo path or `aim://host:port`; env OTEL_EXPORTER_AIM_REPO; default ".".
        experiment: Aim experiment; env OTEL_EXPORTER_AIM_EXPERIMENT, then OTEL_SERVICE_NAME,
            then the spans' resource service.name, then "langchain".
        run_per: "session" (one run for the exporter's life) or "trace" (one run per root
            LangChain run); env OTEL_EXPORTER_AIM_RUN_PER; default "session".
        **options: see docs/aim.md (run_name, system_tracking_interval, log_system_params,
            max_text_chars, max_contexts, trace_grace_s, trace_idle_s, shutdown_timeout_s,
            spool_dir, remote_write_timeout_s, and the queue options of BackgroundSpanExporter).
    """

    def __init__(self, repo=None, experiment=None, run_per=None, **options):
        base_options = {k: options.pop(k) for k in _BASE_OPTIONS if k in options}
        self.config: AimExporterConfig = resolve_config(repo, experiment, run_per, **options)
        super().__init__(
            name="aim",
            shutdown_timeout_s=self.config.shutdown_timeout_s,
            spool_dir=self.config.spool_dir,
            **base_options,
        )
        self._assembler = TraceAssembler(grace_s=self.config.trace_grace_s, idle_s=self.config.trace_idle_s)
        self._recent: collections.OrderedDict[str, _Written] = collections.OrderedDict()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._commands: collections.deque[_Command] = collections.deque()
        self._session: RunWriter | None = None
        # Per-trace runs whose write failed (over aim://: the server has not confirmed it; closing
        # one would wait on Aim's unbounded queue), kept open and reused when their trace is
        # retried, so a retry rewrites the same run instead of starting a second one.
        self._unconfirmed: dict[str, RunWriter] = {}
        self._abandoned: list[RunWriter] = []
        # The local `aim.Repo` of the last run opened, kept alive between runs. Aim pools Repo
        # objects weakly by path: once a per-trace run is closed and dropped, nothing holds its
        # Repo, and the next run builds a new one (SQLite engine, SQLAlchemy's statement cache,
        # structured-DB setup), about a third of a trace's write cost. A session run holds its
        # Repo anyway; so does a loop that opens the next run before dropping the previous one.
        self._repo = None
        self._held: set[tuple[int, int]] = set()
        self._state_lock = threading.Lock()
        self._hashes: list[str] = []
        self.traces_written = 0
        self.traces_failed = 0  # traces given up on (dropped, or left to the spool)
        self._user_flushes = 0

    # --- public helpers (any thread) ------------------------------------------------------
    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write everything held now; False if anything is still pending or was given up on."""
        failed_before = self.traces_failed
        with self._state_lock:
            self._user_flushes += 1
        done = super().force_flush(timeout_millis)
        return done and not self._pending and self.traces_failed == failed_before

    @property
    def run_hashes(self) -> list[str]:
        """Hashes of the Aim runs this exporter wrote to, oldest first (the last 1000)."""
        with self._state_lock:
            return list(self._hashes)

    def aim_up_command(self) -> str:
        """What to run to browse the data: `aim up` on the local repo (or the server's)."""
        if self.config.is_remote:
            return "aim up --repo <the repo the aim server at " + self.config.repo + " serves>"
        from spanchain_aim.ui import aim_executable

        try:
            aim = aim_executable()  # this install's aim: a virtualenv's bin/ is often not on PATH
        except FileNotFoundError:
            aim = "aim"
        return f"{aim} up --repo {self.config.repo}"

    def session_run_hash(self, timeout_s: float = 10.0) -> str | None:
        """Open the session run now if needed and return its hash (None on failure/timeout)."""
        return self.call_on_writer(lambda: self._session_writer(None).hash, timeout_s)

    def set_run_params(self, params: Mapping[str, Any], timeout_s: float = 10.0) -> bool:
        """Set user params on the session run (sanitized; secret-looking keys redacted)."""
        return self.call_on_writer(lambda: self._session_writer(None).set_params(params) or True, timeout_s) is True

    def start_new_session_run(self, timeout_s: float = 10.0, *, repo: str | None = None,
                              experiment: str | None = None, system_tracking_interval: Any = None,
                              log_system_params: bool | None = None, open_now: bool = True) -> str | None:
        """Close the session run; later spans go to a new one with these settings."""

        def rotate():
            self._write_all_pending()
            self._close_session()
            if repo and repo != self.config.repo:
                self.config = dataclasses.replace(self.config, repo=str(repo))
            if experiment is not None or system_tracking_interval is not None or log_system_params is not None:
                self._session_overrides = dict(experiment=experiment, system_tracking_interval=system_tracking_interval,
                                               log_system_params=log_system_params)
            return self._session_writer(None).hash if open_now else None

        return self.call_on_writer(rotate, timeout_s)

    def close_session_run(self, timeout_s: float = 10.0) -> bool:
        """Write what is pending and close the session run (a later span opens a new one)."""

        def close():
            self._write_all_pending()
            self._close_session()
            return True

        return self.call_on_writer(close, timeout_s) is True

    def call_on_writer(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run `fn` on the writer thread (after pending data is written); None on failure."""
        command = _Command(fn)
        with self._cond:
            if self._stopping:
                return None
            self._commands.append(command)
        # The base flush runs our `_flush`, which runs the command; its own verdict (the spool
        # may still hold spans) does not matter here, only whether the command ran.
        super().force_flush(int(timeout_s * 1000))
        if not command.done.is_set():
            return None
        if command.error is not None:
            self._log.warning(f"command:{type(command.error).__name__}",
                              "aim exporter: %r", command.error)
            return None
        return command.result

    # --- writer thread ---------------------------------------------------------------------
    _session_overrides: dict | None = None
    # Spans wait in the TraceAssembler after `_write` returns: the spool may forget them only
    # once their trace is in Aim (`_spans_durable`).
    _acks_own_spans = True

    def _write(self, spans: list[ReadableSpan]) -> None:
        for span in spans:
            key = _span_key(span)
            if key in self._held:
                continue  # a spool replay re-delivers spans we still hold
            written = self._recent.get(group_key(span))
            if written is not None and key in written.keys:
                # Re-delivered with a batch that went back to the spool for another trace's sake;
                # its own trace is in Aim already.
                self._spans_durable([span])
                continue
            self._held.add(key)
            for group in self._assembler.add(span):
                self._pending.append(_Pending(group_key(group[0]), group))
        self._write_all_pending()

    def _tick(self) -> None:
        for group in self._assembler.expire():
            self._pending.append(_Pending(group_key(group[0]), group))
        self._write_all_pending()

    def _flush(self) -> None:
        with self._state_lock:
            # Only a real flush (or shutdown) writes incomplete traces; a helper call that
            # merely needs the writer thread (session_run_hash...) leaves them to complete.
            drain = self._user_flushes > 0 or self._stopping
            self._user_flushes = max(0, self._user_flushes - 1)
        if drain:
            for group in self._assembler.drain():
                self._pending.append(_Pending(group_key(group[0]), group))
        self._write_all_pending()
        while self._commands:
            command = self._commands.popleft()
            try:
                command.result = command.fn()
            except Exception as exc:
                command.error = exc
            command.done.set()

    def _close(self) -> None:
        self._flush()
        for item in self._pending:  # could not be written even at shutdown
            self.traces_failed += 1
            self._on_write_failed(item.spans, RuntimeError("aim exporter shut down with unwritten traces"))
        self._pending.clear()
        self._held.clear()
        session, self._session = self._session, None
        writers = ([session] if session else []) + list(self._unconfirmed.values())
        self._unconfirmed.clear()
        for i, writer in enumerate(writers):
            if not self._close_writer(writer):
                # One server, one queue: the others would only wait out the same timeout.
                self._abandoned.extend(writers[i + 1:])
                break
        self._repo = None

    def _write_all_pending(self) -> None:
        for _ in range(len(self._pending)):
            item = self._pending.popleft()
            try:
                self._write_trace(item.key, item.spans)
            except Exception as exc:
                item.attempts += 1
                self._log.warning(f"trace:{type(exc).__name__}",
                                  "aim exporter: writing a trace failed (attempt %d): %r", item.attempts, exc)
                if item.attempts >= self._retry_attempts:
                    self.traces_failed += 1
                    self._release(item.spans)
                    self._on_write_failed(item.spans, exc)
                else:
                    self._pending.append(item)
                continue
            self.traces_written += 1
            self._release(item.spans)
            self._spans_durable(item.spans)

    def _release(self, spans: list[ReadableSpan]) -> None:
        for span in spans:
            self._held.discard(_span_key(span))

    def _write_trace(self, key: str, new_spans: list[ReadableSpan]) -> None:
        previous = self._recent.get(key)
        spans = list(previous.spans) if previous else []
        seen = {(s.context.trace_id, s.context.span_id) for s in spans}
        fresh = [s for s in new_spans if (s.context.trace_id, s.context.span_id) not in seen]
        spans.extend(fresh)
        # A session run remembers which step each span's points took; a per-trace run is
        # numbered afresh whenever it is opened, so its whole trace is written each time.
        written = fresh if self.config.run_per == "session" else spans
        records = [r for s in written for r in span_records(s, self.config.max_text_chars)]
        records.extend(trace_records(spans, self.config.max_text_chars, figure=self.config.trace_figures,
                                     counters=self.config.seed_counters))
        if self.config.run_per == "session":
            writer = self._session_writer(spans[0])
            writer.merge_params(run_params(fresh))
            writer.track(records, key)
            # The spool forgets these spans once this returns: over aim:// they must be on the
            # server by then, not merely queued in Aim's client.
            writer.confirm()
            run_hash = writer.hash
        else:
            run_hash = self._write_trace_run(key, spans, records, previous.run_hash if previous else None)
        self._recent[key] = _Written(spans, run_hash)
        self._recent.move_to_end(key)
        while len(self._recent) > _RECENT_TRACES:
            self._recent.popitem(last=False)

    def _write_trace_run(self, key: str, spans, records, run_hash: str | None) -> str:
        writer = self._unconfirmed.pop(key, None)
        experiment = experiment_for(self.config, _service_name(spans[0]))
        if writer is None:
            writer = self._new_writer(open_aim_run(self.config, experiment, run_hash))
        try:
            params = trace_params(spans)
            writer.merge_params({**base_params(self.config.run_per), **params, **run_params(spans)})
            # Named (again) on every write: late spans may bring the real root.
            writer.set_name(self.config.run_name or trace_run_name(experiment, spans))
            writer.set_description(trace_run_description(spans))
            writer.track(records, key)
            writer.confirm()
        except BaseException:
            # Kept open for the retry, which then rewrites this run (same steps) instead of
            # leaving it half-written and starting a second run for the same trace.
            self._unconfirmed[key] = writer
            raise
        writer.close()
        return writer.hash

    def _new_writer(self, run) -> RunWriter:
        timeout = self.config.remote_write_timeout_s if self.config.is_remote else None
        writer = RunWriter(run, self.config.max_contexts, timeout)
        if not self.config.is_remote:
            self._repo = run.repo
        self._remember_hash(writer.hash)
        return writer

    def _session_writer(self, first_span: ReadableSpan | None) -> RunWriter:
        if self._session is None:
            overrides = self._session_overrides or {}
            experiment = overrides.get("experiment") or experiment_for(
                self.config, _service_name(first_span) if first_span is not None else None)
            run = open_aim_run(self.config, experiment,
                               system_tracking_interval=overrides.get("system_tracking_interval"),
                               log_system_params=overrides.get("log_system_params"))
            self._session = self._new_writer(run)
            service = _service_name(first_span) if first_span is not None else None
            self._session.set_name(self.config.run_name or session_run_name(
                str(service or experiment), first_span.start_time if first_span is not None else None))
            self._session.set_description(
                f"spanchain session run: every LangChain run this process exported to experiment {experiment}")
            self._session.merge_params(base_params(self.config.run_per))
        return self._session

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._close_writer(session)

    def _close_writer(self, writer: RunWriter) -> bool:
        try:
            writer.confirm()
        except RemoteWriteError as exc:
            # Closing would wait on Aim's queue with no bound; Aim's exit-time cleanup (itself
            # bounded, see runs.bound_aim_exit_cleanup) closes the run if the server returns.
            self._log.warning("unconfirmed-close", "aim exporter: leaving run %s open: %r", writer.hash, exc)
            self._abandoned.append(writer)
            return False
        writer.close()
        return True

    def _remember_hash(self, run_hash: str) -> None:
        with self._state_lock:
            if run_hash not in self._hashes:
                self._hashes.append(run_hash)
                del self._hashes[:-_MAX_LISTED_HASHES]


def _service_name(span: ReadableSpan | None):
    if span is None or span.resource is None:
        return None
    return span.resource.attributes.get("service.name")
