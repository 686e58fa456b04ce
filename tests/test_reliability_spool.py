"""The durable spool: codec, on-disk log, exporter integration, crash and restart replay."""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faults.common import FileBackendExporter, keys, make_spans, read_backend  # noqa: E402
from spanchain.spool.codec import CodecError, decode_spans, encode_spans  # noqa: E402
from spanchain.spool.log import Spool, SpoolFull  # noqa: E402


def _full_span():
    ctx = SpanContext(0xABC, 0x123, False, TraceFlags(1), TraceState([("vendor", "x1")]))
    parent = SpanContext(0xABC, 0x99, True, TraceFlags(1))
    return ReadableSpan(
        name="chat gpt ☃ \udcff",
        context=ctx,
        parent=parent,
        resource=Resource({"service.name": "svc", "n": 3}, "https://schema/1"),
        attributes={
            "s": "text", "b": True, "i": 2**62, "f": 1.5, "nan": math.nan, "inf": -math.inf,
            "seq": ("a", "b"), "iseq": (1, 2), "empty": (), "raw": b"\x00\xff", "map": {"k": [1, "x"]},
        },
        events=(Event("e1", {"x": 1}, timestamp=5), Event("e2", None, timestamp=6)),
        links=(Link(SpanContext(0xDEF, 0x7, False), {"why": "retry"}),),
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "boom"),
        start_time=1_700_000_000_000_000_001,
        end_time=1_700_000_000_500_000_000,
        instrumentation_scope=InstrumentationScope("lib", "1.2", "https://s", {"a": "b"}),
    )


