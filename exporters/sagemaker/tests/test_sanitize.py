"""Every name and limit rule of the SageMaker APIs. moto checks none of them, so these do."""

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from spanchain_sagemaker import sanitize as names

# The patterns from the botocore service models.
ENTITY = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")
METRICS_TC = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,119}$")
MEDIA_TYPE = re.compile(r"^[-\w]+/[-\w+]+$")
TAG = re.compile(r"^([\w\s.:/=+\-@]*)$", re.UNICODE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_becomes_a_valid_lowercase_name_part(text):
    part = names.entity_name_part(text)
    assert METRICS_TC.match(part), part
    assert len(part) <= names.MAX_NAME_PART


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_trial_component_and_trial_names_fit_the_api(exp, run):
    e, r = names.entity_name_part(exp), names.entity_name_part(run)
    tc = names.trial_component_name(e, r)
    assert METRICS_TC.match(tc) and len(tc) <= names.MAX_ENTITY_NAME
    trial = names.trial_name(e)
    assert ENTITY.match(trial) and len(trial) <= names.MAX_ENTITY_NAME
    assert trial.startswith("Default-Run-Group-")


def test_names_are_lowercased_and_cleaned_like_the_sdk():
    assert names.entity_name_part("My Experiment_v2.1") == "my-experiment-v2-1"
    assert names.entity_name_part("--a__b--") == "a-b"
    assert names.entity_name_part("") == "x"
    assert names.entity_name_part("___", fallback="run") == "run"
    assert names.entity_name_part(None) == "x"
    assert names.entity_name_part("Ünïcode Exp!!") == "unicode-exp"
    assert names.trial_component_name("exp", "run") == "exp-run"


def test_long_names_are_cut_with_a_stable_distinguishing_hash():
    a = names.entity_name_part("a" * 80 + "one")
    b = names.entity_name_part("a" * 80 + "two")
    assert len(a) == len(b) == names.MAX_NAME_PART
    assert a != b
    assert a == names.entity_name_part("a" * 80 + "one")  # stable across calls/processes
    assert re.search(r"-[0-9a-f]{8}$", a)
    # A name that fits is never hashed.
    assert names.entity_name_part("b" * 59) == "b" * 59


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_display_names_match_the_entity_pattern(text):
    name = names.display_name(text)
    assert ENTITY.match(name) and len(name) <= names.MAX_ENTITY_NAME


def test_display_names_keep_case():
    assert names.display_name("My Run #1") == "My-Run-1"


def test_parameter_values_numbers_stay_numbers_everything_else_strings():
    assert names.parameter_value(3) == {"NumberValue": 3.0}
    assert names.parameter_value(0.25) == {"NumberValue": 0.25}
    assert names.parameter_value(True) == {"StringValue": "true"}  # the SDK would send 1.0
    assert names.parameter_value(False) == {"StringValue": "false"}
    assert names.parameter_value("gpt") == {"StringValue": "gpt"}
    assert names.parameter_value(["a", 1]) == {"StringValue": '["a", 1]'}
    assert names.parameter_value(("a", "b")) == {"StringValue": '["a", "b"]'}
    assert names.parameter_value({"b": 1, "a": 2}) == {"StringValue": '{"a": 2, "b": 1}'}
    assert names.parameter_value(b"bytes") == {"StringValue": "bytes"}
    assert names.parameter_value(None) is None
    assert names.parameter_value(math.nan) is None
    assert names.parameter_value(math.inf) is None
    assert names.parameter_value(-math.inf) is None


def test_parameter_strings_and_keys_are_cut_to_the_api_limits():
    value = names.parameter_value("x" * 10_000)["StringValue"]
    assert len(value) == names.MAX_PARAMETER_STRING == 2500
    key = names.parameter_key("k" * 1000)
    assert len(key) == names.MAX_PARAMETER_KEY == 320
    assert names.parameter_key("k" * 1000) != names.parameter_key("k" * 999)
    assert names.parameter_key("") == "parameter"


def test_odd_objects_become_strings_without_raising():
    class Weird:
        def __str__(self):
            raise RuntimeError("no str for you")

    assert names.parameter_value(Weird()) is None
    assert names.parameter_value([Weird()])["StringValue"].startswith("[")  # repr fallback
    assert names.parameter_value(complex(1, 2)) == {"StringValue": "(1+2j)"}


def test_metric_names_values_and_steps():
    assert names.metric_name("") == "metric"
    assert len(names.metric_name("m" * 400)) == names.MAX_METRIC_NAME == 255
    assert names.metric_name("latency_s.llm") == "latency_s.llm"
    assert names.metric_value("1.5") == 1.5
    assert names.metric_value(True) == 1.0
    assert names.metric_value(math.nan) is None
    assert names.metric_value(math.inf) is None
    assert names.metric_value("abc") is None
    assert names.metric_step(-3) == 0
    assert names.metric_step(7.9) == 7
    assert names.metric_step("x") == 0


def test_metric_timestamps_are_clamped_into_the_accepted_window():
    now = 1_800_000_000.0
    day = 24 * 3600
    assert names.clamp_metric_timestamp(now - 1, now) == now - 1
    old = names.clamp_metric_timestamp(now - 30 * day, now)
    assert now - 14 * day < old < now  # inside [now-14d, now+2h] with a margin
    future = names.clamp_metric_timestamp(now + 10 * day, now)
    assert now < future < now + 2 * 3600
    assert names.clamp_metric_timestamp(math.nan, now) == now


def test_status_message_artifact_and_media_type_limits():
    assert len(names.status_message("e" * 5000)) == names.MAX_STATUS_MESSAGE == 1024
    assert len(names.artifact_key("a" * 500)) == names.MAX_ARTIFACT_KEY == 128
    assert len(names.artifact_value("s3://" + "b" * 5000)) == names.MAX_ARTIFACT_VALUE
    assert names.media_type("application/json") == "application/json"
    assert names.media_type("not a type") == "application/json"
    assert names.media_type("a/" + "b" * 100) == "application/json"  # > 64 characters
    assert MEDIA_TYPE.match(names.media_type(None))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=600))
