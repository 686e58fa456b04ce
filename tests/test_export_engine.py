"""The delivery engine, through a real file backend (faults.common.FileWriter): accounting,
honest flush, retries, permanent errors, shutdown, the spool; and the five field reports of the
export-engine issue, each a test that failed on the old exporter base."""

import logging
import os
import sys
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.common import FileBackendExporter, keys, make_spans, read_backend  # noqa: E402
from spanchain import semconv as sc  # noqa: E402
from spanchain.export import ConfigurationError, TraceAssembler  # noqa: E402
from spanchain.export.traces import group_key  # noqa: E402


def _exp(tmp_path, **kw):
    return FileBackendExporter(str(tmp_path / "b.jsonl"), **kw)


def test_export_returns_at_once_and_the_writer_thread_writes(tmp_path):
    exp = _exp(tmp_path)
    exp.writer.delay_s = 0.3
    t0 = time.monotonic()
    assert exp.export(make_spans(3)) == SpanExportResult.SUCCESS
    assert time.monotonic() - t0 < 0.1
    assert exp.force_flush(5000)
    exp.shutdown()
    st_ = exp.stats
    assert (st_.accepted, st_.written, st_.waiting, st_.dropped) == (3, 3, 0, 0)


def test_transient_failures_are_retried_within_the_deadline_then_dropped_and_counted(tmp_path, caplog):
    exp = _exp(tmp_path, retry_timeout_s=2.0, retry_backoff_s=0.01)
    fails = [2]

    original = exp.writer.write_trace

    def flaky(trace):
        if fails[0]:
            fails[0] -= 1
            raise ConnectionError("flaky")
        original(trace)

    exp.writer.write_trace = flaky
    exp.export(make_spans(1))
    assert exp.force_flush(5000)
    assert exp.stats.retries == 2 and exp.stats.written == 1
    exp.writer.down = True
    exp.export(make_spans(2))
    with caplog.at_level(logging.ERROR):
        assert exp.force_flush(5000) is False
    st_ = exp.stats
    assert st_.dropped_retries_exhausted == 2 and st_.balanced()
    exp.shutdown()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    exp = _exp(tmp_path, max_queue_spans=2)
    exp.writer.hang = gate = threading.Event()
    assert exp.export(make_spans(2)) == SpanExportResult.SUCCESS
    assert exp.export(make_spans(1)) == SpanExportResult.FAILURE
    assert exp.stats.dropped_queue_full == 1 and exp.stats.balanced()
    gate.set()
    exp.shutdown()


# --- the five symptoms -------------------------------------------------------------------


def test_symptom_a_timed_out_shutdown_leaves_every_span_in_the_spool_for_the_next_process(tmp_path):
    """Endpoint down from the start, three invocations, shutdown gives up on the busy writer:
    the spans must be on disk and a new exporter on the same spool must deliver them."""
    spool = str(tmp_path / "spool")
    exp = _exp(tmp_path, spool_dir=spool, spool_fsync=False, shutdown_timeout_s=0.5, retry_timeout_s=60)
    exp.writer.down = True
    exp.writer.delay_s = 0.3  # each attempt is slow, as a connect timeout is
    spans = [s for i in range(3) for s in make_spans(1, prefix=f"call{i}", children=2)]
    exp.export(spans)
    time.sleep(0.2)
    exp.shutdown()
    assert exp.stats.waiting == len(spans) and exp.stats.dropped == 0
    replay = _exp(tmp_path, spool_dir=spool, spool_fsync=False)
    assert replay.force_flush(10_000)
    replay.shutdown()
    assert sorted(r["k"] for r in read_backend(str(tmp_path / "b.jsonl"))) == sorted(keys(spans))
    assert replay.stats.replayed == len(spans) and replay.stats.written == len(spans)


