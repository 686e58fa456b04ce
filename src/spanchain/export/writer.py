"""The interface a backend implements to be driven by the delivery engine.

A backend is a translator (pure: a `Trace` → its records) plus a `TraceWriter` (the client that
sends those records). The writer knows nothing of queues, retries, spools or trace assembly: the
engine calls it on one thread, with whole traces, and decides what a failure means from the
exception it raises (see errors.py).

Every write must be idempotent: a trace can be written again (a retry after a timeout whose
request did land, a replay from the spool after a crash, a rewrite with late spans), and the
backend must end up holding it once.
"""

from __future__ import annotations

from typing import Sequence

from spanchain.export.assembly import Trace


class TraceWriter:
    """Base with no-op hooks; a backend overrides `write_trace` (or `write_traces`)."""

    def preflight(self) -> None:
        """Cheap local checks when the exporter is built (no network, no heavy imports).
        Raise `ConfigurationError` for a setting that can never work."""

    def open(self) -> None:
        """First use, on the writer thread. May raise `ConfigurationError` (or retryable errors)."""

    def write_trace(self, trace: Trace) -> None:
        raise NotImplementedError

    def write_traces(self, traces: Sequence[Trace]) -> list[BaseException | None]:
        """Write several ready traces; one outcome per trace (None: written). Override to
        overlap independent requests; the default writes them one by one."""
        outcomes: list[BaseException | None] = []
        for trace in traces:
            try:
                self.write_trace(trace)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def flush(self) -> None:
        """After every ready trace was written on force_flush: push what the writer buffers."""

    def tick(self) -> None:
        """Periodic housekeeping on the writer thread (summaries, uploads)."""

    def close(self) -> None:
        """Release backend resources; called once, last, on the writer thread."""