def test_tags_fit_the_api(key, value):
    tag = names.tag(key, value)
    assert TAG.match(tag["Key"]) and 1 <= len(tag["Key"]) <= names.MAX_TAG_KEY
    assert TAG.match(tag["Value"]) and len(tag["Value"]) <= names.MAX_TAG_VALUE


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_s3_key_parts_are_url_safe(text):
    part = names.s3_key_part(text)
    assert re.match(r"^[A-Za-z0-9._-]+$", part) and len(part) <= 200
    assert "/" not in part


def test_s3_prefix_keeps_segments():
    assert names.s3_prefix("/a b/c//d/") == "a-b/c/d"
    assert names.s3_prefix("") == ""
    assert names.s3_prefix("trial-component-artifacts") == "trial-component-artifacts"


def test_connection_resets_and_throttling_are_transient_validation_is_not():
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

    from spanchain_sagemaker.aws import is_transient

    assert is_transient(ConnectionClosedError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X")
    assert is_transient(throttled)
    invalid = ClientError({"Error": {"Code": "ValidationException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X")
    assert not is_transient(invalid)


# --- the sanitising layer (issue 11) ------------------------------------------------------------


def test_api_text_removes_every_java_line_terminator_and_cuts_in_utf16_units():
    from aws_request_rules import compiled, utf16_units

    from spanchain_sagemaker.sanitize import api_text

    text = api_text("a\r\nb\nc\rd\u0085e\u2028f\u2029g\ud800", 100)
    assert text == "a b c d e f g\ufffd"
    assert compiled(".*").fullmatch(text)
    cut = api_text("😀" * 2000, 2500)
    assert utf16_units(cut) <= 2500 and cut.endswith("…") and "\ud83d" not in cut


def test_json_lists_stay_valid_json_on_one_line():
    import json

    from aws_request_rules import compiled

    from spanchain_sagemaker.sanitize import json_text, parameter_value

    text = json_text(["a\u2028b", "c\u0085d", "e\nf"])
    assert json.loads(text) == ["a\u2028b", "c\u0085d", "e\nf"]
    assert compiled(".*").fullmatch(text)
    assert compiled(".*").fullmatch(parameter_value(["x\u2029y"])["StringValue"])


def test_keys_and_metric_names_are_one_line_and_fit_in_utf16_units():
    from aws_request_rules import utf16_units

    from spanchain_sagemaker.sanitize import metric_name, parameter_key, status_message

    assert parameter_key("model.gpt\n4.temperature") == "model.gpt 4.temperature"
    long_key = parameter_key("😀" * 300)
    assert utf16_units(long_key) <= 320 and long_key != parameter_key("😀" * 301)
    assert metric_name("latency_s.my\u2028type") == "latency_s.my type"
    assert utf16_units(metric_name("😀" * 200)) <= 255
    assert metric_name("\n") == "metric"
    assert "\n" not in status_message("ValueError: a\nb")


def test_s3_prefix_is_bounded():
    from spanchain_sagemaker.sanitize import MAX_S3_PREFIX, s3_prefix

    long = s3_prefix("/".join(["p" * 190] * 8))
    assert len(long) <= MAX_S3_PREFIX and long != s3_prefix("/".join(["p" * 190] * 9))
    assert s3_prefix("team/space") == "team/space"


def test_display_name_keeps_the_distinguishing_suffix():
    from spanchain_sagemaker.sanitize import display_name

    name = display_name("x" * 300, suffix="20260101-000000-0a1b2c3d")
    assert len(name) <= 120 and name.endswith("-20260101-000000-0a1b2c3d")
    assert display_name("qa chain", suffix="1") == "qa-chain-1"