def _same(a, b):
    def norm(v):
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        if isinstance(v, (list, tuple)):
            return tuple(norm(x) for x in v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    assert a.name == b.name
    assert a.context == b.context and a.context.trace_state == b.context.trace_state
    assert a.parent == b.parent
    assert (a.parent and a.parent.is_remote) == (b.parent and b.parent.is_remote)
    assert a.kind == b.kind and (a.start_time, a.end_time) == (b.start_time, b.end_time)
    assert (a.status.status_code, a.status.description) == (b.status.status_code, b.status.description)
    assert norm(dict(a.attributes)) == norm(dict(b.attributes))
    assert [type(v) for v in a.attributes.values()] == [type(v) for v in b.attributes.values()]
    assert [(e.name, e.timestamp, norm(dict(e.attributes or {}))) for e in a.events] == [
        (e.name, e.timestamp, norm(dict(e.attributes or {}))) for e in b.events
    ]
    assert [(l.context, dict(l.attributes or {})) for l in a.links] == [
        (l.context, dict(l.attributes or {})) for l in b.links
    ]
    assert dict(a.resource.attributes) == dict(b.resource.attributes)
    assert a.resource.schema_url == b.resource.schema_url
    assert a.instrumentation_scope == b.instrumentation_scope
    assert a.dropped_attributes == b.dropped_attributes


# --- codec ------------------------------------------------------------------------------------


def test_codec_round_trip_is_lossless():
    span = _full_span()
    (back,) = decode_spans(encode_spans([span]))
    _same(span, back)
    (again,) = decode_spans(encode_spans([back]))
    _same(span, again)
    sdk = make_spans(2, children=2)
    for a, b in zip(sdk, decode_spans(encode_spans(sdk))):
        _same(a, b)


@pytest.mark.parametrize("junk", [b"", b"{", b"[]", b'{"v":99,"spans":[]}', b'{"v":1,"spans":[{"x":1}]}'])
def test_codec_rejects_foreign_bytes_with_its_own_error(junk):
    with pytest.raises(CodecError):
        decode_spans(junk)


# --- the on-disk log ----------------------------------------------------------------------------


def test_spool_append_ack_reopen(tmp_path):
    sp = Spool(str(tmp_path)).open()
    seqs = [sp.append(f"batch{i}".encode(), 1) for i in range(5)]
    sp.ack(seqs[0])
    sp.ack(seqs[2])
    assert [sp.read(e) for e in sp.pending()] == [b"batch1", b"batch3", b"batch4"]
    sp.close()
    sp2 = Spool(str(tmp_path)).open()
    assert [sp2.read(e) for e in sp2.pending()] == [b"batch1", b"batch3", b"batch4"]
    assert sp2.append(b"new", 1) == 6  # sequence numbers keep growing across restarts
    sp2.close()


def test_spool_tolerates_a_torn_tail(tmp_path):
    sp = Spool(str(tmp_path)).open()
    sp.append(b"one", 1)
    sp.append(b"two", 1)
    lane = sp.lane_dir
    sp.close()
    (seg,) = sorted(Path(lane).glob("seg-*.spool"))
    size = seg.stat().st_size
    os.truncate(seg, size - 2)  # a crash mid-append of "two"
    sp = Spool(str(tmp_path)).open()
    assert [sp.read(e) for e in sp.pending()] == [b"one"]
    assert sp.stats.torn_tail_bytes > 0
    sp.append(b"three", 1)
    sp.close()
    sp = Spool(str(tmp_path)).open()
    assert [sp.read(e) for e in sp.pending()] == [b"one", b"three"]
    sp.close()


def test_spool_skips_a_corrupt_record_and_keeps_later_segments(tmp_path):
    sp = Spool(str(tmp_path), segment_bytes=1024).open()
    sp.append(b"a" * 600, 1)
    sp.append(b"b" * 600, 1)  # last record of the first segment (it is now past its size)
    sp.append(b"c" * 600, 1)
    lane = sp.lane_dir
    sp.close()
    first = sorted(Path(lane).glob("seg-*.spool"))[0]
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF  # flip a payload bit: CRC must catch it
    first.write_bytes(bytes(data))
    sp = Spool(str(tmp_path), segment_bytes=1024).open()
    assert [sp.read(e)[:1] for e in sp.pending()] == [b"a", b"c"]
    assert sp.stats.corrupt_records == 1
    sp.close()


def test_spool_is_bounded_and_deletes_acknowledged_segments(tmp_path):
    sp = Spool(str(tmp_path), max_bytes=4096, segment_bytes=1024).open()
    seqs = []
    with pytest.raises(SpoolFull):
        for _ in range(100):
            seqs.append(sp.append(b"x" * 500, 1))
    assert 4 <= len(seqs) <= 8 and sp.total_bytes <= 4096
    for seq in seqs:
        sp.ack(seq)
    assert sp.total_bytes < 2048  # old segments gone
    sp.append(b"y" * 500, 1)  # room again
    sp.close()


def test_two_live_processes_get_separate_lanes_and_a_dead_ones_lane_is_adopted(tmp_path):
    a = Spool(str(tmp_path)).open()
    b = Spool(str(tmp_path)).open()
    assert a.lane_dir != b.lane_dir
    a.append(b"left-by-a", 1)
    a.close()
    c = Spool(str(tmp_path)).open()
    assert c.lane_dir == a.lane_dir
    assert [c.read(e) for e in c.pending()] == [b"left-by-a"]
    b.close()
    c.close()


# --- the exporter base with a spool -------------------------------------------------------------


def _exporter(tmp_path, **kw):
    kw.setdefault("spool_fsync", False)
    return FileBackendExporter(str(tmp_path / "backend.jsonl"), spool_dir=str(tmp_path / "spool"), **kw)


def test_backend_outage_keeps_spans_on_disk_then_delivers_in_order_exactly_once(tmp_path):
    exp = _exporter(tmp_path, outage_backoff_max_s=0.2)
    exp.down = True
    spans = make_spans(30)
    for i in range(0, 30, 5):
        exp.export(spans[i : i + 5])
    assert exp.force_flush(5000) is False  # honest: nothing reached the backend
    assert exp.stats.spool_pending == 30 and exp.stats.dropped == 0
    exp.down = False
    deadline = time.monotonic() + 10
    while exp.stats.spool_pending and time.monotonic() < deadline:
        time.sleep(0.05)  # the writer retries on its own, with backoff
    assert exp.force_flush(5000) is True
    exp.shutdown()
    assert [r["k"] for r in read_backend(exp.path)] == keys(spans)
    assert exp.stats.written == 30 and exp.stats.spooled == 30


def test_restart_replays_the_spool_before_new_spans(tmp_path):
    exp = _exporter(tmp_path, shutdown_timeout_s=2)
    exp.down = True
    old = make_spans(12, prefix="old")
    exp.export(old)
    exp.shutdown()  # backend still down: spans stay on disk
    assert read_backend(exp.path) == []
    exp2 = _exporter(tmp_path)
    new = make_spans(3, prefix="new")
    exp2.export(new)
    assert exp2.force_flush(5000)
    exp2.shutdown()
    assert [r["k"] for r in read_backend(exp.path)] == keys(old) + keys(new)
    assert exp2.stats.replayed == 12
    exp3 = _exporter(tmp_path)  # nothing left: nothing written twice
    assert exp3.force_flush(5000)
    exp3.shutdown()
    assert len(read_backend(exp.path)) == 15


def test_a_restarted_exporter_replays_without_any_new_export(tmp_path):
    exp = _exporter(tmp_path)
    exp.down = True
    exp.export(make_spans(4))
    exp.shutdown()
    exp2 = _exporter(tmp_path)
    deadline = time.monotonic() + 5
    while len(read_backend(exp.path)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read_backend(exp.path)) == 4
    exp2.shutdown()


def test_full_spool_drops_and_counts(tmp_path):
    exp = _exporter(tmp_path, spool_max_bytes=6000)
    exp.down = True
    for _ in range(10):
        exp.export(make_spans(5))
        exp.force_flush(2000)
    deadline = time.monotonic() + 5  # spans only in memory are dropped once their retry time is up
    while exp.stats.waiting > exp.stats.spool_pending and time.monotonic() < deadline:
        time.sleep(0.05)
    st = exp.stats
    assert st.spool_bypassed > 0 and st.dropped_retries_exhausted == st.spool_bypassed
    assert st.spooled + st.spool_bypassed == 50 and st.balanced()
    exp.shutdown()


def test_unwritable_disk_falls_back_to_direct_writes_while_the_backend_is_up(tmp_path):
    exp = _exporter(tmp_path)
    exp.export(make_spans(1))
    assert exp.force_flush(5000)
    lane = Path(exp.engine._spool.lane_dir)
    # Every further segment the spool opens is /dev/full: writes fail with ENOSPC, like a full disk.
    for seg in lane.glob("seg-*.spool"):
        seg.unlink()
        os.symlink("/dev/full", seg)
    exp.engine._spool._close_active()
    for i in range(2, 10):
        os.symlink("/dev/full", lane / f"seg-{i:012d}.spool")
    spans = make_spans(5)
    exp.export(spans)
    assert exp.force_flush(5000)
    exp.shutdown()
    assert exp.stats.spool_errors >= 1 and exp.stats.spool_bypassed == 5
    assert exp.stats.dropped == 0
    assert [r["k"] for r in read_backend(exp.path)][-5:] == keys(spans)


def test_secrets_are_masked_before_the_spool_and_the_backend(tmp_path):
    exp = _exporter(tmp_path)
    exp.down = True
    from faults.common import make_spans as mk
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("t").start_as_current_span("call") as s:
        s.set_attribute("langchain.input", '{"q": "hi", "api_key": "sk-abcdefghijklmnopqrstuvwx"}')
    exp.export(mem.get_finished_spans())
    exp.force_flush(2000)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("seg-*.spool"))
    assert b"sk-abcdefghijklmnopqrstuvwx" not in raw and b"REDACTED" in raw
    assert exp.stats.redacted_spans == 1
    exp.shutdown()
    assert mk  # keep the import honest


