"""Making a LangChain run's span current for the code it runs, without ever leaking it.

LangChain calls `on_*_start` (inline handlers) in the caller's context just before it copies that
context to run the body, so a span attached there becomes the parent of whatever the body does:
an HTTP client span, a provider SDK span, user code in a tool. The matching end callback,
however, often runs in a *different* copy of the context (async runs, batch, abandoned streams),
where the attach cannot be undone and the caller keeps our context after the run returned.

So what we attach is a `RunScope`: a span stand-in that delegates to the run's span while the run
is live and, once the run has ended, to whatever was current before it. A context we could not
detach therefore degrades into exactly the context the caller had — never into a finished run.

Streams need one more rule. A streamed run (a chat model's or LLM's `stream`, any runnable's
`stream`/`astream`, LangGraph's `Pregel.stream`/`astream`) is started from inside a generator, and
a generator runs in the context of whoever iterates it: the attach lands in the *consumer's*
context, and the consumer's own code runs there between chunks, after a `break`, and (async) until
the event loop finalises the abandoned generator. So a streamed run's scope remembers the frame of
that generator and is live only while the frame executes: a suspended generator frame has no
caller (`f_back` is None), an executing one has. The stream's own work (its HTTP request, nested
runs) runs inside that frame and nests under the run; the consumer's code, between chunks or after
abandoning the stream, never sees it.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import sys
from types import CodeType, FrameType
from typing import Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span


class RunScope(Span):
    """Current-span stand-in for one LangChain run (see module doc)."""

    __slots__ = ("_span", "_previous", "ended", "frame")

    def __init__(self, span: Span, previous: Span, frame: Optional[FrameType] = None) -> None:
        self._span = span
        self._previous = previous
        self.ended = False
        self.frame = frame  # streamed runs: the generator frame whose execution makes the run live

    def _target(self) -> Span:
        node: Span = self
        while type(node) is RunScope:  # never subclassed; an ABC isinstance check costs more
            if not node.ended:
                frame = node.frame
                if frame is None or frame.f_back is not None:
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


# The key OTel keeps the current span under, learnt once through its public API, and the context
# variable behind OTel's default runtime context. A run is attached on the app's thread for every
# run; through these, attaching skips three API layers and an ABC isinstance check per lookup.
_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))
_runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_CONTEXT_VAR: Optional[contextvars.ContextVar] = getattr(_runtime, "_current_context", None)
if not isinstance(_CONTEXT_VAR, contextvars.ContextVar) or type(_runtime).__name__ != "ContextVarsRuntimeContext":
    _CONTEXT_VAR = None  # another runtime context (OTEL_PYTHON_CONTEXT): go through the API


def _current_context() -> Context:
    return _CONTEXT_VAR.get() if _CONTEXT_VAR is not None else otel_context.get_current()


def current_span(ctx: Optional[Context] = None) -> Span:
    """`trace.get_current_span`, minus its layers: the span in `ctx` (default: the current context)."""
    span = (ctx if ctx is not None else _current_context()).get(_SPAN_KEY)
    if span is None:
        return trace.INVALID_SPAN
    if type(span) is RunScope or isinstance(span, Span):
        return span
    return trace.INVALID_SPAN


def settled(span: Span) -> Span:
    """`span` with ended RunScopes skipped, so chains of stale scopes never grow."""
    node = span
    while type(node) is RunScope and node.ended:
        node = node._previous
    return node


def ambient_span(ctx: Optional[Context] = None) -> Span:
    """The innermost current span that is not one of our runs (the app's own span, if any)."""
    node = current_span(ctx)
    while type(node) is RunScope:
        node = node._previous
    return node


# How a code object takes part in starting a run, decided once per code object (keyed by id, with
# the code kept alive so the id cannot be reused): frames of the callback machinery are skipped,
# and the first frame past them is the one that started the run.
_SKIP, _STREAM, _PLAIN = 0, 1, 2
_CODE_KINDS: dict[int, tuple[CodeType, int]] = {}
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
_CALLBACK_MODULES = ("spanchain.", "langchain_core.callbacks.")
# A @contextmanager generator suspends while the with-block (the run's body) executes: not a stream.
_CONTEXT_MANAGER_CODES = frozenset(
    {contextlib._GeneratorContextManager.__enter__.__code__, contextlib._AsyncGeneratorContextManager.__aenter__.__code__}
)


def _classify(frame: FrameType) -> int:
    code = frame.f_code
    module = frame.f_globals.get("__name__") or ""
    if module.startswith(_CALLBACK_MODULES):
        kind = _SKIP
    elif code.co_flags & _GENERATOR_FLAGS:
        kind = _STREAM
    else:
        kind = _PLAIN
    if len(_CODE_KINDS) < 4096:
        _CODE_KINDS[id(code)] = (code, kind)
    return kind


def stream_frame(depth: int) -> Optional[FrameType]:
    """The generator frame that started the run now starting, if it is a stream, else None.

    Called from the handler, `depth` frames below the first frame that may be LangChain's (a lower
    bound: spanchain's own frames are skipped anyway); LangChain's callback manager frames are
    skipped to reach the code that called it. `sys._getframe(n)` is used rather than following
    `f_back`: following materialises a frame object for every frame on the way, which cost more
    than the rest of a run's start.
    """
    kinds = _CODE_KINDS
    n = depth + 1
    while True:
        try:
            frame = sys._getframe(n)
        except ValueError:
            return None
        code = frame.f_code
        known = kinds.get(id(code))
        kind = known[1] if known is not None and known[0] is code else _classify(frame)
        if kind == _SKIP:
            n += 1
            continue
        if kind == _STREAM:
            caller = frame.f_back
            if caller is not None and caller.f_code in _CONTEXT_MANAGER_CODES:
                return None
            return frame
        return None


class Attachment:
    """One attach of a RunScope; detached only where that is safe."""

    __slots__ = ("scope", "_ctx", "_token")

    def __init__(self, span: Span, frame: Optional[FrameType] = None) -> None:
        current = _current_context()
        self.scope = RunScope(span, settled(current_span(current)), frame)
        self._ctx = trace.set_span_in_context(self.scope, current)
        self._token = _CONTEXT_VAR.set(self._ctx) if _CONTEXT_VAR is not None else otel_context.attach(self._ctx)

    def release(self) -> None:
        """Mark the run ended; restore the previous context if we are still on top of it."""
        self.scope.ended = True
        self.scope.frame = None  # a generator frame keeps its locals alive: let it go
        token = self._token
        if token is None:
            return
        self._token = None
        if _current_context() is not self._ctx:
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
