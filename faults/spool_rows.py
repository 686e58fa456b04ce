"""Fault rows for the spool itself: the disk under it fills up."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from contextlib import contextmanager

from faults.app import App
from faults.harness import Row, Timer, drain, finish
from faults.sagemaker_rows import counted, exporter, found_spans, sagemaker_backend


@contextmanager
def tiny_disk(path: str, size_kib: int):
    """A real filesystem of `size_kib` at `path` (tmpfs; needs root). Yields how it was made.

    Without root, falls back to pre-creating the spool's segment files as links to /dev/full,
    which fails every write with ENOSPC, as a full disk does."""
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", path],
        capture_output=True,
    ).returncode == 0 if os.geteuid() == 0 else False
    try:
        if mounted:
            yield f"tmpfs {size_kib} KiB"
        else:
            lane = os.path.join(path, "sagemaker", "lane-0")
            os.makedirs(lane, exist_ok=True)
            for i in range(1, 200):
                os.symlink("/dev/full", os.path.join(lane, f"seg-{i:012d}.spool"))
            yield "/dev/full (no root for tmpfs)"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", path], capture_output=True)


def disk_full(backend_down: bool, calls: int = 40, size_kib: int = 160) -> Row:
    state = "backend down" if backend_down else "backend up"
    row = Row(f"spool: disk full ({state})")
    with Timer() as t, tempfile.TemporaryDirectory() as work, sagemaker_backend(work) as (emu, proxy):
        spool = os.path.join(work, "spool")
        with tiny_disk(spool, size_kib) as how:
            exp = exporter(spool, spool_fsync=False)
            app = App(exp)
            if backend_down:
                proxy.set("reset")
            app.run(calls, pace_s=0.05)  # several small batches, so the disk fills part way
            time.sleep(2.0)
            proxy.set("pass")
            drained = drain(exp, 90)
            exp.shutdown()
            row.note = f"{how}; spool errors {exp.stats.spool_errors}"
            finish(row, app, exp, counted(found_spans(emu)), drained)
    row.seconds = t.seconds
    return row
