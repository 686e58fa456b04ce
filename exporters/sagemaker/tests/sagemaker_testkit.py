"""Synthetic LangChain-shaped spans for exporter tests (built with a real SDK TracerProvider)."""

from __future__ import annotations

import json
import uuid

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from spanchain import semconv as sc


class TraceFactory:
    """Builds finished spans shaped like the handler's: chain → llm (+tool), with run ids."""

    def __init__(self, service: str = "svc-under-test") -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("tests")

    def take(self):
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return spans

    def trace(
        self,
        *,
        input_tokens: int = 10,
        output_tokens: int = 5,
        model: str = "fake-model",
        temperature: float = 0.25,
        tool: str | None = None,
        fail: bool = False,
        ttfc: float | None = None,
        chain_name: str = "MyChain",
        rollup: bool = True,
    ):
        """One trace; returns (root run id, spans)."""
        root = str(uuid.uuid4())
        children = 1 + (1 if tool else 0)
        with self.tracer.start_as_current_span(chain_name) as chain:
            chain.set_attributes(
                {
                    sc.LC_RUN_ID: root,
                    sc.LC_RUN_TYPE: "chain",
                    sc.LC_NAME: chain_name,
                    sc.LC_DESCENDANTS: children,
                    sc.LC_INPUT: json.dumps({"question": "q"}),
                }
            )
            if rollup:  # roll-ups must never be counted as usage
                chain.set_attribute(sc.ROLLUP_INPUT_TOKENS, input_tokens)
                chain.set_attribute(sc.ROLLUP_OUTPUT_TOKENS, output_tokens)
            with self.tracer.start_as_current_span(f"chat {model}") as llm:
                attrs = {
                    sc.LC_RUN_ID: str(uuid.uuid4()),
                    sc.LC_PARENT_RUN_ID: root,
                    sc.LC_ROOT_RUN_ID: root,
                    sc.LC_RUN_TYPE: "chat_model",
                    sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                    sc.GEN_AI_REQUEST_MODEL: model,
                    sc.GEN_AI_PROVIDER_NAME: "fake",
                    sc.GEN_AI_REQUEST_TEMPERATURE: temperature,
                    sc.GEN_AI_REQUEST_MAX_TOKENS: 64,
                    sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                    sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]
                    ),
                }
                if ttfc is not None:
                    attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
                    attrs[sc.LC_STREAM_CHUNKS] = 3
                llm.set_attributes(attrs)
            if tool:
                with self.tracer.start_as_current_span(f"execute_tool {tool}") as t:
                    t.set_attributes(
                        {
                            sc.LC_RUN_ID: str(uuid.uuid4()),
                            sc.LC_PARENT_RUN_ID: root,
                            sc.LC_ROOT_RUN_ID: root,
                            sc.LC_RUN_TYPE: "tool",
                            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                            sc.GEN_AI_TOOL_NAME: tool,
                            sc.GEN_AI_TOOL_CALL_ARGUMENTS: '{"a": 2}',
                            sc.GEN_AI_TOOL_CALL_RESULT: "4",
                        }
                    )
            if fail:
                chain.set_attribute(sc.ERROR_TYPE, "ValueError")
                chain.set_status(Status(StatusCode.ERROR, "chain exploded"))
        return root, self.take()


def metric_summaries(description: dict) -> dict:
    return {m["MetricName"]: m for m in description.get("Metrics", []) if "MetricName" in m}


def parameters(description: dict) -> dict:
    out = {}
    for key, value in description.get("Parameters", {}).items():
        out[key] = value.get("NumberValue", value.get("StringValue"))
    return out

