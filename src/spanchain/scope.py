"""Making a LangChain run's span current for the code it runs, without ever leaking it.

LangChain calls `on_*_start` (inline handlers) in the caller's context just before it copies that
context to run the body, so a span attached there becomes the parent of whatever the body does:
an HTTP client span, a provider SDK span, user code in a tool. The matching end callback,
however, often runs in a *different* copy of the context (async runs, batch, abandoned streams),
where the attach cannot be undone and the caller keeps our context after the run returned.

So what we attach is a `RunScope`: a span stand-in that delegates to the run's span while the run
is live and, once the run has ended, to whatever was current before it. A context we could not
detach therefore degrades into exactly the context the caller had — never into a finished run.
"""

from __future__ import annotations

import contextvars
from typing import Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span


class RunScope(Span):
    """Current-span stand-in for one LangChain run (see module doc)."""

    __slots__ = ("_span", "_previous", "ended")

    def __init__(self, span: Span, previous: Span) -> None:
        self._span = span
        self._previous = previous
        self.ended = False

    def _target(self) -> Span:
        node: Span = self
        while isinstance(node, RunScope):
            if not node.ended:
                return node._span
            node = node._previous
        return node

    # Span API, all delegated to the live run or to what was current before it.
    def get_span_context(self):
        return self._target().get_span_context()

    def is_recording(self) -> bool:
        return self._target().is_recording()

    def set_attributes(self, attributes) -> None:
        self._target().set_attributes(attributes)

    def set_attribute(self, key, value) -> None:
        self._target().set_attribute(key, value)

    def add_event(self, name, attributes=None, timestamp=None) -> None:
        self._target().add_event(name, attributes, timestamp)

    def add_link(self, context, attributes=None) -> None:
        self._target().add_link(context, attributes)

    def update_name(self, name) -> None:
        self._target().update_name(name)

    def set_status(self, status, description=None) -> None:
        self._target().set_status(status, description)

    def record_exception(self, exception, attributes=None, timestamp=None, escaped=False) -> None:
        self._target().record_exception(exception, attributes, timestamp, escaped)

    def end(self, end_time=None) -> None:
        # Somebody else's code ending "the current span" must not end our run's span.
        target = self._target()
        if target is not self._span:
            target.end(end_time)


def settled(span: Span) -> Span:
    """`span` with ended RunScopes skipped, so chains of stale scopes never grow."""
    node = span
    while isinstance(node, RunScope) and node.ended:
        node = node._previous
    return node


def ambient_span(ctx: Optional[Context] = None) -> Span:
    """The innermost current span that is not one of our runs (the app's own span, if any)."""
    node = trace.get_current_span(ctx)
    while isinstance(node, RunScope):
        node = node._previous
    return node


class Attachment:
    """One attach of a RunScope; detached only where that is safe."""

    __slots__ = ("scope", "_ctx", "_token")

    def __init__(self, span: Span) -> None:
        current = otel_context.get_current()
        self.scope = RunScope(span, settled(trace.get_current_span(current)))
        self._ctx = trace.set_span_in_context(self.scope, current)
        self._token = otel_context.attach(self._ctx)

    def release(self) -> None:
        """Mark the run ended; restore the previous context if we are still on top of it."""
        self.scope.ended = True
        token = self._token
        if token is None:
            return
        self._token = None
        if otel_context.get_current() is not self._ctx:
            return  # someone attached on top, or we are elsewhere: the ended scope is harmless
        if isinstance(token, contextvars.Token):
            try:
                token.var.reset(token)
            except (ValueError, RuntimeError):
                pass  # a copied context (async end callbacks): nothing to undo here
        else:  # a non-contextvars runtime context
            otel_context.detach(token)


# An empty context: a span started in it is the root of a new trace.
NO_PARENT = Context()
