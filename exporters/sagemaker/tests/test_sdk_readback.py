"""SageMaker SDK v3 reads our runs back: `load_run`, `list_runs` and `ExperimentAnalytics`.

The SDK talks to moto through `ReadBackEmulator`, which answers the few calls moto gets wrong the
way AWS does (see its docstring); every request still passes the strict request checker.
"""

import uuid

import boto3
import pytest
from readback_emulator import ReadBackEmulator
from sagemaker_testkit import TraceFactory

from spanchain_sagemaker import SageMakerCallbackHandler, SageMakerSpanExporter

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@pytest.fixture
def faithful(aws_env, monkeypatch):
    """The AWS endpoint seen by this test (exporter and SDK alike) is the read-back layer."""
    layer = ReadBackEmulator(aws_env.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", layer.url)
    yield layer
    layer.close()


@pytest.fixture
def sdk_session(faithful):
    from sagemaker.core.helper.session_helper import Session

    boto_session = boto3.Session(region_name="us-east-1")
    boto_session.client("s3").create_bucket(Bucket="readback")
    return Session(boto_session=boto_session, sagemaker_config=SDK_CONFIG, default_bucket="readback")


def _analytics(experiment, sdk_session):
    from sagemaker.core.analytics import ExperimentAnalytics

    return ExperimentAnalytics(experiment_name=experiment, sagemaker_session=sdk_session).dataframe()


@pytest.mark.parametrize("run_per", ["session", "trace"])
def test_exporter_runs_are_found_loaded_and_analysed_by_sdk_v3(faithful, sdk_session, run_per):
    from sagemaker.core.experiments.run import list_runs, load_run

    experiment = f"readback-{uuid.uuid4().hex[:6]}"
    other = SageMakerSpanExporter(experiment_name=f"other-{uuid.uuid4().hex[:6]}", sagemaker_session=sdk_session)
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="nightly", run_per=run_per,
                                     sagemaker_session=sdk_session)
    factory = TraceFactory()
    for tokens in (10, 20):
        exporter.export(factory.trace(input_tokens=tokens)[1])
    other.export(factory.trace()[1])
    assert exporter.force_flush(30_000) and other.force_flush(30_000)
    exporter.shutdown()
    other.shutdown()
    expected_runs = 1 if run_per == "session" else 2

    runs = list_runs(experiment_name=experiment, sagemaker_session=sdk_session)
    assert len(runs) == expected_runs  # only this experiment's runs, recognised as runs
    run_name = runs[0].run_name
    with load_run(experiment_name=experiment, run_name=run_name, sagemaker_session=sdk_session) as run:
        assert run.experiment_name == experiment
    frame = _analytics(experiment, sdk_session)
    assert len(frame) == expected_runs
    row = frame.iloc[0]
    assert row["model.fake-model.temperature"] == 0.25
    assert row["spanchain.run_per"] == run_per
    assert row["Experiments"] == [experiment]
    assert frame["tokens.input - Count"].sum() == 2
    assert frame["tokens.input - Max"].max() == 20
    # load_run did not wipe the run (AWS refuses to re-create it; the SDK loads it instead)
    assert _analytics(experiment, sdk_session)["tokens.input - Count"].sum() == 2
    assert faithful.answered.get("CreateTrialComponent", 0) >= 1


def test_drop_in_handler_run_is_analysed_by_sdk_v3(faithful, sdk_session):
    from sagemaker.core.experiments.run import Run, list_runs

    experiment = f"dropin-{uuid.uuid4().hex[:6]}"
    with Run(experiment_name=experiment, run_name="eval-1", sagemaker_session=sdk_session) as run:
        run.log_parameter("learning_rate", 0.1)
        handler = SageMakerCallbackHandler(run)
        from sagemaker_scenarios import scenario_1

        scenario_1({"callbacks": [handler]})
        assert handler.flush_tracker()
    handler.close()

    assert [r.run_name for r in list_runs(experiment_name=experiment, sagemaker_session=sdk_session)] == ["eval-1"]
    frame = _analytics(experiment, sdk_session)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["learning_rate"] == 0.1  # the user's parameter and ours, side by side
    assert row["spanchain.exporter"] == "sagemaker"
    assert row["counters.llm_starts - Count"] == 1 and row["trace.spans - Max"] >= 1
