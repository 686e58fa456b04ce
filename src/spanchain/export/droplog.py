"""Logging drops with exact counts, aggregated: the first drop of each reason at once, then a
summary at most every few seconds (and on flush and shutdown), never once-per-process silence."""

from __future__ import annotations

import logging
import threading
import time


class DropLog:
    def __init__(self, logger: logging.Logger, name: str) -> None:
        self._logger = logger
        self._name = name
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._unreported: dict[str, list] = {}  # reason -> [spans, traces, last error]
        self._reported_at = time.monotonic()

    def add(self, reason: str, spans: int, traces: int, exc: BaseException | None) -> None:
        if not spans:
            return
        with self._lock:
            first = reason not in self._seen
            self._seen.add(reason)
            if not first:
                entry = self._unreported.setdefault(reason, [0, 0, None])
                entry[0] += spans
                entry[1] += traces
                entry[2] = exc if exc is not None else entry[2]
                return
        self._logger.error("%s exporter: dropped %d spans%s (%s)%s; counted in stats.dropped_%s",
                           self._name, spans, f" of {traces} traces" if traces else "", reason,
                           f": {exc!r}" if exc is not None else "", reason)

    def report(self, min_interval_s: float = 0.0) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._unreported or now - self._reported_at < min_interval_s:
                return
            entries, self._unreported = self._unreported, {}
            self._reported_at = now
        for reason, (spans, traces, exc) in entries.items():
            self._logger.error("%s exporter: dropped %d more spans%s (%s)%s; counted in stats.dropped_%s",
                               self._name, spans, f" of {traces} traces" if traces else "", reason,
                               f", last error: {exc!r}" if exc is not None else "", reason)
