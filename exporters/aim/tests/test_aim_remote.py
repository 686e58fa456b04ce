"""aim:// against a real `aim server` on loopback: the same read-back, and no hangs when it fails."""

import subprocess
import sys
import textwrap
import time

from opentelemetry.sdk.trace.export import SpanExportResult

from spanchain import semconv as sc
from spanchain_aim import AimSpanExporter
from spanchain_aim.readback import read_runs
from testkit.spans import agent_spans
from testkit.aim_server import free_port


def test_remote_session_and_trace_runs_read_back_from_the_servers_repo(aim_server):
    spans = agent_spans(2, service="remote-svc")
    session = AimSpanExporter(repo=aim_server.uri, experiment="remote-session")
    session.export(spans)
    assert session.force_flush(60_000)
    session.shutdown()
    per_trace = AimSpanExporter(repo=aim_server.uri, run_per="trace")
    per_trace.export(spans)
    assert per_trace.force_flush(60_000)
    per_trace.shutdown()

    (run,) = read_runs(str(aim_server.repo), session.run_hashes)
    assert run.experiment == "remote-session"
    assert run.texts_of("tool.output", run_type="tool", name="calculator") == ["2", "3"]
    assert run.text_steps("llm.input")[0] == (0, "[user] What is 0 + 2?")
    assert run.metric_values("trace.tokens.total") == [54.0, 55.0]
    assert run.params["models"]["fake-gpt"]["max_tokens"] == 256

    runs = read_runs(str(aim_server.repo), per_trace.run_hashes)
    assert len(runs) == 2
    assert sorted(r.texts_of("chain.output")[0] for r in runs) == ["The answer is 2.", "The answer is 3."]
    assert all(r.experiment == "remote-svc" and r.params["trace"]["root_name"] == "calc_agent" for r in runs)


def test_server_that_is_down_costs_a_bounded_failure_not_a_hang(caplog):
    exporter = AimSpanExporter(repo=f"aim://127.0.0.1:{free_port()}", retry_timeout_s=1,
                               shutdown_timeout_s=5)
    spans = agent_spans(1)
    t0 = time.monotonic()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.force_flush(20_000)
    exporter.force_flush(20_000)
    exporter.shutdown()
    assert time.monotonic() - t0 < 15
    assert exporter.stats.dropped_retries_exhausted == len(spans) and exporter.stats.balanced()
    assert any("is not reachable" in r.getMessage() for r in caplog.records)


def test_hung_server_does_not_hold_shutdown_past_its_timeout(fresh_aim_server):
    exporter = AimSpanExporter(repo=fresh_aim_server.uri, shutdown_timeout_s=2)
    exporter.export(agent_spans(1))
    assert exporter.force_flush(60_000)
    fresh_aim_server.pause()  # accepts connections, never answers
    try:
        exporter.export(agent_spans(1))
        t0 = time.monotonic()
        exporter.shutdown()  # closing the run waits on the server forever inside Aim
        assert time.monotonic() - t0 < 4
    finally:
        fresh_aim_server.resume()
    exporter.engine._writer_thread.join(30)  # the close Aim was stuck in completes once the server answers


_APP = textwrap.dedent("""
    import sys, time
    from spanchain_aim import AimSpanExporter
    from testkit.spans import agent_spans
    exporter = AimSpanExporter(repo=sys.argv[1], shutdown_timeout_s=2)
    exporter.export(agent_spans(1))
    assert exporter.force_flush(60_000)
    print("written", flush=True)
    sys.stdin.readline()  # the test kills the server now
    exporter.export(agent_spans(1))
    exporter.force_flush(3_000)
    t0 = time.monotonic()
    exporter.shutdown()
    print(f"shutdown {time.monotonic() - t0:.2f}", flush=True)
""")


