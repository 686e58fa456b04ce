"""The export half's plugin API: what a backend needs to be driven by the delivery engine.

A backend is a translator (spans → its records, pure) plus a `TraceWriter`; its exporter owns a
`DeliveryEngine`, which does everything about delivery (see engine.py and docs/architecture.md).
"""

from spanchain.export.assembly import Trace, TraceAssembler
from spanchain.export.engine import DeliveryEngine
from spanchain.export.exporter import EngineSpanExporter
from spanchain.export.errors import ConfigurationError, RejectedError
from spanchain.export.settings import DeliverySettings
from spanchain.export.stats import DROP_REASONS, ExportStats
from spanchain.export.writer import TraceWriter

__all__ = [
    "ConfigurationError",
    "DROP_REASONS",
    "DeliveryEngine",
    "DeliverySettings",
    "EngineSpanExporter",
    "ExportStats",
    "RejectedError",
    "Trace",
    "TraceAssembler",
    "TraceWriter",
]
