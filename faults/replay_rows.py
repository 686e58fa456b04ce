""""Nothing lost with a spool": the backend is down from the start, the app makes three calls,
`TracerProvider.shutdown()` gives up on the writer (still retrying), and a new exporter on the
same spool directory, with the backend up, must deliver every span exactly once. Each scenario
runs `iterations` times in a row (the issue asks for 20) and fails on the first miss.

Scenarios: SageMaker with nothing listening on the endpoint; Aim with the local repo's metadata
DB locked by another process; Aim with the local repo on a volume that is not there yet (a
dangling symlink, "mounted" later); Aim over `aim://` with nothing listening.

A process stop is played in-process: shutdown, then wait until the old writer thread has left
its last backend call while the backend is still down (a real exit would kill that thread; it
cannot deliver anything meanwhile), then build a new exporter on the same spool. `make chaos`
and the slow test tier (tests/test_reliability_replay.py) both run these.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

from faults.aim_rows import lock_repo, unlock_repo, workdir
from faults.app import App
from faults.harness import Row, Timer, drain, environ

CALLS = 3
ROUNDS = 20  # each scenario, in a row, in `make chaos` and in the slow test tier
DOWN_SHUTDOWN_S = 1.0  # shutdown's wait in the "down" process: short, so it gives up on the writer


@dataclass
class Outcome:
    """One iteration: what the app made, both processes' stats, what the backend holds."""

    produced: int
    down: dict
    up: dict
    found: int
    records: int
    extra_ok: bool = True
    raised: int = 0
    max_wait_ms: float = 0.0
    problems: list[str] = field(default_factory=list)

    def check(self) -> list[str]:
        p = list(self.problems)
        d, u = self.down, self.up
        for name, s in (("down", d), ("up", u)):
            if s["accepted"] != s["written"] + s["waiting"] + s["dropped"]:
                p.append(f"{name} process: invariant broken {s}")
        if d["dropped"] or d["written"] or d["waiting"] != self.produced:
            p.append(f"down process left {d['waiting']} of {self.produced} waiting "
                     f"(written {d['written']}, dropped {d['dropped']})")
        if u["replayed"] != self.produced or u["written"] != self.produced or u["waiting"] or u["dropped"]:
            p.append(f"up process replayed {u['replayed']}, wrote {u['written']}, waiting {u['waiting']}, "
                     f"dropped {u['dropped']} of {self.produced}")
        if self.found != self.produced or self.records != self.found:
            p.append(f"backend holds {self.found} distinct spans in {self.records} records of {self.produced}")
        if not self.extra_ok:
            p.append("backend objects missing")
        return p


def _stop_process(app: App, exp) -> dict:
    """TracerProvider.shutdown() (the exporter's shutdown gives up after DOWN_SHUTDOWN_S), then
    the old writer thread finishes its last (failing) call, as if the process had exited."""
    t0 = time.monotonic()
    app.provider.shutdown()
    waited = time.monotonic() - t0
    thread = exp.engine._writer_thread
    if thread is not None:
        thread.join(120)
    stats = exp.stats.as_dict()
    stats["shutdown_s"] = waited
    return stats


def _run(row: Row, iterations: int, one) -> Row:
    """Run `one(i)` -> Outcome `iterations` times; stop at the first failing iteration."""
    passed = 0
    worst_shutdown = 0.0
    with Timer() as t:
        for i in range(iterations):
            out = one(i)
            row.produced += out.produced
            row.found += out.found
            row.duplicates += out.records - out.found
            # The row's accounting is the final process's (replayed spans are accepted again
            # there); the down process's books are checked in Outcome.check.
            row.add_stats(out.up)
            row.raised += out.raised
            row.max_wait_ms = max(row.max_wait_ms, out.max_wait_ms)
            worst_shutdown = max(worst_shutdown, out.down.get("shutdown_s", 0.0))
            problems = out.check()
            if problems:
                row.note = f"iteration {i + 1} FAILED: {'; '.join(problems)}"
                row.failed = True
                break
            passed += 1
    row.seconds = t.seconds
    if passed == iterations:
        row.note = (f"{passed}/{iterations} runs: every span on disk after the timed-out shutdown "
                    f"(longest {worst_shutdown:.1f} s), replayed exactly once")
    return row


# --- SageMaker -----------------------------------------------------------------------------------


