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
    duplicates: int = 0  # span records read back beyond the first of each span (must be 0)
    # The exporters' own accounting (summed over every process of the row): spans taken in,
    # acknowledged by the backend, still waiting (memory or spool), dropped (counted).
    accepted: int = 0
    written: int = 0
    waiting: int = 0
    dropped: int = 0
    balanced: bool = True  # accepted == written + waiting + dropped in every exporter of the row
    # found == written is checked only where every process's final stats are known (a killed
    # process cannot report what it wrote after its last snapshot).
    written_known: bool = True
    failed: bool = False  # a row-specific check failed (the note says which)
    raised: int = 0  # app calls that raised (must be 0)
    max_wait_ms: float = 0.0  # longest app call
    seconds: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def lost(self) -> int:
        """Spans neither found nor counted as dropped nor waiting: silent loss (must be 0)."""
        return max(0, self.produced - self.found - self.dropped - self.waiting)

    @property
    def exactly_once(self) -> bool:
        """No span twice, and the backend holds exactly what the exporters say they wrote."""
        return self.duplicates == 0 and (not self.written_known or self.found == self.written)

    @property
    def ok(self) -> bool:
        return (self.raised == 0 and self.lost == 0 and self.found <= self.produced and self.balanced
                and self.exactly_once and not self.failed)

    def add_stats(self, stats) -> None:
        """Add one exporter's final accounting (an ExportStats, or its as_dict())."""
        d = stats if isinstance(stats, dict) else stats.as_dict()
        self.accepted += d.get("accepted", 0)
        self.written += d.get("written", 0)
        self.waiting += d.get("waiting", 0)
        self.dropped += d.get("dropped", 0)
        self.balanced &= d.get("accepted", 0) == d.get("written", 0) + d.get("waiting", 0) + d.get("dropped", 0)

    def as_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "extra"}, "lost": self.lost,
                "exactly_once": self.exactly_once, "ok": self.ok, **self.extra}


_COLUMNS = ("fault", "produced", "accepted", "written", "waiting", "dropped", "invariant", "found", "dup",
            "exactly once", "lost (silent)", "app raised", "longest app call ms", "s", "ok", "notes")


def render(rows: list[Row]) -> str:
    """accepted/written/waiting/dropped are the exporters' stats (replayed spans count again in
    the process that replays them); found/dup are read back from the backend."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in rows:
        once = ("yes" if r.exactly_once else "NO") + ("" if r.written_known else " (dup only)")
        cells = (r.fault, r.produced, r.accepted, r.written, r.waiting, r.dropped,
                 "holds" if r.balanced else "BROKEN", r.found, r.duplicates, once, r.lost, r.raised,
                 f"{r.max_wait_ms:.1f}", f"{r.seconds:.1f}", "yes" if r.ok else "NO", r.note.strip())
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def finish(row: Row, app, exp, found: int | tuple[int, int], drained: bool) -> Row:
    """Fill a row from the app's counters, the exporter's stats and what the backend holds
    (`found`: distinct spans, or (distinct spans, span records) to count duplicates)."""
    distinct, records = found if isinstance(found, tuple) else (found, found)
    row.produced = app.produced
    row.found = distinct
    row.duplicates = records - distinct
    row.add_stats(exp.stats)
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
