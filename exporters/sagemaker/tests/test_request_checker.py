"""The strict request checker itself (tests/aws_request_rules.py): it must catch what AWS rejects."""

import datetime as dt
import time

import pytest
from aws_request_rules import check, compiled, service_model


def _rules(service, operation, params):
    return [v.rule for v in check(service, operation, params)]


def test_every_pattern_in_the_models_compiles():
    for service in ("sagemaker", "sagemaker-metrics", "s3", "sts"):
        model = service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern:
                compiled(pattern)


@pytest.mark.parametrize("terminator", ["\n", "\r", "\u0085", "\u2028", "\u2029"])
def test_dot_star_excludes_every_java_line_terminator(terminator):
    params = {"TrialComponentName": "a", "Status": {"PrimaryStatus": "Failed", "Message": f"a{terminator}b"}}
    found = check("sagemaker", "UpdateTrialComponent", params)
    assert [v.path for v in found] == ["UpdateTrialComponent.Status.Message"]
    assert "pattern" in found[0].rule and found[0].value == f"a{terminator}b"


def test_names_are_full_matches_and_lengths_count_utf16_units():
    assert _rules("sagemaker", "CreateExperiment", {"ExperimentName": "ok-name"}) == []
    assert _rules("sagemaker", "CreateExperiment", {"ExperimentName": "bad_name"})  # only a prefix matches
    assert _rules("sagemaker", "CreateExperiment", {"ExperimentName": "-x"})
    ok = {"TrialComponentName": "a", "Parameters": {"k": {"StringValue": "é" * 2500}}}
    assert _rules("sagemaker", "UpdateTrialComponent", ok) == []
    emoji = {"TrialComponentName": "a", "Parameters": {"k": {"StringValue": "😀" * 1300}}}
    (rule,) = _rules("sagemaker", "UpdateTrialComponent", emoji)  # 1,300 code points, 2,600 units
    assert "max length 2500 (2600 UTF-16 units)" in rule


def test_sizes_numbers_enums_required():
    many = {"TrialComponentName": "a", "Parameters": {f"k{i}": {"NumberValue": 1.0} for i in range(301)}}
    assert any("size max 300" in r for r in _rules("sagemaker", "UpdateTrialComponent", many))
    nan = {"TrialComponentName": "a", "Parameters": {"k": {"NumberValue": float("nan")}}}
    assert any("finite" in r for r in _rules("sagemaker", "UpdateTrialComponent", nan))
    status = {"TrialComponentName": "a", "Status": {"PrimaryStatus": "Done"}}
    assert any("enum" in r for r in _rules("sagemaker", "UpdateTrialComponent", status))
    assert any("required member 'TrialComponentName'" in r for r in _rules("sagemaker", "UpdateTrialComponent", {}))


def test_batch_put_metrics_rules():
    now = time.time()
    point = {"MetricName": "m", "Timestamp": now, "Value": 1.0, "Step": 0}
    assert _rules("sagemaker-metrics", "BatchPutMetrics", {"TrialComponentName": "a-b", "MetricData": [point]}) == []
    old = dict(point, Timestamp=dt.datetime.fromtimestamp(now - 15 * 86400, dt.timezone.utc))
    assert any("14 days" in r for r in _rules("sagemaker-metrics", "BatchPutMetrics", {"TrialComponentName": "a", "MetricData": [old]}))
    eleven = {"TrialComponentName": "a", "MetricData": [point] * 11}
    assert any("size max 10" in r for r in _rules("sagemaker-metrics", "BatchPutMetrics", eleven))
    upper = {"TrialComponentName": "A", "MetricData": [point]}
    assert any("pattern" in r for r in _rules("sagemaker-metrics", "BatchPutMetrics", upper))
    newline = {"TrialComponentName": "a", "MetricData": [dict(point, MetricName="a\nb")]}
    assert any("pattern" in r for r in _rules("sagemaker-metrics", "BatchPutMetrics", newline))


def test_s3_key_bytes():
    assert _rules("s3", "PutObject", {"Bucket": "b", "Key": "k" * 1024, "Body": b""}) == []
    assert any("1024 UTF-8 bytes" in r for r in _rules("s3", "PutObject", {"Bucket": "b", "Key": "é" * 513, "Body": b""}))


def test_the_guard_rejects_like_aws(aws_env):
    """In tests, a violating request is answered with a 400 ValidationException, never sent."""
    import aws_request_guard
    from botocore.exceptions import ClientError

    sm = aws_env.client("sagemaker")
    with pytest.raises(ClientError) as caught:
        sm.create_experiment(ExperimentName="bad name")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    found = aws_request_guard.take_violations()  # expected here: do not fail this test
    assert len(found) == 1 and "CreateExperiment.ExperimentName" in found[0] and "'bad name'" in found[0]


def test_subprocesses_are_checked_too(aws_env):
    """`spanchain serve`, the demo and other subprocesses get the checker via PYTHONPATH."""
    import subprocess
    import sys

    import aws_request_guard

    script = (
        "import boto3, botocore.exceptions as e\n"
        "sm = boto3.client('sagemaker')\n"
        "try:\n"
        "    sm.create_experiment(ExperimentName='bad\\nname')\n"
        "except e.ClientError as exc:\n"
        "    print(exc.response['Error']['Code'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ValidationException", out.stderr
    found = aws_request_guard.take_violations()
    assert len(found) == 1 and "CreateExperiment.ExperimentName = 'bad\\nname'" in found[0]
