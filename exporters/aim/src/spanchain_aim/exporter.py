"""`AimSpanExporter`: finished LangChain spans → Aim runs (Texts, metrics, params).

The exporter owns a delivery engine (spanchain.export) and an `AimTraceWriter`: `export()` only
queues; the engine assembles whole traces and hands them to the writer on its one thread, with
retries, the optional spool and honest accounting (`stats`). This module adds the Aim-specific
helpers (run hashes, the session run) on top.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from spanchain.export import DeliverySettings, EngineSpanExporter
from spanchain.content.redaction import Redactor

from spanchain_aim.config import ENV_REPO, AimExporterConfig, resolve_config
from spanchain_aim.writer import AimTraceWriter, base_params  # noqa: F401  (base_params: public)


class AimSpanExporter(EngineSpanExporter):
    """OpenTelemetry SpanExporter writing LangChain spans into Aim.

    Args:
        repo: local repo path or `aim://host:port`; env OTEL_EXPORTER_AIM_REPO; default ".".
        experiment: Aim experiment; env OTEL_EXPORTER_AIM_EXPERIMENT, then OTEL_SERVICE_NAME,
            then the spans' resource service.name, then "langchain".
        run_per: "session" (one run for the exporter's life) or "trace" (one run per root
            LangChain run); env OTEL_EXPORTER_AIM_RUN_PER; default "session".
        The other keywords are documented in docs/aim.md (Aim settings) and
        docs/configuration.md (delivery: queue, retries, spool, shutdown).
    """

    def __init__(
        self,
        repo: str | os.PathLike | None = None,
        experiment: str | None = None,
        run_per: str | None = None,
        *,
        run_name: str | None = None,
        system_tracking_interval: Any = None,
        log_system_params: bool | None = None,
        max_text_chars: int | None = None,
        max_contexts: int | None = None,
        trace_grace_s: float | None = None,
        trace_idle_s: float | None = None,
        shutdown_timeout_s: float | None = None,
        spool_dir: str | os.PathLike | None = None,
        remote_write_timeout_s: float | None = None,
        seed_counters: bool | None = None,
        trace_figures: bool | None = None,
        max_queue_spans: int = 50_000,
        retry_timeout_s: float = 30.0,
        retry_backoff_s: float = 0.5,
        spool_max_bytes: int | None = None,
        spool_fsync: bool | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.config: AimExporterConfig = resolve_config(
            repo, experiment, run_per, run_name=run_name, system_tracking_interval=system_tracking_interval,
            log_system_params=log_system_params, max_text_chars=max_text_chars, max_contexts=max_contexts,
            trace_grace_s=trace_grace_s, trace_idle_s=trace_idle_s, shutdown_timeout_s=shutdown_timeout_s,
            spool_dir=spool_dir, remote_write_timeout_s=remote_write_timeout_s, seed_counters=seed_counters,
            trace_figures=trace_figures)
        self._writer = AimTraceWriter(self.config, repo_setting="repo" if repo is not None else ENV_REPO)
        from spanchain.export.spoolenv import spool_fsync_default, spool_max_bytes_default

        settings = DeliverySettings(
            max_queue_spans=max_queue_spans,
            retry_timeout_s=retry_timeout_s,
            retry_backoff_s=retry_backoff_s,
            trace_grace_s=self.config.trace_grace_s,
            trace_idle_s=self.config.trace_idle_s,
            shutdown_timeout_s=self.config.shutdown_timeout_s,
            spool_dir=self.config.spool_dir,
            spool_max_bytes=spool_max_bytes if spool_max_bytes is not None else spool_max_bytes_default(),
            spool_fsync=spool_fsync if spool_fsync is not None else spool_fsync_default(),
        )
        super().__init__(self._writer, name="aim", settings=settings, redactor=redactor)

    # --- public helpers (any thread) ------------------------------------------------------
    @property
    def traces_written(self) -> int:
        return self.stats.traces_written

    @property
    def run_hashes(self) -> list[str]:
        """Hashes of the Aim runs this exporter wrote to, oldest first (the last 1000)."""
        return self._writer.run_hashes

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
        return self.call_on_writer(lambda: self._writer.session_writer(None).hash, timeout_s)

    def session_run(self, timeout_s: float = 10.0):
        """The session's `aim.Run` (opened if needed), for the drop-in handler's `run` property."""
        return self.call_on_writer(lambda: self._writer.session_writer(None).run, timeout_s)

    def set_run_params(self, params: Mapping[str, Any], timeout_s: float = 10.0) -> bool:
        """Set user params on the session run (sanitized; secret-looking keys redacted)."""
        return self.call_on_writer(lambda: self._writer.session_writer(None).set_params(params) or True,
                                   timeout_s) is True

    def start_new_session_run(self, timeout_s: float = 10.0, *, repo: str | None = None,
                              experiment: str | None = None, system_tracking_interval: Any = None,
                              log_system_params: bool | None = None, open_now: bool = True) -> str | None:
        """Write everything so far into the session run, close it; later spans go to a new one."""
        return self._engine.call(
            lambda: self._writer.rotate_session(repo, experiment, system_tracking_interval, log_system_params,
                                                open_now),
            timeout_s, write_first=True)

    def close_session_run(self, timeout_s: float = 10.0) -> bool:
        """Write everything so far and close the session run (a later span opens a new one)."""
        return self._engine.call(lambda: self._writer.close_session() or True, timeout_s, write_first=True) is True

    def call_on_writer(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run `fn` on the writer thread (Aim's objects are not thread-safe); None on failure."""
        return self._engine.call(fn, timeout_s)