@contextmanager
def _endpoint(hung: bool):
    """A down endpoint: a free port nobody listens on, or (`hung`) a socket that accepts
    connections into its backlog and never answers."""
    import socket

    from testkit.moto_server import free_loopback_port

    if not hung:
        yield f"http://127.0.0.1:{free_loopback_port()}"
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def sagemaker_down(iterations: int = 20) -> Row:
    from spanchain_sagemaker import SageMakerSpanExporter
    from testkit.moto_server import start_emulator

    from faults.sagemaker_rows import BUCKET, found_spans

    row = Row("spool replay: sagemaker endpoint down from the start")
    with tempfile.TemporaryDirectory() as work:
        emu = start_emulator(log_path=os.path.join(work, "moto.log"))
        try:
            def one(i: int) -> Outcome:
                experiment = f"replay-{uuid.uuid4().hex[:8]}"
                spool = os.path.join(work, f"spool-{i}")
                options = dict(experiment_name=experiment, run_name="r", artifact_bucket=BUCKET, spool_dir=spool,
                               trace_grace_s=0.2, retry_backoff_s=0.2, spool_fsync=False)
                # Even rounds: nothing listens (connection refused). Odd rounds: a listener that
                # never answers, so shutdown's wait runs out with the writer inside a request.
                with _endpoint(hung=i % 2 == 1) as dead, environ(**{**emu.aws_env(), "AWS_ENDPOINT_URL": dead}):
                    exp = SageMakerSpanExporter(**options, max_attempts=2, timeout_s=3.0,
                                                shutdown_timeout_s=DOWN_SHUTDOWN_S)
                    app = App(exp)
                    app.run(CALLS, tag=f"r{i}-")
                    down = _stop_process(app, exp)  # (the writer leaves its request by timeout_s)
                with environ(**emu.aws_env()):
                    exp2 = SageMakerSpanExporter(**options, shutdown_timeout_s=20)
                    drain(exp2, 60)
                    exp2.shutdown()
                    spans, records = found_spans(emu, f"trial-component-artifacts/{experiment}-r/")
                    sm = emu.client("sagemaker")
                    try:
                        sm.describe_trial_component(TrialComponentName=f"{experiment}-r")
                        present = True
                    except Exception:
                        present = False
                return Outcome(app.produced, down, exp2.stats.as_dict(), len(spans), records,
                               extra_ok=present and records > 0, raised=app.stats.raised,
                               max_wait_ms=app.stats.max_wait_s * 1000)

            return _run(row, iterations, one)
        finally:
            emu.stop()


# --- Aim -----------------------------------------------------------------------------------------


def _aim_exporter(repo: str, spool: str, experiment: str, shutdown_s: float):
    from spanchain_aim import AimSpanExporter

    return AimSpanExporter(repo=repo, experiment=experiment, spool_dir=spool, trace_grace_s=0.2,
                           retry_backoff_s=0.2, shutdown_timeout_s=shutdown_s, spool_fsync=False,
                           remote_write_timeout_s=5.0)


def _aim_round(i: int, work: str, down_repo: str, up_repo: str, read_repo: str, go_down, go_up) -> Outcome:
    """One iteration against Aim: `go_down()` before the first process, `go_up()` after it."""
    from faults.aim_rows import found_spans

    experiment = f"replay-{uuid.uuid4().hex[:8]}"
    spool = os.path.join(work, f"spool-{i}")
    go_down()
    try:
        exp = _aim_exporter(down_repo, spool, experiment, DOWN_SHUTDOWN_S)
        app = App(exp)
        app.run(CALLS, tag=f"r{i}-")
        down = _stop_process(app, exp)
    finally:
        go_up()
    exp2 = _aim_exporter(up_repo, spool, experiment, 30.0)
    drain(exp2, 90)
    exp2.shutdown()
    hashes = set(exp.run_hashes) | set(exp2.run_hashes)
    found, records, broken = found_spans(read_repo, hashes)
    out = Outcome(app.produced, down, exp2.stats.as_dict(), found, records, raised=app.stats.raised,
                  max_wait_ms=app.stats.max_wait_s * 1000)
    if broken:
        out.problems.append(f"{broken} run(s) Aim cannot read back")
    return out


def aim_locked(iterations: int = 20) -> Row:
    """Another process holds the local repo's metadata DB (BEGIN EXCLUSIVE) from the start."""
    from aim import Repo

    row = Row("spool replay: aim local repo locked")
    work = workdir()
    repo = os.path.join(work, "repo")
    Repo.from_path(repo, init=True)
    holder: list = []

    def lock() -> None:
        holder.append(lock_repo(repo))

    def unlock() -> None:
        while holder:
            unlock_repo(holder.pop())

    try:
        return _run(row, iterations, lambda i: _aim_round(i, work, repo, repo, repo, lock, unlock))
    finally:
        unlock()


def aim_missing(iterations: int = 20) -> Row:
    """The repo path is on a volume that is not there yet: its parent is a symlink to a missing
    directory (an unmounted disk). Every write fails until the volume appears."""
    from aim import Repo

    row = Row("spool replay: aim local repo missing (volume not mounted)")
    work = workdir()
    ready = os.path.join(work, "volume-ready")  # an initialised repo lives here between rounds
    Repo.from_path(os.path.join(ready, "repo"), init=True)
    volume = os.path.join(work, "volume")
    mount = os.path.join(work, "mnt")
    os.symlink(volume, mount)  # dangling until "mounted"
    repo = os.path.join(mount, "repo")

    def mounted() -> None:
        os.rename(ready, volume)

    def unmounted() -> None:
        if os.path.exists(volume):
            os.rename(volume, ready)

    def one(i: int) -> Outcome:
        try:
            return _aim_round(i, work, repo, repo, os.path.join(volume, "repo"), unmounted, mounted)
        finally:
            unmounted()

    # The readback happens while mounted (inside _aim_round, after go_up).
    return _run(row, iterations, one)


def aim_remote_down(iterations: int = 20) -> Row:
    """`aim://` with nothing listening; the next process finds `aim server` up. The server runs
    on its own port for the whole scenario (starting one per round costs more than the test);
    the down process points at a free port where nothing listens."""
    from testkit.aim_server import AimServer, free_port

    row = Row("spool replay: aim:// server down")
    work = workdir()
    server = AimServer(os.path.join(work, "server-repo")).start()
    try:
        def one(i: int) -> Outcome:
            dead = f"aim://127.0.0.1:{free_port()}"
            return _aim_round(i, work, dead, server.uri, str(server.repo), lambda: None, lambda: None)

        return _run(row, iterations, one)
    finally:
        import gc

        gc.collect()
        server.stop()
        shutil.rmtree(os.path.join(work, "server-repo"), ignore_errors=True)
