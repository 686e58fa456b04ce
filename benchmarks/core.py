"""`spanchain bench core`: what the callback bridge costs a LangChain app, per invocation.

Every variant runs the same offline LangChain workloads through the same OpenTelemetry SDK
pipeline (a TracerProvider with a SimpleSpanProcessor into an exporter that drops spans, so the
bridge is measured, not I/O), and its time is compared with the same workload run with no
callbacks at all:

- no-op handler: `run_inline`, every callback does nothing (what LangChain's dispatch costs);
- floor handler: `run_inline`, one bare span named after the run per run, parented through
  `parent_run_id` (a minimal but correct bridge: what the SDK costs);
- spanchain: `OpenTelemetryCallbackHandler` with its defaults (content capture on, everything
  recorded);
- the peer LangChain instrumentations, when installed: OpenInference's tracer and OpenLLMetry's
  callback handler are passed in `config["callbacks"]` like the others; the upstream
  genai-langchain instrumentation only works through its instrumentor (it propagates context
  by patching LangChain's execution boundaries), so it is instrumented just around its own
  batches and LangChain is checked to be restored after each uninstrument.

Workloads: a prompt | model | parser chain; a 5-step tool-calling loop (the model asks for a tool
five times via ToolCall, then answers); a 200-token stream consumed fully; 20 concurrent `ainvoke`
of the chain. The fake model is stateless (its answer depends only on its input), so one instance
serves every invocation and nothing is built inside the timed region.

Variants are interleaved invocation by invocation (in a fresh random order each time), so load
from other processes falls on all of them alike; the instrumentor-only peer runs its own batch in
every round. An overhead is the variant's time per invocation minus the no-callback time *of the
same round*; the table reports the median over rounds and the interquartile range, in process
CPU time by default (wall time is recorded too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

# The upstream GenAI instrumentation records no message content unless asked; spanchain (and the
# other peers) record it by default. Ask for it so every bridge records comparable data. Any
# SPAN_* mode keeps spanchain's default (content on) unchanged.
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

QUESTION = "What does spanchain do with a LangChain run?"
ANSWER = "It turns every LangChain run into an OpenTelemetry span and exports it."
TOOL_STEPS = 5
STREAM_TOKENS = 200
CONCURRENCY = 20

# Targets (issue 13): spanchain's overhead over no callbacks vs a reference variant's.
TARGETS = {
    "chain": ("floor", 2.0),
    "tool_loop": ("floor", 2.0),
    "stream": ("noop", 1.3),
    "async": ("floor", 2.0),
    "graph": ("floor", 2.0),
}
# With content capture off (the --breakdown variant), on these workloads.
CONTENT_OFF_TARGET = ("sc_no_content", "floor", 1.6, ("chain", "tool_loop", "async"))


# --- workloads -------------------------------------------------------------------------------


def _build_workloads() -> list["Workload"]:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import (
        AIMessage,
        AIMessageChunk,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableConfig, RunnableLambda
    from langchain_core.tools import tool

    class ScriptedChatModel(BaseChatModel):
        """An offline chat model whose reply depends only on its input messages.

        With `tool_steps` > 0 it asks for the `multiply` tool until it has seen that many tool
        results, then answers. `_stream` yields `stream_tokens` chunks, the last one carrying
        usage, like providers with stream usage on. Async calls stay on the event loop.
        """

        model_name: str = "bench-chat-1"
        tool_steps: int = 0
        stream_tokens: int = STREAM_TOKENS

        @property
        def _llm_type(self) -> str:
            return "bench-scripted-chat"

        def _reply(self, messages: Sequence[Any]) -> AIMessage:
            done = sum(1 for m in messages if isinstance(m, ToolMessage))
            meta = {"model_name": self.model_name}
            if done < self.tool_steps:
                return AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "multiply", "args": {"a": done + 2, "b": 7}, "id": f"call_{done}", "type": "tool_call"}
                    ],
                    usage_metadata={"input_tokens": 20 + 10 * done, "output_tokens": 12, "total_tokens": 32 + 10 * done},
                    response_metadata={**meta, "finish_reason": "tool_calls"},
                )
            return AIMessage(
                content=ANSWER,
                usage_metadata={"input_tokens": 24, "output_tokens": 13, "total_tokens": 37},
                response_metadata={**meta, "finish_reason": "stop"},
            )

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
            n = self.stream_tokens
            for i in range(n):
                last = i == n - 1
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=f"tok{i}" + ("" if last else " "),
                        usage_metadata={"input_tokens": 24, "output_tokens": n, "total_tokens": 24 + n} if last else None,
                        response_metadata={"model_name": self.model_name, "finish_reason": "stop"} if last else {},
                    )
                )
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "{question}")])
    chain = prompt | ScriptedChatModel() | StrOutputParser()

    agent_model = ScriptedChatModel(tool_steps=TOOL_STEPS)

    def tool_agent(question: str, config: RunnableConfig) -> str:
        messages: list[Any] = [HumanMessage(content=question)]
        for _ in range(TOOL_STEPS + 2):
            reply = agent_model.invoke(messages, config=config)
            messages.append(reply)
            if not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(multiply.invoke(call, config=config))
        raise RuntimeError("the scripted model never answered")

    loop_app = RunnableLambda(tool_agent, name="tool_agent")

    stream_model = ScriptedChatModel(stream_tokens=STREAM_TOKENS)
    stream_input = [SystemMessage(content="You are verbose."), HumanMessage(content=QUESTION)]

    def run_chain(config: dict) -> None:
        chain.invoke({"question": QUESTION}, config=config)

    def run_loop(config: dict) -> None:
        loop_app.invoke(QUESTION, config=config)

    def run_stream(config: dict) -> None:
        n = 0
        for _ in stream_model.stream(stream_input, config=config):
            n += 1
        if n < STREAM_TOKENS:  # langchain-core may add a closing empty chunk
            raise RuntimeError(f"stream yielded {n} chunks, expected {STREAM_TOKENS}")

    questions = [{"question": f"{QUESTION} #{i}"} for i in range(CONCURRENCY)]

    async def run_gather(config: dict) -> None:
        await asyncio.gather(*(chain.ainvoke(q, config=config) for q in questions))

    workloads = [
        Workload("chain", "prompt | model | parser, .invoke", run_chain, batch=20),
        Workload("tool_loop", f"{TOOL_STEPS}-step tool-calling loop (ToolCall), .invoke", run_loop, batch=6),
        Workload("stream", f"{STREAM_TOKENS}-token chat model .stream, consumed", run_stream, batch=8),
        Workload("async", f"{CONCURRENCY} concurrent chain .ainvoke (asyncio.gather)", run_gather, batch=4, is_async=True),
    ]
    run_graph = _graph_agent(ScriptedChatModel(tool_steps=TOOL_STEPS), multiply)
    if run_graph is not None:
        workloads.append(
            Workload("graph", f"LangGraph agent: StateGraph, tool node, {TOOL_STEPS} tool calls, .invoke", run_graph, batch=4)
        )
    return workloads


def _graph_agent(model: Any, tool: Any) -> Optional[Callable[[dict], None]]:
    """A LangGraph agent: a model node and a ToolNode in a loop until the model stops asking for
    tools (None when LangGraph is not installed)."""
    try:
        from langchain_core.messages import HumanMessage, ToolMessage
        from langgraph.graph import START, MessagesState, StateGraph
        from langgraph.prebuilt import ToolNode, tools_condition
    except ImportError:
        return None

    def agent(state: Any) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile()
    start = {"messages": [HumanMessage(content=QUESTION)]}

    def run_graph(config: dict) -> None:
        out = graph.invoke(start, config=config)
        calls = sum(1 for m in out["messages"] if isinstance(m, ToolMessage))
        if calls != TOOL_STEPS:
            raise RuntimeError(f"the graph agent made {calls} tool calls, expected {TOOL_STEPS}")

    return run_graph


@dataclass
class Workload:
    key: str
    title: str
    run: Callable[[dict], Any]
    batch: int  # invocations per timed batch
    is_async: bool = False


# --- the shared SDK pipeline ---------------------------------------------------------------------


class DropExporter(SpanExporter):
    """Drops spans; counts them (and their attributes and events) only when asked."""

    def __init__(self) -> None:
        self.counting = False
        self.spans = 0
        self.attributes = 0
        self.events = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.counting:
            for span in spans:
                self.spans += 1
                self.attributes += len(span.attributes or ())
                self.events += len(span.events or ())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _pipeline() -> tuple[TracerProvider, DropExporter]:
    exporter = DropExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


# --- variants -----------------------------------------------------------------------------------


@dataclass
class Variant:
    key: str
    label: str
    callbacks: list = field(default_factory=list)
    enter: Optional[Callable[[], None]] = None  # instrument (instrumentor-only peers)
    exit: Optional[Callable[[], None]] = None  # uninstrument
    missing: str = ""  # why it is not measured (not installed, ...)
    peer: bool = False

    @property
    def config(self) -> dict:
        return {"callbacks": list(self.callbacks)} if self.callbacks else {}


def _noop_handler() -> Any:
    from langchain_core.callbacks import BaseCallbackHandler

    class NoOpHandler(BaseCallbackHandler):
        """run_inline; every callback LangChain sends does nothing."""

        run_inline = True

        def on_chain_start(self, serialized, inputs, **kwargs): pass
        def on_chain_end(self, outputs, **kwargs): pass
        def on_chain_error(self, error, **kwargs): pass
        def on_chat_model_start(self, serialized, messages, **kwargs): pass
        def on_llm_start(self, serialized, prompts, **kwargs): pass
        def on_llm_new_token(self, token, **kwargs): pass
        def on_llm_end(self, response, **kwargs): pass
        def on_llm_error(self, error, **kwargs): pass
        def on_tool_start(self, serialized, input_str, **kwargs): pass
        def on_tool_end(self, output, **kwargs): pass
        def on_tool_error(self, error, **kwargs): pass
        def on_retriever_start(self, serialized, query, **kwargs): pass
        def on_retriever_end(self, documents, **kwargs): pass
        def on_retriever_error(self, error, **kwargs): pass

    return NoOpHandler()


def _floor_handler(provider: Any) -> Any:
    from langchain_core.callbacks import BaseCallbackHandler
    from opentelemetry import trace

    tracer = provider.get_tracer("benchmarks.floor")
    set_span_in_context = trace.set_span_in_context

    class FloorHandler(BaseCallbackHandler):
        """run_inline; one bare span per run, named after the run, parented via parent_run_id."""

        run_inline = True

        def __init__(self) -> None:
            super().__init__()
            self.spans: dict = {}

        def _start(self, serialized, run_id, parent_run_id, kwargs) -> None:
            name = kwargs.get("name") or (serialized or {}).get("name") or "run"
            parent = self.spans.get(parent_run_id) if parent_run_id is not None else None
            ctx = set_span_in_context(parent) if parent is not None else None
            self.spans[run_id] = tracer.start_span(name, context=ctx)

        def _end(self, run_id) -> None:
            span = self.spans.pop(run_id, None)
            if span is not None:
                span.end()

        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
            self._start(serialized, run_id, parent_run_id, kwargs)

        def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
            self._start(serialized, run_id, parent_run_id, kwargs)

        def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs):
            self._start(serialized, run_id, parent_run_id, kwargs)

        def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, **kwargs):
            self._start(serialized, run_id, parent_run_id, kwargs)

        def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
            self._start(serialized, run_id, parent_run_id, kwargs)

        def on_chain_end(self, outputs, *, run_id, **kwargs): self._end(run_id)
        def on_chain_error(self, error, *, run_id, **kwargs): self._end(run_id)
        def on_llm_end(self, response, *, run_id, **kwargs): self._end(run_id)
        def on_llm_error(self, error, *, run_id, **kwargs): self._end(run_id)
        def on_tool_end(self, output, *, run_id, **kwargs): self._end(run_id)
        def on_tool_error(self, error, *, run_id, **kwargs): self._end(run_id)
        def on_retriever_end(self, documents, *, run_id, **kwargs): self._end(run_id)
        def on_retriever_error(self, error, *, run_id, **kwargs): self._end(run_id)

    return FloorHandler()


def _openinference(provider: Any) -> Variant:
    key, label = "openinference", "openinference-instrumentation-langchain"
    try:
        from openinference.instrumentation import OITracer, TraceConfig
        from openinference.instrumentation.langchain import __version__ as version
        from openinference.instrumentation.langchain._tracer import OpenInferenceTracer
    except ImportError as exc:
        return Variant(key, label, missing=f"not installed ({exc.name})", peer=True)
    # What its instrumentor adds to every callback manager, passed explicitly instead.
    tracer = OITracer(provider.get_tracer("openinference.instrumentation.langchain", version), config=TraceConfig())
    return Variant(key, f"{label} {version}", [OpenInferenceTracer(tracer, False)], peer=True)


def _openllmetry(provider: Any) -> Variant:
    key, label = "openllmetry", "opentelemetry-instrumentation-langchain"
    try:
        from opentelemetry import metrics
        from opentelemetry.instrumentation.langchain.callback_handler import TraceloopCallbackHandler
        from opentelemetry.instrumentation.langchain.version import __version__ as version
    except ImportError as exc:
        return Variant(key, label, missing=f"not installed ({exc.name})", peer=True)
    # What its instrumentor adds to every callback manager, passed explicitly instead
    # (the instrumentor also patches LangGraph/OpenAI entry points these workloads do not use).
    meter = metrics.get_meter("opentelemetry.instrumentation.langchain", version)
    handler = TraceloopCallbackHandler(
        provider.get_tracer("opentelemetry.instrumentation.langchain", version),
        meter.create_histogram("gen_ai.client.operation.duration", unit="s"),
        meter.create_histogram("gen_ai.client.token.usage", unit="token"),
    )
    return Variant(key, f"{label} {version}", [handler], peer=True)


def _otel_genai(provider: Any) -> Variant:
    key, label = "otel_genai", "opentelemetry-instrumentation-genai-langchain"
    try:
        from opentelemetry.instrumentation.genai.langchain import LangChainInstrumentor
        from opentelemetry.instrumentation.genai.langchain.version import __version__ as version
    except ImportError as exc:
        return Variant(key, label, missing=f"not installed ({exc.name})", peer=True)
    instrumentor = LangChainInstrumentor()
    guard = PatchGuard()

    def enter() -> None:
        guard.before()
        # skip_dep_check: it declares a dependency on `langchain`, but hooks langchain_core only.
        instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)

    def exit_() -> None:
        instrumentor.uninstrument()
        guard.after(label)

    # It adds its handler to every callback manager itself: no callbacks in the config.
    return Variant(key, f"{label} {version} (instrumentor)", enter=enter, exit=exit_, peer=True)


class PatchGuard:
    """Checks that an instrumentor's uninstrument really restored LangChain (and LangGraph)."""

    PREFIXES = ("langchain", "langgraph")

    def __init__(self) -> None:
        self._snapshot: Optional[dict] = None
        self.checks = 0

    @classmethod
    def _take(cls) -> dict:
        snap: dict = {}
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith(cls.PREFIXES):
                continue
            try:
                items = list(vars(module).items())
            except TypeError:
                continue
            for attr, value in items:
                if callable(value):
                    snap[(name, attr)] = value
                if isinstance(value, type) and getattr(value, "__module__", None) == name:
                    for member, mvalue in list(vars(value).items()):
                        snap[(name, attr, member)] = mvalue
        return snap

    def before(self) -> None:
        if self._snapshot is None:
            self._snapshot = self._take()

    def after(self, label: str) -> None:
        self.checks += 1
        now = self._take()
        changed = [
            ".".join(key)
            for key, value in (self._snapshot or {}).items()
            if key in now and now[key] is not value and (callable(value) or callable(now[key]))
        ]
        # Modules first imported while instrumented: nothing of theirs may still be a wrapper.
        added = [".".join(key) for key in now if key not in (self._snapshot or {}) and _is_wrapper(now[key])]
        if changed or added:
            raise RuntimeError(
                f"{label}: uninstrument() left LangChain patched ({len(changed) + len(added)} attributes, "
                f"e.g. {', '.join((changed + added)[:5])}); later measurements would be wrong"
            )


