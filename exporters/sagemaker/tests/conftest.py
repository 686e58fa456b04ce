"""Fixtures for the SageMaker exporter tests: a real moto server on loopback, never AWS."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from testkit.moto_server import start_emulator  # noqa: E402
from aws_guard_plugin import aws_request_check, aws_request_check_session  # noqa: E402,F401 (autouse)


def _isolate_from_real_aws(env: dict) -> dict:
    """No profile, no instance metadata, no shared config: only what the emulator hands out."""
    env = dict(env)
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        }
    )
    env.pop("AWS_PROFILE", None)
    return env


@pytest.fixture(scope="session")
def emulator():
    emu = start_emulator()
    yield emu
    emu.stop()


@pytest.fixture
def aws_env(emulator, monkeypatch):
    """Point every boto3 client created in this test at the shared emulator."""
    for key in list(os.environ):
        if key.startswith("OTEL_EXPORTER_SAGEMAKER_") or key == "OTEL_SERVICE_NAME":
            monkeypatch.delenv(key)
    for key, value in _isolate_from_real_aws(emulator.aws_env()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return emulator


@pytest.fixture
def sm(aws_env):
    return aws_env.client("sagemaker")


@pytest.fixture
def s3(aws_env):
    return aws_env.client("s3")
