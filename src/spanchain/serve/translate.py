"""Spans from other LangChain instrumentations → our attribute vocabulary (pure, no I/O).

`spanchain serve` may receive spans written by OpenInference, OpenLLMetry (Traceloop), LangSmith's
OTel mode or any gen_ai.* instrumentation. The Aim and SageMaker exporters read only the names in
`spanchain.semconv`, so we add those names, as far as the foreign attributes allow:

- run type and gen_ai.operation.name from `openinference.span.kind`, `traceloop.span.kind`,
  `llm.request.type`, `langsmith.span.kind`;
- model, provider, token usage and request parameters;
- prompts and outputs (content) as gen_ai.input/output.messages and langchain.input/output;
- metadata, tags, session → langchain.metadata.*, langchain.tags, gen_ai.conversation.id;
- run identity (langchain.run_id / parent_run_id / root_run_id) from the span, parent and trace
  ids, so exporters group the trace and see its root.

Nothing is removed and nothing already present is overwritten; a span that carries none of these
conventions (an HTTP span, a span of ours) is passed through untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from opentelemetry.sdk.trace import ReadableSpan

from spanchain import semconv as sc
from spanchain.content.spanedit import copy_span
from spanchain.export.traces import span_id_hex, trace_id_hex

# Which convention a translated span came from; helps when a field is missing in Aim/SageMaker.
TRANSLATED_FROM = "spanchain.translated_from"

OPENINFERENCE = "openinference"
OPENLLMETRY = "openllmetry"
LANGSMITH = "langsmith"
GEN_AI = "gen_ai"

_RUN_TYPE_BY_OPERATION = {
    sc.OP_CHAT: "chat_model",
    sc.OP_TEXT_COMPLETION: "llm",
    sc.OP_EXECUTE_TOOL: "tool",
    sc.OP_RETRIEVAL: "retriever",
    "embeddings": "embedding",
    sc.OP_INVOKE_AGENT: "chain",
    sc.OP_INVOKE_WORKFLOW: "chain",
    "vector_db_retrieve": "retriever",  # OpenLLMetry's retriever operation
    "execute_task": "chain",  # OpenLLMetry's nested chain step
}

# OpenInference span kind → gen_ai.operation.name (None: a chain step with no GenAI operation).
_OI_OPERATION = {
    "LLM": sc.OP_CHAT,
    "TOOL": sc.OP_EXECUTE_TOOL,
    "RETRIEVER": sc.OP_RETRIEVAL,
    "RERANKER": sc.OP_RETRIEVAL,
    "EMBEDDING": "embeddings",
    "AGENT": sc.OP_INVOKE_AGENT,
    "CHAIN": None,
    "GUARDRAIL": None,
    "EVALUATOR": None,
}

_TRACELOOP_OPERATION = {
    "workflow": sc.OP_INVOKE_WORKFLOW,
    "agent": sc.OP_INVOKE_AGENT,
    "tool": sc.OP_EXECUTE_TOOL,
    "task": None,
}

_LANGSMITH_RUN_TYPES = {"llm", "chain", "tool", "retriever", "prompt", "parser", "embedding"}

# Request parameters as LangChain/provider invocation params name them.
_INVOCATION_PARAMS = {
    "temperature": sc.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_tokens_to_sample": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_output_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": sc.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": sc.GEN_AI_REQUEST_TOP_P,
    "top_k": sc.GEN_AI_REQUEST_TOP_K,
    "stop": sc.GEN_AI_REQUEST_STOP_SEQUENCES,
    "stop_sequences": sc.GEN_AI_REQUEST_STOP_SEQUENCES,
    "seed": sc.GEN_AI_REQUEST_SEED,
    "frequency_penalty": sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": sc.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "n": sc.GEN_AI_REQUEST_CHOICE_COUNT,
    "stream": sc.GEN_AI_REQUEST_STREAM,
}

# Older gen_ai names (and OpenLLMetry's) that have a current equivalent.
_RENAMES = {
    "gen_ai.system": sc.GEN_AI_PROVIDER_NAME,
    "gen_ai.usage.prompt_tokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "gen_ai.usage.completion_tokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.cache_read_input_tokens": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_creation_input_tokens": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "llm.usage.prompt_tokens": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "llm.usage.completion_tokens": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    # OpenInference
    "llm.model_name": sc.GEN_AI_REQUEST_MODEL,
    "llm.provider": sc.GEN_AI_PROVIDER_NAME,
    "llm.system": sc.GEN_AI_PROVIDER_NAME,
    "llm.token_count.prompt": sc.GEN_AI_USAGE_INPUT_TOKENS,
    "llm.token_count.completion": sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    "llm.token_count.prompt_details.cache_read": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "llm.token_count.prompt_details.cache_write": sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "llm.token_count.completion_details.reasoning": sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    "input.value": sc.LC_INPUT,
    "output.value": sc.LC_OUTPUT,
    "tool.name": sc.GEN_AI_TOOL_NAME,
    "tool.description": sc.GEN_AI_TOOL_DESCRIPTION,
    "tool_call.id": sc.GEN_AI_TOOL_CALL_ID,
    "session.id": sc.GEN_AI_CONVERSATION_ID,
    # OpenLLMetry
    "traceloop.entity.input": sc.LC_INPUT,
    "traceloop.entity.output": sc.LC_OUTPUT,
    "traceloop.workflow.name": sc.GEN_AI_WORKFLOW_NAME,
    "traceloop.entity.name": sc.LC_NAME,
    # LangSmith OTel mode (legacy whole-payload names)
    "gen_ai.prompt": sc.LC_INPUT,
    "gen_ai.completion": sc.LC_OUTPUT,
}

_METADATA_PREFIXES = ("traceloop.association.properties.", "langsmith.metadata.")

_INDEXED = re.compile(r"^(?P<base>.+?)\.(?P<index>\d+)\.(?P<rest>.+)$")


def detect(attrs: Mapping[str, Any]) -> str | None:
    """Which foreign convention a span uses, or None (ours, or not a GenAI span at all)."""
    if sc.LC_RUN_ID in attrs:
        return None
    if "openinference.span.kind" in attrs:
        return OPENINFERENCE
    if any(k.startswith("traceloop.") for k in attrs) or "llm.request.type" in attrs:
        return OPENLLMETRY
    if any(k.startswith("langsmith.") for k in attrs):
        return LANGSMITH
    if any(k.startswith("gen_ai.") for k in attrs):
        return GEN_AI
    return None


def _indexed(attrs: Mapping[str, Any], base: str) -> dict[int, dict[str, Any]]:
    """`base.0.role=..., base.0.content=...` → {0: {"role": ..., "content": ...}}."""
    out: dict[int, dict[str, Any]] = {}
    prefix = base + "."
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        m = _INDEXED.match(key)
        if m and m.group("base") == base:
            out.setdefault(int(m.group("index")), {})[m.group("rest")] = value
    return out


def _message(fields: Mapping[str, Any], prefix: str = "") -> dict:
    """One flattened message (OpenInference `message.*` or OpenLLMetry plain keys) → parts form."""
    role = fields.get(prefix + "role") or "user"
    parts: list[dict] = []
    content = fields.get(prefix + "content")
    if content not in (None, ""):
        parts.append({"type": "text", "content": str(content)})
    for _, item in sorted(_indexed(fields, prefix + "contents").items()):
        text = item.get("message_content.text")
        if text not in (None, ""):
            parts.append({"type": "text", "content": str(text)})
    calls = _indexed(fields, prefix + "tool_calls")
    for _, call in sorted(calls.items()):
        name = call.get("tool_call.function.name", call.get("name"))
        args = call.get("tool_call.function.arguments", call.get("arguments"))
        call_id = call.get("tool_call.id", call.get("id"))
        part = {"type": "tool_call", "name": name, "arguments": args}
        if call_id:
            part["id"] = call_id
        parts.append(part)
    call_id = fields.get(prefix + "tool_call_id")
    if call_id and role == "tool":
        parts = [{"type": "tool_call_response", "id": call_id, "response": content}]
    message = {"role": str(role), "parts": parts}
    finish = fields.get("finish_reason")
    if finish:
        message["finish_reason"] = str(finish)
    return message


def _messages(attrs: Mapping[str, Any], base: str, prefix: str = "") -> list[dict]:
    return [_message(fields, prefix) for _, fields in sorted(_indexed(attrs, base).items())]


def _documents(attrs: Mapping[str, Any]) -> list[dict]:
    docs = []
    for _, fields in sorted(_indexed(attrs, "retrieval.documents").items()):
        doc = {"id": fields.get("document.id"), "content": fields.get("document.content")}
        meta = fields.get("document.metadata")
        if meta is not None:
            doc["metadata"] = _maybe_json(meta)
        if "document.score" in fields:
            doc["score"] = fields["document.score"]
        docs.append(doc)
    return docs


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _attr_value(value: Any) -> Any:
    """Metadata values that are not span-attribute types become JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _invocation_params(raw: Any) -> dict[str, Any]:
    params = _maybe_json(raw)
    out: dict[str, Any] = {}
    if not isinstance(params, dict):
        return out
    for key, name in _INVOCATION_PARAMS.items():
        value = params.get(key)
        if value is None or name in out:
            continue
        if name == sc.GEN_AI_REQUEST_STOP_SEQUENCES:
            value = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
        elif isinstance(value, (dict, list)):
            continue
        out[name] = value
    model = params.get("model") or params.get("model_name")
    if isinstance(model, str):
        out[sc.GEN_AI_REQUEST_MODEL] = model
    return out


