"""Backend-neutral views of finished spans, shared by every exporter.

- `span_to_dict`: one span as plain JSON-able data (SageMaker artifacts, the console view, tests).
- `render_tree`: one readable, indented rendering of a whole trace (Aim Text, console).
- `seed_counters`: the 13 counters of langchain_community's Aim/SageMaker handlers, derived
  from spans instead of mutable handler state.
All pure: no I/O, no threads.
"""

from __future__ import annotations

import json
import math
from typing import Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from spanchain import semconv as sc


def span_id_hex(span_id: int) -> str:
    return format(span_id, "016x")


def trace_id_hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def duration_s(span: ReadableSpan) -> float:
    if span.start_time is None or span.end_time is None:
        return 0.0
    return max(0, span.end_time - span.start_time) / 1e9


def is_error(span: ReadableSpan) -> bool:
    return span.status is not None and span.status.status_code == StatusCode.ERROR


def parent_span_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def group_key(span: ReadableSpan) -> str:
    """The LangChain root run a span belongs to; foreign spans group by trace id."""
    attrs = span.attributes or {}
    root = attrs.get(sc.LC_ROOT_RUN_ID)
    if not root and is_langchain_root(span):
        root = attrs.get(sc.LC_RUN_ID)
    if root:
        return str(root)
    return trace_id_hex(span.context.trace_id)


def is_langchain_root(span: ReadableSpan) -> bool:
    attrs = span.attributes or {}
    return sc.LC_RUN_ID in attrs and not attrs.get(sc.LC_PARENT_RUN_ID)


# Attributes that hold JSON text: trace documents carry them as JSON values, so readers decode once.
JSON_ATTRIBUTES = frozenset(
    {
        sc.LC_INPUT,
        sc.LC_OUTPUT,
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.GEN_AI_SYSTEM_INSTRUCTIONS,
        sc.GEN_AI_RETRIEVAL_DOCUMENTS,
        sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    }
)


