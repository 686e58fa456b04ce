"""Interplay with the SageMaker SDK (sagemaker-core): a user's open `Run`, `load_run`, `list_runs`,
and import hygiene (our exporter never imports the SDK, so never runs its logging.basicConfig)."""

import json
import os
import subprocess
import sys
import threading
import uuid

import boto3
import pytest
from sagemaker_testkit import TraceFactory, metric_summaries, parameters

from spanchain_sagemaker import SageMakerSpanExporter

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


@pytest.fixture
def sdk_session(aws_env):
    from sagemaker.core.helper.session_helper import Session

    return Session(
        boto_session=boto3.Session(region_name=aws_env.region),
        sagemaker_config=SDK_CONFIG,  # no telemetry call to AWS from the test's own SDK use
        default_bucket="sdk-bucket",
    )


def test_exports_into_a_users_run_while_its_with_block_is_open_in_another_thread(aws_env, sm, s3, sdk_session):
    from sagemaker.core.experiments._run_context import _RunContext
    from sagemaker.core.experiments.run import Run

    s3.create_bucket(Bucket="sdk-bucket")
    experiment = f"user-{uuid.uuid4().hex[:6]}"
    run = Run(experiment_name=experiment, run_name="Their-Run", sagemaker_session=sdk_session)
    inside, release = threading.Event(), threading.Event()

    def user_code():
        with run:
            run.log_parameter("learning_rate", 0.1)
            inside.set()
            release.wait(60)

    user = threading.Thread(target=user_code)
    user.start()
    assert inside.wait(30)
    exporter = SageMakerSpanExporter(run=run)
    factory = TraceFactory()
    for n in (3, 4):
        exporter.export(factory.trace(input_tokens=n)[1])
    assert exporter.force_flush(20_000)
    assert _RunContext.get_current_run() is run  # the SDK's process-wide context is untouched

    tc = run._trial_component.trial_component_name
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "InProgress"  # the user's run, still open
    assert metric_summaries(described)["tokens.input"]["Count"] == 2
    assert parameters(described)["model.fake-model.temperature"] == 0.25
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sdk-bucket")["Contents"]]
    assert sum(k.startswith(f"trial-component-artifacts/{tc}/traces/") for k in keys) == 2

    release.set()
    user.join(30)
    exporter.shutdown()
    described = sm.describe_trial_component(TrialComponentName=tc)
    assert described["Status"]["PrimaryStatus"] == "Completed"  # set by the user's with-exit
    assert parameters(described)["learning_rate"] == 0.1
    # We never created or re-associated the user's run.
    assert "CreateTrialComponent" not in exporter.api_stats["calls"]
    assert "AssociateTrialComponent" not in exporter.api_stats["calls"]


def test_load_run_and_list_runs_recognise_our_runs(aws_env, sm, sdk_session):
    from sagemaker.core.experiments.run import list_runs, load_run

    aws_env.reset()  # list_runs walks (and, on moto, re-creates) every run in the account
    experiment = f"ours-{uuid.uuid4().hex[:6]}"
    exporter = SageMakerSpanExporter(experiment_name=experiment, run_name="session-a", artifact_bucket="spans")
    exporter.export(TraceFactory().trace()[1])
    assert exporter.force_flush(20_000)
    exporter.shutdown()
    location = exporter.location()

    runs = list_runs(experiment_name=experiment, sagemaker_session=sdk_session)
    assert [r.run_name for r in runs] == ["session-a"]
    with load_run(experiment_name=experiment, run_name="session-a", sagemaker_session=sdk_session) as run:
        assert run._trial_component.trial_component_name == location.trial_component
        assert run.run_group_name == location.trial == f"Default-Run-Group-{experiment}"


def test_our_exporter_never_imports_the_sdk_or_configures_logging(aws_env, tmp_path):
    script = tmp_path / "hygiene.py"
    script.write_text(
        "import logging, sys\n"
        "import spanchain\n"
        "assert 'boto3' not in sys.modules, 'import spanchain loaded boto3'\n"
        "import spanchain_sagemaker\n"
        "from spanchain_sagemaker import SageMakerSpanExporter, SageMakerCallbackHandler\n"
        "assert 'boto3' not in sys.modules, 'importing the exporter class loaded boto3'\n"
        "sys.path[:0] = %r  # this folder and the checkout (testkit)\n"
        "from sagemaker_testkit import TraceFactory\n"
        "exporter = SageMakerSpanExporter(experiment_name='hygiene', artifact_bucket='spans')\n"
        "exporter.export(TraceFactory().trace()[1])\n"
        "assert exporter.force_flush(20000)\n"
        "exporter.shutdown()\n"
        "assert exporter.stats.written == 2, exporter.stats\n"
        "assert not [m for m in sys.modules if m == 'sagemaker' or m.startswith('sagemaker.')]\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "print('clean')\n" % [os.path.dirname(__file__), os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))]
    )
    env = dict(os.environ)
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
