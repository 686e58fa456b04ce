"""Pieces the fault rows and the reliability tests share: span factories and a file "backend".

The file backend is an exporter whose backend is an append-only JSON-lines file: simple enough
that a test can read back exactly which spans arrived and how often, real enough (a file, fsync,
other processes) for crash and restart tests. `down_flag` names a file whose existence makes
every write fail, so another process can take the backend down and bring it back.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Iterable

from opentelemetry.sdk.trace import ReadableSpan

from testkit.spans import make_spans  # noqa: F401  (the fault suite's callers import it from here)
from spanchain.export import DeliverySettings, EngineSpanExporter, TraceWriter


def span_key(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}{span.context.span_id:016x}"


class BackendDown(ConnectionError):
    pass


class FileWriter(TraceWriter):
    """Writes one JSON line per span of each trace to `path`; fails while `down_flag` exists."""

    def __init__(self, path: str, down_flag: str | None = None) -> None:
        self.path = path
        self.down_flag = down_flag
        self.down = False
        self.reject: set[str] = set()  # span names whose trace the backend always refuses
        self.delay_s = 0.0
        self.hang: threading.Event | None = None  # set: every write waits for it (a hung backend)
        self.calls = 0

    def write_trace(self, trace) -> None:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.hang is not None:
            self.hang.wait(20)
        if self.down or (self.down_flag and os.path.exists(self.down_flag)):
            raise BackendDown("file backend is down")
        if any(s.name in self.reject for s in trace.new_spans):
            raise ValueError("file backend refuses this trace")
        lines = "".join(
            json.dumps({"k": span_key(s), "name": s.name}, ensure_ascii=True) + "\n" for s in trace.new_spans
        )
        with open(self.path, "a", encoding="ascii") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())


class FileBackendExporter(EngineSpanExporter):
    """A SpanExporter over `FileWriter`, driven by the delivery engine like every backend."""

    def __init__(self, path: str, down_flag: str | None = None, name: str = "file", **settings) -> None:
        settings.setdefault("retry_backoff_s", 0.01)
        settings.setdefault("retry_timeout_s", 0.05)
        settings.setdefault("trace_grace_s", 0.0)
        self.writer = FileWriter(path, down_flag)
        self.path = path
        super().__init__(self.writer, name=name, settings=DeliverySettings(**settings))

    @property
    def down(self) -> bool:
        return self.writer.down

    @down.setter
    def down(self, value: bool) -> None:
        self.writer.down = value


def read_backend(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


def keys(spans: Iterable[ReadableSpan]) -> list[str]:
    return [span_key(s) for s in spans]
