"""Fault rows against SageMaker Experiments: a real moto server over HTTP, with our fault proxy
in front of it. Spans found = distinct spans in the trace documents the exporter put in S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from faults.app import App
from faults.harness import Row, Timer, drain, environ, finish
from testkit.fault_proxy import FaultProxy

BUCKET = "spanchain-faults"
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def short_client_timeouts(read_s: float = 2.0, connect_s: float = 2.0):
    """The exporter's botocore read timeout is 30 s; the slow-response row needs it short."""
    from dataclasses import dataclass

    from spanchain_sagemaker import aws

    original = aws.ClientSettings

    @dataclass
    class Short(original):
        connect_timeout_s: float = connect_s
        read_timeout_s: float = read_s

    aws.ClientSettings = Short
    try:
        yield
    finally:
        aws.ClientSettings = original


@contextmanager
def sagemaker_backend(workdir: str):
    from testkit.moto_server import start_emulator

    emu = start_emulator(log_path=os.path.join(workdir, "moto.log"))
    proxy = FaultProxy(emu.endpoint_url)
    try:
        with environ(**{**emu.aws_env(), "AWS_ENDPOINT_URL": proxy.url}):
            yield emu, proxy
    finally:
        proxy.stop()
        emu.stop()


def exporter(spool_dir: str | None, **kw):
    from spanchain_sagemaker import SageMakerSpanExporter

    kw.setdefault("max_attempts", 2)  # client retries; our own backoff and the spool do the rest
    return SageMakerSpanExporter(
        experiment_name="faults",
        artifact_bucket=BUCKET,
        spool_dir=spool_dir,
        trace_grace_s=0.5,
        retry_backoff_s=0.2,
        shutdown_timeout_s=kw.pop("shutdown_timeout_s", 20),
        **kw,
    )


