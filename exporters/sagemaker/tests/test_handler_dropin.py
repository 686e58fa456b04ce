"""The drop-in SageMakerCallbackHandler: the seed docs' three scenarios and the seed's bugs."""

import json
import os
import uuid

import boto3
import pytest
from sagemaker_scenarios import EXPERIMENT, SCENARIOS
from sagemaker_testkit import metric_summaries, parameters

from spanchain_sagemaker import SageMakerCallbackHandler
from spanchain_sagemaker.exporter import FILES_ARTIFACT, SUMMARY_ARTIFACT, TRACES_ARTIFACT
from spanchain_sagemaker.dropin import SEED_COUNTERS

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@pytest.fixture
def session(aws_env, s3):
    from sagemaker.core.helper.session_helper import Session

    s3.create_bucket(Bucket="tracker-bucket")
    return Session(
        boto_session=boto3.Session(region_name=aws_env.region),
        sagemaker_config=SDK_CONFIG,
        default_bucket="tracker-bucket",
    )


def read_json(s3, uri):
    bucket, key = uri[len("s3://") :].split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def trace_documents(s3, described):
    prefix_uri = described["OutputArtifacts"][TRACES_ARTIFACT]["Value"]
    bucket, prefix = prefix_uri[len("s3://") :].split("/", 1)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return [read_json(s3, f"s3://{bucket}/{k}") for k in keys]


def all_text(documents):
    return json.dumps(documents)


EXPECTED = {
    # scenario: (llm_starts, tool_starts, chain_starts, generated text that must be saved)
    1: (1, 0, 3, "Sea otters hold hands while they sleep."),
    2: (2, 0, 6, "An otter searches the coast for its family."),
    3: (3, 2, 1, "Twice the captain's age is 84."),
}


@pytest.mark.parametrize("scenario", [1, 2, 3])
def test_seed_docs_scenarios(scenario, session, sm, s3):
    from sagemaker.core.experiments.run import Run

    experiment = f"{EXPERIMENT}-{uuid.uuid4().hex[:6]}"
    with Run(experiment_name=experiment, run_name=f"run-scenario-{scenario}", sagemaker_session=session) as run:
        cb = SageMakerCallbackHandler(run)
        answer = SCENARIOS[scenario]({"callbacks": [cb]})
        live = dict(cb.metrics)
        assert cb.flush_tracker()
        assert all(v == 0 for v in cb.metrics.values())  # reset, as in the seed
        tc = run._trial_component.trial_component_name
        inside = sm.describe_trial_component(TrialComponentName=tc)

    llm_starts, tool_starts, chain_starts, text = EXPECTED[scenario]
    assert answer == text
    assert set(live) == set(SEED_COUNTERS)
    assert (live["llm_starts"], live["tool_starts"], live["chain_starts"]) == (llm_starts, tool_starts, chain_starts)
    assert live["starts"] == live["ends"] == llm_starts + tool_starts + chain_starts

    # Everything was in the run before the with-block ended (flush_tracker delivered it).
    assert metric_summaries(inside)["counters.llm_starts"]["Last"] == llm_starts
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "Completed"
    metrics = metric_summaries(described)
    assert metrics["counters.llm_starts"]["Last"] == llm_starts
    assert metrics["counters.tool_starts"]["Last"] == tool_starts
    assert metrics["llm_calls"]["Last"] == llm_starts
    params = parameters(described)
    assert "spanchain.exporter" in params
    assert set(described["OutputArtifacts"]) == {TRACES_ARTIFACT, SUMMARY_ARTIFACT}

    documents = trace_documents(s3, described)
    assert len(documents) == 1  # one trace, one JSON document, not one file per callback
    assert text in all_text(documents)  # the seed never saved the generated text
    if scenario == 3:
        assert json.loads(params["tools"]) == ["search", "calculator"]
        assert metrics["tokens.total"]["Last"] == 25 + 25 + 38
        names = {s["name"] for s in documents[0]["spans"]}
        assert any("calculator" in n for n in names) and any("search" in n for n in names)
    summary = read_json(s3, described["OutputArtifacts"][SUMMARY_ARTIFACT]["Value"])
    assert summary["counters"]["llm_starts"] == llm_starts


