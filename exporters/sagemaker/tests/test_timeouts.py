"""Timeouts and the per-batch time budget, against a real moto server behind a real HTTP proxy
that delays or throttles every request (testkit/fault_proxy.py).

The budget is what bounds the writer: with it removed, the same slow backend keeps the writer
for read_timeout x botocore attempts x our backoffs x the base's retries (minutes), and these
tests fail on the elapsed-time assertions.
"""

import logging
import time
import uuid

import pytest
from sagemaker_testkit import TraceFactory

from spanchain_sagemaker import SageMakerSpanExporter
from spanchain_sagemaker.config import DEFAULT_TIMEOUT_S, Settings
from testkit.fault_proxy import FaultProxy

BUDGET_S = 2.0
# Slack for a loaded 2-core CI machine: thread wake-ups, the proxy, moto. Far below what the
# same backend costs without the budget (the read timeout alone is 10 s per attempt here).
SLACK_S = 2.5


@pytest.fixture
def proxy(aws_env, monkeypatch):
    with FaultProxy(aws_env.endpoint_url) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
        yield p
        p.set("pass")


def _exporter(**options):
    options.setdefault("timeout_s", BUDGET_S)
    options.setdefault("read_timeout_s", 10.0)  # alone it would not save the writer
    # No engine retries on top: one write's budget running out is the give-up measured here.
    options.setdefault("retry_timeout_s", 0)
    return SageMakerSpanExporter(
        experiment_name=f"budget-{uuid.uuid4().hex[:6]}",
        run_name="r",
        artifact_bucket="budget-spans",
        shutdown_timeout_s=15,
        **options,
    )


def _trace_keys(s3, experiment: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket="budget-spans", Prefix=f"trial-component-artifacts/{experiment}-r/traces/")
    return [o["Key"] for o in listed.get("Contents", [])]


def _wait_for(predicate, timeout_s: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def test_timeouts_resolve_argument_then_environment_in_milliseconds_then_default(caplog):
    env = {
        "OTEL_EXPORTER_SAGEMAKER_TIMEOUT": "4500",
        "OTEL_EXPORTER_SAGEMAKER_CONNECT_TIMEOUT": "250",
        "OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT": "1500",
    }
    from_env = Settings.resolve(env=env)
    assert (from_env.timeout_s, from_env.connect_timeout_s, from_env.read_timeout_s) == (4.5, 0.25, 1.5)
    from_args = Settings.resolve(timeout_s=7, connect_timeout_s=1, read_timeout_s=3, env=env)
    assert (from_args.timeout_s, from_args.connect_timeout_s, from_args.read_timeout_s) == (7, 1, 3)
    defaults = Settings.resolve(env={})
    assert defaults.timeout_s == DEFAULT_TIMEOUT_S == 30.0
    assert defaults.connect_timeout_s is None and defaults.read_timeout_s is None  # ClientSettings'
    with caplog.at_level(logging.ERROR):
        bad = Settings.resolve(env={"OTEL_EXPORTER_SAGEMAKER_TIMEOUT": "soon", "OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT": "-5"})
    assert bad.timeout_s == DEFAULT_TIMEOUT_S and bad.read_timeout_s is None
    assert "OTEL_EXPORTER_SAGEMAKER_TIMEOUT" in caplog.text and "OTEL_EXPORTER_SAGEMAKER_READ_TIMEOUT" in caplog.text


def test_timeouts_reach_the_botocore_clients(aws_env):
    exporter = _exporter(connect_timeout_s=1.25, read_timeout_s=3.5)
    try:
        exporter._writer._backend()
        for client in exporter._writer._api.clients.values():
            assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1.25, 3.5)
    finally:
        exporter.shutdown()


def test_a_hanging_backend_releases_the_writer_within_the_budget_and_counts_the_drop(proxy, s3, caplog):
    proxy.set("slow", slow_s=25)  # every request hangs far beyond the budget
    exporter = _exporter()
    spans = TraceFactory().trace()[1]
    with caplog.at_level(logging.WARNING, logger="spanchain"):
        started = time.monotonic()
        exporter.export(spans)
        gave_up = _wait_for(lambda: exporter.stats.dropped_retries_exhausted > 0, BUDGET_S + 30)
    print(f"\nhanging backend, no spool: writer gave up after {gave_up:.2f} s (budget {BUDGET_S} s)")
    assert gave_up < BUDGET_S + SLACK_S
    assert exporter.stats.dropped_retries_exhausted == len(spans) and exporter.stats.written == 0
    assert exporter.dropped_total() == len(spans) and exporter.undelivered() == 0  # counted, not held
    assert "BudgetExhausted" in caplog.text and "dropped" in caplog.text  # reported

    # The writer is free again: once the backend answers, the next trace is written.
    proxy.set("pass")
    root, more = TraceFactory().trace()
    exporter.export(more)
    assert exporter.force_flush(30_000)
    assert any(root in key for key in _trace_keys(s3, exporter.settings.experiment))
    started = time.monotonic()
    exporter.shutdown()
    assert time.monotonic() - started < 15


