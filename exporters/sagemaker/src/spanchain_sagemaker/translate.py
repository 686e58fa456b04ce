"""Finished spans → SageMaker records. Pure: no clients, no clock unless passed in.

One trace (the spans under one LangChain root run) becomes:
- metric points: one value per metric name at the trace's step (`trace_metrics`), so re-sending a
  trace rewrites the same points instead of adding new ones;
- run parameters: models and their request parameters, chain/agent/tool names, service and
  resource (`ParameterSet`, which keeps a whole session's run inside the API's 300-key limit);
- a JSON document of its full span tree for S3 (`spanchain.export.traces.trace_to_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain import semconv as sc
from spanchain.export.traces import (
    duration_s,
    error_label,
    group_key,
    is_error,
    is_langchain_root,
    run_type,
    seed_counters,
    token_usage,
    trace_id_hex,
)

from spanchain_sagemaker import sanitize as names

MODEL_RUN_TYPES = {"llm", "chat_model"}

# Request parameters recorded per model (the gen_ai.request.* names, key suffix after the prefix).
REQUEST_PARAMETERS = (
    sc.GEN_AI_REQUEST_TEMPERATURE,
    sc.GEN_AI_REQUEST_MAX_TOKENS,
    sc.GEN_AI_REQUEST_TOP_P,
    sc.GEN_AI_REQUEST_TOP_K,
    sc.GEN_AI_REQUEST_STOP_SEQUENCES,
    sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    sc.GEN_AI_REQUEST_PRESENCE_PENALTY,
    sc.GEN_AI_REQUEST_SEED,
    sc.GEN_AI_REQUEST_CHOICE_COUNT,
    sc.GEN_AI_REQUEST_STREAM,
)
_MAX_NAMES_PER_LIST = 100  # chains/tools/agents/models kept per run (a JSON list parameter each)
_MAX_DISTINCT_SETTINGS = 10  # distinct values of one model setting kept per run
# Resource attributes that become run parameters; others only by option (`resource_parameters`).
# Not service.instance.id: random per process, it tells runs apart by nothing a reader wants.
DEFAULT_RESOURCE_PARAMETERS = (
    "service.name",
    "service.version",
    "service.namespace",
    "deployment.environment",
    "deployment.environment.name",
)


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    step: int
    timestamp_s: float

    def to_api(self, now_s: float) -> dict:
        return {
            "MetricName": self.name,
            "Value": self.value,
            "Step": self.step,
            "Timestamp": names.clamp_metric_timestamp(self.timestamp_s, now_s),
        }


@dataclass(frozen=True)
class TraceFacts:
    """What the exporter needs to know about one assembled trace."""

    key: str  # the LangChain root run id (or OTel trace id for foreign spans)
    trace_id: str
    root_name: str
    start_ns: int
    end_ns: int
    failed: bool
    error_message: str
    span_count: int


def trace_root(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    roots = [s for s in spans if is_langchain_root(s)]
    if roots:
        return roots[0]
    ids = {s.context.span_id for s in spans}
    orphans = [s for s in spans if s.parent is None or s.parent.span_id not in ids]
    return min(orphans or spans, key=lambda s: (s.start_time or 0, s.context.span_id))


def trace_facts(spans: Sequence[ReadableSpan]) -> TraceFacts:
    root = trace_root(spans)
    starts = [s.start_time for s in spans if s.start_time is not None]
    ends = [s.end_time for s in spans if s.end_time is not None]
    start = min(starts) if starts else 0
    end = max(ends) if ends else start
    failed = is_error(root)
    message = ""
    if failed:
        attrs = root.attributes or {}
        description = root.status.description if root.status else ""
        # "ValueError: boom", never "ValueError: ValueError: boom" (descriptions often carry it).
        message = names.status_message(error_label(description, attrs.get(sc.ERROR_TYPE) or "error"))
    return TraceFacts(
        key=group_key(root),
        trace_id=trace_id_hex(root.context.trace_id),
        root_name=root.name,
        start_ns=start,
        end_ns=end,
        failed=failed,
        error_message=message,
        span_count=len(spans),
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def trace_metric_values(spans: Sequence[ReadableSpan]) -> dict[str, float]:
    """One value per metric for a whole trace (names documented in docs/sagemaker.md)."""
    root = trace_root(spans)
    latencies: dict[str, list[float]] = {}
    first_chunk: list[float] = []
    input_tokens = output_tokens = errors = tool_calls = model_calls = 0
    for span in spans:
        rt = run_type(span)
        latencies.setdefault(rt, []).append(duration_s(span))
        i, o = token_usage(span)
        input_tokens += i
        output_tokens += o
        if is_error(span):
            errors += 1
        if rt == "tool":
            tool_calls += 1
        if rt in MODEL_RUN_TYPES:
            model_calls += 1
        ttfc = names.metric_value((span.attributes or {}).get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK))
        if ttfc is not None:
            first_chunk.append(ttfc)
    values: dict[str, float] = {
        "trace.latency_s": duration_s(root),
        "trace.spans": float(len(spans)),
        "tokens.input": float(input_tokens),
        "tokens.output": float(output_tokens),
        "tokens.total": float(input_tokens + output_tokens),
        "errors": float(errors),
        "tool_calls": float(tool_calls),
        "llm_calls": float(model_calls),
    }
    for rt, durations in sorted(latencies.items()):
        values[f"latency_s.{rt}"] = _mean(durations)
    if first_chunk:
        values["time_to_first_chunk_s"] = _mean(first_chunk)
    for counter, count in seed_counters(spans).items():
        values[f"counters.{counter}"] = float(count)
    return values


def trace_metrics(spans: Sequence[ReadableSpan], step: int) -> list[MetricPoint]:
    """The trace's metric points, all at `step`, stamped with the trace's end time."""
    facts = trace_facts(spans)
    timestamp_s = facts.end_ns / 1e9
    step = names.metric_step(step)
    points = []
    for name, value in trace_metric_values(spans).items():
        number = names.metric_value(value)
        if number is not None:
            points.append(MetricPoint(names.metric_name(name), number, step, timestamp_s))
    return points


def metric_batches(points: Sequence[MetricPoint], now_s: float) -> list[list[dict]]:
    """BatchPutMetrics payloads of at most 10 points each."""
    size = names.MAX_METRICS_PER_BATCH
    api = [p.to_api(now_s) for p in points]
    return [api[i : i + size] for i in range(0, len(api), size)]


# --- parameters ------------------------------------------------------------------------------


class ParameterSet:
    """Run parameters gathered from every trace written into one run.

    Lists (models, chains, tools, ...) accumulate. A model setting keeps its value while every
    trace agrees and becomes the JSON list of the distinct values seen once they differ (a session
    that streamed some calls shows `[false, true]`, not whichever trace came last). The result
    always fits the API: at most 300 keys, in this order of priority: the fixed keys, the models
    and their request settings, the chain/agent/tool names, then the allowed resource attributes
    (`resource_keys`); once the run is full, earlier keys win over later ones.
    """

    _LISTS = ("models", "providers", "chains", "agents", "tools", "workflows")

    def __init__(
        self,
        fixed: Mapping[str, object] | None = None,
        resource_keys: Iterable[str] = DEFAULT_RESOURCE_PARAMETERS,
    ) -> None:
        self._lists: dict[str, list[str]] = {k: [] for k in self._LISTS}
        self._settings: dict[str, list] = {}  # model.<model>.<setting> -> distinct values
        self._scalars: dict[str, object] = {}
        self._resource: dict[str, object] = {}
        self._resource_keys = tuple(resource_keys)
        self._fixed = dict(fixed or {})
        self.dropped_keys = 0

    def _remember(self, list_name: str, value: object) -> None:
        if value is None or value == "":
            return
        items = self._lists[list_name]
        text = str(value)
        if text not in items and len(items) < _MAX_NAMES_PER_LIST:
            items.append(text)

    def _setting(self, key: str, value: object) -> None:
        values = self._settings.setdefault(key, [])
        if isinstance(value, tuple):
            value = list(value)
        if value not in values and len(values) < _MAX_DISTINCT_SETTINGS:
            values.append(value)

    def add_trace(self, spans: Iterable[ReadableSpan]) -> None:
        for span in spans:
            attrs = span.attributes or {}
            rt = run_type(span)
            if span.resource is not None and self._resource_keys:
                resource = span.resource.attributes or {}
                for key in self._resource_keys:
                    if key in resource:
                        self._resource.setdefault(key, resource[key])
            if rt in MODEL_RUN_TYPES:
                model = attrs.get(sc.GEN_AI_REQUEST_MODEL) or attrs.get(sc.GEN_AI_RESPONSE_MODEL)
                model = str(model) if model else (str(attrs.get(sc.LC_NAME) or span.name))
                self._remember("models", model)
                self._remember("providers", attrs.get(sc.GEN_AI_PROVIDER_NAME))
                for attribute in REQUEST_PARAMETERS:
                    if attribute in attrs:
                        suffix = attribute[len("gen_ai.request.") :]
                        self._setting(f"model.{model}.{suffix}", attrs[attribute])
            elif rt == "tool":
                self._remember("tools", attrs.get(sc.GEN_AI_TOOL_NAME) or attrs.get(sc.LC_NAME) or span.name)
            elif rt == "chain":
                self._remember("chains", attrs.get(sc.LC_NAME) or span.name)
            if attrs.get(sc.GEN_AI_AGENT_NAME):
                self._remember("agents", attrs.get(sc.GEN_AI_AGENT_NAME))
            if attrs.get(sc.GEN_AI_WORKFLOW_NAME):
                self._remember("workflows", attrs.get(sc.GEN_AI_WORKFLOW_NAME))
            for event in span.events:
                if event.name == sc.EVENT_AGENT_ACTION:
                    tool = (event.attributes or {}).get(sc.GEN_AI_TOOL_NAME)
                    self._remember("tools", tool)

    def set(self, key: str, value: object) -> None:
        self._scalars[key] = value

    def raw(self) -> dict[str, object]:
        merged: dict[str, object] = dict(self._fixed)
        lists = dict(self._lists)
        if set(lists["workflows"]) <= set(lists["chains"]):
            lists["workflows"] = []  # LangGraph workflows are chains too: one list says it
        if lists["models"]:
            merged["model"] = lists["models"][0]
        for list_name in ("models", "providers"):
            if lists[list_name]:
                merged[list_name] = names.json_text(lists[list_name])
        for key, values in self._settings.items():
            usable = [v for v in values if names.parameter_value(v) is not None]
            if len(usable) == 1:
                merged.setdefault(key, usable[0])
            elif usable:
                merged.setdefault(key, usable)
        for list_name in ("chains", "agents", "tools", "workflows"):
            if lists[list_name]:
                merged.setdefault(list_name, names.json_text(lists[list_name]))
        for key, value in self._scalars.items():
            merged.setdefault(key, value)
        for key, value in self._resource.items():
            merged.setdefault(f"resource.{key}", value)
        return merged

    def to_api(self) -> dict[str, dict]:
        return api_parameters(self.raw(), on_drop=self._count_drop)

    def _count_drop(self) -> None:
        self.dropped_keys += 1


def api_parameters(raw: Mapping[str, object], on_drop=None) -> dict[str, dict]:
    """Sanitize keys and values; keep at most 300 (insertion order decides who stays)."""
    out: dict[str, dict] = {}
    for key, value in raw.items():
        api_value = names.parameter_value(value)
        if api_value is None:
            continue
        api_key = names.parameter_key(key)
        if api_key not in out and len(out) >= names.MAX_PARAMETERS:
            if on_drop is not None:
                on_drop()
            continue
        out[api_key] = api_value
    return out


def trace_parameters(facts: TraceFacts) -> dict[str, object]:
    """Extra parameters of a run that holds exactly one trace (run_per="trace")."""
    return {
        "trace.key": facts.key,
        "trace.id": facts.trace_id,
        "trace.root": facts.root_name,
        "trace.spans": facts.span_count,
        "trace.status": "error" if facts.failed else "ok",
    }
