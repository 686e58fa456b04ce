"""`spanchain.configure()`: OTel environment variables as the spec defines them, the app's own
provider respected, and per-exporter content routing. Real OTLP over HTTP to a real receiver."""

import json
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from spanchain import semconv as sc
from spanchain.config.configure import ConfigError, configure, resolve_sampler
from spanchain.content.routing import ContentStrippingExporter, strip_content

from eco_support import make_spans, python_env, read_jsonl, receiver  # noqa: F401 - fixture


CHILD = """
import json, sys
{setup}
from langchain_core.runnables import RunnableLambda
RunnableLambda(lambda x: x + 1, name="add_one").invoke(1)
ok = setup.force_flush(10_000)
print(json.dumps({{"exporters": sorted(setup.exporters), "owns": setup.owns_provider,
                   "instrumented": setup.instrumented, "flushed": ok,
                   "provider": type(setup.tracer_provider).__name__}}))
"""


def run_child(setup_code: str, **env) -> dict:
    code = CHILD.format(setup=textwrap.dedent(setup_code))
    proc = subprocess.run([sys.executable, "-c", code], env=python_env(**env), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_exporters_resource_and_batching_come_from_otel_variables(receiver, tmp_path):
    console_out = tmp_path / "trees.txt"
    result = run_child(
        "import spanchain\nsetup = spanchain.configure()",
        OTEL_TRACES_EXPORTER="otlp, spanchain_console",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="checkout",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging,service.name=overridden-by-OTEL_SERVICE_NAME",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # only an explicit flush can deliver before exit
        SPANCHAIN_CONSOLE_OUTPUT=str(console_out),
    )
    assert result == {"exporters": ["otlp", "spanchain_console"], "owns": True, "instrumented": True,
                      "flushed": True, "provider": "TracerProvider"}
    assert receiver.pipeline.flush(5)
    [span] = receiver.mem.get_finished_spans()
    assert span.attributes[sc.LC_NAME] == "add_one"
    assert span.resource.attributes["service.name"] == "checkout"
    assert span.resource.attributes["deployment.environment"] == "staging"
    # content routing: the collector gets no inputs/outputs by default
    assert sc.LC_INPUT not in span.attributes and sc.LC_OUTPUT not in span.attributes
    assert "add_one" in console_out.read_text()


def test_sampler_from_otel_traces_sampler(receiver):
    run_child(
        "import spanchain\nsetup = spanchain.configure()",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
    )
    assert receiver.pipeline.flush(5)
    assert receiver.mem.get_finished_spans() == ()
    # and the argument beats the variable
    run_child(
        "import spanchain\nsetup = spanchain.configure(sampler='always_on')",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_TRACES_SAMPLER="always_off",
    )
    assert receiver.pipeline.flush(5) and len(receiver.mem.get_finished_spans()) == 1


def test_the_apps_own_provider_is_used_not_replaced(receiver):
    result = run_child(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        apps = TracerProvider(resource=Resource.create({"service.name": "the-app"}))
        mine = InMemorySpanExporter()
        apps.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(apps)
        import spanchain
        setup = spanchain.configure("otlp", service_name="ignored")
        assert setup.tracer_provider is apps and trace.get_tracer_provider() is apps
        """,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
    )
    assert result["owns"] is False and result["exporters"] == ["otlp"]
    assert receiver.pipeline.flush(5)
    [span] = receiver.mem.get_finished_spans()
    assert span.resource.attributes["service.name"] == "the-app"


def test_explicit_exporters_none_and_clear_errors(monkeypatch):
    tp = TracerProvider()
    assert configure("none", tracer_provider=tp, instrument=False).exporters == {}
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert configure(tracer_provider=tp, instrument=False).exporters == {}
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    with pytest.raises(ConfigError, match=r"unknown exporter 'nosuch'; installed: .*otlp.*spanchain_console"):
        configure("nosuch", tracer_provider=tp, instrument=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="http/json.*not available"):
        configure("otlp", tracer_provider=tp, instrument=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp-proto-grpc"):
        configure("otlp", tracer_provider=tp, instrument=False)
    monkeypatch.setenv("SPANCHAIN_OTLP_CONTENT", "maybe")
    with pytest.raises(ConfigError, match="SPANCHAIN_OTLP_CONTENT"):
        configure("none", tracer_provider=tp, instrument=False)


def test_named_samplers():
    assert isinstance(resolve_sampler("traceidratio", "0.25"), TraceIdRatioBased)
    assert isinstance(resolve_sampler("parentbased_always_off"), ParentBased)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        resolve_sampler("traceidratio", 2)
    with pytest.raises(ConfigError, match="not a number"):
        resolve_sampler("traceidratio", "half")


def _content_span():
    [span] = make_spans(
        [("chat", {sc.GEN_AI_INPUT_MESSAGES: "[secret prompt]", sc.LC_OUTPUT: "answer",
                   sc.GEN_AI_REQUEST_MODEL: "m", sc.GEN_AI_USAGE_INPUT_TOKENS: 3, "input.value": "foreign"}, None)]
    )
    return span


def _emit_one(tp):
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("chat", attributes={sc.GEN_AI_INPUT_MESSAGES: "[secret prompt]",
                                                          sc.LC_OUTPUT: "answer", sc.GEN_AI_REQUEST_MODEL: "m"}) as span:
        span.add_event(sc.EVENT_AGENT_ACTION, {"tool_input": "secret args", "log": "thinking", sc.GEN_AI_TOOL_NAME: "calc"})
        span.add_event("exception", {"exception.message": "kept: errors are not content"})


def test_content_goes_to_aim_and_sagemaker_but_not_to_the_collector(receiver, monkeypatch):
    tp = TracerProvider()
    aim_like = InMemorySpanExporter()
    setup = configure({"otlp": OTLPSpanExporter(endpoint=receiver.url), "aim": aim_like}, tracer_provider=tp, instrument=False)
    _emit_one(tp)
    assert setup.force_flush(10_000) and receiver.pipeline.flush(5)
    [collected] = receiver.mem.get_finished_spans()
    assert sc.GEN_AI_INPUT_MESSAGES not in collected.attributes and sc.LC_OUTPUT not in collected.attributes
    assert collected.attributes[sc.GEN_AI_REQUEST_MODEL] == "m"
    action, exception = collected.events
    assert dict(action.attributes) == {sc.GEN_AI_TOOL_NAME: "calc"}
    assert exception.attributes["exception.message"] == "kept: errors are not content"
    [full] = aim_like.get_finished_spans()
    assert full.attributes[sc.GEN_AI_INPUT_MESSAGES] == "[secret prompt]"
    assert full.events[0].attributes["tool_input"] == "secret args"
    setup.shutdown()

    # the documented switch: content to the collector too
    monkeypatch.setenv("SPANCHAIN_OTLP_CONTENT", "true")
    tp2 = TracerProvider()
    setup = configure({"otlp": OTLPSpanExporter(endpoint=receiver.url)}, tracer_provider=tp2, instrument=False)
    _emit_one(tp2)
    assert setup.force_flush(10_000) and receiver.pipeline.flush(5)
    assert receiver.mem.get_finished_spans()[-1].attributes[sc.GEN_AI_INPUT_MESSAGES] == "[secret prompt]"
    setup.shutdown()


def test_content_exporters_list_and_instances_named_by_package(monkeypatch):
    monkeypatch.setenv("SPANCHAIN_CONTENT_EXPORTERS", "otlp")
    tp = TracerProvider()
    setup = configure({"aim": InMemorySpanExporter()}, tracer_provider=tp, instrument=False)
    [processor] = setup.processors
    assert isinstance(processor.span_exporter, ContentStrippingExporter)  # aim not listed → stripped
    setup.shutdown()
    monkeypatch.delenv("SPANCHAIN_CONTENT_EXPORTERS")
    setup = configure([OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")], tracer_provider=TracerProvider(), instrument=False)
    assert list(setup.exporters) == ["otlp"]
    assert isinstance(setup.processors[0].span_exporter, ContentStrippingExporter)
    setup.shutdown()


def test_strip_content_covers_foreign_names_and_leaves_clean_spans_alone():
    span = _content_span()
    stripped = strip_content(span)
    assert set(stripped.attributes) == {sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_USAGE_INPUT_TOKENS}
    assert stripped.context == span.context and stripped.parent == span.parent
    assert strip_content(stripped) is stripped


def test_exit_flush_happens_while_thread_pools_still_work(tmp_path):
    out = tmp_path / "spans.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import spanchain
            from eco_support import futures_jsonl_exporter
            spanchain.configure([futures_jsonl_exporter()])
            from langchain_core.runnables import RunnableLambda
            RunnableLambda(lambda x: x, name="exits_right_after").invoke(1)
        """)],
        env=python_env(SPANCHAIN_TEST_JSONL=str(out)), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cannot schedule new futures" not in proc.stderr
    assert [s["attributes"]["langchain.name"] for s in read_jsonl(out)] == ["exits_right_after"]


def test_batching_follows_otel_bsp_variables(receiver):
    run_child(
        "import spanchain\nsetup = spanchain.configure()\n"
        "from langchain_core.runnables import RunnableLambda\n"
        "for i in range(5): RunnableLambda(lambda x: x, name=f'step{i}').invoke(i)",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    assert receiver.pipeline.flush(5)
    assert len(receiver.mem.get_finished_spans()) == 6
    assert receiver.stats.requests == 3  # 6 spans in batches of at most 2


def test_configure_twice_returns_the_first_setup_until_it_is_shut_down(receiver):
    result = run_child(
        """
        import spanchain, spanchain.config.configure as c
        first = spanchain.configure("spanchain_console")
        assert spanchain.configure("otlp") is first and list(first.exporters) == ["spanchain_console"]
        first.shutdown()
        setup = spanchain.configure("otlp")
        assert setup is not first and setup.tracer_provider is first.tracer_provider
        """,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
    )
    assert result["exporters"] == ["otlp"] and result["owns"] is False
    assert receiver.pipeline.flush(5) and len(receiver.mem.get_finished_spans()) == 1