def _plain(value):
    """JSON-able: tuples as lists; NaN as null and infinities as strings (JSON has neither)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _attribute_value(key: str, value):
    """JSON text of a JSON attribute as its value; anything that does not parse (redacted or cut
    content) stays the string it was."""
    if key in JSON_ATTRIBUTES and isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value, parse_constant=lambda name: None)
        except (ValueError, RecursionError):
            return value
    return _plain(value)


def _resource_dict(span: ReadableSpan) -> dict:
    if span.resource is None:
        return {}
    return {k: _plain(v) for k, v in (span.resource.attributes or {}).items()}


def span_to_dict(span: ReadableSpan, json_values: bool = False) -> dict:
    """A finished span as JSON-able data (ids as hex, times as ns since epoch); with
    `json_values`, JSON attributes are decoded (see `JSON_ATTRIBUTES`)."""
    value_of = _attribute_value if json_values else (lambda _key, value: _plain(value))
    return {
        "name": span.name,
        "trace_id": trace_id_hex(span.context.trace_id),
        "span_id": span_id_hex(span.context.span_id),
        "parent_span_id": span_id_hex(span.parent.span_id) if span.parent else None,
        "kind": span.kind.name if span.kind is not None else None,
        "start_time_ns": span.start_time,
        "end_time_ns": span.end_time,
        "duration_s": duration_s(span),
        "status": {
            "code": span.status.status_code.name if span.status else "UNSET",
            "description": span.status.description if span.status else None,
        },
        "attributes": {k: value_of(k, v) for k, v in (span.attributes or {}).items()},
        "events": [
            {
                "name": e.name,
                "time_ns": e.timestamp,
                "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()},
            }
            for e in span.events
        ],
        "resource": _resource_dict(span),
    }


def trace_to_json(spans: Sequence[ReadableSpan]) -> str:
    """A whole trace as a JSON document: spans ordered by start time, plus a summary.

    The resource is written once for the document (a span whose resource differs keeps its own),
    JSON attributes (inputs, outputs, messages) are JSON values, and NaN/infinities become null and
    strings, so no value can make the document fail.
    """
    ordered = sorted(spans, key=lambda s: (s.start_time or 0, s.context.span_id))
    resource = _resource_dict(ordered[0]) if ordered else {}
    span_docs = []
    for span in ordered:
        doc = span_to_dict(span, json_values=True)
        if doc["resource"] == resource:
            del doc["resource"]
        span_docs.append(doc)
    doc = {
        "trace_id": trace_id_hex(ordered[0].context.trace_id) if ordered else None,
        "resource": resource,
        "summary": trace_summary(ordered),
        "spans": span_docs,
    }
    return json.dumps(json_safe(doc), default=str, allow_nan=False, ensure_ascii=False)


def json_safe(value):
    """NaN/inf anywhere (also inside parsed JSON values or the summary) as null/strings, so
    `json.dumps(..., allow_nan=False)` never fails and strict JSON readers can read the result."""
    if isinstance(value, float):
        return _plain(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# --- summaries -----------------------------------------------------------------------------

_LLM_TYPES = {"llm", "chat_model"}


def run_type(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    rt = attrs.get(sc.LC_RUN_TYPE)
    if rt:
        return str(rt)
    op = attrs.get(sc.GEN_AI_OPERATION_NAME)
    return {
        sc.OP_CHAT: "chat_model",
        sc.OP_TEXT_COMPLETION: "llm",
        sc.OP_EXECUTE_TOOL: "tool",
        sc.OP_RETRIEVAL: "retriever",
    }.get(str(op), "chain" if op else "other")


def _int_attr(attrs: Mapping, key: str) -> int:
    value = attrs.get(key)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return 0


def _float_attr(attrs: Mapping, key: str) -> float | None:
    """A numeric attribute as float; None when missing or not a number (foreign spans)."""
    try:
        value = attrs.get(key)
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def token_usage(span: ReadableSpan) -> tuple[int, int]:
    """(input, output) tokens of a model span; 0 for anything else (roll-ups are not usage)."""
    attrs = span.attributes or {}
    return _int_attr(attrs, sc.GEN_AI_USAGE_INPUT_TOKENS), _int_attr(
        attrs, sc.GEN_AI_USAGE_OUTPUT_TOKENS
    )


def usage_unknown(span: ReadableSpan) -> bool:
    """A model span whose model reported no token usage: its tokens are unknown, not zero."""
    attrs = span.attributes or {}
    return run_type(span) in _LLM_TYPES and attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS) is None and (
        attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) is None
    )


# Which of the seed handlers' counters each LangChain callback bumps, besides "step" (bumped by
# every callback). Drop-in handlers count live with this table; `seed_counters` derives the same
# numbers from finished spans. As in `seed_counters`, an agent action is not a tool start.
SEED_CALLBACK_COUNTERS: dict[str, tuple[str, ...]] = {
    "on_llm_start": ("llm_starts", "starts"),
    "on_chat_model_start": ("llm_starts", "starts"),
    "on_llm_new_token": ("llm_streams",),
    "on_llm_end": ("llm_ends", "ends"),
    "on_llm_error": ("errors",),
    "on_chain_start": ("chain_starts", "starts"),
    "on_chain_end": ("chain_ends", "ends"),
    "on_chain_error": ("errors",),
    "on_tool_start": ("tool_starts", "starts"),
    "on_tool_end": ("tool_ends", "ends"),
    "on_tool_error": ("errors",),
    "on_text": ("text_ctr",),
    "on_agent_action": ("starts",),
    "on_agent_finish": ("agent_ends", "ends"),
}


def seed_counters(spans: Iterable[ReadableSpan]) -> dict[str, int]:
    """The 13 counters of langchain_community's handlers, computed from finished spans.

    Unlike the seeds, an agent action is not also counted as a tool start (the tool run counts
    itself), and an errored run counts as an error, not an end.
    """
    c = dict.fromkeys(
        (
            "step",
            "starts",
            "ends",
            "errors",
            "text_ctr",
            "chain_starts",
            "chain_ends",
            "llm_starts",
            "llm_ends",
            "llm_streams",
            "tool_starts",
            "tool_ends",
            "agent_ends",
        ),
        0,
    )
    for span in spans:
        attrs = span.attributes or {}
        if sc.LC_RUN_ID not in attrs and sc.GEN_AI_OPERATION_NAME not in attrs:
            continue
        rt = run_type(span)
        kind = "llm" if rt in _LLM_TYPES else "tool" if rt == "tool" else "chain"
        if rt == "retriever":
            kind = None
        failed = is_error(span)
        if kind:
            c[f"{kind}_starts"] += 1
            c["starts"] += 1
            if not failed:
                c[f"{kind}_ends"] += 1
                c["ends"] += 1
        if failed:
            c["errors"] += 1
        c["llm_streams"] += _int_attr(attrs, sc.LC_STREAM_CHUNKS)
        for event in span.events:
            if event.name == sc.EVENT_TEXT:
                c["text_ctr"] += 1
            elif event.name == sc.EVENT_AGENT_FINISH:
                c["agent_ends"] += 1
                c["ends"] += 1
            elif event.name == sc.EVENT_AGENT_ACTION:
                c["starts"] += 1
    c["step"] = c["starts"] + c["ends"] + c["errors"] + c["llm_streams"] + c["text_ctr"]
    return c


def trace_summary(spans: Sequence[ReadableSpan]) -> dict:
    input_tokens = output_tokens = 0
    for span in spans:
        i, o = token_usage(span)
        input_tokens += i
        output_tokens += o
    roots = [s for s in spans if is_langchain_root(s)]
    root = roots[0] if roots else (spans[0] if spans else None)
    return {
        "root_name": root.name if root is not None else None,
        "span_count": len(spans),
        "duration_s": duration_s(root) if root is not None else 0.0,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "errors": sum(1 for s in spans if is_error(s)),
        "counters": seed_counters(spans),
    }


# --- rendering -------------------------------------------------------------------------------


def _describe(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    parts = [f"{span.name}", f"[{run_type(span)}]", f"{duration_s(span) * 1000:.1f} ms"]
    i, o = token_usage(span)
    if i or o:
        parts.append(f"tokens {i}→{o}")
    elif usage_unknown(span):
        parts.append("tokens unknown")
    ttfc = _float_attr(attrs, sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    if ttfc is not None:
        parts.append(f"ttfc {ttfc * 1000:.1f} ms")
    if is_error(span):
        parts.append("ERROR " + error_label(span.status.description, attrs.get(sc.ERROR_TYPE)))
    if attrs.get(sc.LC_ABANDONED):
        parts.append("(abandoned)")
    return "  ".join(parts)


def error_label(description: str | None, error_type) -> str:
    """`Type: message`, without repeating the type when the description already starts with it."""
    description = description or ""
    if not error_type:
        return description
    short = str(error_type).rsplit(".", 1)[-1]
    if description.startswith(f"{short}:") or description == short:
        return description
    return f"{short}: {description}" if description else short


def children_by_parent(spans: Sequence[ReadableSpan]) -> dict[int | None, list[ReadableSpan]]:
    """Each span's children, by start time; key None holds the roots (orphans become roots)."""
    by_id = {s.context.span_id: s for s in spans}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = parent_span_id(span)
        children.setdefault(parent if parent in by_id else None, []).append(span)
    for kids in children.values():
        kids.sort(key=lambda s: (s.start_time or 0, s.context.span_id))
    return children


def render_tree(spans: Sequence[ReadableSpan]) -> str:
    """An indented tree: name, run type, duration, tokens, errors. Orphans become roots."""
    children = children_by_parent(spans)
    lines: list[str] = []

    def walk(span: ReadableSpan, prefix: str, last: bool, top: bool) -> None:
        connector = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + connector + _describe(span))
        kids = children.get(span.context.span_id, [])
        child_prefix = prefix if top else prefix + ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)