def _is_wrapper(value: Any) -> bool:
    """A wrapt proxy, what instrumentors patch with (by class name: wrapt's C types live in `_wrappers`)."""
    return any(cls.__name__ == "ObjectProxy" for cls in type(value).__mro__)


# --breakdown: spanchain with one feature off at a time, to see what each costs in place.
BREAKDOWN = {
    "sc_no_redact": ("spanchain, redact_secrets off", {"redact_secrets": False}),
    "sc_no_content": ("spanchain, capture_content off", {"capture_content": False}),
    "sc_no_attach": ("spanchain, attach_context off", {"attach_context": False}),
}


def build_variants(provider: Any, peers: bool = True, breakdown: bool = False) -> list[Variant]:
    from spanchain.bridge.handler import OpenTelemetryCallbackHandler

    variants = [
        Variant("baseline", "no callbacks"),
        Variant("noop", "no-op handler (run_inline, does nothing)", [_noop_handler()]),
        Variant("floor", "floor handler (1 bare span per run)", [_floor_handler(provider)]),
        Variant("spanchain", "spanchain (defaults: content on)", [OpenTelemetryCallbackHandler(tracer_provider=provider)]),
    ]
    if breakdown:
        variants += [
            Variant(key, label, [OpenTelemetryCallbackHandler(tracer_provider=provider, **options)])
            for key, (label, options) in BREAKDOWN.items()
        ]
    if peers:
        variants += [_otel_genai(provider), _openllmetry(provider), _openinference(provider)]
    return variants


