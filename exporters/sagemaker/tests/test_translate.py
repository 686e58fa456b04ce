"""Spans → SageMaker records, with no backend."""

import json

from sagemaker_testkit import TraceFactory

from spanchain_sagemaker import sanitize as names
from spanchain_sagemaker.translate import (
    ParameterSet,
    api_parameters,
    metric_batches,
    trace_facts,
    trace_metric_values,
    trace_metrics,
    trace_parameters,
)


def test_metric_values_count_model_usage_once_not_rollups():
    _, spans = TraceFactory().trace(input_tokens=11, output_tokens=4, tool="multiply", ttfc=0.2)
    values = trace_metric_values(spans)
    assert values["tokens.input"] == 11  # the chain's roll-up of 11 is not added again
    assert values["tokens.output"] == 4
    assert values["tokens.total"] == 15
    assert values["tool_calls"] == 1
    assert values["llm_calls"] == 1
    assert values["errors"] == 0
    assert values["trace.spans"] == 3
    assert values["time_to_first_chunk_s"] == 0.2
    assert {"latency_s.chain", "latency_s.chat_model", "latency_s.tool"} <= set(values)
    # The seed's 13 counters, for this trace.
    assert values["counters.llm_starts"] == 1 and values["counters.tool_ends"] == 1
    assert values["counters.llm_streams"] == 3
    assert len([k for k in values if k.startswith("counters.")]) == 13


def test_errors_and_failure_facts():
    _, spans = TraceFactory().trace(fail=True)
    values = trace_metric_values(spans)
    assert values["errors"] == 1
    facts = trace_facts(spans)
    assert facts.failed and facts.error_message == "ValueError: chain exploded"
    assert facts.root_name == "MyChain"


def test_trace_metrics_share_one_step_and_the_trace_end_time():
    root, spans = TraceFactory().trace()
    points = trace_metrics(spans, step=7)
    assert {p.step for p in points} == {7}
    facts = trace_facts(spans)
    assert facts.key == root
    assert {p.timestamp_s for p in points} == {facts.end_ns / 1e9}
    assert len({p.name for p in points}) == len(points)  # one point per metric: retry-safe


def test_metric_batches_hold_at_most_ten_points():
    _, spans = TraceFactory().trace(tool="t")
    points = trace_metrics(spans, step=0)
    assert len(points) > 20
    batches = metric_batches(points, now_s=points[0].timestamp_s)
    assert all(1 <= len(b) <= 10 for b in batches)
    assert sum(len(b) for b in batches) == len(points)
    assert all(isinstance(p["Step"], int) for b in batches for p in b)


def test_parameters_models_request_params_names_and_resource():
    factory = TraceFactory(service="my-service")
    params = ParameterSet({"spanchain.run_per": "session"})
    params.add_trace(factory.trace(model="m1", temperature=0.5, tool="lookup")[1])
    params.add_trace(factory.trace(model="m2", temperature=0.9, chain_name="Other")[1])
    api = params.to_api()
    assert api["model.m1.temperature"] == {"NumberValue": 0.5}
    assert api["model.m2.temperature"] == {"NumberValue": 0.9}
    assert api["model.m1.max_tokens"] == {"NumberValue": 64.0}
    assert json.loads(api["models"]["StringValue"]) == ["m1", "m2"]
    assert json.loads(api["tools"]["StringValue"]) == ["lookup"]
    assert json.loads(api["chains"]["StringValue"]) == ["MyChain", "Other"]
    assert api["resource.service.name"] == {"StringValue": "my-service"}
    assert api["spanchain.run_per"] == {"StringValue": "session"}


def test_parameters_never_exceed_300_and_first_keys_stay():
    raw = {f"k{i}": i for i in range(1000)}
    api = api_parameters(raw)
    assert len(api) == names.MAX_PARAMETERS
    assert "k0" in api and "k299" in api and "k300" not in api
    params = ParameterSet(raw)
    assert len(params.to_api()) == 300 and params.dropped_keys == 700


def test_one_trace_run_parameters():
    _, spans = TraceFactory().trace(fail=True)
    extra = trace_parameters(trace_facts(spans))
    assert extra["trace.status"] == "error" and extra["trace.root"] == "MyChain"
