"""The delivery engine's settings: one frozen value per exporter, resolved by its config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliverySettings:
    max_queue_spans: int = 50_000  # spans held in memory (queue + assembly + retries) at most
    max_batch_spans: int = 512  # spans the writer takes from its input per turn
    max_traces_per_write: int = 32  # traces handed to one `write_traces` call
    retry_timeout_s: float = 30.0  # a ready trace is retried for this long, then dropped or left on disk
    retry_backoff_s: float = 0.5  # first retry's backoff (full jitter, doubling)
    retry_backoff_max_s: float = 5.0
    outage_backoff_max_s: float = 30.0  # spool: longest wait between probes of a down backend
    poison_after: int = 5  # spool: retry rounds a trace may fail while others get through
    trace_grace_s: float = 5.0  # a trace is released this long after its root span, complete or not
    trace_idle_s: float = 300.0  # ... or this long after its last span when no root ever comes
    tick_interval_s: float = 1.0
    shutdown_timeout_s: float = 10.0
    spool_dir: str | None = None  # durable spool (see docs/reliability.md); None: memory only
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_fsync: bool = True
