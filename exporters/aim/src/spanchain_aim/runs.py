"""Aim runs on the writer thread: open with side effects off, track records, merge params.

Only the exporter's writer thread touches these objects (Aim's Repo is not thread-safe), and
exactly one `aim.Run` object exists per hash in this process (two would keep separate step
state).
"""

from __future__ import annotations

import atexit
import logging
import socket
import threading
import time
from typing import Any, Iterable, Mapping

from spanchain_aim.config import AimExporterConfig
from spanchain_aim.sanitize import REDACTED, context_value, looks_secret, param_value
from spanchain_aim.figure import plotly_figure
from spanchain_aim.steps import DenseSteps
from spanchain_aim.translate import FigureRecord, MetricRecord, Record, TextRecord, in_step_order, merge_params

logger = logging.getLogger(__name__)

OVERFLOW_NAME = "(other)"


def open_aim_run(config: AimExporterConfig, experiment: str, run_hash: str | None = None, *,
                 system_tracking_interval: Any = None, log_system_params: bool | None = None):
    """A writable `aim.Run`; new when `run_hash` is None, else the existing run resumed.

    Aim's defaults patch sys.stdout/sys.stderr (terminal capture) and start a resource
    thread; an exporter must do neither unless the user asked for it.
    """
    if config.is_remote:
        ensure_server_reachable(config.repo)
    import aim

    interval = config.system_tracking_interval if system_tracking_interval is None else system_tracking_interval
    want_sysparams = config.log_system_params if log_system_params is None else log_system_params
    # Built in two steps so that a constructor that fails half-way can still be cleaned up.
    run = aim.Run.__new__(aim.Run)
    try:
        run.__init__(
            run_hash,
            repo=config.repo,
            experiment=None if run_hash else experiment,
            system_tracking_interval=interval or None,
            log_system_params=False,
            capture_terminal_logs=False,
        )
    except BaseException:
        _release_half_built(run, config.is_remote)
        raise
    if config.is_remote:
        bound_aim_exit_cleanup(config.shutdown_timeout_s)
    if want_sysparams and run_hash is None:
        from spanchain_aim.sysparams import system_params

        run["__system_params"] = system_params()
    return run


def _release_half_built(run, remote: bool) -> None:
    """Stop what `aim.Run.__init__` started before it failed (e.g. on a locked metadata DB).

    Aim starts its status-reporter threads and takes the run lock before the steps that can
    fail, and frees them only in the cleanup object it creates last: without this, every failed
    attempt leaves two threads touching the repo forever and the run locked. Over aim:// only
    the status reporter's thread is local; the heartbeat and the lock live on the server, and
    releasing them would wait on Aim's remote queue without a bound.
    """
    parts = [("_heartbeat", "stop"), ("_checkins", "close"), ("_lock", "release")]  # Aim's own order
    if remote:
        parts = [("_checkins", "close")]
    for name, stop in parts:
        part = getattr(run, name, None)
        if part is None:
            continue
        try:
            getattr(part, stop)()
        except Exception as exc:  # best effort: the original error is what the caller sees
            logger.debug("releasing a half-built Aim run (%s): %r", name, exc)


class RemoteWriteError(ConnectionError):
    """The aim server has not confirmed writes queued for it (a transient failure)."""


def wait_for_remote_writes(run, timeout_s: float) -> None:
    """Return once the aim server has confirmed every write this process queued for it.

    Over `aim://`, `run.track()` and param writes only enter the remote client's queue; a
    background thread sends them and retries through reconnects, and nobody hears of a write
    that never gets through. An entry leaves the queue only when the server answered that it
    applied it, so an empty queue means the server has the data. Aim's own wait (in
    `run.close()`) has no bound and hangs forever when its sender thread has died; this one
    gives up after `timeout_s` or as soon as the thread is gone, raising RemoteWriteError.
    """
    client = getattr(run.repo, "_client", None)
    request_queue = client.get_queue() if client is not None else None
    tasks = getattr(request_queue, "_queue", None)
    sender = getattr(request_queue, "_thread", None)
    if tasks is None or not hasattr(tasks, "unfinished_tasks"):
        # Another Aim version: `run.close()` still waits for the queue, only without a bound.
        logger.debug("cannot observe Aim's remote write queue; relying on run.close()")
        return
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while tasks.unfinished_tasks:
        if sender is not None and not sender.is_alive():
            raise RemoteWriteError(f"Aim's remote sender thread died with {tasks.unfinished_tasks} writes unsent")
        if time.monotonic() >= deadline:
            raise RemoteWriteError(
                f"aim server {run.repo.path} did not confirm {tasks.unfinished_tasks} queued writes "
                f"within {timeout_s:.0f}s")
        time.sleep(delay)
        delay = min(0.05, delay * 2)


_PROBE_TIMEOUT_S = 3.0