def _operation(convention: str, attrs: Mapping[str, Any]) -> str | None:
    if sc.GEN_AI_OPERATION_NAME in attrs:
        return str(attrs[sc.GEN_AI_OPERATION_NAME])
    if convention == OPENINFERENCE:
        kind = str(attrs.get("openinference.span.kind", "")).upper()
        op = _OI_OPERATION.get(kind)
        if op == sc.OP_CHAT and not any(k.startswith("llm.input_messages.") for k in attrs):
            if any(k.startswith("llm.prompts") for k in attrs):
                return sc.OP_TEXT_COMPLETION
        return op
    if convention == OPENLLMETRY:
        request_type = str(attrs.get("llm.request.type", "")).lower()
        if request_type == "chat":
            return sc.OP_CHAT
        if request_type == "completion":
            return sc.OP_TEXT_COMPLETION
        return _TRACELOOP_OPERATION.get(str(attrs.get("traceloop.span.kind", "")).lower())
    return None


def _run_type(convention: str, attrs: Mapping[str, Any], operation: str | None) -> str:
    if convention == LANGSMITH:
        kind = str(attrs.get("langsmith.span.kind", "")).lower()
        if kind == "llm":
            return "chat_model" if operation == sc.OP_CHAT else "llm"
        if kind in _LANGSMITH_RUN_TYPES:
            return kind
    return _RUN_TYPE_BY_OPERATION.get(operation or "", "chain")


