"""LangChain callbacks → OpenTelemetry spans.

Each LangChain run becomes one span; its parent is the span of `parent_run_id` (looked up in the
run registry), so the span tree is LangChain's own run tree whatever thread, task or context a
callback arrives in. A run with no parent starts a new trace, or nests under the app's own
current span; never under another LangChain run's span (that is what chains a batch's traces
together in other bridges).

The handler is `run_inline`: LangChain calls it in the caller's thread or task instead of hopping
to a thread pool, which is both cheaper and the only way a span made current in `on_*_start` is
seen by the run's body (see scope.py). Every callback is guarded: nothing raises into the app.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable, Mapping, Optional, Sequence
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanchain.config import env as envvars
from spanchain.bridge import attributes as A
from spanchain import semconv as sc
from spanchain.content.fragments import ChatOutput, chat_input
from spanchain.content.messages import prompt_messages
from spanchain.content.policy import ContentPolicy, RedactHook
from spanchain.logonce import LogOnce
from spanchain.bridge.metrics import GenAIMetrics
from spanchain.bridge.registry import RunRegistry, RunState
from spanchain.bridge.scope import NO_PARENT, Attachment, ambient_span, stream_frame
from spanchain.config.resolve import env_float, env_int
from spanchain.version import __version__

logger = logging.getLogger(__name__)

# LangGraph signals control flow (interrupt(), Command bubbling to a parent graph) by raising
# these; they reach on_chain_error but are not failures. Matched by name: no langgraph import.
_CONTROL_FLOW_EXCEPTIONS = frozenset(
    {"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"}
)
_LLM_TYPES = ("llm", "chat_model")
# Runs not made current: LangChain's prompt templates and output parsers format text and do no
# I/O; anything their body does start (a fixing parser's model call) is a LangChain run with its
# own span, and a foreign span there nests under the enclosing run. Attaching costs about a
# tenth of a run's own time.
_NOT_ATTACHED = frozenset({"prompt", "parser"})
_NEVER_STREAMED = frozenset({"tool", "retriever"})
# (run id, state) of the last streamed chunk's run; the sentinel id is never a run's.
_NOT_STREAMING: tuple[Any, Optional[RunState]] = (object(), None)


def _guarded(method: Callable) -> Callable:
    """Run an event callback; log (once per kind) instead of raising into LangChain or the app."""

    @functools.wraps(method)
    def wrapper(self: "OpenTelemetryCallbackHandler", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self._log.exception(
                f"{method.__name__}:{type(exc).__name__}",
                "spanchain: %s failed (logged once per kind; the app is unaffected): %r",
                method.__name__,
                exc,
            )
            return None

    return wrapper


_START_RUN_TYPES = {
    "on_chain_start": "chain",
    "on_llm_start": "llm",
    "on_chat_model_start": "chat_model",
    "on_tool_start": "tool",
    "on_retriever_start": "retriever",
}


def _is_control_flow(error: BaseException) -> bool:
    return any(cls.__name__ in _CONTROL_FLOW_EXCEPTIONS for cls in type(error).__mro__)


def _error_type(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


class OpenTelemetryCallbackHandler(BaseCallbackHandler):
    """A langchain-core callback handler that records every run as an OpenTelemetry span.

    Options (argument, else environment variable, else default):
    - capture_content: record prompts, messages, inputs, outputs
      (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT; default on).
    - max_content_length: longest content value, in characters (SPANCHAIN_MAX_CONTENT_LENGTH,
      capped by OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT; default 32768).
    - redact: hook (attribute name, text) -> text or None, applied to every content value.
    - redact_secrets: mask API keys, tokens, passwords (SPANCHAIN_REDACT_SECRETS; default on).
    - run_ttl_s: end runs whose end never came after this many seconds
      (SPANCHAIN_RUN_TTL_SECONDS; default 3600).
    - max_open_runs: most runs tracked at once (SPANCHAIN_MAX_OPEN_RUNS; default 10000).
    - attach_context: make each run's span current for its body, so spans of other
      instrumentations nest under it (SPANCHAIN_ATTACH_CONTEXT; default on).
    - meter_provider: where GenAI metrics go (default: the global MeterProvider, if one is set).
    """

    run_inline = True
    raise_error = False
    _streaming: tuple[Any, Optional[RunState]] = _NOT_STREAMING
    _roots_record = True  # whether the last root run's span was recording (sampled)

    def __init__(
        self,
        tracer_provider: Optional[trace.TracerProvider] = None,
        *,
        meter_provider: Any = None,
        capture_content: Optional[bool] = None,
        max_content_length: Optional[int] = None,
        redact: Optional[RedactHook] = None,
        redact_secrets: Optional[bool] = None,
        run_ttl_s: Optional[float] = None,
        max_open_runs: Optional[int] = None,
        attach_context: Optional[bool] = None,
    ) -> None:
        super().__init__()
        self._tracer = trace.get_tracer(
            sc.INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider
        )
        self._policy = ContentPolicy.resolve(
            capture_content, max_content_length, redact, redact_secrets
        )
        self._registry = RunRegistry(
            ttl_s=run_ttl_s if run_ttl_s is not None else env_float(envvars.SPANCHAIN_RUN_TTL_SECONDS, 3600.0),
            max_runs=max_open_runs
            if max_open_runs is not None
            else env_int(envvars.SPANCHAIN_MAX_OPEN_RUNS, 10_000),
        )
        if attach_context is None:
            attach_context = env_int(envvars.SPANCHAIN_ATTACH_CONTEXT, 1) != 0
        self._attach = bool(attach_context)
        self._metrics = GenAIMetrics(meter_provider)
        self._log = LogOnce(logger)
        self._streaming = _NOT_STREAMING

    # --- introspection -------------------------------------------------------------------
    @property
    def content_policy(self) -> ContentPolicy:
        return self._policy

    @property
    def open_runs(self) -> int:
        return len(self._registry)

    def sweep(self) -> int:
        """End runs older than the TTL now; returns how many were ended."""
        expired = self._registry.sweep()
        self._abandon(expired)
        return len(expired)

    def close_open_runs(self) -> int:
        """End every open run (marked abandoned, reason "shutdown"); for process exit."""
        states = self._registry.drain()
        self._abandon(states)
        return len(states)

    # --- span lifecycle ------------------------------------------------------------------------
    def _start(
        self,
        run_id: UUID,
        parent_run_id: Optional[UUID],
        run_type: str,
        name: str,
        span_name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
        tags: Optional[Sequence[str]],
        metadata: Optional[Mapping[str, Any]],
        content: Optional[Mapping[str, Any]],
        operation: str,
    ) -> RunState:
        # Called once per run on the app's thread, positionally (keyword binding of a dozen
        # arguments costs more than several of the lines below).
        registry = self._registry
        parent = registry.get(parent_run_id)
        if parent is not None:
            ctx = parent.child_context
            if ctx is None:
                ctx = parent.child_context = trace.set_span_in_context(parent.span)
            root = parent.root or parent
        else:
            # No parent run: a new trace, or the app's own current span. A parent_run_id we do
            # not know (handler added mid-run, parent evicted) lands here too: no orphan spans.
            ambient = ambient_span()
            ctx = trace.set_span_in_context(ambient) if ambient.get_span_context().is_valid else NO_PARENT
            root = None
        run_id_str = str(run_id)
        attributes[sc.LC_RUN_ID] = run_id_str
        attributes[sc.LC_RUN_TYPE] = run_type
        attributes[sc.LC_NAME] = name
        if root is not None:
            attributes[sc.LC_ROOT_RUN_ID] = root.run_id
            attributes[sc.LC_PARENT_RUN_ID] = parent.run_id
        else:
            attributes[sc.LC_ROOT_RUN_ID] = run_id_str
            if parent_run_id is not None:
                attributes[sc.LC_PARENT_RUN_ID] = str(parent_run_id)
        if tags and (type(tags) is list or type(tags) is tuple):
            attributes[sc.LC_TAGS] = list(map(str, tags))
        if metadata:
            extra = A.metadata_attributes(metadata)
            if extra:  # thread_id and friends are never ls_* keys: nothing to look for otherwise
                attributes.update(extra)
                conversation = A.conversation_id(metadata)
                if conversation is not None:
                    attributes[sc.GEN_AI_CONVERSATION_ID] = conversation
        if content and self._policy.capture and (parent.span.is_recording() if parent is not None else self._roots_record):
            # The span will record (its parent does, or the last root did): render the content
            # into the start attributes, saving the SDK a second, separately locked and validated
            # set_attributes call. A wrong guess costs only the rendering; the SDK drops it.
            self._render_content(content, attributes)
            content = None
        span = self._tracer.start_span(span_name, ctx, kind, attributes)
        if parent is None:
            self._roots_record = span.is_recording()
        if content and span.is_recording():
            self._set_content(span, content)
        state = RunState(span, run_type, parent, root, time.monotonic(), run_id_str, name, operation)
        if root is not None:
            root.descendants += 1
        evicted = registry.add(run_id, state)
        if evicted:
            self._abandon(evicted)
        if self._attach and run_type not in _NOT_ATTACHED:
            # _start <- on_*_start (or _model_start) <- LangChain: 2 frames up at least. Tools and
            # retrievers are never started from a stream's generator: no frame walk for them.
            state.attachment = Attachment(span, stream_frame(2) if run_type not in _NEVER_STREAMED else None)
        return state

    def _start_bare(self, callback: str, kwargs: Mapping[str, Any]) -> None:
        run_id = kwargs.get("run_id")
        if run_id is None or self._registry.get(run_id) is not None:
            return  # no id to track, or the span was made before the failure
        parent = kwargs.get("parent_run_id")
        run_type = _START_RUN_TYPES.get(callback, "chain")
        try:
            self._start(
                run_id,
                parent if isinstance(parent, UUID) else None,
                run_type,
                run_type,
                run_type,
                SpanKind.INTERNAL,
                {},
                None,
                None,
                None,
                "",
            )
        except Exception as exc:
            self._log.warning("bare-start", "spanchain: could not record a bare span: %r", exc)

    def _end_after_failure(self, run_id: Any) -> None:
        if self._registry.get(run_id) is None:
            return
        try:
            self._finish(run_id)
        except Exception as exc:
            self._log.warning("end-after-failure", "spanchain: could not end a span: %r", exc)

    # Start and end callbacks run once per run: they catch their own exceptions (a decorator's
    # forwarding of LangChain's keyword arguments cost more than a tenth of a run's own code).
    def _start_failed(self, callback: str, exc: Exception, run_id: Any, parent_run_id: Any) -> None:
        """A start failed part-way: log once per kind, still record the run as a bare span, so its
        children keep their parent and its end has something to end."""
        self._log.exception(
            f"{callback}:{type(exc).__name__}",
            "spanchain: %s failed; recorded a bare span (logged once per kind; the app is unaffected): %r",
            callback,
            exc,
        )
        self._start_bare(callback, {"run_id": run_id, "parent_run_id": parent_run_id})

    def _end_failed(self, callback: str, exc: Exception, run_id: Any) -> None:
        """An end failed part-way: log once per kind, still end the span."""
        self._log.exception(
            f"{callback}:{type(exc).__name__}",
            "spanchain: %s failed; ended the span without its payload (logged once per kind; the app is unaffected): %r",
            callback,
            exc,
        )
        self._end_after_failure(run_id)

    def _set_content(self, span: Any, content: Mapping[str, Any]) -> None:
        if not self._policy.capture:
            return
        values: dict[str, Any] = {}
        self._render_content(content, values)
        if values:
            span.set_attributes(values)

    def _render_content(self, content: Mapping[str, Any], values: dict[str, Any]) -> None:
        """Render content values into `values` (capture must be on)."""
        truncated = False
        for key, raw in content.items():
            if raw is None:
                continue
            text, cut = self._policy.render(key, raw)
            if text is not None:
                values[key] = text
                truncated = truncated or cut
        if truncated:
            values[sc.LC_CONTENT_TRUNCATED] = True

    def _finish(
        self,
        run_id: UUID,
        attributes: Optional[dict[str, Any]] = None,
        content: Optional[Mapping[str, Any]] = None,
        error: Optional[BaseException] = None,
    ) -> Optional[RunState]:
        state = self._registry.pop(run_id)
        if state is not None and self._streaming[1] is state:
            self._streaming = _NOT_STREAMING
        if state is None:
            self._log.warning(
                "end-unknown-run",
                "spanchain: end callback for a run it never saw started (first: %s); ignored",
                run_id,
            )
            return None
        if state.attachment is not None:
            state.attachment.release()
        span = state.span
        attrs = attributes if attributes is not None else {}
        error_type = None
        if error is not None:
            if _is_control_flow(error):
                attrs[sc.LC_INTERRUPTED] = True
                span.add_event(sc.EVENT_INTERRUPT, {"exception.type": type(error).__name__})
            else:
                error_type = _error_type(error)
                state.errors += 1
                attrs[sc.ERROR_TYPE] = error_type
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:1024]))
        if state.retries:
            attrs[sc.LC_RETRIES] = state.retries
        rolled_up = state.llm_calls or state.tool_calls or state.errors
        if rolled_up and state.run_type not in _LLM_TYPES:
            self._rollup_attributes(state, attrs)
        if state.root is None:
            attrs[sc.LC_DESCENDANTS] = state.descendants
        if content and self._policy.capture and span.is_recording():
            self._render_content(content, attrs)
        if attrs:
            span.set_attributes(attrs)  # one call: the SDK takes its lock and validates per call
        span.end()
        if rolled_up and state.parent is not None:
            self._propagate(state)
        if state.operation:
            self._metrics.record(state, error_type)
        return state

    @staticmethod
    def _rollup_attributes(state: RunState, attrs: dict[str, Any]) -> None:
        if state.llm_calls:
            attrs[sc.ROLLUP_LLM_CALLS] = state.llm_calls
            attrs[sc.ROLLUP_INPUT_TOKENS] = state.input_tokens
            attrs[sc.ROLLUP_OUTPUT_TOKENS] = state.output_tokens
        if state.tool_calls:
            attrs[sc.ROLLUP_TOOL_CALLS] = state.tool_calls
        if state.errors:
            attrs[sc.ROLLUP_ERRORS] = state.errors

    @staticmethod
    def _propagate(state: RunState) -> None:
        parent = state.parent
        if parent is None:
            return
        parent.input_tokens += state.input_tokens
        parent.output_tokens += state.output_tokens
        parent.llm_calls += state.llm_calls
        parent.tool_calls += state.tool_calls
        parent.errors += state.errors

    def _abandon(self, states: Sequence[tuple[RunState, str]]) -> None:
        # Newest first: attachments made in one context then come off in LIFO order.
        for state, reason in reversed(states):
            if self._streaming[1] is state:
                self._streaming = _NOT_STREAMING
            try:
                if state.attachment is not None:
                    state.attachment.release()
                state.span.set_attributes(
                    {sc.LC_ABANDONED: True, sc.LC_ABANDONED_REASON: reason}
                )
                state.span.end()
            except Exception as exc:
                self._log.warning("abandon", "spanchain: ending an abandoned run failed: %r", exc)

    def _event(self, run_id: Optional[UUID], name: str, attributes: dict[str, Any], content: Mapping[str, Any]) -> Optional[RunState]:
        state = self._registry.get(run_id)
        if state is None:
            self._log.warning(f"event-unknown-run:{name}", "spanchain: %s for an unknown run; ignored", name)
            return None
        if self._policy.capture and state.span.is_recording():
            for key, raw in content.items():
                if raw is None:
                    continue
                text, _ = self._policy.render(key, raw)
                if text is not None:
                    attributes[key] = text
        state.span.add_event(name, attributes)
        return state

    # --- chains ------------------------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: Optional[dict[str, Any]],
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            run_type = kwargs.get("run_type") or "chain"
            name = A.run_name(serialized, kwargs, "chain")
            attrs: dict[str, Any] = {}
            operation = ""
            span_name = name
            if run_type == "chain":
                if "agent" in name.lower():
                    operation = sc.OP_INVOKE_AGENT
                    attrs[sc.GEN_AI_AGENT_NAME] = name
                elif parent_run_id is None:
                    operation = sc.OP_INVOKE_WORKFLOW
                    attrs[sc.GEN_AI_WORKFLOW_NAME] = name
                if operation:
                    attrs[sc.GEN_AI_OPERATION_NAME] = operation
                    span_name = f"{operation} {name}"
            state = self._start(
                run_id,
                parent_run_id,
                run_type,
                name,
                span_name,
                SpanKind.INTERNAL,
                attrs,
                tags,
                metadata,
                None if kwargs.get("defers_inputs") else {sc.LC_INPUT: inputs},
                operation,
            )
            if operation == sc.OP_INVOKE_AGENT:
                state.is_agent = True
        except Exception as exc:
            self._start_failed("on_chain_start", exc, run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            content = {sc.LC_OUTPUT: outputs}
            if "inputs" in kwargs and kwargs["inputs"] is not None:
                content[sc.LC_INPUT] = kwargs["inputs"]  # streamed runs learn their input at the end
            self._finish(run_id, content=content)
        except Exception as exc:
            self._end_failed("on_chain_end", exc, run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            content = {}
            if kwargs.get("inputs") is not None:
                content[sc.LC_INPUT] = kwargs["inputs"]
            self._finish(run_id, content=content, error=error)
        except Exception as exc:
            self._end_failed("on_chain_error", exc, run_id)

    # --- models --------------------------------------------------------------------------------------
    def _model_start(
        self,
        operation: str,
        serialized: Optional[dict[str, Any]],
        run_id: UUID,
        parent_run_id: Optional[UUID],
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        kwargs: Mapping[str, Any],
        content_factory: Callable[[], dict[str, Any]],
    ) -> None:
        params = kwargs.get("invocation_params") or {}
        model = A.model_name(params, metadata, serialized)
        provider = A.provider_name(metadata, serialized)
        attrs = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: model,
        }
        attrs.update(A.request_attributes(params, metadata))
        run_type = "chat_model" if operation == sc.OP_CHAT else "llm"
        # Content is built lazily: only for recording spans with capture on.
        content = content_factory() if self._policy.capture else None
        state = self._start(
            run_id,
            parent_run_id,
            run_type,
            A.run_name(serialized, kwargs, model),
            f"{operation} {model}",
            SpanKind.CLIENT,
            attrs,
            tags,
            metadata,
            content,
            operation,
        )
        state.model = model
        state.provider = provider
        state.llm_calls = 1

    def on_chat_model_start(
        self,
        serialized: Optional[dict[str, Any]],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            def content() -> dict[str, Any]:
                tools = (kwargs.get("invocation_params") or {}).get("tools")
                conversation, system = chat_input(messages)
                return {
                    sc.GEN_AI_INPUT_MESSAGES: conversation,
                    sc.GEN_AI_SYSTEM_INSTRUCTIONS: system,
                    sc.GEN_AI_TOOL_DEFINITIONS: tools or None,
                }

            self._model_start(sc.OP_CHAT, serialized, run_id, parent_run_id, tags, metadata, kwargs, content)
        except Exception as exc:
            self._start_failed("on_chat_model_start", exc, run_id, parent_run_id)

    def on_llm_start(
        self,
        serialized: Optional[dict[str, Any]],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            self._model_start(
                sc.OP_TEXT_COMPLETION,
                serialized,
                run_id,
                parent_run_id,
                tags,
                metadata,
                kwargs,
                lambda: {sc.GEN_AI_INPUT_MESSAGES: prompt_messages(prompts)},
            )
        except Exception as exc:
            self._start_failed("on_llm_start", exc, run_id, parent_run_id)

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        # Hot path (once per streamed chunk): one identity test and one increment, nothing else.
        # The run streaming now is remembered by identity: LangChain passes the same UUID object
        # for every chunk, and a registry lookup would hash it in Python (UUID.__hash__) each time.
        streaming = self._streaming
        if run_id is streaming[0]:
            streaming[1].chunks += 1
            return
        self._next_stream_chunk(run_id)

    def _next_stream_chunk(self, run_id: Any) -> None:
        """A chunk of a run other than the last chunk's: its first chunk, or streams interleaving."""
        try:
            state = self._registry.get(run_id)
            if state is None:
                return
            self._streaming = (run_id, state)
            state.chunks += 1
            if state.first_chunk_at is None:
                state.first_chunk_at = time.monotonic()
                state.span.add_event(sc.EVENT_FIRST_CHUNK)
        except Exception as exc:
            self._log.warning("on_llm_new_token", "spanchain: on_llm_new_token failed: %r", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            state = self._registry.get(run_id)
            if state is None:
                self._finish(run_id)  # logs the unknown run once
                return
            attrs, messages = A.response_attributes(response, with_messages=self._policy.capture)
            state.input_tokens = int(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0))
            state.output_tokens = int(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0))
            if state.chunks:
                attrs[sc.LC_STREAM_CHUNKS] = state.chunks
                attrs[sc.GEN_AI_REQUEST_STREAM] = True
                if state.first_chunk_at is not None:
                    attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = state.first_chunk_at - state.started
            if sc.GEN_AI_RESPONSE_MODEL in attrs:
                state.model = attrs[sc.GEN_AI_RESPONSE_MODEL]
            self._finish(run_id, attrs, content={sc.GEN_AI_OUTPUT_MESSAGES: ChatOutput(messages) if messages else None})
        except Exception as exc:
            self._end_failed("on_llm_end", exc, run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            state = self._registry.get(run_id)
            attrs: dict[str, Any] = {}
            if state is not None and state.chunks:
                attrs[sc.LC_STREAM_CHUNKS] = state.chunks
                attrs[sc.GEN_AI_REQUEST_STREAM] = True
            self._finish(run_id, attrs, error=error)
        except Exception as exc:
            self._end_failed("on_llm_error", exc, run_id)

    # --- tools -----------------------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: Optional[dict[str, Any]],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        inputs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = A.run_name(serialized, kwargs, "tool")
            attrs: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: name,
                sc.GEN_AI_TOOL_TYPE: "function",
            }
            description = (serialized or {}).get("description")
            if isinstance(description, str) and description:
                attrs[sc.GEN_AI_TOOL_DESCRIPTION] = description[:1024]
            call_id = kwargs.get("tool_call_id")
            if call_id:
                attrs[sc.GEN_AI_TOOL_CALL_ID] = str(call_id)
            state = self._start(
                run_id,
                parent_run_id,
                "tool",
                name,
                f"{sc.OP_EXECUTE_TOOL} {name}",
                SpanKind.INTERNAL,
                attrs,
                tags,
                metadata,
                {sc.GEN_AI_TOOL_CALL_ARGUMENTS: inputs if inputs is not None else input_str},
                sc.OP_EXECUTE_TOOL,
            )
            state.tool_calls = 1
        except Exception as exc:
            self._start_failed("on_tool_start", exc, run_id, parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            attrs: dict[str, Any] = {}
            result = output
            # Tools called with a ToolCall return a ToolMessage: keep its content and call id.
            call_id = getattr(output, "tool_call_id", None)
            if call_id:
                attrs[sc.GEN_AI_TOOL_CALL_ID] = str(call_id)
                result = getattr(output, "content", output)
            self._finish(run_id, attrs, content={sc.GEN_AI_TOOL_CALL_RESULT: result})
        except Exception as exc:
            self._end_failed("on_tool_end", exc, run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._finish(run_id, error=error)
        except Exception as exc:
            self._end_failed("on_tool_error", exc, run_id)

    # --- retrievers ----------------------------------------------------------------------------------
    def on_retriever_start(
        self,
        serialized: Optional[dict[str, Any]],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = A.run_name(serialized, kwargs, "retriever")
            self._start(
                run_id,
                parent_run_id,
                "retriever",
                name,
                f"{sc.OP_RETRIEVAL} {name}",
                SpanKind.INTERNAL,
                {sc.GEN_AI_OPERATION_NAME: sc.OP_RETRIEVAL},
                tags,
                metadata,
                {sc.GEN_AI_RETRIEVAL_QUERY_TEXT: query},
                sc.OP_RETRIEVAL,
            )
        except Exception as exc:
            self._start_failed("on_retriever_start", exc, run_id, parent_run_id)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        try:
            documents = A.as_list(documents)
            attrs = {sc.LC_RETRIEVAL_DOCUMENT_COUNT: len(documents)}
            self._finish(
                run_id,
                attrs,
                content={sc.GEN_AI_RETRIEVAL_DOCUMENTS: A.documents_payload(documents)}
                if self._policy.capture
                else None,
            )
        except Exception as exc:
            self._end_failed("on_retriever_end", exc, run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            self._finish(run_id, error=error)
        except Exception as exc:
            self._end_failed("on_retriever_error", exc, run_id)

    # --- events on a run's span ----------------------------------------------------------------------------
    @_guarded
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        state = self._event(
            run_id,
            sc.EVENT_AGENT_ACTION,
            {sc.GEN_AI_TOOL_NAME: str(getattr(action, "tool", ""))},
            {"tool_input": getattr(action, "tool_input", None), "log": getattr(action, "log", None)},
        )
        if state is not None and not state.is_agent and state.run_type == "chain":
            # The run turned out to be an agent loop: name it as one.
            state.is_agent = True
            name = state.name or "agent"
            state.operation = sc.OP_INVOKE_AGENT
            state.span.update_name(f"{sc.OP_INVOKE_AGENT} {name}")
            state.span.set_attributes(
                {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: str(name)}
            )

    @_guarded
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._event(
            run_id,
            sc.EVENT_AGENT_FINISH,
            {},
            {"output": getattr(finish, "return_values", None), "log": getattr(finish, "log", None)},
        )

    @_guarded
    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        attrs: dict[str, Any] = {"attempt": int(getattr(retry_state, "attempt_number", 0) or 0)}
        outcome = getattr(retry_state, "outcome", None)
        if outcome is not None and getattr(outcome, "failed", False):
            exc = outcome.exception()
            attrs[sc.ERROR_TYPE] = _error_type(exc)
            attrs["exception.message"] = str(exc)[:1024]
        state = self._event(run_id, sc.EVENT_RETRY, attrs, {})
        if state is not None:
            state.retries += 1

    @_guarded
    def on_custom_event(
        self, name: str, data: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._event(run_id, sc.EVENT_CUSTOM, {"name": str(name)}, {"data": data})

    @_guarded
    def on_text(self, text: str, *, run_id: UUID, **kwargs: Any) -> None:
        self._event(run_id, sc.EVENT_TEXT, {}, {"text": text})