def test_seed_bugs_are_fixed(session, sm, s3):
    """serialized=None, non-dict inputs, a stream of tokens, 40 jsonf files, use after flush."""
    from langchain_core.runnables import RunnableLambda

    from sagemaker.core.experiments.run import Run

    experiment = f"bugs-{uuid.uuid4().hex[:6]}"
    with Run(experiment_name=experiment, run_name="run-bugs", sagemaker_session=session) as run:
        cb = SageMakerCallbackHandler(run)
        root = uuid.uuid4()
        cb.on_chain_start(None, "a plain string input", run_id=root)  # crashed the seed
        llm = uuid.uuid4()
        cb.on_llm_start(None, ["prompt"], run_id=llm, parent_run_id=root)
        for i in range(120):  # the seed wrote one artifact per token
            cb.on_llm_new_token(f"tok{i} ", run_id=llm)
        cb.on_llm_end(_llm_result("streamed answer"), run_id=llm, parent_run_id=root)
        cb.on_chain_end(["not", "a", "dict"], run_id=root)  # crashed the seed
        cb.on_chain_start({"name": "seed-style"}, {"input": 1})  # no run_id: logged, not raised
        assert cb.metrics["llm_streams"] == 120
        for i in range(40):  # the seed's log_file failed after 30 artifacts
            cb.jsonf({"i": i, "obj": object()}, cb.temp_dir, f"payload_{i}")
        assert os.path.exists(os.path.join(cb.temp_dir, "payload_39.json"))
        run.log_parameter("users-own", "kept")
        assert cb.flush_tracker()
        # The handler keeps working after a flush (the seed's temp_dir was gone).
        RunnableLambda(lambda x: x * 2, name="after-flush").invoke(2, config={"callbacks": [cb]})
        cb.jsonf({"late": True}, cb.temp_dir, "late")
        assert cb.flush_tracker()
        tc = run._trial_component.trial_component_name

    described = sm.describe_trial_component(TrialComponentName=tc)
    artifacts = described["OutputArtifacts"]
    assert set(artifacts) == {TRACES_ARTIFACT, SUMMARY_ARTIFACT, FILES_ARTIFACT}
    params = parameters(described)
    assert params["users-own"] == "kept" and "spanchain.exporter" in params  # both survive the exit
    files_uri = artifacts[FILES_ARTIFACT]["Value"]
    bucket, prefix = files_uri[len("s3://") :].split("/", 1)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert len(keys) == 41
    assert read_json(s3, f"s3://{bucket}/{prefix}payload_7.json")["i"] == 7
    documents = trace_documents(s3, described)
    assert "streamed answer" in all_text(documents)
    assert "a plain string input" in all_text(documents)
    assert any("after-flush" in s["name"] for d in documents for s in d["spans"])
    metrics = metric_summaries(described)
    assert metrics["counters.llm_streams"]["Max"] == 120


def _llm_result(text):
    from langchain_core.outputs import Generation, LLMResult

    return LLMResult(generations=[[Generation(text=text)]], llm_output={"model_name": "fake"})


def test_flush_tracker_reports_failure_without_raising_when_sagemaker_is_gone(aws_env, monkeypatch):
    from langchain_core.runnables import RunnableLambda
    from sagemaker.core.experiments.run import Run
    from sagemaker.core.helper.session_helper import Session

    from testkit.moto_server import start_emulator

    doomed = start_emulator()
    try:
        for key, value in doomed.aws_env().items():
            monkeypatch.setenv(key, value)
        session = Session(boto_session=boto3.Session(region_name=doomed.region), sagemaker_config=SDK_CONFIG, default_bucket="b-doomed")
        run = Run(experiment_name="doomed", run_name="r", sagemaker_session=session)
        cb = SageMakerCallbackHandler(run, max_attempts=1, backoff_attempts=1, retry_timeout_s=0, shutdown_timeout_s=3)
    finally:
        doomed.stop()
    assert RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [cb]}) == 2
    assert cb.metrics["chain_starts"] == 1
    assert cb.flush_tracker(timeout_s=10) is False  # told, not raised
    assert cb.metrics["chain_starts"] == 0
    cb.close(timeout_s=5)
    assert cb.exporter.export([]).name == "FAILURE"  # closed: nothing is accepted any more


def test_one_handler_shared_by_threads_counts_and_records_every_run(session, sm, s3):
    """The seed's counters raced (unlocked `+=`) and its file names collided across threads."""
    from concurrent.futures import ThreadPoolExecutor

    from langchain_core.language_models import FakeListLLM
    from langchain_core.prompts import PromptTemplate
    from sagemaker.core.experiments.run import Run

    experiment = f"threads-{uuid.uuid4().hex[:6]}"
    with Run(experiment_name=experiment, run_name="shared", sagemaker_session=session) as run:
        cb = SageMakerCallbackHandler(run)

        def one_call(i):
            chain = PromptTemplate.from_template("Q{i}") | FakeListLLM(responses=[f"A{i}"])
            return chain.invoke({"i": i}, config={"callbacks": [cb]})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one_call, range(40)))
        live = dict(cb.metrics)
        assert cb.flush_tracker()
        tc = run._trial_component.trial_component_name

    assert answers == [f"A{i}" for i in range(40)]
    assert live["llm_starts"] == live["llm_ends"] == 40
    assert live["chain_starts"] == 80  # the sequence + the prompt template, per call
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert metric_summaries(described)["llm_calls"]["Count"] == 40  # one step per trace
    documents = trace_documents(s3, described)
    assert len(documents) == 40
    assert sorted(d["summary"]["span_count"] for d in documents) == [3] * 40
