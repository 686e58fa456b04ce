"""The exporter over real HTTP against a moto server on loopback (S3, SageMaker, Metrics)."""

import json
import time
import uuid
from importlib.metadata import entry_points

import pytest
from sagemaker_testkit import TraceFactory, metric_summaries, parameters

from opentelemetry.sdk.trace.export import SpanExportResult

from spanchain_sagemaker import SageMakerSpanExporter
from spanchain_sagemaker.exporter import SUMMARY_ARTIFACT, TRACE_ARTIFACT, TRACES_ARTIFACT
from testkit.fault_proxy import FaultProxy


def unique(prefix="exp"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def s3_json(s3, uri):
    bucket, key = uri[len("s3://") :].split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_session_mode_writes_parameters_metrics_artifacts_and_status(aws_env, sm, s3):
    experiment = unique()
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="Session One", artifact_bucket="spans")
    factory = TraceFactory()
    roots = []
    for i, kwargs in enumerate([{}, {"tool": "multiply"}, {"fail": True, "ttfc": 0.3}]):
        root, spans = factory.trace(input_tokens=10 + i, output_tokens=5 * (i + 1), **kwargs)
        roots.append(root)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.force_flush(20_000)

    tc = f"{experiment}-session-one"
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "InProgress"  # the session is still open

    params = parameters(described)
    assert params["model.fake-model.temperature"] == 0.25  # numbers as numbers
    assert params["model.fake-model.max_tokens"] == 64.0
    assert json.loads(params["models"]) == ["fake-model"]
    assert json.loads(params["tools"]) == ["multiply"]
    assert params["resource.service.name"] == "svc-under-test"
    assert params["spanchain.run_per"] == "session"

    metrics = metric_summaries(described)
    tokens = metrics["tokens.input"]
    assert (tokens["Count"], tokens["Min"], tokens["Max"], tokens["Last"]) == (3, 10, 12, 12)
    assert metrics["tokens.output"]["Max"] == 15
    assert metrics["errors"]["Max"] == 1 and metrics["errors"]["Count"] == 3
    assert metrics["tool_calls"]["Max"] == 1
    assert metrics["time_to_first_chunk_s"]["Count"] == 1
    assert metrics["counters.llm_starts"]["Count"] == 3
    assert "latency_s.chat_model" in metrics and "trace.latency_s" in metrics

    artifacts = described["OutputArtifacts"]
    assert set(artifacts) == {TRACES_ARTIFACT, SUMMARY_ARTIFACT}
    assert artifacts[TRACES_ARTIFACT]["Value"] == f"s3://spans/trial-component-artifacts/{tc}/traces/"
    doc = s3_json(s3, artifacts[TRACES_ARTIFACT]["Value"] + f"{roots[1]}.json")
    assert doc["summary"]["span_count"] == 3
    assert {s["name"] for s in doc["spans"]} == {"MyChain", "chat fake-model", "execute_tool multiply"}
    summary = s3_json(s3, artifacts[SUMMARY_ARTIFACT]["Value"])
    assert summary["traces"] == 3 and summary["totals"]["errors"] == 1
    assert [t["step"] for t in summary["recent_traces"]] == [0, 1, 2]

    # Studio groups the run under the experiment's run group.
    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": f"Default-Run-Group-{experiment}"}]},
    )["Results"]
    assert [r["TrialComponent"]["TrialComponentName"] for r in found] == [tc]

    exporter.shutdown()
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert "EndTime" in described
    # Control plane once per run, not per span or trace.
    calls = exporter.api_stats["calls"]
    assert calls["CreateTrialComponent"] == 1 and calls["AssociateTrialComponent"] == 1
    assert calls["CreateExperiment"] == 1 and calls["UpdateTrialComponent"] <= 3


def test_resending_a_trace_reuses_its_step(aws_env, sm):
    experiment = unique()
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="r", artifact_bucket="spans")
    factory = TraceFactory()
    _, first = factory.trace(input_tokens=1)
    _, second = factory.trace(input_tokens=2)
    exporter.export(first)
    exporter.export(second)
    assert exporter.force_flush(20_000)
    exporter.export(first)  # a retry or a spool replay sends the same trace again
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    metrics = metric_summaries(sm.describe_trial_component(TrialComponentName=f"{experiment}-r"))
    assert metrics["tokens.input"]["Count"] == 2  # not 3: the trace kept step 0
    assert metrics["tokens.input"]["Last"] == 2


def test_trace_mode_creates_one_run_per_trace_with_status(aws_env, sm, s3):
    experiment = unique()
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_per="trace", artifact_bucket="spans")
    factory = TraceFactory()
    ok_root, ok = factory.trace(tool="lookup")
    bad_root, bad = factory.trace(fail=True)
    exporter.export(ok + bad)
    assert exporter.force_flush(20_000)
    exporter.shutdown()

    ok_tc = sm.describe_trial_component(TrialComponentName=f"{experiment}-trace-{ok_root}")
    bad_tc = sm.describe_trial_component(TrialComponentName=f"{experiment}-trace-{bad_root}")
    assert ok_tc["Status"]["PrimaryStatus"] == "Completed"
    assert bad_tc["Status"] == {"PrimaryStatus": "Failed", "Message": "ValueError: chain exploded"}
    assert parameters(ok_tc)["trace.key"] == ok_root
    assert parameters(bad_tc)["trace.status"] == "error"
    assert ok_tc["StartTime"] <= ok_tc["EndTime"]
    doc = s3_json(s3, ok_tc["OutputArtifacts"][TRACE_ARTIFACT]["Value"])
    assert doc["summary"]["span_count"] == 3
    assert metric_summaries(ok_tc)["tool_calls"]["Last"] == 1
    runs = sm.list_trial_components(TrialName=f"Default-Run-Group-{experiment}")
    assert len(runs["TrialComponentSummaries"]) == 2