# --- crashes, with real processes ----------------------------------------------------------------


def _child(tmp_path, *args, then="shutdown", **popen):
    cmd = [sys.executable, "-m", "faults.file_child", str(tmp_path / "spool"), str(tmp_path / "b.jsonl"),
           str(tmp_path / "produced.txt"), "--then", then, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT), **popen)


def _wait_ready(proc, timeout=60):
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert line.strip() == "READY", line
    assert time.monotonic() < deadline


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_while_the_backend_is_down_then_restarted_replays_everything(tmp_path, sig):
    flag = tmp_path / "down"
    flag.touch()
    proc = _child(tmp_path, "--n", "200", "--prefix", "a", "--down-flag", str(flag), then="hang")
    _wait_ready(proc)
    proc.send_signal(sig)
    proc.wait(30)
    assert read_backend(str(tmp_path / "b.jsonl")) == []
    flag.unlink()
    proc2 = _child(tmp_path, "--n", "20", "--prefix", "b")
    out, _ = proc2.communicate(timeout=60)
    assert proc2.returncode == 0, out
    produced = (tmp_path / "produced.txt").read_text().split()
    found = [r["k"] for r in read_backend(str(tmp_path / "b.jsonl"))]
    assert found == produced  # all 220, each once, old before new


@pytest.mark.timeout(120)
def test_sigkill_while_writing_loses_nothing_and_duplicates_at_most_one_batch(tmp_path):
    proc = _child(tmp_path, "--n", "3000", "--batch", "10", "--pace", "0.001", then="hang")
    time.sleep(1.5)  # mid-run: the writer is journaling, writing and acknowledging
    proc.kill()
    proc.wait(30)
    produced_before = (tmp_path / "produced.txt").read_text().split()
    proc2 = _child(tmp_path, "--n", "0")
    out, _ = proc2.communicate(timeout=60)
    assert proc2.returncode == 0, out
    found = [r["k"] for r in read_backend(str(tmp_path / "b.jsonl"))]
    # Lost: only spans still in the in-memory hand-off queue at the instant of SIGKILL.
    lost = set(produced_before) - set(found)
    assert len(lost) <= 10, len(lost)
    assert len(found) - len(set(found)) <= 32  # crash between write and ack: one write call (<= 32 traces) again
    assert len(produced_before) > 100


