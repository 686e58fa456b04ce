"""Issue 11: every request valid for the real SageMaker/S3 APIs, no trace lost to a bad value.

The autouse request checker (tests/aws_request_guard.py) answers any request that breaks a rule of
botocore's service model with a 400 ValidationException, as AWS would, and fails the test; these
tests feed the exporter the hostile input that used to produce such requests.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
import uuid

import aws_request_guard
import pytest
from sagemaker_testkit import parameters

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from spanchain import semconv as sc
from spanchain_sagemaker import SageMakerSpanExporter

LINE_TERMINATORS = ("\n", "\r", "\u0085", "\u2028", "\u2029")


def uuid7() -> str:
    """A UUIDv7 as LangChain makes them: 48 bits of milliseconds first, then random bits."""
    ms = int(time.time() * 1000)
    value = (ms << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


class Spans:
    def __init__(self, resource: dict | None = None) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(resource or {"service.name": "hostile"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("tests")

    def trace(self, *, root_name="Root Chain", root_attrs=None, model="m", model_attrs=None,
              run_type="chat_model", error=None, children=1, root_id=None):
        root = root_id or uuid7()
        with self.tracer.start_as_current_span(root_name) as chain:
            chain.set_attributes({sc.LC_RUN_ID: root, sc.LC_RUN_TYPE: "chain", sc.LC_NAME: root_name,
                                  sc.LC_DESCENDANTS: children, sc.LC_INPUT: json.dumps({"q": "hi"}),
                                  **(root_attrs or {})})
            for _ in range(children):
                with self.tracer.start_as_current_span(f"chat {model}") as llm:
                    llm.set_attributes({sc.LC_RUN_ID: str(uuid.uuid4()), sc.LC_PARENT_RUN_ID: root,
                                        sc.LC_ROOT_RUN_ID: root, sc.LC_RUN_TYPE: run_type,
                                        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: model,
                                        sc.GEN_AI_REQUEST_TEMPERATURE: 0.5, sc.GEN_AI_USAGE_INPUT_TOKENS: 3,
                                        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2,
                                        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": []}]),
                                        **(model_attrs or {})})
            if error is not None:
                error_type, description = error
                chain.set_attribute(sc.ERROR_TYPE, error_type)
                chain.set_status(Status(StatusCode.ERROR, description))
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return root, spans


def _unique(prefix="hostile"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _sent(operation):
    return [params for _, op, params in aws_request_guard.sent if op == operation]


def _export(exporter, *traces) -> bool:
    for spans in traces:
        exporter.export(spans)
    return exporter.force_flush(30_000)


def _has_terminator(text: str) -> bool:
    return any(t in text for t in LINE_TERMINATORS)


# --- requests AWS would reject ------------------------------------------------------------------


def test_multiline_exception_message_keeps_the_failed_trace_run(aws_env, sm):
    """Trace mode: Status.Message with line breaks was rejected and the whole trace dropped."""
    exporter = SageMakerSpanExporter(experiment_name=_unique(), run_per="trace", artifact_bucket="hostile")
    message = "1 validation error for Model\nfield\n  Input should be a valid integer [type=int_parsing]\u2028end"
    root, spans = Spans().trace(error=("ValueError", f"ValueError: {message}"))
    assert _export(exporter, spans)
    tc = exporter.location().trial_component
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "Failed"
    status = described["Status"]["Message"]
    assert not _has_terminator(status)
    assert status.startswith("ValueError: 1 validation error for Model") and "ValueError: ValueError" not in status
    exporter.shutdown()


def test_newlines_in_resource_run_and_model_names_keep_every_parameter(aws_env, sm):
    resource = {"service.name": "svc", "service.version": "1.0\nrc1", "deployment.environment": "prod\u2028eu"}
    exporter = SageMakerSpanExporter(experiment_name=_unique(), run_name="nightly", artifact_bucket="hostile")
    spans = Spans(resource)
    _, first = spans.trace(root_name="Root\nChain", model="gpt\n4")
    _, second = spans.trace(root_name="Other", model="m2\u2029x")
    assert _export(exporter, first, second)
    params = parameters(sm.describe_trial_component(TrialComponentName=exporter.location().trial_component))
    assert len(params) >= 8
    for key, value in params.items():
        assert not _has_terminator(key) and not _has_terminator(str(value)), (key, value)
    assert params["resource.service.version"] == "1.0 rc1"
    assert any(key.startswith("model.gpt 4.") for key in params)
    assert any(key.startswith("model.m2 x.") for key in params)  # a later trace still updates the run
    exporter.shutdown()


def test_metric_names_with_newlines_do_not_sink_the_batch(aws_env, sm):
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile")
    _, spans = Spans().trace(run_type="my\ncustom\u2028type")
    assert _export(exporter, spans)
    described = sm.describe_trial_component(TrialComponentName=exporter.location().trial_component)
    names = {m["MetricName"] for m in described.get("Metrics", []) if "MetricName" in m}
    assert "tokens.total" in names and "latency_s.my custom type" in names
    exporter.shutdown()


def test_lists_never_carry_raw_line_separators_and_lengths_count_utf16(aws_env, sm):
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile")
    long_emoji_model = "😀" * 300  # 300 code points, 600 UTF-16 units: a key over 320 units
    _, spans = Spans().trace(model=long_emoji_model, model_attrs={sc.GEN_AI_REQUEST_STOP_SEQUENCES: ("a\u2028b", "😀" * 2000)})
    assert _export(exporter, spans)
    params = sm.describe_trial_component(TrialComponentName=exporter.location().trial_component)["Parameters"]
    assert any("😀" in key for key in params)
    exporter.shutdown()


def test_s3_keys_stay_within_1024_bytes_with_a_long_prefix(aws_env, s3):
    prefix = "/".join(["p" * 190] * 8)  # 8 segments of 190 bytes each
    exporter = SageMakerSpanExporter(experiment_name=_unique("x" * 50), run_name="r" * 59,
                                     artifact_bucket="hostile", artifact_prefix=prefix)
    root, spans = Spans().trace(root_id="k" * 300)
    assert _export(exporter, spans)
    keys = [p["Key"] for p in _sent("PutObject")]
    assert keys and all(len(k.encode()) <= 1024 for k in keys)
    exporter.shutdown()


# --- NaN and infinity ---------------------------------------------------------------------------


def test_nan_metadata_and_infinite_token_usage_never_drop_the_trace(aws_env, sm, s3):
    exporter = SageMakerSpanExporter(experiment_name=_unique(), run_per="trace", artifact_bucket="hostile")
    root, spans = Spans().trace(
        root_attrs={f"{sc.LC_METADATA_PREFIX}score": float("nan"), f"{sc.LC_METADATA_PREFIX}big": float("inf")},
        model_attrs={sc.GEN_AI_USAGE_INPUT_TOKENS: float("inf"), sc.GEN_AI_USAGE_OUTPUT_TOKENS: float("nan"),
                     sc.GEN_AI_REQUEST_TEMPERATURE: float("nan")},
    )
    assert _export(exporter, spans)
    assert exporter.dropped_total() == 0
    location = exporter.location()
    doc = json.loads(s3.get_object(Bucket="hostile", Key=f"{location.traces_prefix.split('/', 3)[3]}{root}.json")["Body"].read())
    root_span = next(s for s in doc["spans"] if s["name"] == "Root Chain")
    assert root_span["attributes"][f"{sc.LC_METADATA_PREFIX}score"] is None
    assert root_span["attributes"][f"{sc.LC_METADATA_PREFIX}big"] in ("Infinity", "inf", None)
    for point in (p for params in _sent("BatchPutMetrics") for p in params["MetricData"]):
        assert math.isfinite(point["Value"])
    exporter.shutdown()


# --- bucket from the user's session ---------------------------------------------------------------


def _sdk_session(**kwargs):
    import boto3
    from sagemaker.core.helper.session_helper import Session

    boto_session = boto3.Session(region_name=os.environ["AWS_REGION"])
    return Session(boto_session=boto_session, **kwargs)


def test_bucket_and_prefix_come_from_the_users_sagemaker_session(aws_env, s3):
    s3.create_bucket(Bucket="team-bucket")
    session = _sdk_session(default_bucket="team-bucket", default_bucket_prefix="team/space")
    exporter = SageMakerSpanExporter(experiment_name=_unique(), sagemaker_session=session)
    _, spans = Spans().trace()
    assert _export(exporter, spans)
    location = exporter.location()
    assert location.s3_root.startswith("s3://team-bucket/team/space/trial-component-artifacts/")
    assert not [p for p in _sent("CreateBucket") if p["Bucket"].startswith("sagemaker-")]
    exporter.shutdown()


def test_the_derived_default_bucket_is_guarded_by_its_expected_owner(aws_env):
    exporter = SageMakerSpanExporter(experiment_name=_unique())
    _, spans = Spans().trace()
    assert _export(exporter, spans)
    bucket = exporter.location().s3_root.split("/")[2]
    assert bucket.startswith("sagemaker-us-east-1-")
    account = bucket.rsplit("-", 1)[1]
    calls = [p for _, op, p in aws_request_guard.sent if op in ("PutObject", "HeadBucket") and p.get("Bucket") == bucket]
    assert calls and all(p.get("ExpectedBucketOwner") == account for p in calls)
    exporter.shutdown()


# --- runs that read well ----------------------------------------------------------------------------


def test_display_names_differ_between_traces_with_uuid7_ids(aws_env):
    exporter = SageMakerSpanExporter(experiment_name=_unique(), run_per="trace", artifact_bucket="hostile")
    factory = Spans()
    traces = [factory.trace(root_name="qa_chain")[1] for _ in range(4)]
    assert _export(exporter, *traces)
    names = [p["DisplayName"] for p in _sent("CreateTrialComponent") if p["TrialComponentName"].startswith(exporter.settings.experiment)]
    assert len(names) == 4 and len(set(names)) == 4, names
    assert all(n.startswith("qa-chain-") for n in names)
    exporter.shutdown()


def test_parameter_budget_keeps_model_params_and_allowed_resource_attributes(aws_env, sm):
    resource = {"service.name": "svc", "service.version": "2.1", "deployment.environment.name": "prod",
                "service.instance.id": str(uuid.uuid4()), "host.name": "box",
                **{f"custom.attr{i}": "x" * 200 for i in range(400)}}
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile")
    spans = Spans(resource)
    _, first = spans.trace(root_name="wf", model="alpha", model_attrs={sc.GEN_AI_REQUEST_STREAM: False},
                           root_attrs={sc.GEN_AI_WORKFLOW_NAME: "wf"})
    _, second = spans.trace(root_name="wf", model="alpha", model_attrs={sc.GEN_AI_REQUEST_STREAM: True},
                            root_attrs={sc.GEN_AI_WORKFLOW_NAME: "wf"})
    assert _export(exporter, first, second)
    params = parameters(sm.describe_trial_component(TrialComponentName=exporter.location().trial_component))
    assert params["model.alpha.temperature"] == 0.5
    assert json.loads(params["model.alpha.stream"]) == [False, True]  # both settings, not the last one
    assert params["resource.service.name"] == "svc" and params["resource.service.version"] == "2.1"
    assert params["resource.deployment.environment.name"] == "prod"
    assert not any(k.startswith("resource.custom.") or k in ("resource.service.instance.id", "resource.host.name") for k in params)
    assert "workflows" not in params  # the same names as `chains`
    exporter.shutdown()


def test_more_resource_attributes_by_option(aws_env, sm):
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile",
                                     resource_parameters=["host.name"])
    _, spans = Spans({"service.name": "svc", "host.name": "box", "os.type": "linux"}).trace()
    assert _export(exporter, spans)
    params = parameters(sm.describe_trial_component(TrialComponentName=exporter.location().trial_component))
    assert params["resource.host.name"] == "box" and "resource.os.type" not in params
    exporter.shutdown()


def test_trace_documents_hold_the_resource_once_and_inputs_as_json(aws_env, s3):
    big = {"service.name": "svc", "big": "r" * 100_000}
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile")
    root, spans = Spans(big).trace(children=20)
    assert _export(exporter, spans)
    key = exporter.location().traces_prefix.split("/", 3)[3] + f"{root}.json"
    body = s3.get_object(Bucket="hostile", Key=key)["Body"].read()
    assert len(body) < 150_000  # once, not 21 times
    doc = json.loads(body)
    assert doc["resource"]["big"] == "r" * 100_000
    assert all("resource" not in span for span in doc["spans"])
    root_span = next(s for s in doc["spans"] if s["name"] == "Root Chain")
    assert root_span["attributes"][sc.LC_INPUT] == {"q": "hi"}
    model_span = next(s for s in doc["spans"] if s["name"].startswith("chat"))
    assert model_span["attributes"][sc.GEN_AI_OUTPUT_MESSAGES] == [{"role": "assistant", "parts": []}]
    exporter.shutdown()


# --- contained rejections -----------------------------------------------------------------------------


def _reject_parameter(key_part: str):
    def predicate(service, operation, params):
        if any(key_part in key for key in (params.get("Parameters") or {})):
            return f"parameter containing {key_part!r} rejected"
        return None

    return predicate


def test_one_rejected_parameter_is_dropped_and_the_rest_kept(aws_env, sm):
    """AWS may reject a value for a reason we cannot foresee: only that key is lost."""
    aws_request_guard.reject_also(_reject_parameter("poison"))
    exporter = SageMakerSpanExporter(experiment_name=_unique(), artifact_bucket="hostile")
    _, spans = Spans().trace(model="poison")
    _, clean = Spans().trace(model="clean")
    assert _export(exporter, spans, clean)
    described = sm.describe_trial_component(TrialComponentName=exporter.location().trial_component)
    params = parameters(described)
    assert "model.clean.temperature" in params and not any("poison" in k for k in params)
    assert "spanchain-traces" in described.get("OutputArtifacts", {})
    assert exporter.parameters_rejected >= 1
    exporter.shutdown()


def test_trace_mode_recreates_a_rejected_run_without_the_offending_field(aws_env, sm):
    aws_request_guard.reject_also(_reject_parameter("poison"))
    exporter = SageMakerSpanExporter(experiment_name=_unique(), run_per="trace", artifact_bucket="hostile")
    _, spans = Spans().trace(model="poison")
    assert _export(exporter, spans)
    described = sm.describe_trial_component(TrialComponentName=exporter.location().trial_component)
    params = parameters(described)
    assert params["trace.status"] == "ok" and not any("poison" in k for k in params)
    assert described["Status"]["PrimaryStatus"] == "Completed"
    exporter.shutdown()


# --- all of it at once -------------------------------------------------------------------------------


@pytest.mark.parametrize("run_per", ["session", "trace"])
def test_hostile_everything_zero_violations(aws_env, sm, run_per):
    hostile = "a b/c\nd\u2028e 😀 " + "z" * 300
    resource = {"service.name": hostile, "service.version": hostile, hostile: hostile,
                **{f"r{i}": "v" * 100_000 if i == 0 else hostile for i in range(50)}}
    exporter = SageMakerSpanExporter(experiment_name=hostile, run_name=hostile, run_per=run_per,
                                     artifact_bucket="hostile", artifact_prefix=hostile,
                                     resource_parameters=[hostile, *(f"r{i}" for i in range(50))],
                                     timeout_s=300)  # a loaded CI machine: 1,300 calls in trace mode
    factory = Spans(resource)
    traces = []
    for i in range(3):
        attrs = {f"{sc.LC_METADATA_PREFIX}k{j}": (float("nan") if j % 3 == 0 else hostile) for j in range(20)}
        model_attrs = {sc.GEN_AI_USAGE_INPUT_TOKENS: float("inf"), sc.GEN_AI_REQUEST_TEMPERATURE: float("nan"),
                       sc.GEN_AI_REQUEST_STOP_SEQUENCES: (hostile,) * 3}
        traces.append(factory.trace(root_name=hostile, model=f"{hostile}{i}", run_type=hostile, root_attrs=attrs,
                                    model_attrs=model_attrs, error=("ValueError", f"ValueError: {hostile}"))[1])
    # 250 models with 2 settings each: over 500 distinct parameters for a run that holds 300
    many_models = [factory.trace(model=f"model {i}\n", root_name=f"chain {i}",
                                 model_attrs={sc.GEN_AI_REQUEST_MAX_TOKENS: i})[1] for i in range(250)]
    big = factory.trace(children=1999)[1]  # a 2,000-span trace
    for spans in (*traces, *many_models, big):
        exporter.export(spans)
    assert exporter.force_flush(300_000)
    assert exporter.dropped_total() == 0
    if run_per == "session":
        params = sm.describe_trial_component(TrialComponentName=exporter.location().trial_component)["Parameters"]
        assert len(params) == 300 and sum(k.startswith("model.") for k in params) > 250
    exporter.shutdown()


def test_drop_in_handler_with_nan_metadata_and_newline_error_flushes(aws_env, sm, s3):
    """The issue's own reproduction: `config={"metadata": {"score": nan}}` through the drop-in
    handler, plus a chain failing with a multi-line message; flush_tracker() must be True."""
    import boto3
    from langchain_core.runnables import RunnableLambda
    from sagemaker.core.experiments.run import Run
    from sagemaker.core.helper.session_helper import Session

    from spanchain_sagemaker import SageMakerCallbackHandler

    s3.create_bucket(Bucket="dropin-hostile")
    session = Session(boto_session=boto3.Session(region_name=aws_env.region), default_bucket="dropin-hostile",
                      sagemaker_config={"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})

    def explode(_):
        raise ValueError("a\nb\u2028c")

    experiment = _unique("dropin")
    with Run(experiment_name=experiment, run_name="nan-run", sagemaker_session=session) as run:
        handler = SageMakerCallbackHandler(run)
        config = {"callbacks": [handler], "metadata": {"score": float("nan"), "big": float("inf")}}
        assert RunnableLambda(lambda x: x).invoke({"q": "hi"}, config=config) == {"q": "hi"}
        with pytest.raises(ValueError):
            RunnableLambda(explode).invoke("x", config=config)
        assert handler.flush_tracker()
    handler.close()
    described = sm.describe_trial_component(TrialComponentName=run._trial_component.trial_component_name)
    counts = {m["MetricName"]: m["Count"] for m in described.get("Metrics", []) if "MetricName" in m}
    assert counts["trace.spans"] == 2  # both traces arrived