def test_app_exits_promptly_after_the_server_died(fresh_aim_server):
    app = subprocess.Popen([sys.executable, "-c", _APP, fresh_aim_server.uri], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert app.stdout.readline().strip() == "written"
        fresh_aim_server.kill()
        t0 = time.monotonic()
        app.stdin.write("go\n")
        app.stdin.flush()
        app.wait(timeout=40)  # Aim alone would wait forever at exit (its cleanup never finishes)
        elapsed = time.monotonic() - t0
        out = app.stdout.read()
        assert app.returncode == 0 and "shutdown" in out, out
        assert elapsed < 30
    finally:
        if app.poll() is None:
            app.kill()


def _drain(exporter, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if exporter.force_flush(10_000) and not exporter.stats.spool_pending:
            return True
        time.sleep(0.2)
    return False


def _spans_in_repo(repo) -> set[tuple[str, tuple, int]]:
    return set().union(*(run.span_keys() for run in read_runs(str(repo))))


def test_no_span_is_lost_when_a_trace_fails_across_a_server_restart(fresh_aim_server, tmp_path):
    spans = agent_spans(3)
    traces = {}
    for span in spans:
        traces.setdefault(span.context.trace_id, []).append(span)
    warm, first, second = traces.values()  # each ends with its root
    exporter = AimSpanExporter(repo=fresh_aim_server.uri, run_per="trace", spool_dir=str(tmp_path / "spool"),
                               retry_timeout_s=0.5, retry_backoff_s=0.2, trace_grace_s=30, shutdown_timeout_s=30)
    exporter.export(warm)  # the remote client now exists, with a connection the kill breaks
    assert _drain(exporter, 60)
    fresh_aim_server.kill()
    # One spool batch: `first` whole, `second` without its root. `first` cannot be written...
    exporter.export(first + second[:-1])
    deadline = time.monotonic() + 20
    while exporter.stats.retries == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exporter.stats.retries >= 1
    fresh_aim_server.start()
    # ...and `second`, completed and written after the restart, must not take the batch (and
    # `first` with it) off the spool.
    exporter.export(second[-1:])
    drained = _drain(exporter, 60)
    exporter.shutdown()
    found = len(_spans_in_repo(fresh_aim_server.repo))
    assert found + exporter.stats.spool_pending == len(spans), (found, exporter.stats.as_dict())
    assert drained and found == len(spans)


_QUEUED_APP = textwrap.dedent("""
    import sys
    from spanchain_aim import AimSpanExporter
    from testkit.spans import agent_spans
    first, second = agent_spans(2)[:5], agent_spans(2)[5:]
    exporter = AimSpanExporter(repo=sys.argv[1], spool_dir=sys.argv[2], retry_timeout_s=0.5,
                               remote_write_timeout_s=1)
    exporter.export(first)
    assert exporter.force_flush(60_000)
    print("written", flush=True)
    sys.stdin.readline()  # the test kills the server now
    exporter.export(second)  # into the open session run: no new connection is tried
    exporter.force_flush(10_000)
    print("flushed", exporter.stats.spool_pending, flush=True)
    sys.stdin.readline()  # SIGKILLed here
""")


def test_spans_only_queued_in_aims_client_stay_in_the_spool(fresh_aim_server, tmp_path):
    spool = str(tmp_path / "spool")
    app = subprocess.Popen([sys.executable, "-c", _QUEUED_APP, fresh_aim_server.uri, spool],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert app.stdout.readline().strip() == "written"
        fresh_aim_server.kill()
        app.stdin.write("go\n")
        app.stdin.flush()
        # Aim's client queues the writes and keeps retrying them; they die with the process.
        flushed = app.stdout.readline().split()
        assert flushed[0] == "flushed", flushed
        app.kill()
        app.wait(10)
    finally:
        if app.poll() is None:
            app.kill()
    fresh_aim_server.start()
    replay = AimSpanExporter(repo=fresh_aim_server.uri, spool_dir=spool)
    drained = _drain(replay, 60)
    replay.shutdown()
    assert int(flushed[1]) == 5  # the spool still held the unconfirmed trace
    assert drained and len(_spans_in_repo(fresh_aim_server.repo)) == 10
