"""Log a problem once per kind, so a broken payload in a hot loop cannot flood the app's logs."""

from __future__ import annotations

import logging
import threading


class LogOnce:
    """Remembers which kinds of problem were already logged; counts every occurrence."""

    def __init__(self, logger: logging.Logger, max_kinds: int = 1024) -> None:
        self._logger = logger
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max_kinds = max_kinds

    def _first(self, kind: str) -> bool:
        with self._lock:
            count = self._seen.get(kind, 0)
            if count == 0 and len(self._seen) >= self._max_kinds:
                return False
            self._seen[kind] = count + 1
            return count == 0

    def warning(self, kind: str, msg: str, *args) -> None:
        if self._first(kind):
            self._logger.warning(msg, *args)

    def error(self, kind: str, msg: str, *args) -> None:
        if self._first(kind):
            self._logger.error(msg, *args)

    def exception(self, kind: str, msg: str, *args) -> None:
        if self._first(kind):
            self._logger.exception(msg, *args)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._seen)
