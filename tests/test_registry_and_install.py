"""Behaviour 7 (bounded memory), 8 (metrics) and the process-wide install."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import uuid

from langchain_core.runnables import RunnableLambda
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import spanchain
from lcapps import simple_chain, streaming_model
from pipeline_support import Pipeline
from spanchain import semconv as sc
from spanchain.bridge.registry import RunRegistry


def test_ttl_ends_runs_whose_end_never_comes():
    p = Pipeline(run_ttl_s=0.0)
    h = p.handler
    lost = uuid.uuid4()
    h.on_chain_start(None, {"a": 1}, run_id=lost)
    assert h.open_runs == 1 and p.spans() == ()
    assert h.sweep() == 1
    span = p.spans()[0]
    assert span.attributes[sc.LC_ABANDONED] is True
    assert span.attributes[sc.LC_ABANDONED_REASON] == "ttl"
    assert h.open_runs == 0


def test_size_cap_evicts_oldest():
    p = Pipeline(max_open_runs=3)
    ids = [uuid.uuid4() for _ in range(5)]
    for rid in ids:
        p.handler.on_chain_start(None, {}, run_id=rid)
    assert p.handler.open_runs == 3
    abandoned = [s.attributes[sc.LC_RUN_ID] for s in p.spans()]
    assert abandoned == [str(ids[0]), str(ids[1])]
    assert all(s.attributes[sc.LC_ABANDONED_REASON] == "capacity" for s in p.spans())


def test_registry_sweeps_expired_prefix_on_add():
    now = [0.0]
    reg = RunRegistry(ttl_s=10, max_runs=100, clock=lambda: now[0])
    from spanchain.bridge.registry import RunState

    def state(t):
        return RunState(span=None, run_type="chain", parent=None, root=None, started=t)

    reg.add(uuid.uuid4(), state(0.0))
    reg.add(uuid.uuid4(), state(5.0))
    now[0] = 100.0
    evicted = reg.add(uuid.uuid4(), state(100.0))
    assert [r for _, r in evicted] == ["ttl", "ttl"] and len(reg) == 1


def test_many_sequential_invocations_leave_no_growth():
    # 100k handler-level runs (the full callback path, no LangChain overhead) and 2k real
    # invocations: the registry empties and traced memory stays flat.
    from opentelemetry.sdk.trace import TracerProvider
    from spanchain import OpenTelemetryCallbackHandler

    handler = OpenTelemetryCallbackHandler(TracerProvider())  # spans go nowhere: measure only us
    chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: x * 2)

    def burst(n):
        for _ in range(n):
            rid, child = uuid.uuid4(), uuid.uuid4()
            handler.on_chain_start(None, {"i": 1}, run_id=rid)
            handler.on_tool_start({"name": "t"}, "x", run_id=child, parent_run_id=rid)
            handler.on_tool_end("y", run_id=child)
            handler.on_chain_end({"o": 2}, run_id=rid)

    burst(2_000)
    for i in range(200):
        chain.invoke(i, config={"callbacks": [handler]})
    gc.collect()
    objects_before = len(gc.get_objects())
    burst(100_000)
    for i in range(2_000):
        chain.invoke(i, config={"callbacks": [handler]})
    gc.collect()
    growth = len(gc.get_objects()) - objects_before
    assert handler.open_runs == 0
    assert growth < 2_000, f"{growth} more live objects after 100k runs"


def test_metrics_recorded_with_a_meter_provider():
    reader = InMemoryMetricReader()
    p = Pipeline(meter_provider=MeterProvider(metric_readers=[reader]))
    list(streaming_model("x y z").stream("q", config=p.config()))
    simple_chain("a b").invoke({"question": "q"}, config=p.config())
    data = reader.get_metrics_data()
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage",
            "gen_ai.client.operation.time_to_first_chunk"} <= set(metrics)
    tokens = metrics["gen_ai.client.token.usage"].data.data_points
    by_type = {}
    for point in tokens:
        by_type[point.attributes["gen_ai.token.type"]] = by_type.get(point.attributes["gen_ai.token.type"], 0) + point.sum
    assert by_type == {"input": 20, "output": 3 + 2}
    ops = {pt.attributes[sc.GEN_AI_OPERATION_NAME] for pt in metrics["gen_ai.client.operation.duration"].data.data_points}
    assert {"chat", "invoke_workflow"} <= ops


def test_instrument_is_global_idempotent_and_removable():
    from langchain_core.tracers import context as lc_context

    hooks_before = list(lc_context._configure_hooks)
    p = Pipeline()
    try:
        h1 = spanchain.instrument(p.provider)
        h2 = spanchain.instrument(p.provider)
        assert h1 is h2
        assert len(lc_context._configure_hooks) == len(hooks_before) + 1
        # no callbacks passed: the global handler records it, in any thread
        RunnableLambda(lambda x: x).batch([1, 2, 3], config={"max_concurrency": 2})
        assert len(p.spans()) == 3
        # passing our handler explicitly does not record runs twice
        RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [p.handler]})
        assert len(p.spans()) == 4
    finally:
        spanchain.uninstrument()
    assert lc_context._configure_hooks == hooks_before
    RunnableLambda(lambda x: x).invoke(1)
    assert len(p.spans()) == 4


def test_opentelemetry_instrument_picks_up_the_entry_point(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(
        "from langchain_core.runnables import RunnableLambda\n"
        "RunnableLambda(lambda x: x + 1, name='zero_code_step').invoke(1)\n"
    )
    env = dict(os.environ, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none",
               OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME="zc")
    bindir = os.path.dirname(sys.executable)
    out = subprocess.run([os.path.join(bindir, "opentelemetry-instrument"), sys.executable, str(app)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"langchain.name": "zero_code_step"' in out.stdout


def test_import_spanchain_is_light():
    code = ("import sys, spanchain; heavy=[m for m in sys.modules if m.split('.')[0] in "
            "('langchain_core','aim','boto3','botocore','sagemaker','google','grpc')]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
