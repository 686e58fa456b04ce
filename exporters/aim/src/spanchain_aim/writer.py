"""`AimTraceWriter`: whole traces into Aim runs, on the delivery engine's writer thread.

Session mode writes every trace into one run; trace mode opens a run per root LangChain run.
Writes are idempotent (steps come from span identity), so a retry, a replay from the spool or a
rewrite with late spans rewrites the same points. Delivery itself (queue, retries, spool, trace
assembly) is the engine's (spanchain.export).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import os
import threading

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.export import ConfigurationError, Trace, TraceWriter

from spanchain_aim.config import ENV_REPO, AimExporterConfig, experiment_for
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

_MAX_LISTED_HASHES = 1_000
_MAX_RUN_HASHES = 1_024  # trace mode: which run holds each recent trace (a late span reuses it)


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


def check_repo_path(repo: str, setting: str) -> None:
    """A local repo path that can never work fails now, naming the setting (no retries)."""
    path = os.path.abspath(os.path.expanduser(repo))
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        what = "is a file, not a directory" if probe == path else f"is under {probe!r}, which is a file"
        raise ConfigurationError(setting, repo, f"the Aim repo path {what}")
    if os.path.isdir(probe) and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigurationError(setting, repo, f"directory {probe!r} is not writable")


class AimTraceWriter(TraceWriter):
    def __init__(self, config: AimExporterConfig, repo_setting: str = ENV_REPO) -> None:
        self.config = config
        self._repo_setting = repo_setting
        self._session: RunWriter | None = None
        self.session_overrides: dict | None = None
        # aim:// runs whose writes the server has not confirmed, kept open (closing one waits on
        # Aim's unbounded queue) and reused when their trace is retried, so a retry rewrites the
        # same run instead of starting a second one.
        self._unconfirmed: dict[str, RunWriter] = {}
        self._abandoned: list[RunWriter] = []
        self._run_hash_of: collections.OrderedDict[str, str] = collections.OrderedDict()
        # The local `aim.Repo` of the last run opened, kept alive between runs. Aim pools Repo
        # objects weakly by path: once a per-trace run is closed and dropped, nothing holds its
        # Repo, and the next run builds a new one (SQLite engine, SQLAlchemy's statement cache,
        # structured-DB setup), about a third of a trace's write cost.
        self._repo = None
        self._hashes_lock = threading.Lock()
        self._hashes: list[str] = []

    # --- TraceWriter ---------------------------------------------------------------------
    def preflight(self) -> None:
        if not self.config.is_remote:
            check_repo_path(self.config.repo, self._repo_setting)

    def write_trace(self, trace: Trace) -> None:
        spans, fresh = trace.spans, trace.new_spans
        # A session run remembers which step each span's points took; a per-trace run is
        # numbered afresh whenever it is opened, so its whole trace is written each time.
        written = fresh if self.config.run_per == "session" else spans
        records = [r for s in written for r in span_records(s, self.config.max_text_chars)]
        records.extend(trace_records(spans, self.config.max_text_chars, figure=self.config.trace_figures,
                                     counters=self.config.seed_counters))
        if self.config.run_per == "session":
            writer = self.session_writer(spans[0])
            writer.merge_params(run_params(fresh))
            writer.track(records, trace.key)
            # The spool forgets these spans once this returns: over aim:// they must be on the
            # server by then, not merely queued in Aim's client.
            writer.confirm()
        else:
            run_hash = self._write_trace_run(trace.key, spans, records, self._run_hash_of.get(trace.key))
            self._run_hash_of[trace.key] = run_hash
            self._run_hash_of.move_to_end(trace.key)
            while len(self._run_hash_of) > _MAX_RUN_HASHES:
                self._run_hash_of.popitem(last=False)

    def close(self) -> None:
        session, self._session = self._session, None
        writers = ([session] if session else []) + list(self._unconfirmed.values())
        self._unconfirmed.clear()
        for i, writer in enumerate(writers):
            if not self._close_writer(writer):
                # One server, one queue: the others would only wait out the same timeout.
                self._abandoned.extend(writers[i + 1:])
                break
        self._repo = None

    # --- session run (also used by the exporter's helpers, via the engine's writer thread) ---
    def session_writer(self, first_span: ReadableSpan | None) -> RunWriter:
        if self._session is None:
            overrides = self.session_overrides or {}
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

    def rotate_session(self, repo=None, experiment=None, system_tracking_interval=None,
                       log_system_params=None, open_now=True) -> str | None:
        self.close_session()
        if repo and repo != self.config.repo:
            self.config = dataclasses.replace(self.config, repo=str(repo))
        if experiment is not None or system_tracking_interval is not None or log_system_params is not None:
            self.session_overrides = dict(experiment=experiment, system_tracking_interval=system_tracking_interval,
                                          log_system_params=log_system_params)
        return self.session_writer(None).hash if open_now else None

    def close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._close_writer(session)

    @property
    def run_hashes(self) -> list[str]:
        with self._hashes_lock:
            return list(self._hashes)

    # --- internals -----------------------------------------------------------------------
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
        with self._hashes_lock:
            if writer.hash not in self._hashes:
                self._hashes.append(writer.hash)
                del self._hashes[:-_MAX_LISTED_HASHES]
        return writer

    def _close_writer(self, writer: RunWriter) -> bool:
        try:
            writer.confirm()
        except RemoteWriteError as exc:
            # Closing would wait on Aim's queue with no bound; Aim's exit-time cleanup (itself
            # bounded, see runs.bound_aim_exit_cleanup) closes the run if the server returns.
            logger.warning("aim exporter: leaving run %s open: %r", writer.hash, exc)
            self._abandoned.append(writer)
            return False
        writer.close()
        return True


def _service_name(span: ReadableSpan | None):
    if span is None or span.resource is None:
        return None
    return span.resource.attributes.get("service.name")
