"""Shared fixtures for the core tests."""

import pytest
from opentelemetry import context as otel_context

from pipeline_support import Pipeline
from aws_guard_plugin import aws_request_check, aws_request_check_session  # noqa: F401 (autouse)


@pytest.fixture(autouse=True)
def _isolated_otel_context():
    """Each test starts and ends with the context it found: a test that leaves a run open (and so
    its span current, as an app would until the run's TTL) must not leak into the next test."""
    token = otel_context.attach(otel_context.get_current())
    yield
    otel_context.detach(token)


@pytest.fixture
def pipeline():
    p = Pipeline()
    yield p
    p.handler.close_open_runs()
