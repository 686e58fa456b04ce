"""Aim exporter for spanchain: LangChain spans as Aim runs, plus a drop-in AimCallbackHandler.

Names are imported lazily so that `import spanchain_aim` (e.g. by OpenTelemetry's entry-point
scan) stays cheap; Aim itself is imported only when a run is first opened.
"""

from __future__ import annotations

from spanchain.lazy import lazy_getattr

__all__ = ["AimSpanExporter", "AimCallbackHandler"]


__getattr__ = lazy_getattr(
    "spanchain_aim",
    {
        "AimSpanExporter": "spanchain_aim.exporter:AimSpanExporter",
        "AimCallbackHandler": "spanchain_aim.dropin:AimCallbackHandler",
    },
    globals(),
)
