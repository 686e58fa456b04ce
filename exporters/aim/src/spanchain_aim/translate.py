"""Spans → Aim records. Pure functions: no Aim import, no I/O, unit-testable alone.

Records carry no step: each carries an `order` (its span's or event's start time, in ns) and
an `owner` (the span, event or trace it belongs to). The writer numbers every sequence's points
0, 1, 2, ... in that order and gives an owner the same step again when its trace is written
again (spanchain_aim.steps), so a retry or replay overwrites points instead of adding them.

Sequence names are fixed (see docs/aim.md); contexts hold only low-cardinality values
(run type, runnable name, model, tool), never ids or counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain import semconv as sc
from spanchain.export.traces import (
    is_error,
    is_langchain_root,
    render_tree,
    run_type,
    span_id_hex,
    trace_id_hex,
    trace_summary,
)
from spanchain_aim import render
from spanchain_aim.figure import waterfall_layout
from spanchain_aim.sanitize import clean_text, context_value, finite_number, param_value

DEFAULT_MAX_TEXT_CHARS = 100_000

# Text sequences
LLM_INPUT = "llm.input"
LLM_OUTPUT = "llm.output"
CHAIN_INPUT = "chain.input"
CHAIN_OUTPUT = "chain.output"
TOOL_INPUT = "tool.input"
TOOL_OUTPUT = "tool.output"
RETRIEVER_QUERY = "retriever.query"
RETRIEVER_DOCUMENTS = "retriever.documents"
AGENT_ACTION = "agent.action"
AGENT_FINISH = "agent.finish"
TEXT = "text"
ERROR = "error"
TRACE = "trace"
TRACE_FIGURE = "trace.waterfall"  # aim.Figure: the trace as a plotly waterfall
TEXT_SEQUENCES = (LLM_INPUT, LLM_OUTPUT, CHAIN_INPUT, CHAIN_OUTPUT, TOOL_INPUT, TOOL_OUTPUT,
                  RETRIEVER_QUERY, RETRIEVER_DOCUMENTS, AGENT_ACTION, AGENT_FINISH, TEXT, ERROR, TRACE)

# Metric sequences (per span)
LATENCY = "latency_s"
TOKENS_INPUT = "tokens.input"
TOKENS_OUTPUT = "tokens.output"
TOKENS_TOTAL = "tokens.total"
TIME_TO_FIRST_CHUNK = "time_to_first_chunk_s"
ERRORS = "errors"  # 1 per failed span
TOOL_CALLS = "tool_calls"  # tool calls a model asked for
# Metric sequences (per trace, context {"name": root name})
TRACE_LATENCY = "trace.latency_s"
TRACE_TOKENS_INPUT = "trace.tokens.input"
TRACE_TOKENS_OUTPUT = "trace.tokens.output"
TRACE_TOKENS_TOTAL = "trace.tokens.total"
TRACE_ERRORS = "trace.errors"
TRACE_TOOL_CALLS = "trace.tool_calls"  # tool runs in the trace
TRACE_LLM_CALLS = "trace.llm_calls"
# + one of the seed handlers' 13 counter names; only on runs that ask for them (the drop-in
# AimCallbackHandler's, or `seed_counters=True`)
COUNTER_PREFIX = "counter."

_MODEL_TYPES = frozenset({"llm", "chat_model"})


@dataclass(frozen=True)
class TextRecord:
    name: str
    context: Mapping[str, str]
    order: int  # start time (ns) of the span/event: the writer numbers points in this order
    text: str
    owner: str


@dataclass(frozen=True)
class MetricRecord:
    name: str
    context: Mapping[str, str]
    order: int
    value: float
    owner: str


@dataclass(frozen=True)
class FigureRecord:
    name: str
    context: Mapping[str, str]
    order: int
    figure: tuple[list, dict]  # plotly `data` and `layout` (spanchain_aim.figure.plotly_figure)
    owner: str


Record = TextRecord | MetricRecord | FigureRecord


def order_of(time_ns: int | None) -> int:
    return max(0, int(time_ns or 0))


def in_step_order(records: Iterable[Record]) -> list[Record]:
    """Records in the order their steps are handed out: by start time, then owner (stable for
    a rewrite of the same spans)."""
    return sorted(records, key=lambda r: (r.order, r.owner))


def _model(attrs: Mapping) -> str | None:
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
    return str(model) if model else None


def runnable_name(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    return str(attrs.get(sc.LC_NAME) or attrs.get(sc.GEN_AI_TOOL_NAME) or span.name)


def span_context(span: ReadableSpan) -> dict[str, str]:
    """The low-cardinality context every record of this span uses."""
    attrs = span.attributes or {}
    rt = run_type(span)
    ctx = {"run_type": context_value(rt), "name": context_value(runnable_name(span))}
    if rt in _MODEL_TYPES:
        model = _model(attrs)
        if model:
            ctx["model"] = context_value(model)
    return ctx


def _content_texts(span: ReadableSpan, rt: str) -> list[tuple[str, str]]:
    """(sequence, text) pairs for the span's content attributes; none when content is off."""
    a = span.attributes or {}
    out: list[tuple[str, str]] = []

    def add(sequence: str, text: str | None) -> None:
        if text:
            out.append((sequence, text))

    if rt in _MODEL_TYPES:
        rendered = []
        if a.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS):
            rendered.append(render.render_instructions(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]))
        if a.get(sc.GEN_AI_INPUT_MESSAGES):
            rendered.append(render.render_messages(a[sc.GEN_AI_INPUT_MESSAGES]))
        elif a.get(sc.LC_INPUT):
            rendered.append(render.render_payload(a[sc.LC_INPUT]))
        add(LLM_INPUT, "\n".join(rendered))
        if a.get(sc.GEN_AI_OUTPUT_MESSAGES):
            add(LLM_OUTPUT, render.render_messages(a[sc.GEN_AI_OUTPUT_MESSAGES]))
        elif a.get(sc.LC_OUTPUT):
            add(LLM_OUTPUT, render.render_payload(a[sc.LC_OUTPUT]))
    elif rt == "tool":
        raw_in = a.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS) or a.get(sc.LC_INPUT)
        raw_out = a.get(sc.GEN_AI_TOOL_CALL_RESULT) or a.get(sc.LC_OUTPUT)
        add(TOOL_INPUT, render.render_payload(raw_in) if raw_in else None)
        add(TOOL_OUTPUT, render.render_payload(raw_out) if raw_out else None)
    elif rt == "retriever":
        query = a.get(sc.GEN_AI_RETRIEVAL_QUERY_TEXT) or a.get(sc.LC_INPUT)
        add(RETRIEVER_QUERY, render.render_payload(query) if query else None)
        docs = a.get(sc.GEN_AI_RETRIEVAL_DOCUMENTS)
        if docs:
            add(RETRIEVER_DOCUMENTS, render.render_documents(docs))
        elif a.get(sc.LC_OUTPUT):
            add(RETRIEVER_DOCUMENTS, render.render_payload(a[sc.LC_OUTPUT]))
    else:
        if a.get(sc.LC_INPUT):
            add(CHAIN_INPUT, render.render_payload(a[sc.LC_INPUT]))
        if a.get(sc.LC_OUTPUT):
            add(CHAIN_OUTPUT, render.render_payload(a[sc.LC_OUTPUT]))
    return out


