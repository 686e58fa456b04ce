"""Acceptance, end to end, all real parts on loopback:

1. the unmodified example app under `spanchain run`, configured only through OTEL_* variables
   (plus the AWS ones that point boto3 at the emulator), writes to Aim, SageMaker (moto server) and
   a collector (rotel) at once; each is read back;
2. `spanchain serve` receives OTLP from a real collector (rotel) and what it received is read back
   from Aim and SageMaker, including spans of another instrumentation's convention.
"""

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanchain import semconv as sc
from spanchain.serve.app import start
from spanchain.serve.server import ServeOptions
from spanchain_aim.readback import read_runs
from testkit.moto_server import start_emulator

from eco_support import EXAMPLE_APP, make_spans, python_env, rotel_collector, spanchain_cmd, wait_until


@pytest.fixture(scope="module")
def emulator():
    emu = start_emulator()
    yield emu
    emu.stop()


def aws_env(emu) -> dict:
    env = dict(emu.aws_env())
    # Generous bounds on the exporters' shutdown: CI machines may be busy (2 cores, parallel work).
    env["OTEL_EXPORTER_AIM_TIMEOUT"] = "90000"  # milliseconds
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, SAGEMAKER_SUPPRESS_V2_WARNING="1")
    return env


def trial_components(emu, experiment: str) -> list[dict]:
    sm = emu.client("sagemaker")
    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals",
                                       "Value": f"Default-Run-Group-{experiment}"}]},
    )["Results"]
    return [sm.describe_trial_component(TrialComponentName=r["TrialComponent"]["TrialComponentName"]) for r in found]


def metric(described: dict, name: str) -> dict:
    metrics = {m["MetricName"]: m for m in described.get("Metrics", [])}
    assert name in metrics, f"{name} not in {sorted(metrics)}; status {described.get('Status')}"
    return metrics[name]


def test_example_app_writes_aim_sagemaker_and_a_collector_at_once(tmp_path, emulator):
    collected = InMemorySpanExporter()
    receiver = start({"collected": collected}, ServeOptions(port=0), translate=False)
    experiment = f"eco-{uuid.uuid4().hex[:8]}"
    aim_repo = tmp_path / "aim"
    try:
        with rotel_collector(tmp_path, receiver.url.rsplit("/v1/traces", 1)[0]) as collector:
            proc = subprocess.run(
                spanchain_cmd("run", "--", sys.executable, str(EXAMPLE_APP)),
                env=python_env(
                    OTEL_TRACES_EXPORTER="aim,sagemaker,otlp",
                    OTEL_SERVICE_NAME="example-app",
                    OTEL_EXPORTER_OTLP_ENDPOINT=collector,
                    OTEL_EXPORTER_AIM_REPO=str(aim_repo),
                    OTEL_EXPORTER_SAGEMAKER_EXPERIMENT=experiment,
                    OTEL_EXPORTER_SAGEMAKER_BUCKET="eco-artifacts",
                    **aws_env(emulator),
                ),
                capture_output=True, text=True, timeout=180,
            )
            assert proc.returncode == 0, proc.stderr
            assert wait_until(lambda: len(collected.get_finished_spans()) >= 21, 20)
        assert receiver.pipeline.flush(5)
    finally:
        receiver.stop(5)

    # the collector: every span, no content
    spans = collected.get_finished_spans()
    assert len(spans) == 21
    assert {s.resource.attributes["service.name"] for s in spans} == {"example-app"}
    assert not any(set(s.attributes) & sc.CONTENT_ATTRIBUTES for s in spans)

    # Aim: the runs, with prompts (content goes to Aim) and token metrics
    runs = read_runs(str(aim_repo))
    assert runs, "no Aim run written"
    inputs = [t for run in runs for t in run.texts_of("llm.input")]
    assert any("what do spans carry 0?" in t for t in inputs)
    assert sorted(v for run in runs for v in run.metric_values("tokens.input")) == [12.0, 13.0]

    # SageMaker (moto): a run in the experiment with the token metrics and one error
    [described] = trial_components(emulator, experiment)
    assert metric(described, "tokens.input")["Count"] >= 2
    assert metric(described, "errors")["Max"] == 1


def test_serve_feeds_aim_and_sagemaker_from_a_real_collector(tmp_path, emulator):
    experiment = f"serve-{uuid.uuid4().hex[:8]}"
    aim_repo, ready = tmp_path / "aim", tmp_path / "port"
    serve = subprocess.Popen(
        spanchain_cmd("serve", "--exporters", "aim,sagemaker", "--port", "0", "--ready-file", str(ready),
                      "--token", "t0ken", "--drain-timeout", "90"),
        env=python_env(OTEL_EXPORTER_AIM_REPO=str(aim_repo), OTEL_EXPORTER_SAGEMAKER_EXPERIMENT=experiment,
                       OTEL_EXPORTER_SAGEMAKER_BUCKET="serve-artifacts", **aws_env(emulator),
                       SPANCHAIN_SERVE_SPOOL_DIR=str(tmp_path / "spool")),  # hermetic: serve spools by default
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert wait_until(lambda: ready.exists() and ready.read_text(), 30), "serve did not start"
        serve_url = f"http://127.0.0.1:{ready.read_text()}"
        with rotel_collector(tmp_path, serve_url, headers="authorization=Bearer t0ken") as collector:
            # an app traced by spanchain, exporting OTLP only: no Aim or SageMaker in the app
            app = subprocess.run(
                spanchain_cmd("run", "--", sys.executable, str(EXAMPLE_APP)),
                env=python_env(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=collector,
                               OTEL_SERVICE_NAME="served-app", SPANCHAIN_OTLP_CONTENT="true"),
                capture_output=True, text=True, timeout=120,
            )
            assert app.returncode == 0, app.stderr
            # and a trace from another instrumentation (OpenInference's attribute names)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            foreign = make_spans([
                ("RunnableSequence", {"openinference.span.kind": "CHAIN", "input.value": "hello"}, None),
                ("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-x",
                                "llm.token_count.prompt": 40, "llm.token_count.completion": 4,
                                "llm.input_messages.0.message.role": "user",
                                "llm.input_messages.0.message.content": "foreign prompt"}, 0),
            ], {"service.name": "served-app"})
            assert OTLPSpanExporter(endpoint=f"{collector}/v1/traces").export(foreign).name == "SUCCESS"

            def health():
                import urllib.request

                with urllib.request.urlopen(f"{serve_url}/health", timeout=5) as resp:
                    return json.loads(resp.read())

            assert wait_until(lambda: health()["receiver"]["received_spans"] >= 23, 30), health()
        serve.send_signal(signal.SIGTERM)
        output = serve.communicate(timeout=120)[0]
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, output

    runs = read_runs(str(aim_repo))
    inputs = [t for run in runs for t in run.texts_of("llm.input")]
    assert any("what do spans carry 1?" in t for t in inputs)
    assert any("foreign prompt" in t for t in inputs)  # translated from OpenInference
    assert sorted(v for run in runs for v in run.metric_values("tokens.input")) == [12.0, 13.0, 40.0]

    [described] = trial_components(emulator, experiment)
    assert metric(described, "tokens.input")["Max"] == 40
    assert metric(described, "errors")["Max"] == 1