def test_a_shutdown_that_gives_up_while_the_journal_writes_counts_those_spans_once(tmp_path):
    """Shutdown's wait runs out while the journal thread is appending to the spool: the spans
    reach the disk, so they wait there (not dropped) and the next process writes them once.
    Before the fix they were counted as dropped here and as written by the next process."""
    spool = str(tmp_path / "spool")
    exp = _exp(tmp_path, spool_dir=spool, spool_fsync=False)
    journaled, gate = threading.Event(), threading.Event()
    append = exp.engine._spool.append_many

    def append_then_stall(items):
        seqs = append(items)
        journaled.set()
        gate.wait(10)  # on disk; the journal thread has not settled them yet
        return seqs

    exp.engine._spool.append_many = append_then_stall
    spans = make_spans(2, children=1)
    exp.export(spans)
    assert journaled.wait(5)
    exp.engine.shutdown(0.0)  # gives up at once, mid-append
    gate.set()
    exp.engine._journal_thread.join(5)
    st_ = exp.stats
    assert st_.balanced() and st_.dropped == 0 and st_.waiting == len(spans), st_
    replay = _exp(tmp_path, spool_dir=spool, spool_fsync=False)
    assert replay.force_flush(5000)
    replay.shutdown()
    assert replay.stats.written == len(spans) == len(read_backend(str(tmp_path / "b.jsonl")))


def test_symptom_flush_says_false_and_written_counts_only_what_the_backend_has(tmp_path):
    exp = _exp(tmp_path, retry_timeout_s=0.2)
    exp.writer.down = True
    spans = make_spans(2)
    exp.export(spans)
    assert exp.force_flush(5000) is False
    assert exp.stats.written == 0 == len(read_backend(str(tmp_path / "b.jsonl")))
    exp.shutdown()


def test_symptom_a_retry_never_rewrites_traces_already_delivered(tmp_path):
    exp = _exp(tmp_path, retry_timeout_s=5, retry_backoff_s=0.01)
    spans = make_spans(3, prefix="ok")
    bad = make_spans(1, prefix="bad")
    calls = {"bad": 0}
    original = exp.writer.write_trace

    def write(trace):
        if trace.spans[0].name.startswith("bad") and calls["bad"] < 2:
            calls["bad"] += 1
            raise ConnectionError("one trace fails twice")
        original(trace)

    exp.writer.write_trace = write
    exp.export(spans + bad)  # one export batch, four traces
    assert exp.force_flush(5000)
    exp.shutdown()
    found = [r["k"] for r in read_backend(str(tmp_path / "b.jsonl"))]
    assert sorted(found) == sorted(keys(spans + bad))  # each exactly once
    assert exp.stats.retries == 2


def test_symptom_counts_add_up_and_every_drop_is_logged(tmp_path, caplog):
    exp = _exp(tmp_path, retry_timeout_s=0.1)
    exp.writer.down = True
    first, second = make_spans(1, "a", children=4), make_spans(1, "b", children=4)
    with caplog.at_level(logging.ERROR, logger="spanchain.export"):
        exp.export(first)
        assert exp.force_flush(5000) is False
        exp.export(second)
        assert exp.force_flush(5000) is False
        exp.shutdown()
    st_ = exp.stats
    assert (st_.accepted, st_.written, st_.waiting, st_.dropped_retries_exhausted) == (10, 0, 0, 10)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "dropped 5 spans" in logged and "dropped 5 more spans" in logged  # both traces' losses


def test_symptom_a_permanent_mistake_fails_fast_naming_the_setting(tmp_path, caplog):
    exp = _exp(tmp_path)

    def refuse(trace):
        raise ConfigurationError("OTEL_EXPORTER_FILE_PATH", "/x", "is a file, not a directory")

    exp.writer.write_trace = refuse
    with caplog.at_level(logging.ERROR):
        exp.export(make_spans(2))
        assert exp.force_flush(5000) is False
        exp.export(make_spans(1))
        exp.shutdown()
    st_ = exp.stats
    assert st_.retries == 0 and st_.dropped_misconfigured == 3 and st_.balanced()
    errors = [r.getMessage() for r in caplog.records if "OTEL_EXPORTER_FILE_PATH='/x'" in r.getMessage()]
    assert len(errors) == 1  # once, with the setting and its value