def test_a_hanging_backend_leaves_the_batch_in_the_spool_until_it_answers(proxy, s3, tmp_path):
    proxy.set("slow", slow_s=25)
    exporter = _exporter(spool_dir=str(tmp_path / "spool"), spool_fsync=False)
    root, spans = TraceFactory().trace()
    exporter.export(spans)
    _wait_for(lambda: exporter.stats.spooled == len(spans), 10)
    started = time.monotonic()
    delivered = exporter.force_flush(60_000)  # the flush tries the spool once, under the budget
    took = time.monotonic() - started
    print(f"\nhanging backend, spool: flush returned after {took:.2f} s (budget {BUDGET_S} s)")
    assert not delivered and took < 2 * BUDGET_S + SLACK_S  # the drain's try, then the flush's
    assert exporter.stats.spool_pending == exporter.stats.waiting == len(spans)  # kept on disk, not dropped
    assert exporter.dropped_total() == 0 and exporter.stats.written == 0

    proxy.set("pass")
    assert exporter.force_flush(60_000)
    exporter.shutdown()
    assert exporter.stats.spool_pending == 0
    assert any(root in key for key in _trace_keys(s3, exporter.settings.experiment))


def test_throttling_that_never_ends_does_not_outlast_the_budget(proxy):
    """botocore's own retry sleeps (up to 1, 2, 4, 8 ... 20 s for throttling) are not started
    when they could outlast the budget. What may still run past it is the adaptive rate
    limiter's wait for a send token (at most 2 s: its lowest rate is 0.5 requests/s); measured
    0.2-1.1 s over a 10 s budget, against 2-14 s over it without the check."""
    budget_s = 10.0
    proxy.set("throttle")
    exporter = _exporter(timeout_s=budget_s)
    spans = TraceFactory().trace()[1]
    exporter.export(spans)
    gave_up = _wait_for(lambda: exporter.stats.dropped_retries_exhausted > 0, budget_s + 60)
    print(f"\nendless throttling: writer gave up after {gave_up:.2f} s (budget {budget_s} s)")
    assert gave_up < budget_s + SLACK_S
    assert exporter.api_stats["throttled"] >= 1
    assert exporter.stats.dropped_retries_exhausted == len(spans)
    exporter.shutdown()


def test_the_deadline_decides_botocore_retries_read_timeouts_and_our_waits(aws_env):
    """The decisions behind the bounds above, on the real clients the exporter builds."""
    from botocore.awsrequest import AWSPreparedRequest

    from spanchain_sagemaker.aws import BudgetExhausted

    exporter = _exporter(timeout_s=3.0, read_timeout_s=10.0)
    try:
        exporter._writer._backend()
        api = exporter._writer._api
        assert api._needs_retry(attempts=3) is None  # outside a batch: botocore decides alone
        with exporter._writer._deadline.window():
            assert api._needs_retry(attempts=1) is None  # its sleep is at most 1 s: fits
            assert api._needs_retry(attempts=3) is False  # up to 4 s: not started
            request = AWSPreparedRequest("POST", aws_env.endpoint_url, {}, b"", False, {})
            api._before_send(request, read_timeout=10.0)
            assert 2.5 < request.context["read_timeout"] <= 3.0  # cut to what is left
            started = time.monotonic()
            with pytest.raises(BudgetExhausted):
                api.pause(5.0)  # a backoff that cannot fit fails at once instead of sleeping
            assert time.monotonic() - started < 0.5
        with exporter._writer._deadline.window():
            exporter._writer._deadline._at = time.monotonic()  # the budget is gone
            with pytest.raises(BudgetExhausted):
                api.call("sagemaker", "ListExperiments")
        assert api.call("sagemaker", "ListExperiments")  # a new window, a new budget
    finally:
        exporter.shutdown()