def _event_texts(span: ReadableSpan) -> list[tuple[str, str, int, str, dict]]:
    """(sequence, text, order, owner suffix, extra context) for agent/text/exception events."""
    out = []
    for index, event in enumerate(span.events):
        ea = event.attributes or {}
        order = order_of(event.timestamp)
        if event.name == sc.EVENT_AGENT_ACTION:
            tool = ea.get(sc.GEN_AI_TOOL_NAME, "?")
            text = f"tool: {tool}\ninput: {render.render_payload(ea.get('tool_input', ''))}"
            if ea.get("log"):
                text += f"\n\nlog:\n{ea['log']}"
            out.append((AGENT_ACTION, text, order, f"e{index}", {"tool": context_value(tool)}))
        elif event.name == sc.EVENT_AGENT_FINISH:
            text = f"output: {render.render_payload(ea.get('output', ''))}"
            if ea.get("log"):
                text += f"\n\nlog:\n{ea['log']}"
            out.append((AGENT_FINISH, text, order, f"e{index}", {}))
        elif event.name == sc.EVENT_TEXT and ea.get("text"):
            out.append((TEXT, str(ea["text"]), order, f"e{index}", {}))
    return out


def _error_text(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    etype = attrs.get(sc.ERROR_TYPE)
    message = span.status.description if span.status else None
    stack = None
    for event in span.events:
        if event.name == "exception":
            ea = event.attributes or {}
            etype = etype or ea.get("exception.type")
            message = message or ea.get("exception.message")
            stack = ea.get("exception.stacktrace")
    etype, message = str(etype or "Error"), str(message or "")
    # The bridge's status description may already read "Type: message".
    text = message if message.startswith(f"{etype}:") else f"{etype}: {message}".rstrip(": ")
    if stack:
        text += f"\n\n{stack}"
    return text


def span_records(span: ReadableSpan, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> list[Record]:
    """The Texts and metrics one finished span contributes to its Aim run."""
    attrs = span.attributes or {}
    rt = run_type(span)
    ctx = span_context(span)
    order = order_of(span.start_time)
    owner = f"{trace_id_hex(span.context.trace_id)}:{span_id_hex(span.context.span_id)}"
    records: list[Record] = []

    for sequence, text in _content_texts(span, rt):
        records.append(TextRecord(sequence, ctx, order, clean_text(text, max_text_chars), owner))
    for sequence, text, ev_order, suffix, extra in _event_texts(span):
        records.append(TextRecord(sequence, {**ctx, **extra}, ev_order,
                                  clean_text(text, max_text_chars), f"{owner}:{suffix}"))
    if is_error(span):
        records.append(TextRecord(ERROR, ctx, order, clean_text(_error_text(span), max_text_chars), owner))
        records.append(MetricRecord(ERRORS, ctx, order, 1.0, owner))

    if span.end_time is not None and span.start_time is not None:
        records.append(MetricRecord(LATENCY, ctx, order, max(0, span.end_time - span.start_time) / 1e9, owner))
    if rt in _MODEL_TYPES:
        tokens_in = finite_number(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS))
        tokens_out = finite_number(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))
        if tokens_in is not None:
            records.append(MetricRecord(TOKENS_INPUT, ctx, order, tokens_in, owner))
        if tokens_out is not None:
            records.append(MetricRecord(TOKENS_OUTPUT, ctx, order, tokens_out, owner))
        if tokens_in is not None or tokens_out is not None:
            records.append(MetricRecord(TOKENS_TOTAL, ctx, order, (tokens_in or 0) + (tokens_out or 0), owner))
        ttfc = finite_number(attrs.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK))
        if ttfc is not None:
            records.append(MetricRecord(TIME_TO_FIRST_CHUNK, ctx, order, ttfc, owner))
        if attrs.get(sc.GEN_AI_OUTPUT_MESSAGES):
            calls = render.count_tool_calls(attrs[sc.GEN_AI_OUTPUT_MESSAGES])
            records.append(MetricRecord(TOOL_CALLS, ctx, order, float(calls), owner))
    return records


