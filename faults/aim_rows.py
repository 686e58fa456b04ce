"""Fault rows against Aim: a real repo on disk, a real `aim server` on loopback. Spans found =
distinct spans read back through Aim (each span's latency point, `RunSnapshot.span_keys`)."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from faults.app import App
from faults.harness import Row, Timer, drain, finish


def exporter(repo: str, spool_dir: str | None, **kw):
    from spanchain_aim import AimSpanExporter

    return AimSpanExporter(
        repo=repo,
        experiment="faults",
        spool_dir=spool_dir,
        trace_grace_s=0.5,
        retry_backoff_s=0.2,
        shutdown_timeout_s=kw.pop("shutdown_timeout_s", 20),
        **kw,
    )


def workdir() -> str:
    """A temporary directory removed at exit, not at the end of the row: Aim's finalizers of
    runs that failed (locked metadata DB, server gone) may still touch files in it until then."""
    path = tempfile.mkdtemp(prefix="spanchain-faults-aim-")
    atexit.register(shutil.rmtree, path, True)
    return path


def found_spans(repo: str, run_hashes=None) -> tuple[int, int, int]:
    """(distinct spans, span records, runs Aim itself cannot read back) over every run in the
    repo (or the given runs). A span is recorded once per run it was written into: rewrites
    of a trace in its run overwrite the same points; a replay into another run duplicates it."""
    from spanchain_aim.readback import read_runs

    from aim import Repo

    spans: set = set()
    records = 0
    broken = 0
    hashes = Repo.from_path(repo).list_all_runs() if run_hashes is None else list(run_hashes)
    for run_hash in hashes:
        try:
            snaps = read_runs(repo, [run_hash])
        except Exception:  # e.g. RepoIntegrityError: a run created while the metadata DB was locked
            broken += 1
            continue
        for snap in snaps:
            keys = snap.span_keys()
            spans |= keys
            records += len(keys)
    return len(spans), records, broken


def _finish(row: Row, app: App, exp, found: tuple[int, int, int], drained: bool) -> Row:
    count, records, broken = found
    if broken:
        row.note += f"; {broken} unreadable run(s) left in the repo"
    return finish(row, app, exp, (count, records), drained)


_HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("LOCKED", flush=True)
if float(sys.argv[2]) > 0:
    time.sleep(float(sys.argv[2]))
else:
    sys.stdin.readline()
db.execute("COMMIT")
"""


def lock_repo(repo: str, hold_s: float = 0.0) -> subprocess.Popen:
    """Another process takes the repo's metadata DB exclusively (BEGIN EXCLUSIVE), as a
    concurrent writer or a stuck `aim up` would; returns once it holds it. It lets go after
    `hold_s` seconds, or (0) when `unlock_repo` is called."""
    db = os.path.join(repo, ".aim", "run_metadata.sqlite")
    sqlite3.connect(db).close()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, db, str(hold_s)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "LOCKED"
    return holder


def unlock_repo(holder: subprocess.Popen, timeout_s: float = 30.0) -> None:
    if holder.poll() is None:
        try:
            holder.stdin.write("\n")
            holder.stdin.flush()
        except OSError:
            pass
    holder.wait(timeout_s)


def repo_locked(calls: int = 10, hold_s: float = 8.0) -> Row:
    """Another process holds Aim's run-metadata database exclusively while the app runs."""
    row = Row("aim: repo locked by another process")
    work = workdir()
    with Timer() as t:
        repo = os.path.join(work, "repo")
        from aim import Repo

        Repo.from_path(repo, init=True)
        holder = lock_repo(repo, hold_s)
        exp = exporter(repo, os.path.join(work, "spool"))
        app = App(exp)
        app.run(calls, pace_s=0.2)
        locked_still = holder.poll() is None
        holder.wait(hold_s + 30)
        drained = drain(exp, 120)
        exp.shutdown()
        row.note = f"lock held {hold_s:.0f}s{' through the whole app run' if locked_still else ''}"
        _finish(row, app, exp, found_spans(repo), drained)
    row.seconds = t.seconds
    return row


def server_killed(calls: int = 10) -> Row:
    """`aim server` is SIGKILLed mid-run and started again on the same port."""
    from testkit.aim_server import AimServer

    row = Row("aim: aim server killed mid-run, restarted")
    work = workdir()
    with Timer() as t:
        repo = os.path.join(work, "repo")
        server = AimServer(repo).start()
        try:
            exp = exporter(server.uri, os.path.join(work, "spool"), run_per="trace")
            app = App(exp)
            app.run(calls)
            drain(exp, 60)
            server.kill()
            app.run(calls, tag="down")
            time.sleep(2.0)
            server.start()
            drained = drain(exp, 45)
            exp.shutdown()
        finally:
            server.stop()
        row.note = "run_per=trace over aim://"
        _finish(row, app, exp, found_spans(repo), drained)
    row.seconds = t.seconds
    return row


def killed(calls: int = 20) -> Row:
    """An app process writing to a local Aim repo is SIGKILLed mid-run (its run left open, its
    locks held by a dead process); a new process on the same spool replays into the same repo."""
    import signal

    from faults.sagemaker_rows import kill_and_replay

    row = Row("aim: SIGKILL during export, restart")
    work = workdir()
    with Timer() as t:
        repo = os.path.join(work, "repo")
        from aim import Repo

        Repo.from_path(repo, init=True)
        # 0.3 s after the last call: the backend writes are still going on (Aim's first write
        # alone takes longer), the journal has caught up.
        kill_and_replay(row, f"aim:{repo}", work, signal.SIGKILL, calls, kill_after_s=0.3)
        found, records, broken = found_spans(repo)
        row.found, row.duplicates = found, records - found
        if broken:
            row.note += f"; {broken} unreadable run(s) (the killed process's)"
    row.seconds = t.seconds
    return row