def test_os_errors_that_cannot_heal_are_not_retried(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    exp = FileBackendExporter(str(target / "b.jsonl"))  # writing under a file: ENOTDIR
    exp.export(make_spans(1))
    assert exp.force_flush(5000) is False
    exp.shutdown()
    assert exp.stats.retries == 0 and exp.stats.dropped_misconfigured == 1


def test_late_spans_rejoin_their_written_trace():
    asm = TraceAssembler(grace_s=0)
    spans = make_spans(1, children=2)
    root = spans[-1]
    key = group_key(root)
    released, _ = asm.add(key, spans[:-1] + [root])
    assert released == [] or released[0].spans
    released = released or asm.expire()
    asm.written(released[0])
    late = make_spans(1, prefix="late")[0]
    released, dups = asm.add(key, [late])
    (again,) = released or asm.expire()  # grace 0: released at the next expiry
    assert dups == 0 and again.new_spans == [late] and len(again.spans) == 4 and again.rewrite


def test_after_fork_the_child_has_an_engine_of_its_own(tmp_path):
    exp = _exp(tmp_path)
    exp.export(make_spans(2))
    assert exp.force_flush(5000)
    pid = os.fork()
    if pid == 0:  # child: a fresh engine; its own span is written by its own thread
        code = 1
        try:
            exp.export(make_spans(1, prefix="child"))
            ok = exp.force_flush(5000) and exp.stats.accepted == 1 and exp.stats.written == 1
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    exp.shutdown()
    assert exp.stats.accepted == 2 and exp.stats.written == 2


# --- property: random fault sequences keep the books and deliver exactly once --------------------

ops = st.lists(st.sampled_from(["export", "down", "up", "slow", "reject", "flush", "restart"]),
               min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops, st.booleans())
def test_property_every_span_is_accounted_for_and_delivered_at_most_once(tmp_path_factory, script, spooled):
    d = tmp_path_factory.mktemp("prop")
    kw = dict(retry_timeout_s=0.05, retry_backoff_s=0.005, outage_backoff_max_s=0.05, shutdown_timeout_s=2,
              spool_fsync=False)
    if spooled:
        kw["spool_dir"] = str(d / "spool")
    path = str(d / "b.jsonl")
    exp = FileBackendExporter(path, **kw)
    produced, dropped, n = [], 0, 0
    for op in script:
        if op == "export":
            spans = make_spans(1, prefix=f"t{n}-", children=1)
            n += 1
            exp.export(spans)
            produced += keys(spans)
        elif op in ("down", "up"):
            exp.writer.down = op == "down"
        elif op == "slow":
            exp.writer.delay_s = 0.02
        elif op == "reject":
            exp.writer.reject = {f"t{n - 1}-0"}
        elif op == "flush":
            exp.force_flush(3000)
            assert exp.stats.balanced(), exp.stats
        elif op == "restart":
            exp.shutdown()
            assert exp.stats.balanced(), exp.stats
            dropped += exp.stats.dropped
            exp = FileBackendExporter(path, **kw)
    exp.writer.down = False
    exp.writer.reject = set()
    exp.force_flush(5000)
    exp.shutdown()
    st_ = exp.stats
    assert st_.balanced(), st_
    dropped += st_.dropped
    found = [r["k"] for r in read_backend(path)]
    assert len(found) == len(set(found)), "a span was delivered twice"
    assert set(found) <= set(produced)
    # Everything produced is written, counted as dropped, or (spool) still waiting on disk.
    assert len(set(produced) - set(found)) <= dropped + st_.waiting
    if spooled:
        assert st_.waiting == 0  # the backend is up at the end: the spool drained
    assert sc  # the vocabulary module imports cleanly beside the engine


def test_a_servers_retry_after_is_honoured(tmp_path):
    exp = _exp(tmp_path, retry_timeout_s=5, retry_backoff_s=0.01)
    attempts = []
    original = exp.writer.write_trace

    def throttled(trace):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            exc = ConnectionError("429 Too Many Requests")
            exc.retry_after = 0.6  # what a writer attaches from the response's Retry-After
            raise exc
        original(trace)

    exp.writer.write_trace = throttled
    exp.export(make_spans(1))
    assert exp.force_flush(5000)
    exp.shutdown()
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.6