def test_a_batch_the_backend_always_rejects_is_quarantined_not_blocking_the_spool(tmp_path):
    exp = FileBackendExporter(str(tmp_path / "b.jsonl"), spool_dir=str(tmp_path / "spool"), spool_fsync=False,
                              poison_after=3, outage_backoff_max_s=0.05)
    exp.writer.reject = {"poison"}  # the backend refuses, forever, a trace holding a span named so
    exp.down = True  # everything is spooled first, in separate batches
    bad = make_spans(1, prefix="poison")
    bad[0]._name = "poison"
    good = make_spans(12, prefix="good")
    exp.export(good[:2])
    exp.force_flush(2000)
    exp.export(bad)
    exp.force_flush(2000)
    exp.down = False
    # The app keeps producing: each new batch that goes through while the poison one fails
    # again is one more piece of evidence against it.
    for i in range(2, 12):
        exp.export(good[i : i + 1])
        exp.force_flush(1000)
        if exp.stats.dropped_rejected:
            break
    assert exp.force_flush(5000)
    exp.shutdown()
    found = [r["k"] for r in read_backend(exp.path)]
    sent = keys(good[: i + 1])
    assert set(found) == set(sent) and found[:2] == sent[:2]  # probes may deliver a batch early
    assert exp.stats.dropped_rejected == 1 and exp.stats.spool_pending == 0 and exp.stats.balanced()
    (quarantined,) = list((tmp_path / "spool").rglob("quarantine/*.json"))
    assert b"poison" in quarantined.read_bytes()


def test_an_outage_never_quarantines_anything(tmp_path):
    exp = _exporter(tmp_path, poison_after=2, outage_backoff_max_s=0.02)
    exp.down = True
    for _ in range(3):
        exp.export(make_spans(2))
        exp.force_flush(500)
    time.sleep(0.5)  # many failed retries of the head, none of anything else
    for _ in range(5):
        exp.force_flush(500)
    assert exp.stats.dropped_rejected == 0 and exp.stats.spool_pending == 6
    exp.down = False
    assert exp.force_flush(5000)
    exp.shutdown()
    assert len(read_backend(exp.path)) == 6


def test_spans_reach_the_disk_while_the_backend_hangs(tmp_path):
    import threading

    exp = FileBackendExporter(str(tmp_path / "b.jsonl"), spool_dir=str(tmp_path / "spool"), spool_fsync=False,
                              shutdown_timeout_s=0.5)
    exp.writer.hang = release = threading.Event()  # every backend call hangs until released
    first, later = make_spans(1), make_spans(20)
    exp.export(first)
    time.sleep(0.2)  # the writer is now stuck in the backend
    exp.export(later)
    deadline = time.monotonic() + 5
    while exp.stats.spooled < 21 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exp.stats.spooled == 21  # on disk, not only in memory
    t0 = time.monotonic()
    exp.shutdown()  # bounded although the backend still hangs
    assert time.monotonic() - t0 < 2
    st = exp.stats
    assert st.waiting == st.spool_pending == 21 and st.dropped == 0 and st.balanced()  # all on disk
    release.set()  # the backend answers at last; the abandoned writer stops without counting
    exp.engine._writer_thread.join(10)
    assert not exp.engine._writer_thread.is_alive()
    # The lane was released at shutdown: the next process on this spool delivers everything.
    exp2 = FileBackendExporter(str(tmp_path / "b.jsonl"), spool_dir=str(tmp_path / "spool"), spool_fsync=False)
    assert exp2.force_flush(10_000)
    exp2.shutdown()
    assert set(r["k"] for r in read_backend(exp.path)) == set(keys(first + later))
    assert exp2.stats.replayed == 21 and exp2.stats.balanced() and exp2.stats.waiting == 0
