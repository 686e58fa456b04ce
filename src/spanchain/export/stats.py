"""Where every span went: the exporter's public accounting.

`accepted == written + waiting + dropped` holds in every snapshot (`DeliveryEngine.stats()`
takes it under the engine's lock). `waiting` is measured from the engine's state (queue, memory,
spool), not derived from the other counters, so a test of the invariant checks something real.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Every reason a span can be dropped for; each has a counter `dropped_<reason>`.
DROP_REASONS = (
    "queue_full",  # export() found the in-memory queue at its bound
    "retries_exhausted",  # the backend kept failing past the retry deadline (no spool)
    "rejected",  # the backend refused the trace for good (or kept refusing it while others passed)
    "misconfigured",  # a setting can never work (no spool to keep the spans for a fixed process)
    "shutdown",  # still unwritten when shutdown's wait ran out (no spool)
    "after_shutdown",  # exported after shutdown
    "spool_full",  # neither writable to the backend nor to a full/broken spool
    "corrupt",  # spool records that could not be decoded
)


@dataclass
class ExportStats:
    """A consistent snapshot of one exporter's counters."""

    accepted: int = 0  # spans this exporter took responsibility for (incl. replayed from the spool)
    written: int = 0  # spans the backend acknowledged (each span counted once)
    waiting: int = 0  # in memory or in the spool, not yet written or dropped
    dropped: int = 0  # total of every dropped_* counter
    dropped_queue_full: int = 0
    dropped_retries_exhausted: int = 0
    dropped_rejected: int = 0
    dropped_misconfigured: int = 0
    dropped_shutdown: int = 0
    dropped_after_shutdown: int = 0
    dropped_spool_full: int = 0
    dropped_corrupt: int = 0
    traces_written: int = 0  # trace writes the backend acknowledged (a rewrite with late spans counts)
    traces_dropped: int = 0
    retries: int = 0  # write attempts after a failed one
    replayed: int = 0  # spans left in the spool by an earlier process (also in accepted)
    spooled: int = 0  # spans journaled to disk before the writer saw them
    spool_pending: int = 0  # spans on disk not yet written or dropped (part of waiting)
    spool_bypassed: int = 0  # spans the spool could not take, delivered from memory only
    spool_errors: int = 0
    redacted_spans: int = 0  # spans whose secret-looking values were masked before export

    def as_dict(self) -> dict:
        return asdict(self)

    def balanced(self) -> bool:
        return self.accepted == self.written + self.waiting + self.dropped
