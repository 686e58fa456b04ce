"""Process-wide installation: every LangChain run in the process gets the handler.

Uses langchain_core's public `register_configure_hook`, so LangChain itself is not patched.
`uninstrument()` removes exactly the hook we added, leaving LangChain as it found it.
The `SpanchainInstrumentor` wraps the same two calls as an OpenTelemetry `BaseInstrumentor`, so
`opentelemetry-instrument python app.py` picks spanchain up through its entry point.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any, Collection, Optional

from spanchain.bridge.handler import OpenTelemetryCallbackHandler

_lock = threading.Lock()
_installed: Optional[tuple] = None  # the exact hook tuple we appended
_handler: Optional[OpenTelemetryCallbackHandler] = None


def instrument(tracer_provider: Any = None, **options: Any) -> OpenTelemetryCallbackHandler:
    """Add a handler to every LangChain run in this process; idempotent. Returns the handler."""
    global _installed, _handler
    from langchain_core.tracers import context as lc_context

    with _lock:
        if _handler is not None:
            return _handler
        handler = OpenTelemetryCallbackHandler(tracer_provider, **options)
        # A ContextVar whose *default* is the handler: visible in every thread and task, not
        # only in contexts copied from this one.
        var: ContextVar = ContextVar("spanchain_handler", default=handler)
        before = list(lc_context._configure_hooks)
        # handle_class makes LangChain skip the global handler where the app already passed an
        # OpenTelemetryCallbackHandler itself, so no run is recorded twice.
        lc_context.register_configure_hook(var, True, OpenTelemetryCallbackHandler, None)
        added = [hook for hook in lc_context._configure_hooks if hook not in before]
        _installed = added[0] if added else None
        _handler = handler
        return handler


def uninstrument() -> None:
    """Remove the process-wide handler; ends its still-open runs. Safe to call any time."""
    global _installed, _handler
    from langchain_core.tracers import context as lc_context

    with _lock:
        hook, handler = _installed, _handler
        _installed = _handler = None
    if hook is not None:
        try:
            lc_context._configure_hooks.remove(hook)
        except ValueError:
            pass
    if handler is not None:
        handler.close_open_runs()


def is_instrumented() -> bool:
    return _handler is not None


def current_handler() -> Optional[OpenTelemetryCallbackHandler]:
    return _handler


try:
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
except ImportError:  # opentelemetry-instrumentation is optional (extra "otel")
    BaseInstrumentor = object  # type: ignore[assignment,misc]


class SpanchainInstrumentor(BaseInstrumentor):  # type: ignore[misc,valid-type]
    """`opentelemetry-instrument` entry point: instruments LangChain with spanchain."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langchain-core >= 0.3",)

    def _instrument(self, **kwargs: Any) -> None:
        options = {k: v for k, v in kwargs.items() if k != "tracer_provider"}
        instrument(kwargs.get("tracer_provider"), **_known_options(options))

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()


_OPTION_NAMES = {
    "meter_provider",
    "capture_content",
    "max_content_length",
    "redact",
    "redact_secrets",
    "run_ttl_s",
    "max_open_runs",
    "attach_context",
}


def _known_options(options: dict) -> dict:
    return {k: v for k, v in options.items() if k in _OPTION_NAMES}
