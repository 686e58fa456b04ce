"""summary.json of a session run: totals over its traces and the most recent ones."""

from __future__ import annotations

import collections
import json

from spanchain.traces import trace_summary

from spanchain_sagemaker.translate import ParameterSet, TraceFacts

MAX_SUMMARY_TRACES = 1_000


class SessionSummary:
    """Totals over a session run's traces plus the most recent traces, for summary.json."""

    def __init__(self) -> None:
        self.traces = 0
        self.spans = 0
        self.totals: collections.Counter[str] = collections.Counter()
        self.counters: collections.Counter[str] = collections.Counter()
        self.recent: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self.dirty = False

    def add(self, facts: TraceFacts, step: int, uri: str, spans) -> None:
        summary = trace_summary(spans)
        if facts.key not in self.recent:
            self.traces += 1
        else:
            self.recent.pop(facts.key)  # a re-sent trace replaces its entry, counted once
        self.recent[facts.key] = {
            "key": facts.key,
            "trace_id": facts.trace_id,
            "step": step,
            "root": facts.root_name,
            "status": "error" if facts.failed else "ok",
            "start_time_ns": facts.start_ns,
            "end_time_ns": facts.end_ns,
            "spans": facts.span_count,
            "input_tokens": summary["input_tokens"],
            "output_tokens": summary["output_tokens"],
            "uri": uri,
        }
        while len(self.recent) > MAX_SUMMARY_TRACES:
            self.recent.popitem(last=False)
        self.spans += facts.span_count
        for name in ("input_tokens", "output_tokens", "total_tokens", "errors"):
            self.totals[name] += summary[name]
        self.counters.update(summary["counters"])
        self.dirty = True

    def document(self, ref, run_per: str, params: ParameterSet | None) -> bytes:
        doc = {
            "experiment": ref.experiment,
            "run": ref.run,
            "trial_component": ref.trial_component,
            "run_per": run_per,
            "traces": self.traces,
            "spans": self.spans,
            "totals": dict(self.totals),
            "counters": dict(self.counters),
            "parameters": {k: v for k, v in (params.raw() if params else {}).items()},
            "recent_traces": list(self.recent.values()),
        }
        return json.dumps(doc, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")