def found_spans(emu, prefix: str = "") -> tuple[set[tuple[str, str]], int]:
    """(distinct spans, span records) in every trace document under `prefix` in the bucket.
    A trace rewritten in its run overwrites its own document; a second document holding the
    same span (a replay into another run) counts as a duplicate."""
    s3 = emu.client("s3")
    found: set[tuple[str, str]] = set()
    records = 0
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if "/traces/" not in obj["Key"] or not obj["Key"].endswith(".json"):
                    continue
                doc = json.loads(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
                for span in doc.get("spans", []):
                    found.add((span["trace_id"], span["span_id"]))
                    records += 1
    except s3.exceptions.NoSuchBucket:
        pass
    return found, records


def counted(found: tuple[set, int]) -> tuple[int, int]:
    return len(found[0]), found[1]


def transient(fault: str, mode: str, ratio: float, slow_s: float = 0.0, calls: int = 20, fault_s: float = 8.0) -> Row:
    """For `fault_s` seconds the backend answers `mode` to `ratio` of requests (the app runs
    meanwhile), then it recovers."""
    row = Row(f"sagemaker: {fault}")
    with Timer() as t, tempfile.TemporaryDirectory() as work, sagemaker_backend(work) as (emu, proxy), \
            short_client_timeouts():
        exp = exporter(os.path.join(work, "spool"))
        app = App(exp)
        proxy.set(mode, ratio, slow_s)
        started = time.monotonic()
        app.run(calls, pace_s=fault_s / calls / 2)
        time.sleep(max(0.0, fault_s - (time.monotonic() - started)))  # the writer meets the faults
        proxy.set("pass")
        drained = drain(exp, 120)
        exp.shutdown()
        row.note = f"{proxy.faults} of {proxy.requests} requests faulted"
        finish(row, app, exp, counted(found_spans(emu)), drained)
    row.seconds = t.seconds
    return row


def moto_restart(calls: int = 10) -> Row:
    """moto stops mid-run (its data is in memory, so count before), then restarts empty."""
    from testkit.moto_server import start_emulator

    row = Row("sagemaker: moto stopped, restarted")
    with Timer() as t, tempfile.TemporaryDirectory() as work, sagemaker_backend(work) as (emu, proxy):
        exp = exporter(os.path.join(work, "spool"))
        app = App(exp)
        app.run(calls)
        drain(exp, 60)
        before = found_spans(emu)
        emu.stop()
        app.run(calls, tag="down")
        time.sleep(2.0)
        pending_in_outage = exp.stats.spool_pending
        emu2 = start_emulator(port=emu.port, log_path=os.path.join(work, "moto2.log"))
        try:
            drained = drain(exp, 120)
            exp.shutdown()
            after = found_spans(emu2)
        finally:
            emu2.stop()
        row.note = (f"{len(before[0])} found before the stop, {len(after[0])} after; "
                    f"{pending_in_outage} spooled in the outage")
        finish(row, app, exp, (len(before[0] | after[0]), before[1] + after[1]), drained)
    row.seconds = t.seconds
    return row


# --- a separate app process, killed mid-export, then restarted ---------------------------------


def start_child(backend: str, work: str, calls: int, then: str, endpoint: str | None = None,
                kill_after_s: float = 1.0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FAULTS_KILL_AFTER_S=str(kill_after_s))
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.Popen(
        [sys.executable, "-m", "faults.child", backend, os.path.join(work, "spool"), os.path.join(work, "produced"),
         str(calls), then],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(ROOT),
    )


def kill_and_replay(row: Row, backend: str, work: str, sig: signal.Signals, calls: int,
                    endpoint: str | None = None, before_restart=lambda: None, kill_after_s: float = 1.0) -> dict:
    """Run an app process, hit it with `sig` mid-export, run a second one on the same spool
    directory that only replays; fill the row's app-side numbers and return the last stats."""
    proc = start_child(backend, work, calls, "hang", endpoint, kill_after_s)
    ready = proc.stdout.readline().strip()
    proc.send_signal(sig)
    proc.wait(60)
    before_restart()
    proc2 = start_child(backend, work, 0, "exit", endpoint)
    out, _ = proc2.communicate(timeout=300)
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    stats = results[-1]["stats"] if results else {}
    first = json.loads(ready) if ready.startswith("{") else {}
    row.produced = sum(int(x) for x in Path(work, "produced").read_text().split())
    first_stats = first.get("stats", {})
    # The killed process's last snapshot is all it can tell; the replaying process's stats are
    # final. What the first one wrote after its snapshot is unknown: found == written is not
    # checked, duplicates are.
    row.add_stats(stats)
    row.accepted += first_stats.get("accepted", 0)
    row.written += first_stats.get("written", 0)
    row.dropped += first_stats.get("dropped", 0)
    row.balanced &= first_stats.get("accepted", 0) == sum(first_stats.get(k, 0) for k in ("written", "waiting", "dropped"))
    row.written_known = False
    row.raised = first.get("raised", 0)
    row.max_wait_ms = first.get("max_wait_ms", 0.0)
    in_memory = first_stats.get("accepted", 0) - first_stats.get("spooled", 0) - first_stats.get("spool_bypassed", 0)
    row.note = (f"killed with {first_stats.get('written', 0)} written, {in_memory} not yet on disk; "
                f"replayed {stats.get('replayed', 0)} after restart")
    return stats


def killed(sig: signal.Signals, backend_down: bool, calls: int = 30) -> Row:
    """The app exports while the backend is up (or down); `sig` hits it mid-run; a new process
    with the same spool directory replays what the first one left."""
    state = "down" if backend_down else "up"
    row = Row(f"sagemaker: {sig.name} during export (backend {state}), restart")
    with Timer() as t, tempfile.TemporaryDirectory() as work, sagemaker_backend(work) as (emu, proxy):
        if backend_down:
            proxy.set("reset")
        kill_and_replay(row, "sagemaker", work, sig, calls, proxy.url, before_restart=lambda: proxy.set("pass"))
        row.found, records = counted(found_spans(emu))
        row.duplicates = records - row.found
    row.seconds = t.seconds
    return row