def trace_root(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    """The LangChain root of a trace, else its earliest span."""
    roots = [s for s in spans if is_langchain_root(s)]
    pool = roots or spans
    return min(pool, key=lambda s: (s.start_time or 0, s.context.span_id))


def trace_records(spans: Sequence[ReadableSpan], max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, *,
                  figure: bool = True, counters: bool = False) -> list[Record]:
    """One readable tree, the waterfall figure and the per-trace metrics, owned by the trace.

    Written again when late spans of the same trace arrive: same owner, hence the same step,
    so the fuller version replaces the earlier one. `counters` adds the seed handlers' 13
    counters (the drop-in AimCallbackHandler's runs).
    """
    if not spans:
        return []
    root = trace_root(spans)
    ctx = {"name": context_value(runnable_name(root))}
    order = order_of(root.start_time)
    owner = f"{trace_id_hex(root.context.trace_id)}:{span_id_hex(root.context.span_id)}:trace"
    summary = trace_summary(spans)
    records: list[Record] = [TextRecord(TRACE, ctx, order, clean_text(render_tree(spans), max_text_chars), owner)]
    metrics = {
        TRACE_LATENCY: summary["duration_s"],
        TRACE_TOKENS_INPUT: summary["input_tokens"],
        TRACE_TOKENS_OUTPUT: summary["output_tokens"],
        TRACE_TOKENS_TOTAL: summary["total_tokens"],
        TRACE_ERRORS: summary["errors"],
        TRACE_TOOL_CALLS: sum(1 for s in spans if run_type(s) == "tool"),
        TRACE_LLM_CALLS: sum(1 for s in spans if run_type(s) in _MODEL_TYPES),
    }
    if counters:
        for name, value in summary["counters"].items():
            metrics[COUNTER_PREFIX + name] = value
    if figure:
        records.append(FigureRecord(TRACE_FIGURE, ctx, order, waterfall_layout(spans), owner))
    records.extend(MetricRecord(name, ctx, order, float(value), owner) for name, value in metrics.items())
    return records


# --- run params ------------------------------------------------------------------------------

_REQUEST_PARAMS = {
    sc.GEN_AI_REQUEST_TEMPERATURE: "temperature",
    sc.GEN_AI_REQUEST_MAX_TOKENS: "max_tokens",
    sc.GEN_AI_REQUEST_TOP_P: "top_p",
    sc.GEN_AI_REQUEST_TOP_K: "top_k",
    sc.GEN_AI_REQUEST_STOP_SEQUENCES: "stop_sequences",
    sc.GEN_AI_REQUEST_FREQUENCY_PENALTY: "frequency_penalty",
    sc.GEN_AI_REQUEST_PRESENCE_PENALTY: "presence_penalty",
    sc.GEN_AI_REQUEST_SEED: "seed",
    sc.GEN_AI_REQUEST_CHOICE_COUNT: "choice_count",
    sc.GEN_AI_REQUEST_STREAM: "stream",
    sc.GEN_AI_PROVIDER_NAME: "provider",
    sc.GEN_AI_OPERATION_NAME: "operation",
}

_NAME_GROUPS = {"chain": "chains", "tool": "tools", "retriever": "retrievers", "agent": "agents"}


def _resource_params(span: ReadableSpan) -> dict[str, Any]:
    attrs = dict(span.resource.attributes) if span.resource is not None else {}
    service = {
        key.split(".", 1)[1]: attrs[key]
        for key in ("service.name", "service.version", "service.namespace", "service.instance.id")
        if key in attrs
    }
    # Dots would hide the keys from AimQL attribute access; underscores keep them queryable.
    resource = {k.replace(".", "_"): v for k, v in attrs.items()}
    return {"service": param_value(service), "resource": param_value(resource)}


def run_params(spans: Iterable[ReadableSpan]) -> dict[str, Any]:
    """Params describing what ran: service/resource, models and request parameters, names.

    Returned as fragments the writer merges into what the run already has, so a session run
    accumulates every model and tool it has seen.
    """
    params: dict[str, Any] = {"models": {}, "langchain": {}}
    for span in spans:
        if "service" not in params:
            params.update(_resource_params(span))
        attrs = span.attributes or {}
        rt = run_type(span)
        if rt in _MODEL_TYPES:
            model = _model(attrs) or runnable_name(span)
            entry = params["models"].setdefault(context_value(model), {})
            entry["class"] = context_value(runnable_name(span))
            for key, short in _REQUEST_PARAMS.items():
                if key in attrs:
                    entry[short] = param_value(attrs[key])
            continue
        group = _NAME_GROUPS.get(rt)
        if attrs.get(sc.GEN_AI_AGENT_NAME) or attrs.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT:
            group = "agents"
        if group and sc.LC_RUN_ID in attrs:
            params["langchain"].setdefault(group, set()).add(context_value(runnable_name(span)))
    params["langchain"] = {k: sorted(v) for k, v in params["langchain"].items()}
    return params


def trace_params(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """For a run that holds one trace: which trace and which root run."""
    root = trace_root(spans)
    attrs = root.attributes or {}
    return {
        "trace": {
            "trace_id": trace_id_hex(root.context.trace_id),
            "root_name": context_value(runnable_name(root)),
            "root_run_id": str(attrs.get(sc.LC_RUN_ID, "")),
            "root_run_type": run_type(root),
        }
    }


def merge_params(current: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level params whose value changes when `fragment` is merged into `current`.

    Dicts merge key by key, lists become sorted unions, scalars are replaced. Merging is
    idempotent, so a retried batch never changes params twice.
    """
    changed = {}
    for key, new in fragment.items():
        old = current.get(key)
        merged = _merge_value(old, new)
        if merged != old:
            changed[key] = merged
    return changed


def _merge_value(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, Mapping):
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge_value(old.get(k), v)
        return out
    if isinstance(old, list) and isinstance(new, list):
        try:
            return sorted(set(old) | set(new))
        except TypeError:
            return old + [v for v in new if v not in old]
    if isinstance(new, Mapping):
        return {k: _merge_value(None, v) for k, v in new.items()}
    return new


# --- run names -------------------------------------------------------------------------------


def _utc(time_ns: int | None) -> str:
    import time

    seconds = (time_ns or 0) / 1e9 or time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def trace_run_name(experiment: str, spans: Sequence[ReadableSpan]) -> str:
    """`experiment · root runnable · start time`: what Aim's runs list shows for a per-trace run."""
    root = trace_root(spans)
    return context_value(f"{experiment} · {runnable_name(root)} · {_utc(root.start_time)}")


def trace_run_description(spans: Sequence[ReadableSpan]) -> str:
    root = trace_root(spans)
    summary = trace_summary(spans)
    text = (f"LangChain run {runnable_name(root)} ({run_type(root)}): {len(spans)} spans, "
            f"{summary['duration_s']:.3f} s, {summary['total_tokens']} tokens")
    if summary["errors"]:
        text += f", {summary['errors']} failed"
    return text + f"; trace {trace_id_hex(root.context.trace_id)}"


def session_run_name(service: str, start_ns: int | None = None) -> str:
    """`service · session · start time`: one run for a process's LangChain runs."""
    return context_value(f"{service} · session · {_utc(start_ns)}")