def translate_attributes(attrs: Mapping[str, Any], name: str = "") -> dict[str, Any] | None:
    """Our vocabulary added to a foreign span's attributes; None when there is nothing to do."""
    convention = detect(attrs)
    if convention is None:
        return None
    out = dict(attrs)

    def put(key: str, value: Any) -> None:
        if value is not None and value != "" and key not in out:
            out[key] = value

    for old, new in _RENAMES.items():
        if old in attrs:
            put(new, attrs[old])
    for key, value in attrs.items():
        for prefix in _METADATA_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                put(sc.LC_METADATA_PREFIX + key[len(prefix):], _attr_value(value))

    operation = _operation(convention, attrs)
    put(sc.GEN_AI_OPERATION_NAME, operation)
    put(sc.LC_RUN_TYPE, _run_type(convention, attrs, operation))
    put(sc.LC_NAME, name or None)

    if convention == OPENINFERENCE:
        for key, value in _invocation_params(attrs.get("llm.invocation_parameters")).items():
            put(key, value)
        inputs = _messages(attrs, "llm.input_messages", "message.")
        if not inputs:
            prompts = attrs.get("llm.prompts")
            if isinstance(prompts, (list, tuple)):
                inputs = [{"role": "user", "parts": [{"type": "text", "content": str(p)}]} for p in prompts]
            else:
                inputs = [
                    {"role": "user", "parts": [{"type": "text", "content": str(f.get("prompt.text", ""))}]}
                    for _, f in sorted(_indexed(attrs, "llm.prompts").items())
                ]
        outputs = _messages(attrs, "llm.output_messages", "message.")
        if outputs and attrs.get("llm.finish_reason"):
            outputs[-1].setdefault("finish_reason", str(attrs["llm.finish_reason"]))
        if inputs:
            put(sc.GEN_AI_INPUT_MESSAGES, json.dumps(inputs, ensure_ascii=False))
        if outputs:
            put(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(outputs, ensure_ascii=False))
        docs = _documents(attrs)
        if docs:
            put(sc.GEN_AI_RETRIEVAL_DOCUMENTS, json.dumps(docs, ensure_ascii=False, default=str))
        meta = _maybe_json(attrs.get("metadata"))
        if isinstance(meta, dict):
            for key, value in meta.items():
                put(sc.LC_METADATA_PREFIX + str(key), _attr_value(value))
        tags = attrs.get("tag.tags")
        if isinstance(tags, (list, tuple)):
            put(sc.LC_TAGS, tuple(str(t) for t in tags))
        if operation == sc.OP_EXECUTE_TOOL:
            put(sc.GEN_AI_TOOL_CALL_ARGUMENTS, attrs.get("input.value"))
            put(sc.GEN_AI_TOOL_CALL_RESULT, attrs.get("output.value"))
        if operation == sc.OP_RETRIEVAL:
            put(sc.GEN_AI_RETRIEVAL_QUERY_TEXT, attrs.get("input.value"))

    if convention in (OPENLLMETRY, GEN_AI, LANGSMITH):
        inputs = _messages(attrs, "gen_ai.prompt")
        outputs = _messages(attrs, "gen_ai.completion")
        if inputs:
            put(sc.GEN_AI_INPUT_MESSAGES, json.dumps(inputs, ensure_ascii=False))
        if outputs:
            put(sc.GEN_AI_OUTPUT_MESSAGES, json.dumps(outputs, ensure_ascii=False))
            reasons = tuple(m["finish_reason"] for m in outputs if m.get("finish_reason"))
            if reasons:
                put(sc.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
        tags = attrs.get("langsmith.span.tags")
        if isinstance(tags, str) and tags:
            put(sc.LC_TAGS, tuple(t.strip() for t in tags.split(",") if t.strip()))

    # LangChain's own ls_* metadata names the model when the instrumentation did not.
    put(sc.GEN_AI_REQUEST_MODEL, out.get(sc.LC_METADATA_PREFIX + "ls_model_name"))
    put(sc.GEN_AI_PROVIDER_NAME, out.get(sc.LC_METADATA_PREFIX + "ls_provider"))

    out[TRANSLATED_FROM] = convention
    return out


def translate_span(span: ReadableSpan) -> ReadableSpan:
    """The span with our vocabulary added, or the same object if it needs no translation."""
    attrs = translate_attributes(span.attributes or {}, span.name)
    if attrs is None:
        return span
    # Foreign spans carry no LangChain run ids; the span ids stand in for them so that exporters
    # group by trace (root_run_id = trace id) and recognise the trace's root (no parent).
    attrs.setdefault(sc.LC_RUN_ID, span_id_hex(span.context.span_id))
    attrs.setdefault(sc.LC_ROOT_RUN_ID, trace_id_hex(span.context.trace_id))
    if span.parent is not None:
        attrs.setdefault(sc.LC_PARENT_RUN_ID, span_id_hex(span.parent.span_id))
    return copy_span(span, attributes=attrs)
