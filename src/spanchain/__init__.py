"""spanchain: every LangChain run as an OpenTelemetry span.

Public names are imported lazily so that `import spanchain` stays light: no LangChain, no
backends, nothing until a name is used.
"""

from __future__ import annotations

from spanchain.lazy import lazy_getattr
from spanchain.version import __version__

__all__ = [
    "OpenTelemetryCallbackHandler",
    "instrument",
    "uninstrument",
    "configure",
    "__version__",
]

__getattr__ = lazy_getattr(
    "spanchain",
    {
        "OpenTelemetryCallbackHandler": "spanchain.bridge.handler:OpenTelemetryCallbackHandler",
        "instrument": "spanchain.bridge.instrumentation:instrument",
        "uninstrument": "spanchain.bridge.instrumentation:uninstrument",
        "configure": "spanchain.config.configure:configure",
    },
    globals(),
)
