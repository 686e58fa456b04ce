"""Aim exporter for spanchain: LangChain spans as Aim runs, plus a drop-in AimCallbackHandler.

Names are imported lazily so that `import spanchain_aim` (e.g. by OpenTelemetry's entry-point
scan) stays cheap; Aim itself is imported only when a run is first opened.
"""

from __future__ import annotations

__all__ = ["AimSpanExporter", "AimCallbackHandler"]


def __getattr__(name: str):
    if name == "AimSpanExporter":
        from spanchain_aim.exporter import AimSpanExporter

        return AimSpanExporter
    if name == "AimCallbackHandler":
        from spanchain_aim.handler import AimCallbackHandler

        return AimCallbackHandler
    raise AttributeError(f"module 'spanchain_aim' has no attribute {name!r}")
