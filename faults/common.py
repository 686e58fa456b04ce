"""Pieces the fault rows and the reliability tests share: span factories and a file "backend".

The file backend is an exporter whose backend is an append-only JSON-lines file: simple enough
that a test can read back exactly which spans arrived and how often, real enough (a file, fsync,
other processes) for crash and restart tests. `down_flag` names a file whose existence makes
every write fail, so another process can take the backend down and bring it back.
"""

from __future__ import annotations

import json
import os
from typing import Iterable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from spanchain.exporting import BackgroundSpanExporter


def make_spans(n: int, prefix: str = "s", children: int = 0) -> list[ReadableSpan]:
    """n finished root spans (each with `children` child spans), attributes of every type."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "faults"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("faults", "1.0")
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}{i}") as root:
            root.set_attributes({"i": i, "f": i / 3, "ok": True, "tags": ("a", "b"), "name": prefix})
            for c in range(children):
                with tracer.start_as_current_span(f"{prefix}{i}.{c}") as child:
                    child.add_event("tick", {"c": c})
                    if c % 2:
                        child.set_status(Status(StatusCode.ERROR, "boom"))
    return list(mem.get_finished_spans())


def span_key(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}{span.context.span_id:016x}"


class BackendDown(ConnectionError):
    pass


class FileBackendExporter(BackgroundSpanExporter):
    """Writes one JSON line per span to `path`; fails while `down_flag` exists."""

    def __init__(self, path: str, down_flag: str | None = None, **kw) -> None:
        kw.setdefault("retry_attempts", 1)
        kw.setdefault("retry_backoff_s", 0.01)
        super().__init__(name=kw.pop("name", "file"), **kw)
        self.path = path
        self.down_flag = down_flag
        self.down = False
        self.calls = 0

    def _write(self, spans: list[ReadableSpan]) -> None:
        self.calls += 1
        if self.down or (self.down_flag and os.path.exists(self.down_flag)):
            raise BackendDown("file backend is down")
        lines = "".join(
            json.dumps({"k": span_key(s), "name": s.name}, ensure_ascii=True) + "\n" for s in spans
        )
        with open(self.path, "a", encoding="ascii") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())


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
