"""`python -m faults.spoolbench`: what the durable spool costs the app and the writer thread.

Exports 10,000 spans one by one to a no-op backend, without a spool and with one (fsync off/on),
and prints the mean and longest `export()` call and the writer's throughput.
"""

from __future__ import annotations

import tempfile
import time

from faults.common import make_spans
from spanchain.export import DeliverySettings, EngineSpanExporter, TraceWriter


class _NullWriter(TraceWriter):
    def write_trace(self, trace) -> None:
        pass


class NullExporter(EngineSpanExporter):
    def __init__(self, **kw) -> None:
        super().__init__(_NullWriter(), name="null", settings=DeliverySettings(trace_grace_s=0, **kw))


def main() -> None:
    spans = make_spans(2000, children=4)
    print("| exporter | spans | mean export() µs | longest export() ms | spans/s through the writer |")
    print("|---|---|---|---|---|")
    for label, options in (("no spool", {}), ("spool, fsync off", {"spool_fsync": False}),
                           ("spool, fsync on", {"spool_fsync": True})):
        with tempfile.TemporaryDirectory() as spool:
            exporter = NullExporter(**({**options, "spool_dir": spool} if options else {}))
            longest = 0.0
            t0 = time.perf_counter()
            for span in spans:
                t = time.perf_counter()
                exporter.export([span])
                longest = max(longest, time.perf_counter() - t)
            exporting = time.perf_counter() - t0
            exporter.force_flush(60_000)
            total = time.perf_counter() - t0
            exporter.shutdown()
        print(f"| {label} | {len(spans)} | {exporting / len(spans) * 1e6:.1f} | {longest * 1e3:.2f} | "
              f"{len(spans) / total:,.0f} |")


if __name__ == "__main__":
    main()
