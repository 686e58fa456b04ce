"""Dense Aim steps: the n-th point of a sequence is step n, and a rewrite lands where it landed.

Aim's UI treats a step as an x axis (Metrics explorer, every explorer's step slider), so steps
are small consecutive integers per sequence (name + context): the n-th invocation of a chain,
the n-th call of a model. Wall-clock time stays with Aim's own per-point timestamps (the
Relative/Absolute Time axes).

Idempotence: a trace may be written twice into the same run (a retried write, a replay from
the spool while the run is still open, late spans re-rendering the trace tree). Each point has
an owner (its span, event or trace); an owner keeps the step it got the first time, and only a
new owner takes the sequence's next step. So every point is written exactly once, at the same
step, however often its trace is written.

Where the mapping lives (see docs/aim.md, "Steps"):
- a session run keeps one `DenseSteps` for its whole life, in memory, next to its one
  `aim.Run` object. A session run is never reopened by another process (a restarted process,
  replaying its spool, opens a new session run), so nothing else can hold a claim on its steps;
- a per-trace run holds one trace, and its steps are derived from that trace alone: whenever
  the run is (re)opened, a fresh `DenseSteps` numbers all of the trace's records in start-time
  order and the whole trace is written again, so a rewrite reproduces the same steps, and a
  late span takes its place in time order.

Pure: no Aim import.
"""

from __future__ import annotations

import collections
from typing import Hashable

DEFAULT_MAX_TRACES = 20_000


class DenseSteps:
    """Step allocator for one Aim run: (sequence key, owner) → step, claims grouped by trace.

    Claims are forgotten a whole trace at a time, oldest first, once more than `max_traces`
    traces hold claims: only recent traces are ever rewritten (the exporter keeps the last
    128 for late spans), and a trace's points must never be split between remembered and
    forgotten ones.
    """

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES):
        self._max_traces = max(1, max_traces)
        self._next: dict[Hashable, int] = {}
        self._claims: collections.OrderedDict[Hashable, dict] = collections.OrderedDict()

    def for_trace(self, trace: Hashable) -> "TraceSteps":
        """The allocator for one write of `trace` (its earlier claims included)."""
        claims = self._claims.get(trace)
        if claims is None:
            claims = self._claims[trace] = {}
            if len(self._claims) > self._max_traces:
                self._claims.popitem(last=False)
        else:
            self._claims.move_to_end(trace)
        return TraceSteps(self._next, claims)

    def length(self, sequence: Hashable) -> int:
        """How many steps `sequence` has handed out (its points are 0..length-1)."""
        return self._next.get(sequence, 0)


class TraceSteps:
    """Steps for the points of one trace, in one run."""

    __slots__ = ("_next", "_claims")

    def __init__(self, next_steps: dict, claims: dict):
        self._next = next_steps
        self._claims = claims

    def step(self, sequence: Hashable, owner: Hashable) -> int:
        """The step `owner`'s point had in `sequence`, else the sequence's next free one."""
        key = (sequence, owner)
        step = self._claims.get(key)
        if step is None:
            step = self._next.get(sequence, 0)
            self._next[sequence] = step + 1
            self._claims[key] = step
        return step