def ensure_server_reachable(uri: str) -> None:
    """Fail fast, without Aim, when nothing listens at an aim:// address.

    A failed `aim.Run(repo="aim://...")` leaves objects behind whose finalizers call the server
    again when the garbage collector runs, raising inside whatever the app does at that moment.
    """
    address = uri[len("aim://"):].split("/", 1)[0]
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=_PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"aim server {uri} is not reachable: {exc}") from None


_exit_guard_lock = threading.Lock()
_exit_guard_installed = False


def bound_aim_exit_cleanup(timeout_s: float) -> None:
    """Keep Aim's exit-time cleanup from hanging the process when an aim server is gone.

    Aim runs its finalizers at exit in a helper thread and waits for a signal the helper sets
    only after the last one. When the server is down, releasing a remote resource raises, the
    signal is never set, and the interpreter never exits. Our hook is registered after Aim's
    (Aim registers on its first run), so it runs first and arms a timer that sets the signal
    after `timeout_s`.
    """
    global _exit_guard_installed
    with _exit_guard_lock:
        if _exit_guard_installed:
            return
        _exit_guard_installed = True

    def arm() -> None:
        from aim.ext.cleanup import AutoClean

        timer = threading.Timer(timeout_s, AutoClean.stop_signal.set)
        timer.daemon = True
        timer.start()

    atexit.register(arm)


class RunWriter:
    """One open Aim run: tracks records at dense, stable steps and keeps params merged.

    Steps come from this writer's `DenseSteps` (see spanchain_aim.steps): a writer opened on
    an existing run starts numbering from 0 again, so whoever reopens a run rewrites all of
    what it holds (a per-trace run: its whole trace).
    """

    def __init__(self, run, max_contexts: int, remote_write_timeout_s: float | None = None):
        self.run = run
        self.hash: str = run.hash
        # None: a local repo, whose writes are done when `track` returns.
        self._remote_timeout_s = remote_write_timeout_s
        self._max_contexts = max_contexts
        self._contexts: set[tuple] = set()
        self._params: dict[str, Any] = {}
        self.steps = DenseSteps()

    def _context(self, name: str, context: Mapping[str, str]) -> tuple[Mapping[str, str], tuple]:
        """The context to track under (folded when there are too many) and its sequence key."""
        key = (name, tuple(sorted(context.items())))
        if key in self._contexts:
            return context, key
        if len(self._contexts) < self._max_contexts:
            self._contexts.add(key)
            return context, key
        # Too many distinct contexts make Aim's UI crawl; fold the long tail together.
        folded = {k: (OVERFLOW_NAME if k == "name" else v) for k, v in context.items()}
        key = (name, tuple(sorted(folded.items())))
        self._contexts.add(key)
        return folded, key

    def track(self, records: Iterable[Record], trace: str = "") -> int:
        """Track one trace's records (all from the trace named `trace`), each at its step."""
        import aim

        steps = self.steps.for_trace(trace)
        # A span's records share one context dict: resolve (fold, sort) it once per sequence.
        resolved: dict[tuple[str, int], tuple] = {}
        count = 0
        for record in in_step_order(records):
            found = resolved.get((record.name, id(record.context)))
            if found is None:
                found = resolved[(record.name, id(record.context))] = self._context(record.name, record.context)
            context, key = found
            step = steps.step(key, record.owner)
            # Aim copies the context it is given, so ours is passed as is.
            if isinstance(record, TextRecord):
                self.run.track(aim.Text(record.text), name=record.name, step=step, context=context)
            elif isinstance(record, MetricRecord):
                self.run.track(record.value, name=record.name, step=step, context=context)
            elif isinstance(record, FigureRecord):
                figure = aim.Figure(plotly_figure(*record.figure))
                self.run.track(figure, name=record.name, step=step, context=context)
            count += 1
        return count

    def merge_params(self, fragment: Mapping[str, Any]) -> None:
        changed = merge_params(self._params, fragment)
        for key, value in changed.items():
            self.run[key] = param_value(value)
            self._params[key] = value

    def set_params(self, values: Mapping[str, Any]) -> None:
        """User-supplied params (setup(**kwargs), flush_tracker(langchain_asset=...))."""
        for key, value in values.items():
            name = context_value(key)
            if name.startswith("__"):
                continue  # Aim's own namespace
            stored = REDACTED if looks_secret(name) else param_value(value)
            self.run[name] = stored
            self._params[name] = stored

    def set_name(self, name: str) -> None:
        self.run.name = context_value(name)

    def set_description(self, text: str) -> None:
        self.run.description = str(text)[:1000]

    def confirm(self) -> None:
        """Raise unless everything written so far has reached the repo (see
        `wait_for_remote_writes`); free for a local repo."""
        if self._remote_timeout_s is not None:
            wait_for_remote_writes(self.run, self._remote_timeout_s)

    def close(self) -> None:
        self.run.close()
