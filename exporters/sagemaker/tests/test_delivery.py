"""Delivery edge cases: late spans, durable spool replay, the benchmark command."""

import json
import time
import uuid

from sagemaker_testkit import TraceFactory, metric_summaries

from spanchain_sagemaker import SageMakerSpanExporter
from testkit.moto_server import free_loopback_port


def test_late_spans_join_a_trace_written_early(aws_env, sm, s3):
    experiment = f"late-{uuid.uuid4().hex[:6]}"
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="r", artifact_bucket="spans")
    root, spans = TraceFactory().trace(tool="lookup")
    by_name = {s.name: s for s in spans}
    late = by_name["execute_tool lookup"]
    exporter.export([s for s in spans if s is not late])  # the trace is one span short
    assert exporter.force_flush(20_000)  # a flush writes what there is
    exporter.export([late])
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    key = f"trial-component-artifacts/{experiment}-r/traces/{root}.json"
    doc = json.loads(s3.get_object(Bucket="spans", Key=key)["Body"].read())
    assert doc["summary"]["span_count"] == 3  # rewritten whole, not replaced by the late span
    metrics = metric_summaries(sm.describe_trial_component(TrialComponentName=f"{experiment}-r"))
    assert metrics["tool_calls"]["Count"] == 1 and metrics["tool_calls"]["Last"] == 1  # same step


def test_spooled_traces_reach_sagemaker_after_a_restart(aws_env, sm, monkeypatch, tmp_path):
    experiment = f"spool-{uuid.uuid4().hex[:6]}"
    spool = tmp_path / "spool"
    options = dict(experiment_name=experiment, run_name="r", artifact_bucket="spans", spool_dir=str(spool))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_loopback_port()}")  # down
    down = SageMakerSpanExporter(
        **options, max_attempts=1, retry_timeout_s=0, backoff_attempts=1, shutdown_timeout_s=5, spool_fsync=False
    )
    factory = TraceFactory()
    for n in (1, 2):
        down.export(factory.trace(input_tokens=n)[1])
    down.force_flush(3_000)
    down.shutdown()
    assert down.stats.spooled == 4 and down.stats.written == 0

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.endpoint_url)  # back up; a new process
    up = SageMakerSpanExporter(**options, spool_fsync=False)
    assert up.force_flush(20_000)
    up.shutdown()
    assert up.stats.replayed == 4
    metrics = metric_summaries(sm.describe_trial_component(TrialComponentName=f"{experiment}-r"))
    assert metrics["tokens.input"]["Count"] == 2 and metrics["tokens.input"]["Max"] == 2


def test_benchmark_reports_calls_per_thousand_spans(capsys):
    from benchmarks.sagemaker import main

    assert main(["--spans", "60", "--spans-per-trace", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "moto" in report["target"]
    session, per_trace = report["results"]
    assert session["run_per"] == "session" and per_trace["run_per"] == "trace"
    assert session["spans"] == 60 and session["traces"] == 10 and session["delivered"]
    ops = session["per_1000_spans_by_operation"]
    assert ops["PutObject"] >= 1000 / 6  # one JSON document per trace
    assert ops["CreateTrialComponent"] == round(1000 / 60, 1)  # one run for the whole session
    assert per_trace["per_1000_spans_by_operation"]["CreateTrialComponent"] == round(10 * 1000 / 60, 1)
    assert session["spans_per_s"] > 0


def test_a_busy_exporter_still_releases_incomplete_traces(aws_env, sm):
    """The base only ticks when idle; traces missing spans must still go out under load."""
    experiment = f"busy-{uuid.uuid4().hex[:6]}"
    exporter = SageMakerSpanExporter(
        experiment_name=experiment, run_name="r", artifact_bucket="spans", trace_grace_s=0.2
    )
    factory = TraceFactory()
    _, spans = factory.trace()
    exporter.export([s for s in spans if s.name == "MyChain"])  # its child never arrives
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and exporter.undelivered():
        exporter.export(factory.trace()[1])  # complete traces keep the writer busy
        time.sleep(0.05)
    assert exporter.undelivered() == 0
    exporter.shutdown()
    metrics = metric_summaries(sm.describe_trial_component(TrialComponentName=f"{experiment}-r"))
    assert metrics["trace.spans"]["Min"] == 1  # the incomplete trace was written as it was


def test_a_later_process_continues_a_named_run_without_overwriting_steps(aws_env, sm, s3):
    experiment = f"resume-{uuid.uuid4().hex[:6]}"
    options = dict(experiment_name=experiment, run_name="fixed", artifact_bucket="spans")
    factory = TraceFactory()
    first, second, third = (factory.trace(input_tokens=n)[1] for n in (1, 2, 3))
    earlier = SageMakerSpanExporter(**options)
    earlier.export(first + second)
    assert earlier.force_flush(20_000)
    earlier.shutdown()

    later = SageMakerSpanExporter(**options)  # a new process, same run name
    later.export(second)  # replayed from a spool
    later.export(third)  # new
    assert later.force_flush(20_000)
    later.shutdown()
    tc = f"{experiment}-fixed"
    metrics = metric_summaries(sm.describe_trial_component(TrialComponentName=tc))
    tokens = metrics["tokens.input"]
    assert (tokens["Count"], tokens["Min"], tokens["Max"], tokens["Last"]) == (3, 1, 3, 3)
    summary = json.loads(s3.get_object(Bucket="spans", Key=f"trial-component-artifacts/{tc}/summary.json")["Body"].read())
    assert summary["traces"] == 3 and summary["next_step"] == 3
    assert sorted(t["step"] for t in summary["recent_traces"]) == [0, 1, 2]
    assert later.api_stats["calls"].get("CreateTrialComponent") is None  # found, not re-created


def test_a_backend_that_lost_everything_gets_the_run_back(aws_env, sm, s3):
    """An emulator restart (or a deleted bucket/run): the next traces re-create what is missing."""
    experiment = f"reset-{uuid.uuid4().hex[:6]}"
    exporter = SageMakerSpanExporter(
        experiment_name=experiment, run_name="r", artifact_bucket="spans", retry_backoff_s=0.05
    )
    factory = TraceFactory()
    exporter.export(factory.trace(input_tokens=1)[1])
    assert exporter.force_flush(20_000)
    aws_env.reset()  # every experiment, run and bucket is gone
    root, spans = factory.trace(input_tokens=2)
    exporter.export(spans)
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    assert exporter.stats.dropped_retries_exhausted == 0
    described = sm.describe_trial_component(TrialComponentName=f"{experiment}-r")
    assert metric_summaries(described)["tokens.input"]["Last"] == 2
    assert "model.fake-model.temperature" in described["Parameters"]  # parameters sent again
    assert described["Status"]["PrimaryStatus"] == "Completed"
    s3.head_object(Bucket="spans", Key=f"trial-component-artifacts/{experiment}-r/traces/{root}.json")
