"""Zero code: the unmodified example app traced by `spanchain run` and by `opentelemetry-instrument`,
configured only through OTEL_* variables, exporting OTLP over HTTP (directly, and through a real
collector, rotel) to a real receiver."""

import pathlib
import subprocess
import sys

import pytest

from spanchain import semconv as sc

from eco_support import EXAMPLE_APP, python_env, receiver, rotel_collector, spanchain_cmd  # noqa: F401 - fixture

OTEL_INSTRUMENT = str(pathlib.Path(sys.executable).parent / "opentelemetry-instrument")


def _run_app(launcher, endpoint, **env):
    # Other LangChain instrumentations (OpenLLMetry, upstream genai-langchain) register the
    # instrumentor name "langchain"; if installed, opentelemetry-instrument would load them too.
    env.setdefault("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "langchain")
    cmd = {
        "spanchain run": spanchain_cmd("run", "--", sys.executable, str(EXAMPLE_APP)),
        "opentelemetry-instrument": [OTEL_INSTRUMENT, sys.executable, str(EXAMPLE_APP)],
    }[launcher]
    proc = subprocess.run(
        cmd,
        env=python_env(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                       OTEL_SERVICE_NAME="example-app", OTEL_RESOURCE_ATTRIBUTES="team=llm", **env),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tool failed as expected" in proc.stdout  # the app itself ran as always
    return proc


def _check_example_traces(spans):
    roots = [s for s in spans if s.parent is None]
    assert sorted(s.name for s in roots).count("invoke_workflow answer_question") == 2
    assert len(spans) == 2 * 9 + 3  # two chains of 9 runs, three tool calls
    chats = [s for s in spans if s.attributes.get(sc.LC_RUN_TYPE) == "chat_model"]
    assert sorted(s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in chats) == [12, 13]
    failed = [s for s in spans if s.status.status_code.name == "ERROR"]
    assert [s.attributes.get(sc.ERROR_TYPE) for s in failed] == ["ValueError"]
    for span in spans:
        assert span.resource.attributes["service.name"] == "example-app"
        assert span.resource.attributes["team"] == "llm"
        assert not set(span.attributes) & sc.CONTENT_ATTRIBUTES  # the collector gets no content
    # every chain's spans share one trace; parents point inside it
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:
        if span.parent is not None:
            assert by_id[span.parent.span_id].context.trace_id == span.context.trace_id


@pytest.mark.parametrize("launcher", ["spanchain run", "opentelemetry-instrument"])
def test_unmodified_app_is_traced_from_otel_variables(receiver, launcher):
    _run_app(launcher, receiver.url.rsplit("/v1/traces", 1)[0])
    assert receiver.pipeline.flush(5)
    _check_example_traces(receiver.mem.get_finished_spans())


def test_through_a_real_collector(receiver, tmp_path):
    with rotel_collector(tmp_path, receiver.url.rsplit("/v1/traces", 1)[0]) as collector:
        _run_app("spanchain run", collector)
        from eco_support import wait_until

        assert wait_until(lambda: len(receiver.mem.get_finished_spans()) >= 21, 15)
    assert receiver.pipeline.flush(5)
    _check_example_traces(receiver.mem.get_finished_spans())


def test_content_reaches_the_collector_only_when_switched_on(receiver):
    _run_app("spanchain run", receiver.url.rsplit("/v1/traces", 1)[0], SPANCHAIN_OTLP_CONTENT="true")
    assert receiver.pipeline.flush(5)
    chats = [s for s in receiver.mem.get_finished_spans() if s.attributes.get(sc.LC_RUN_TYPE) == "chat_model"]
    assert all(sc.GEN_AI_INPUT_MESSAGES in s.attributes for s in chats) and len(chats) == 2


def test_broken_configuration_never_breaks_the_app():
    proc = subprocess.run(
        spanchain_cmd("run", "--", sys.executable, str(EXAMPLE_APP)),
        env=python_env(SPANCHAIN_OTLP_CONTENT="maybe"), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and "tool failed as expected" in proc.stdout
    assert "tracing is OFF" in proc.stderr and "SPANCHAIN_OTLP_CONTENT" in proc.stderr
    # an exporter name nobody answers to, inside the app (`spanchain run` refuses it up front)
    from spanchain.cli.commands import BOOTSTRAP_DIR

    proc = subprocess.run(
        [sys.executable, str(EXAMPLE_APP)],
        env=python_env(OTEL_TRACES_EXPORTER="no_such_exporter", PYTHONPATH=BOOTSTRAP_DIR),
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and "tool failed as expected" in proc.stdout
    assert "tracing is OFF" in proc.stderr and "no_such_exporter" in proc.stderr