def test_entry_point_with_environment_configuration(aws_env, sm, s3, monkeypatch):
    experiment = unique("Env Exp")
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_EXPERIMENT", experiment)
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_RUN_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_RUN_PER", "session")
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_BUCKET", "env-bucket")
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_PREFIX", "my/prefix")
    (ep,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "sagemaker"]
    exporter = ep.load()()
    exporter.export(TraceFactory().trace()[1])
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    tc = f"{experiment.lower().replace(' ', '-')}-from-env"
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["OutputArtifacts"][TRACES_ARTIFACT]["Value"] == f"s3://env-bucket/my/prefix/{tc}/traces/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="env-bucket")["Contents"]]
    assert any(k.startswith(f"my/prefix/{tc}/traces/") for k in keys)


def test_experiment_defaults_to_service_name_and_default_bucket(aws_env, sm, s3, monkeypatch):
    service = unique("svc")
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    exporter = SageMakerSpanExporter(run_name="x")
    exporter.export(TraceFactory().trace()[1])
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    location = exporter.location()
    assert location.experiment == service
    assert location.s3_root.startswith("s3://sagemaker-us-east-1-123456789012/")  # the SDK's default
    sm.describe_trial_component(TrialComponentName=f"{service}-x")


def test_bad_and_huge_input_is_sanitized(aws_env, sm):
    exporter = SageMakerSpanExporter(experiment_name="Ünïcode Exp!!", run_name="R_1.0", artifact_bucket="spans")
    factory = TraceFactory()
    for i in range(40):
        _, spans = factory.trace(model=f"model {i} " + "x" * 400, tool=f"tool-{i}")
        exporter.export(spans)
    assert exporter.force_flush(30_000)
    exporter.shutdown()
    described = sm.describe_trial_component(TrialComponentName="unicode-exp-r-1-0")
    params = described["Parameters"]
    assert len(params) <= 300
    assert all(len(k) <= 320 for k in params)
    assert all(len(v.get("StringValue", "")) <= 2500 for v in params.values())
    assert exporter.stats.dropped_retries_exhausted == 0


def test_unreachable_backend_never_blocks_or_raises(monkeypatch, aws_env):
    from testkit.moto_server import free_loopback_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_loopback_port()}")
    exporter = SageMakerSpanExporter(
        experiment_name="down", artifact_bucket="spanchain-down", max_attempts=1, retry_timeout_s=1,
        retry_backoff_s=0.01, shutdown_timeout_s=5, backoff_attempts=2, backoff_base_s=0.05,
    )
    spans = TraceFactory().trace()[1]
    started = time.monotonic()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert time.monotonic() - started < 0.5  # only enqueued; generous for a loaded CI machine
    started = time.monotonic()
    exporter.force_flush(10_000)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    exporter.shutdown()
    assert time.monotonic() - started < 6
    assert exporter.stats.dropped_retries_exhausted == len(spans)


def test_throttling_and_metric_conflicts_are_retried(aws_env, sm):
    with FaultProxy(aws_env.endpoint_url) as proxy:
        proxy.throttle = {"CreateTrialComponent": 1}
        proxy.metric_conflicts = 2
        import os

        os.environ["AWS_ENDPOINT_URL"] = proxy.url  # monkeypatch (aws_env) restores it
        experiment = unique()
        exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="r", artifact_bucket="spans")
        exporter.export(TraceFactory().trace()[1])
        assert exporter.force_flush(30_000)
        exporter.shutdown()
    stats = exporter.api_stats
    assert stats["throttled"] + sum(stats["http_attempts"].values()) > sum(stats["calls"].values())
    assert exporter._writer._store.metric_points_dropped == {}
    described = sm.describe_trial_component(TrialComponentName=f"{experiment}-r")
    metrics = metric_summaries(described)
    # The conflicting first points of two batches were sent again and stored.
    assert metrics["trace.latency_s"]["Count"] == 1 and metrics["tokens.input"]["Count"] == 1
    assert proxy.seen.count("BatchPutMetrics") >= 5
    assert exporter.stats.dropped_retries_exhausted == 0


def test_metric_points_a_run_rejects_are_dropped_not_retried(aws_env):
    from spanchain_sagemaker.aws import AwsApi, build_clients
    from spanchain_sagemaker.store import ExperimentsStore, RunRef
    from spanchain_sagemaker.translate import trace_metrics

    store = ExperimentsStore(AwsApi(build_clients()))
    ref = RunRef("nope", "nope", "no-such-run", "Default-Run-Group-nope", "b", "p")
    store.put_metrics(ref, trace_metrics(TraceFactory().trace()[1], step=0)[:3])
    assert store.metric_points_dropped["VALIDATION_ERROR"] == 1
    assert store.api.calls["BatchPutMetrics"] == 1


def test_something_that_is_not_a_run_falls_back_to_our_own_run(aws_env, sm):
    experiment = unique()
    exporter = SageMakerSpanExporter(run=object(), experiment_name=experiment, run_name="fallback", artifact_bucket="spans")
    exporter.export(TraceFactory().trace()[1])
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    assert sm.describe_trial_component(TrialComponentName=f"{experiment}-fallback")["Status"]["PrimaryStatus"] == "Completed"


def test_location_lines_for_the_demo():
    from spanchain_sagemaker.exporter import RunLocation

    where = RunLocation("exp", "run", "exp-run", "Default-Run-Group-exp", "s3://b/p/exp-run/", "s3://b/p/exp-run/traces/", "s3://b/p/exp-run/summary.json")
    text = "\n".join(where.describe())
    for part in ("exp-run", "Default-Run-Group-exp", "s3://b/p/exp-run/traces/", "summary.json"):
        assert part in text
