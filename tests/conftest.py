"""Shared fixtures for the core tests."""

import pytest

from pipeline_support import Pipeline


@pytest.fixture
def pipeline():
    return Pipeline()
