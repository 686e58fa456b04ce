"""What every fault row shares: the row record, the table, draining an exporter, counting drops."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Row:
    fault: str
    produced: int = 0  # spans the app produced
    found: int = 0  # distinct spans read back from the backend
    dropped: int = 0  # spans the exporter dropped and counted in .stats
    waiting: int = 0  # spans durable in the spool, not yet delivered (the next start sends them)
    raised: int = 0  # app calls that raised (must be 0)
    max_wait_ms: float = 0.0  # longest app call
    seconds: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Spans neither found nor counted as dropped: silent loss (must be 0)."""
        return max(0, self.produced - self.found - self.dropped - self.waiting)

    @property
    def ok(self) -> bool:
        return self.raised == 0 and self.lost == 0 and self.found <= self.produced

    def as_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "extra"}, "lost": self.lost, "ok": self.ok, **self.extra}


def render(rows: list[Row]) -> str:
    head = ("| fault | produced | found | dropped (counted) | waiting in spool | lost (silent) | "
            "app calls raised | longest app call ms | s | ok | notes |")
    sep = "|" + "---|" * 11
    lines = [head, sep]
    for r in rows:
        lines.append(
            f"| {r.fault} | {r.produced} | {r.found} | {r.dropped} | {r.waiting} | {r.lost} | {r.raised} | "
            f"{r.max_wait_ms:.1f} | {r.seconds:.1f} | {'yes' if r.ok else 'NO'} | {r.note} |"
        )
    return "\n".join(lines)


def counted_drops(stats) -> int:
    return stats.dropped


def finish(row: Row, app, exp, found: int, drained: bool) -> Row:
    """Fill a row from the app's counters, the exporter's stats and what the backend holds."""
    row.produced = app.produced
    row.found = found
    row.dropped = counted_drops(exp.stats)
    row.waiting = exp.stats.waiting
    row.raised = app.stats.raised
    row.max_wait_ms = app.stats.max_wait_s * 1000
    if not drained:
        row.note += f" not drained: {exp.stats.waiting} waiting"
    row.extra = {"stats": exp.stats.as_dict()}
    return row


def drain(exporter, timeout_s: float) -> bool:
    """Flush until the exporter reports everything delivered (spool empty) or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        remaining_ms = int(max(0.1, deadline - time.monotonic()) * 1000)
        if exporter.force_flush(min(remaining_ms, 10_000)) and not exporter.stats.spool_pending:
            return True
        time.sleep(0.2)
    return False


@contextmanager
def environ(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Timer:
    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
