"""spanchain: every LangChain run as an OpenTelemetry span.

Public names are imported lazily so that `import spanchain` stays light: no LangChain, no
backends, nothing until a name is used.
"""

from __future__ import annotations

from typing import Any

from spanchain.version import __version__

__all__ = [
    "OpenTelemetryCallbackHandler",
    "instrument",
    "uninstrument",
    "configure",
    "__version__",
]

_LAZY = {
    "OpenTelemetryCallbackHandler": ("spanchain.handler", "OpenTelemetryCallbackHandler"),
    "instrument": ("spanchain.instrumentation", "instrument"),
    "uninstrument": ("spanchain.instrumentation", "uninstrument"),
    "configure": ("spanchain.config", "configure"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'spanchain' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
