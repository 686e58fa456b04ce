"""run_id → live span state: thread-safe, bounded in time (TTL) and size.

Entries leave when their run ends. Runs whose end never comes (a cancelled task, a dropped stream,
a handler added halfway through a run) are ended by the registry itself after `ttl_s`, or when
more than `max_runs` are open, oldest first, and marked `langchain.abandoned`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional
from uuid import UUID

from opentelemetry.context import Context
from opentelemetry.trace import Span

from spanchain.bridge.scope import Attachment


@dataclass(eq=False, slots=True)
class RunState:
    span: Span
    run_type: str
    parent: Optional["RunState"]
    root: Optional["RunState"]  # None when this run is the root
    started: float  # time.monotonic()
    run_id: str = ""  # the UUID as text, made once: children put it on their spans
    name: str = ""
    operation: str = ""
    model: str = ""
    provider: str = ""
    attachment: Optional[Attachment] = None
    # The OTel context holding this run's span, made once and shared by all its children.
    child_context: Optional[Context] = None
    first_chunk_at: Optional[float] = None
    chunks: int = 0
    retries: int = 0
    is_agent: bool = False
    descendants: int = 0
    # roll-ups over the model and tool calls beneath this run
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    errors: int = 0


# A run's dict key is its UUID's integer, whose hash is computed in C (UUID.__hash__ is Python
# code, and the registry is consulted several times per run); other ids are used as they are.


_NO_EVICTIONS: list[tuple[RunState, str]] = []  # returned, never mutated


class RunRegistry:
    """A dict in start order (dicts keep insertion order): the oldest runs come first.

    Every run passes through `add`, `get` and `pop` on the app's thread, so they take no lock in
    the common case: one dict operation is atomic under the GIL. Only an `add` that must sweep
    expired runs or make room takes the lock, and sweeping tolerates runs leaving meanwhile.
    """

    def __init__(self, ttl_s: float = 3600.0, max_runs: int = 10_000, clock=time.monotonic):
        self._runs: dict[object, RunState] = {}
        self._lock = threading.Lock()
        self._ttl_s = ttl_s
        self._max_runs = max(1, max_runs)
        self._clock = clock
        self._next_sweep = clock() + min(ttl_s, 60.0)

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: Optional[UUID]) -> Optional[RunState]:
        if run_id is None:
            return None
        return self._runs.get(run_id.int if type(run_id) is UUID else run_id)

    def add(self, run_id: UUID, state: RunState) -> list[tuple[RunState, str]]:
        """Register a run; returns runs that must now be ended as abandoned (reason)."""
        key = run_id.int if type(run_id) is UUID else run_id
        runs = self._runs
        if state.started < self._next_sweep and len(runs) < self._max_runs and key not in runs:
            runs[key] = state
            return _NO_EVICTIONS
        evicted: list[tuple[RunState, str]] = []
        with self._lock:
            if state.started >= self._next_sweep:
                evicted.extend(self._sweep_locked(state.started))
            previous = runs.pop(key, None)
            if previous is not None:
                evicted.append((previous, "duplicate_run_id"))
            runs[key] = state
            while len(runs) > self._max_runs:
                oldest = self._oldest()
                if oldest is None:
                    break
                if runs.pop(oldest[0], None) is oldest[1]:
                    evicted.append((oldest[1], "capacity"))
        return evicted

    def pop(self, run_id: Optional[UUID]) -> Optional[RunState]:
        if run_id is None:
            return None
        return self._runs.pop(run_id.int if type(run_id) is UUID else run_id, None)

    def sweep(self) -> list[tuple[RunState, str]]:
        with self._lock:
            return self._sweep_locked(self._clock())

    def drain(self) -> list[tuple[RunState, str]]:
        with self._lock:
            runs, self._runs = self._runs, {}
        # list() copies in C, so a lock-free pop elsewhere cannot interleave with the copy.
        return [(s, "shutdown") for s in list(runs.values())]

    def _oldest(self) -> Optional[tuple[object, RunState]]:
        """The first (key, state), or None when empty. A lock-free pop elsewhere may land between
        making the iterator and reading it; the read then raises and is simply retried."""
        for _ in range(8):
            try:
                return next(iter(self._runs.items()), None)
            except RuntimeError:  # "mutated during iteration"
                continue
        return None

    def _sweep_locked(self, now: float) -> list[tuple[RunState, str]]:
        self._next_sweep = now + min(self._ttl_s, 60.0)
        expired: list[tuple[RunState, str]] = []
        deadline = now - self._ttl_s
        # Insertion order is start order, so the expired runs are a prefix.
        while True:
            oldest = self._oldest()
            if oldest is None:
                break
            key, state = oldest
            if state.started > deadline:
                break
            if self._runs.pop(key, None) is state:  # it may have ended meanwhile (pop takes no lock)
                expired.append((state, "ttl"))
        return expired