# --- measuring -------------------------------------------------------------------------------------


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _time_batch(workload: Workload, config: dict, n: int, loop: asyncio.AbstractEventLoop) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per invocation over `n` invocations.

    CPU time is this process's (all threads: a handler LangChain runs in its executor counts),
    so other processes competing for the cores barely move it; wall time includes them.
    """
    cpu, wall = time.process_time, time.perf_counter
    if workload.is_async:

        async def batch() -> tuple[float, float]:
            c0, w0 = cpu(), wall()
            for _ in range(n):
                await workload.run(config)
            return cpu() - c0, wall() - w0

        c, w = loop.run_until_complete(batch())
        return c / n, w / n
    run = workload.run
    c0, w0 = cpu(), wall()
    for _ in range(n):
        run(config)
    return (cpu() - c0) / n, (wall() - w0) / n


def _interleaved(
    workload: Workload, variants: Sequence[Variant], loop: asyncio.AbstractEventLoop, rng: random.Random
) -> dict:
    """(CPU, wall) seconds per invocation for each variant, alternating variants invocation by invocation.

    Every variant sees the same moments of the machine's load, so the differences between them
    (what the table reports) keep little of it.
    """
    cpu, wall = time.process_time, time.perf_counter
    sums = {v.key: [0.0, 0.0] for v in variants}
    order = list(variants)
    for _ in range(workload.batch):
        rng.shuffle(order)
        for v in order:
            config, acc = v.config, sums[v.key]
            if workload.is_async:
                c0, w0 = cpu(), wall()
                loop.run_until_complete(workload.run(config))
            else:
                c0, w0 = cpu(), wall()
                workload.run(config)
            acc[0] += cpu() - c0
            acc[1] += wall() - w0
    return {key: (c / workload.batch, w / workload.batch) for key, (c, w) in sums.items()}


def _with_variant(variant: Variant, fn: Callable[[], Any]) -> Any:
    if variant.enter is not None:
        variant.enter()
    try:
        return fn()
    finally:
        if variant.exit is not None:
            variant.exit()


def _census(workloads, variants, exporter: DropExporter, loop) -> dict:
    """Spans, attributes and events each variant records per invocation (one untimed run)."""
    out: dict = {}
    exporter.counting = True
    try:
        for w in workloads:
            for v in variants:
                exporter.spans = exporter.attributes = exporter.events = 0
                _with_variant(v, lambda: _time_batch(w, v.config, 1, loop))
                out[(w.key, v.key)] = (exporter.spans, exporter.attributes, exporter.events)
    finally:
        exporter.counting = False
    return out


def _quantile(values: Sequence[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _summary(values: Sequence[float]) -> dict:
    return {
        "median": statistics.median(values) if values else float("nan"),
        "p25": _quantile(values, 0.25),
        "p75": _quantile(values, 0.75),
        "trimmed_mean": _trimmed_mean(values, 0.2),
    }


def _trimmed_mean(values: Sequence[float], cut: float) -> float:
    data = sorted(values)
    k = int(len(data) * cut)
    kept = data[k : len(data) - k] or data
    return sum(kept) / len(kept) if kept else float("nan")


def run_benchmark(
    rounds: int,
    scale: float,
    peers: bool,
    seed: int,
    progress: Callable[[str], None],
    clock: str = "cpu",
    only: Optional[Sequence[str]] = None,
    breakdown: bool = False,
) -> dict:
    os.environ.setdefault(CONTENT_ENV, "SPAN_ONLY")
    provider, exporter = _pipeline()
    workloads = [w for w in _build_workloads() if not only or w.key in only]
    for w in workloads:
        w.batch = max(1, round(w.batch * scale))
    variants = build_variants(provider, peers, breakdown)
    warnings.filterwarnings("ignore")  # after the imports: peers' deprecation warnings flood stderr
    active = [v for v in variants if not v.missing]
    loop = asyncio.new_event_loop()
    rng = random.Random(seed)
    samples: dict = {(w.key, v.key): [] for w in workloads for v in active}
    try:
        progress("warming up and counting spans per variant ...")
        for _ in range(2):
            for w in workloads:
                for v in active:
                    _with_variant(v, lambda: _time_batch(w, v.config, 1, loop))
        census = _census(workloads, active, exporter, loop)
        started = time.perf_counter()
        inline = [v for v in active if v.enter is None]
        patching = [v for v in active if v.enter is not None]
        for r in range(rounds):
            for w in workloads:
                gc.collect()
                for key, t in _interleaved(w, inline, loop, rng).items():
                    samples[(w.key, key)].append(t)
                for v in patching:  # instrumentor-only peers: a batch of their own, patched just for it
                    samples[(w.key, v.key)].append(_with_variant(v, lambda: _time_batch(w, v.config, w.batch, loop)))
            if r == 0 or (r + 1) % 5 == 0 or r + 1 == rounds:
                progress(f"round {r + 1}/{rounds} ({time.perf_counter() - started:.0f} s)")
    finally:
        loop.close()
        provider.shutdown()

    results: dict = {
        "rounds": rounds,
        "seed": seed,
        "clock": clock,
        "batch": {w.key: w.batch for w in workloads},
        "python": platform.python_version(),
        "versions": _versions(),
        "content_env": {CONTENT_ENV: os.environ.get(CONTENT_ENV)},
        "variants": [
            {"key": v.key, "label": v.label, "peer": v.peer, "missing": v.missing or None} for v in variants
        ],
        "workloads": [],
    }
    for w in workloads:
        entry: dict = {"key": w.key, "title": w.title, "census": {}, "clocks": {}}
        for v in active:
            if v.key != "baseline":
                spans, attrs, events = census[(w.key, v.key)]
                entry["census"][v.key] = {"spans": spans, "attributes": attrs, "events": events}
        for i, name in enumerate(CLOCKS):
            entry["clocks"][name] = _analyse({v.key: [t[i] for t in samples[(w.key, v.key)]] for v in active})
        ref, limit = TARGETS[w.key]
        ratio = entry["clocks"][clock]["variants"]["spanchain"][f"ratio_{ref}"]
        entry["target"] = {
            "reference": ref,
            "limit": limit,
            "ratio": ratio["of_medians"],
            "pass": ratio["of_medians"] <= limit,
        }
        off_key, off_ref, off_limit, off_workloads = CONTENT_OFF_TARGET
        off = entry["clocks"][clock]["variants"].get(off_key)
        if off is not None and w.key in off_workloads:
            off_ratio = off[f"ratio_{off_ref}"]["of_medians"]
            entry["target_content_off"] = {
                "reference": off_ref,
                "limit": off_limit,
                "ratio": off_ratio,
                "pass": off_ratio <= off_limit,
            }
        results["workloads"].append(entry)
    results["pass"] = all(
        w["target"]["pass"] and w.get("target_content_off", {}).get("pass", True) for w in results["workloads"]
    )
    return results


def _split(only: Sequence[str], scale: float, seed: int) -> list[dict]:
    from benchmarks.split import measure

    provider, _ = _pipeline()
    workloads = [w for w in _build_workloads() if not only or w.key in only]
    try:
        # one pass each, ten timed batches' worth of invocations per variant
        return [measure([w], provider, max(5, round(w.batch * 10 * scale)), seed)[0] for w in workloads]
    finally:
        provider.shutdown()


def _analyse(times: dict) -> dict:
    """Per-variant overhead over the baseline of the same round, summarised over rounds."""
    base = times["baseline"]
    overheads = {k: [t - b for t, b in zip(ts, base)] for k, ts in times.items() if k != "baseline"}
    out: dict = {
        "baseline_us": _scaled(_summary(base)),
        "baseline_samples_us": [round(t * 1e6, 2) for t in base],
        "variants": {},
    }
    for key, over in overheads.items():
        out["variants"][key] = {
            "time_us": _scaled(_summary(times[key])),
            "overhead_us": _scaled(_summary(over)),
            "ratio_floor": _ratio(over, overheads.get("floor")),
            "ratio_noop": _ratio(over, overheads.get("noop")),
            "samples_us": [round(t * 1e6, 2) for t in times[key]],
        }
    return out


def _scaled(summary: dict) -> dict:
    return {k: round(v * 1e6, 2) for k, v in summary.items()}


def _ratio(over: Sequence[float], ref: Optional[Sequence[float]]) -> dict:
    """Median overhead / the reference's median overhead, and the spread of per-round ratios."""
    if not ref:
        return {"of_medians": float("nan"), "p25": float("nan"), "p75": float("nan")}
    ref_median = statistics.median(ref)
    per_round = [o / r for o, r in zip(over, ref) if r > 0]
    return {
        "of_medians": round(statistics.median(over) / ref_median, 3) if ref_median > 0 else float("inf"),
        "p25": round(_quantile(per_round, 0.25), 3),
        "p75": round(_quantile(per_round, 0.75), 3),
    }


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in (
        "spanchain",
        "langchain-core",
        "opentelemetry-sdk",
        "openinference-instrumentation-langchain",
        "opentelemetry-instrumentation-langchain",
        "opentelemetry-instrumentation-genai-langchain",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --- reporting ----------------------------------------------------------------------------------------

SHORT = {
    "noop": "no-op handler",
    "floor": "floor handler",
    "spanchain": "spanchain",
    "otel_genai": "otel genai-langchain",
    "openllmetry": "openllmetry",
    "openinference": "openinference",
    "sc_no_redact": "  sc: no secret redact",
    "sc_no_content": "  sc: no content",
    "sc_no_attach": "  sc: no context attach",
}


def _x(ratio: float) -> str:
    """A ratio for the table; n/a when the reference overhead is not above zero (noise)."""
    return f"{ratio:.2f}" if ratio == ratio and ratio not in (float("inf"), float("-inf")) else "n/a"


def format_table(results: dict) -> str:
    clock = results["clock"]
    other = "wall" if clock == "cpu" else "cpu"
    lines: list[str] = []
    add = lines.append
    v = results["versions"]
    add(
        f"spanchain bench core: overhead per invocation over no callbacks, µs of {clock.upper()} time "
        f"(median of {results['rounds']} interleaved rounds, [p25 .. p75] over rounds)"
    )
    add(
        f"Python {results['python']}, langchain-core {v.get('langchain-core')}, opentelemetry-sdk "
        f"{v.get('opentelemetry-sdk')}; one SDK pipeline for all: TracerProvider + SimpleSpanProcessor -> "
        "exporter that drops spans"
    )
    add("")
    header = (
        f"  {'variant':<22}{'overhead':>10}  {'[p25 .. p75]':<20}{'x floor':>8}{'x no-op':>9}"
        f"{'spans':>7}{'attrs':>7}{'events':>7}"
    )
    for w in results["workloads"]:
        data = w["clocks"][clock]
        add(
            f"{w['key']}: {w['title']}  (no callbacks: {data['baseline_us']['median']:.1f} µs/invocation; "
            f"{results['batch'][w['key']]} invocations per timed batch)"
        )
        add(header)
        for var in results["variants"]:
            if var["key"] == "baseline":
                continue
            name = SHORT.get(var["key"], var["key"])
            if var["missing"]:
                add(f"  {name:<22}{'-':>10}  {var['missing']}")
                continue
            r = data["variants"][var["key"]]
            o = r["overhead_us"]
            c = w["census"][var["key"]]
            spread = f"[{o['p25']:.1f} .. {o['p75']:.1f}]"
            add(
                f"  {name:<22}{o['median']:>10.1f}  {spread:<20}{_x(r['ratio_floor']['of_medians']):>8}"
                f"{_x(r['ratio_noop']['of_medians']):>9}{c['spans']:>7}{c['attributes']:>7}{c['events']:>7}"
            )
        t = w["target"]
        ref = t["reference"]
        sc_ratio = data["variants"]["spanchain"][f"ratio_{ref}"]
        alt = w["clocks"][other]["variants"]["spanchain"][f"ratio_{ref}"]["of_medians"]
        ref_name = "floor" if ref == "floor" else "no-op"
        add(
            f"  target: spanchain <= {t['limit']}x the {ref_name} handler's overhead: {_x(t['ratio'])}x "
            f"(per-round ratios [{_x(sc_ratio['p25'])} .. {_x(sc_ratio['p75'])}]; {other} clock {_x(alt)}x) "
            f"-> {'PASS' if t['pass'] else 'FAIL'}"
        )
        off = w.get("target_content_off")
        if off is not None:
            add(
                f"  target: spanchain with content off <= {off['limit']}x the floor handler's overhead: "
                f"{_x(off['ratio'])}x -> {'PASS' if off['pass'] else 'FAIL'}"
            )
        add("")
    add("spans / attrs / events: what the variant recorded per invocation (counted in one untimed run).")
    add(
        f"Peers run with their defaults plus {CONTENT_ENV}={results['content_env'][CONTENT_ENV]}, so the upstream "
        "instrumentation records content like the others; openinference and openllmetry get their handler in "
        "config['callbacks']; otel genai-langchain only works through its instrumentor: it is instrumented around "
        "its own batches and LangChain is checked to be restored after every uninstrument."
    )
    verdicts = ", ".join(
        f"{w['key']} {'PASS' if w['target']['pass'] and w.get('target_content_off', {}).get('pass', True) else 'FAIL'}"
        for w in results["workloads"]
    )
    add(f"targets: {verdicts} -> {'PASS' if results['pass'] else 'FAIL'}")
    return "\n".join(lines)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="spanchain bench core",
        description="Per-invocation overhead of spanchain, a no-op handler, a minimal span-per-run handler "
        "and the peer LangChain instrumentations (when installed), over no callbacks, from one run with "
        "the variants interleaved.",
    )
    parser.add_argument("--rounds", type=int, default=30, help="rounds (default 30: two to four minutes)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the invocations per timed batch (default 1)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 3 rounds, small batches (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="leave the peer instrumentations out")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run spanchain with secret redaction, content capture or context attach off (one at a time)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="what the table and targets use: process CPU time (default; robust to other load) or wall time; "
        "the other clock's ratio is shown too",
    )
    parser.add_argument(
        "--workloads",
        default="",
        help=f"comma-separated subset of {','.join(TARGETS)} (default: all)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also show where the floor's and spanchain's time goes: OpenTelemetry SDK calls, content "
        "rendering, spanchain's own code (timers inside the callbacks, after the main table)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the per-round variant order")
    parser.add_argument(
        "--json",
        metavar="PATH",
        nargs="?",
        const="-",
        help="write every sample and summary as JSON to PATH; bare --json prints JSON instead of the table",
    )
    return parser.parse_args(list(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    rounds, scale = args.rounds, args.scale
    if args.quick:
        rounds, scale = min(rounds, 3), min(scale, 0.25)

    def progress(message: str) -> None:
        print(f"[bench core] {message}", file=sys.stderr, flush=True)

    only = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(only) - set(TARGETS))
    if unknown:
        print(f"spanchain bench core: unknown workload(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    results = run_benchmark(max(1, rounds), scale, not args.no_peers, args.seed, progress, args.clock, only, args.breakdown)
    if args.split:
        progress("timing inside the callbacks (--split) ...")
        results["split"] = _split(only, scale, args.seed)
    if args.json == "-":
        json.dump(results, sys.stdout, indent=1)
        print()
        return 0
    print(format_table(results))
    if args.split:
        from benchmarks.split import format_split

        print()
        print(format_split(results["split"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0
