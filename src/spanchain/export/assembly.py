"""Trace assembly: spans in, whole LangChain traces out.

Spans are grouped by their LangChain root run (`traces.group_key`; foreign spans by trace id).
A group is released when it is complete (the root arrived with its `langchain.trace.descendants`
count, and that many LangChain spans are there), `grace_s` after its root arrived, or `idle_s`
after its last span when no root ever comes. Released traces are remembered for a while: a span
that ends after its trace was written (an abandoned stream) rejoins it, and the whole trace is
released again with that span marked new, so a writer can rewrite it idempotently.

Each group also carries the tickets (spool sequence numbers) of the records its spans came in,
so the engine can acknowledge exactly those records once the trace is written. Pure bookkeeping:
no I/O, no threads, no locks (the engine's writer thread owns it).
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Iterable

from opentelemetry.sdk.trace import ReadableSpan

from spanchain import semconv as sc
from spanchain.export.traces import is_langchain_root

SpanKey = tuple  # (trace_id, span_id)


def span_key(span: ReadableSpan) -> SpanKey:
    ctx = span.context
    return (ctx.trace_id, ctx.span_id) if ctx is not None else (0, id(span))


@dataclass
class Trace:
    """What a writer gets: every known span of one trace, and which of them are new."""

    key: str
    spans: list[ReadableSpan]
    new_spans: list[ReadableSpan]
    complete: bool
    tickets: set = field(default_factory=set)  # spool records to acknowledge once written
    unspooled: int = 0  # new spans held in memory only (the spool could not take them)

    @property
    def rewrite(self) -> bool:
        """True when part of this trace was written before (late spans rejoined it)."""
        return len(self.new_spans) < len(self.spans)


@dataclass
class _Group:
    spans: dict = field(default_factory=dict)  # span key -> span, in arrival order
    tickets: set = field(default_factory=set)
    unspooled: int = 0
    root: ReadableSpan | None = None
    root_seen_at: float | None = None
    last_seen_at: float = 0.0


def _is_root(span: ReadableSpan) -> bool:
    """A LangChain root run, or a foreign span with no parent (an OTLP trace's own root)."""
    if is_langchain_root(span):
        return True
    return span.parent is None and sc.LC_RUN_ID not in (span.attributes or {})


class TraceAssembler:
    def __init__(self, grace_s: float = 5.0, idle_s: float = 300.0, recent_traces: int = 256,
                 clock=time.monotonic) -> None:
        self._groups: dict[str, _Group] = {}
        self._recent: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._grace_s = grace_s
        self._idle_s = idle_s
        self._recent_max = recent_traces
        self._clock = clock
        self.span_count = 0  # spans held in open groups

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, key: str, spans: Iterable[ReadableSpan], ticket=None) -> tuple[list[Trace], int]:
        """Add spans of one group; returns (traces released, spans that were duplicates of spans
        already held or written: the caller counts those as settled)."""
        now = self._clock()
        group = self._groups.get(key)
        written = self._recent.get(key)
        duplicates = 0
        fresh = 0
        for span in spans:
            skey = span_key(span)
            if (group is not None and skey in group.spans) or (written is not None and skey in written):
                duplicates += 1
                continue
            if group is None:
                group = self._groups[key] = _Group()
                if written is not None:
                    # Late spans of a trace already written: nothing will complete it again,
                    # so the grace period starts now.
                    group.root_seen_at = now
            group.spans[skey] = span
            fresh += 1
            if ticket is None:
                group.unspooled += 1
            if _is_root(span):
                group.root = span
                group.root_seen_at = now
        self.span_count += fresh
        if group is None:  # every span was a duplicate
            return [], duplicates
        if ticket is not None:
            group.tickets.add(ticket)
        group.last_seen_at = now
        if self._complete(key, group):
            return [self._release(key)], duplicates
        return [], duplicates

    def expire(self) -> list[Trace]:
        now = self._clock()
        due = [
            key
            for key, g in self._groups.items()
            if (g.root_seen_at is not None and now - g.root_seen_at >= self._grace_s)
            or now - g.last_seen_at >= self._idle_s
        ]
        return [self._release(key) for key in due]

    def drain(self) -> list[Trace]:
        return [self._release(key) for key in list(self._groups)]

    def written(self, trace: Trace) -> None:
        """Remember a written trace, so late spans rejoin it."""
        self._recent[trace.key] = {span_key(s): s for s in trace.spans}
        self._recent.move_to_end(trace.key)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)

    def _release(self, key: str) -> Trace:
        group = self._groups.pop(key)
        self.span_count -= len(group.spans)
        new = list(group.spans.values())
        earlier = self._recent.get(key)
        spans = [s for k, s in earlier.items() if k not in group.spans] + new if earlier else new
        return Trace(key, spans, new, self._complete(key, group), set(group.tickets), group.unspooled)

    def _complete(self, key: str, group: _Group) -> bool:
        root = group.root
        if root is None and key in self._recent:
            root = next((s for s in self._recent[key].values() if is_langchain_root(s)), None)
        if root is None:
            return False
        expected = (root.attributes or {}).get(sc.LC_DESCENDANTS)
        if expected is None:
            return False
        seen = set(group.spans)
        have = sum(1 for s in group.spans.values() if sc.LC_RUN_ID in (s.attributes or {}))
        if key in self._recent:
            have += sum(1 for k, s in self._recent[key].items()
                        if k not in seen and sc.LC_RUN_ID in (s.attributes or {}))
        try:
            return have - 1 >= int(expected)
        except (TypeError, ValueError):
            return False
