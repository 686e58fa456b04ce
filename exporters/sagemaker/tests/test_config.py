"""Configuration order: constructor argument, then environment variable, then default."""

import logging

import pytest

from spanchain_sagemaker import SageMakerSpanExporter
from spanchain_sagemaker.config import ConfigError, Settings


def test_arguments_win_over_environment_which_wins_over_defaults():
    env = {
        "OTEL_EXPORTER_SAGEMAKER_EXPERIMENT": "From Env",
        "OTEL_SERVICE_NAME": "service",
        "OTEL_EXPORTER_SAGEMAKER_RUN_NAME": "env-run",
        "OTEL_EXPORTER_SAGEMAKER_RUN_PER": "TRACE",
        "OTEL_EXPORTER_SAGEMAKER_BUCKET": "env-bucket",
        "OTEL_EXPORTER_SAGEMAKER_PREFIX": "/env/prefix/",
        "OTEL_EXPORTER_SAGEMAKER_SPOOL_DIR": "/tmp/env-spool",
    }
    from_env = Settings.resolve(env=env)
    assert (from_env.experiment, from_env.run_name, from_env.run_per) == ("from-env", "env-run", "trace")
    assert (from_env.bucket, from_env.prefix, from_env.spool_dir) == ("env-bucket", "env/prefix", "/tmp/env-spool")
    assert from_env.prefix_explicit
    from_args = Settings.resolve(
        experiment_name="arg", run_name="arg-run", run_per="session", artifact_bucket="arg-bucket",
        artifact_prefix="", spool_dir="/tmp/arg", env=env,
    )
    assert (from_args.experiment, from_args.run_name, from_args.run_per) == ("arg", "arg-run", "session")
    assert (from_args.bucket, from_args.prefix, from_args.spool_dir) == ("arg-bucket", "", "/tmp/arg")


def test_defaults():
    settings = Settings.resolve(env={})
    assert settings.experiment is None  # decided later from the spans' service.name
    assert settings.run_name is None and settings.run_per == "session"
    assert settings.bucket is None and settings.prefix == "trial-component-artifacts"
    assert not settings.prefix_explicit and settings.spool_dir is None
    assert Settings.resolve(env={"OTEL_SERVICE_NAME": "Shop API"}).experiment == "shop-api"
    assert Settings.resolve(env={"SPANCHAIN_SPOOL_DIR": "/s"}).spool_dir == "/s"
    assert Settings.resolve(env={"OTEL_EXPORTER_SAGEMAKER_EXPERIMENT": "  "}).experiment is None


def test_a_bad_run_per_is_reported_and_falls_back(monkeypatch, caplog):
    with pytest.raises(ConfigError):
        Settings.resolve(run_per="per-span", env={})
    monkeypatch.setenv("OTEL_EXPORTER_SAGEMAKER_RUN_PER", "per-span")
    with caplog.at_level(logging.ERROR):
        exporter = SageMakerSpanExporter(experiment_name="x")
    assert exporter.settings.run_per == "session"
    assert "OTEL_EXPORTER_SAGEMAKER_RUN_PER" in caplog.text
    exporter.shutdown()


def test_constructing_does_no_io_and_unknown_options_fail_fast(monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens; never called
    with pytest.raises(TypeError, match="no_such_option"):
        SageMakerSpanExporter(experiment_name="x", no_such_option=1)
    exporter = SageMakerSpanExporter(experiment_name="x")
    assert exporter.api_stats["calls"] == {}
    exporter.shutdown()  # nothing exported: nothing to write, returns at once
