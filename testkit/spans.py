"""The span factory of the tests, the fault suite and the benchmarks: finished SDK spans.

- `agent_spans` / `emit_agent_trace`: LangChain-shaped spans without LangChain. The attributes
  follow spanchain.semconv exactly as the bridge writes them, so the exporters can be exercised
  (and measured) without running a model.
- `make_spans`: n plain traces (a root with children), attributes of every type.
- `spans_from_specs`: exactly the spans described, `(name, attributes, parent index)` each.
"""

from __future__ import annotations

import json
import uuid

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from spanchain import semconv as sc


def _ids(run_id, parent, root):
    attrs = {sc.LC_RUN_ID: run_id, sc.LC_ROOT_RUN_ID: root}
    if parent:
        attrs[sc.LC_PARENT_RUN_ID] = parent
    return attrs


def emit_agent_trace(tracer, index: int = 0, *, content: bool = True, fail_tool: bool = False,
                     question: str | None = None) -> None:
    """One agent run: root chain → chat model (asks for a tool) → tool → retriever → chat model."""
    question = question or f"What is {index} + 2?"
    root = str(uuid.uuid4())
    with tracer.start_as_current_span("invoke_agent calc_agent") as agent:
        agent.set_attributes({**_ids(root, None, root), sc.LC_RUN_TYPE: "chain", sc.LC_NAME: "calc_agent",
                              sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: "calc_agent",
                              sc.LC_DESCENDANTS: 4})
        if content:
            agent.set_attribute(sc.LC_INPUT, json.dumps({"input": question}))
        llm1 = str(uuid.uuid4())
        with tracer.start_as_current_span("chat fake-gpt") as span:
            span.set_attributes({**_ids(llm1, root, root), sc.LC_RUN_TYPE: "chat_model", sc.LC_NAME: "FakeChat",
                                 sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: "fake-gpt",
                                 sc.GEN_AI_PROVIDER_NAME: "fake", sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
                                 sc.GEN_AI_REQUEST_MAX_TOKENS: 256, sc.GEN_AI_USAGE_INPUT_TOKENS: 12 + index,
                                 sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.05,
                                 sc.LC_STREAM_CHUNKS: 3})
            if content:
                span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": question}]}]))
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(
                    [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
                        {"type": "tool_call", "id": f"call_{index}", "name": "calculator",
                         "arguments": {"expression": f"{index} + 2"}}]}]))
            span.add_event(sc.EVENT_AGENT_ACTION, {sc.GEN_AI_TOOL_NAME: "calculator",
                                                   "tool_input": f"{index} + 2", "log": "I should add."})
        tool = str(uuid.uuid4())
        with tracer.start_as_current_span("execute_tool calculator") as span:
            span.set_attributes({**_ids(tool, root, root), sc.LC_RUN_TYPE: "tool", sc.LC_NAME: "calculator",
                                 sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: "calculator"})
            if content:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_ARGUMENTS, json.dumps({"expression": f"{index} + 2"}))
            if fail_tool:
                span.set_attribute(sc.ERROR_TYPE, "ZeroDivisionError")
                span.add_event("exception", {"exception.type": "ZeroDivisionError",
                                             "exception.message": "division by zero",
                                             "exception.stacktrace": "Traceback ...\nZeroDivisionError"})
                span.set_status(Status(StatusCode.ERROR, "division by zero"))
            elif content:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, str(index + 2))
        retriever = str(uuid.uuid4())
        with tracer.start_as_current_span("retrieval docs") as span:
            span.set_attributes({**_ids(retriever, root, root), sc.LC_RUN_TYPE: "retriever", sc.LC_NAME: "docs",
                                 sc.GEN_AI_OPERATION_NAME: sc.OP_RETRIEVAL})
            if content:
                span.set_attribute(sc.GEN_AI_RETRIEVAL_QUERY_TEXT, "addition")
                span.set_attribute(sc.GEN_AI_RETRIEVAL_DOCUMENTS, json.dumps(
                    [{"id": "d1", "content": "Addition adds numbers.", "metadata": {"source": "math.txt"}}]))
        llm2 = str(uuid.uuid4())
        with tracer.start_as_current_span("chat fake-gpt") as span:
            span.set_attributes({**_ids(llm2, root, root), sc.LC_RUN_TYPE: "chat_model", sc.LC_NAME: "FakeChat",
                                 sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: "fake-gpt",
                                 sc.GEN_AI_USAGE_INPUT_TOKENS: 30, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5})
            if content:
                span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(
                    [{"role": "assistant", "finish_reason": "stop",
                      "parts": [{"type": "text", "content": f"The answer is {index + 2}."}]}]))
        agent.add_event(sc.EVENT_AGENT_FINISH, {"output": f"The answer is {index + 2}.", "log": "done"})
        if content:
            agent.set_attribute(sc.LC_OUTPUT, json.dumps({"output": f"The answer is {index + 2}."}))


def agent_spans(count: int = 1, *, service: str = "synthetic-app", **kwargs) -> list[ReadableSpan]:
    """Finished spans of `count` agent traces, in the order the SDK ends them (children first)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
    for i in range(count):
        emit_agent_trace(tracer, i, **kwargs)
    provider.shutdown()
    return list(memory.get_finished_spans())


def make_spans(n: int, prefix: str = "s", children: int = 0) -> list[ReadableSpan]:
    """n finished root spans (each with `children` child spans), attributes of every type."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "faults"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("faults", "1.0")
    for i in range(n):
        with tracer.start_as_current_span(f"{prefix}{i}") as root:
            root.set_attributes({"i": i, "f": i / 3, "ok": True, "tags": ("a", "b"), "name": prefix})
            for c in range(children):
                with tracer.start_as_current_span(f"{prefix}{i}.{c}") as child:
                    child.add_event("tick", {"c": c})
                    if c % 2:
                        child.set_status(Status(StatusCode.ERROR, "boom"))
    return list(mem.get_finished_spans())


def spans_from_specs(specs, resource_attrs=None) -> list[ReadableSpan]:
    """Finished SDK spans: specs = [(name, attributes, parent_index or None), ...]."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create(resource_attrs or {"service.name": "eco-test"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("eco")
    live = []
    for name, attrs, parent in specs:
        ctx = set_span_in_context(live[parent]) if parent is not None else None
        live.append(tracer.start_span(name, context=ctx, attributes=attrs))
    for span in reversed(live):
        span.end()
    return list(mem.get_finished_spans())
