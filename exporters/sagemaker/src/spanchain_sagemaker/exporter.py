"""`SageMakerSpanExporter`: finished LangChain spans → SageMaker Experiments runs.

The exporter owns a delivery engine (spanchain.export) and a `SageMakerTraceWriter`
(writer.py, which says what a trace becomes in SageMaker). `export()` only queues; the engine
assembles traces and drives the writer on one thread, with retries, the optional spool and
honest accounting (`stats`). This module adds the SageMaker-specific helpers on top.
"""

from __future__ import annotations

import logging
from typing import Any

from spanchain.config import env as envvars
from spanchain.export import DeliverySettings, EngineSpanExporter
from spanchain.export.spoolenv import spool_fsync_default, spool_max_bytes_default
from spanchain.content.redaction import Redactor

from spanchain_sagemaker.config import RUN_PER_SESSION, ConfigError, Settings
from spanchain_sagemaker.writer import (  # noqa: F401  (the artifact names are public)
    FILES_ARTIFACT,
    INPUT_FILES_ARTIFACT,
    SUMMARY_ARTIFACT,
    TRACE_ARTIFACT,
    TRACES_ARTIFACT,
    RunLocation,
    SageMakerTraceWriter,
)

logger = logging.getLogger(__name__)


class SageMakerSpanExporter(EngineSpanExporter):
    """Writes spans into SageMaker Experiments runs (and their JSON into S3).

    Args:
        run: a `sagemaker.core.experiments.run.Run` (or legacy `sagemaker.experiments.run.Run`)
            to write into; its experiment, names, session and artifact location are used.
        experiment_name: default $OTEL_EXPORTER_SAGEMAKER_EXPERIMENT, then $OTEL_SERVICE_NAME,
            then the spans' service.name, then "spanchain".
        run_name: session mode: the run's name (default: session-<utc time>-<random>);
            trace mode: prefix of each run's name (default: "trace"). Env:
            $OTEL_EXPORTER_SAGEMAKER_RUN_NAME.
        run_per: "session" (default) or "trace". Env: $OTEL_EXPORTER_SAGEMAKER_RUN_PER.
        sagemaker_session: a SageMaker SDK Session whose boto session and endpoints to use.
        artifact_bucket: default $OTEL_EXPORTER_SAGEMAKER_BUCKET, then the SDK's default
            bucket sagemaker-<region>-<account> (created when missing).
        artifact_prefix: default $OTEL_EXPORTER_SAGEMAKER_PREFIX, then
            "trial-component-artifacts" (the SDK's default).
        The other keywords are documented in docs/sagemaker.md (AWS settings) and
        docs/configuration.md (delivery: queue, retries, spool, shutdown).
    """

    def __init__(
        self,
        run: Any = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        run_per: str | None = None,
        sagemaker_session: Any = None,
        artifact_bucket: str | None = None,
        artifact_prefix: str | None = None,
        *,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
        resource_parameters: Any = None,
        boto_session: Any = None,
        max_attempts: int = 8,
        backoff_attempts: int = 4,
        backoff_base_s: float = 0.5,
        max_concurrency: int = 4,
        summary_interval_s: float = 10.0,
        create_bucket: bool = True,
        trace_grace_s: float = 5.0,
        trace_idle_s: float = 300.0,
        spool_dir: str | None = None,
        max_queue_spans: int = 50_000,
        retry_timeout_s: float = 30.0,
        retry_backoff_s: float = 0.5,
        shutdown_timeout_s: float = 10.0,
        spool_max_bytes: int | None = None,
        spool_fsync: bool | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        resolve = dict(
            experiment_name=experiment_name,
            run_name=run_name,
            artifact_bucket=artifact_bucket,
            artifact_prefix=artifact_prefix,
            spool_dir=spool_dir,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            resource_parameters=resource_parameters,
        )
        try:
            settings = Settings.resolve(run_per=run_per, **resolve)
        except ConfigError as exc:
            # A bad setting must not take the app down: say so once and use the default mode.
            logger.error("sagemaker exporter: %s; using run_per='session'", exc)
            settings = Settings.resolve(run_per=RUN_PER_SESSION, **resolve)
        self.settings = settings
        self._writer = SageMakerTraceWriter(
            settings,
            run=run,
            sagemaker_session=sagemaker_session,
            boto_session=boto_session,
            max_attempts=max_attempts,
            backoff_attempts=backoff_attempts,
            backoff_base_s=backoff_base_s,
            summary_interval_s=summary_interval_s,
            create_bucket=create_bucket,
            max_concurrency=max_concurrency,
            bucket_setting="artifact_bucket" if artifact_bucket is not None else envvars.OTEL_EXPORTER_SAGEMAKER_BUCKET,
            should_stop=lambda: self._engine.stopping,
        )
        delivery = DeliverySettings(
            max_queue_spans=max_queue_spans,
            max_traces_per_write=max(1, int(max_concurrency)) * 8,
            retry_timeout_s=retry_timeout_s,
            retry_backoff_s=retry_backoff_s,
            trace_grace_s=trace_grace_s,
            trace_idle_s=trace_idle_s,
            shutdown_timeout_s=shutdown_timeout_s,
            spool_dir=settings.spool_dir,
            spool_max_bytes=spool_max_bytes if spool_max_bytes is not None else spool_max_bytes_default(),
            spool_fsync=spool_fsync if spool_fsync is not None else spool_fsync_default(),
        )
        super().__init__(self._writer, name="sagemaker", settings=delivery, redactor=redactor)

    # --- public helpers ---------------------------------------------------------------------
    @property
    def locations(self):
        """Where recent runs were written (newest last)."""
        return self._writer.locations

    @property
    def api_stats(self) -> dict:
        """SageMaker/S3 calls made so far, per operation (the benchmark reports these)."""
        api = self._writer._api
        return api.stats() if api is not None else {"calls": {}, "http_attempts": {}}

    def location(self) -> RunLocation | None:
        """The session run's location (None in trace mode until a trace was written)."""
        w = self._writer
        if self.settings.run_per == RUN_PER_SESSION and w._session_ref is not None:
            return w._location(w._session_ref, summary=True)
        return w.locations[-1] if w.locations else None

    @property
    def backend_is_emulated(self) -> bool | None:
        """True when writing to a non-AWS endpoint (an emulator); None before the first write."""
        return self._writer._emulated

    @property
    def parameters_rejected(self) -> int:
        """Parameter keys SageMaker rejected (left out of the run since, counted and logged)."""
        return self._writer.parameters_rejected

    @property
    def files_dropped(self) -> int:
        return self._writer.files_dropped

    def undelivered(self) -> int:
        """Spans waiting (queue, memory, spool) and files not yet written."""
        with self._writer._files_lock:
            files = len(self._writer._pending_files)
        return self.stats.waiting + files

    def dropped_total(self) -> int:
        """Spans and files given up on so far (every counted drop reason)."""
        return self.stats.dropped + self._writer.files_dropped

    def add_file(self, name: str, body: bytes, is_output: bool = True) -> bool:
        """Queue a file for the session run's S3 folder (`files/` or `input-files/`); never
        blocks: the writer uploads it on its next tick or flush. False when too much waits."""
        return self._writer.add_file(name, body, is_output)

    def file_uri(self, name: str, is_output: bool = True) -> str | None:
        """Where `add_file(name, ...)` lands, once the session run is known."""
        return self._writer.file_uri(name, is_output)

    def sent_run_fields(self) -> tuple[dict, dict, dict] | None:
        """(parameters, output artifacts, input artifacts) last written to the session run."""
        return self._writer.sent_run_fields()
