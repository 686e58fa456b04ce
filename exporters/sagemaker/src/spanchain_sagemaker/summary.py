"""summary.json of a session run: totals over its traces and the most recent ones."""

from __future__ import annotations

import collections
import json

from spanchain.export.traces import json_safe, trace_summary

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

    def restore(self, doc: dict) -> dict[str, int]:
        """Take over an earlier process's summary.json; returns {trace key: step}."""
        self.traces = int(doc.get("traces") or 0)
        self.spans = int(doc.get("spans") or 0)
        self.totals = collections.Counter({k: v for k, v in (doc.get("totals") or {}).items() if isinstance(v, (int, float))})
        self.counters = collections.Counter({k: v for k, v in (doc.get("counters") or {}).items() if isinstance(v, (int, float))})
        steps: dict[str, int] = {}
        for entry in doc.get("recent_traces") or []:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(entry.get("step"), int):
                self.recent[entry["key"]] = entry
                steps[entry["key"]] = entry["step"]
        return steps

    def document(self, ref, run_per: str, params: ParameterSet | None, next_step: int = 0) -> bytes:
        doc = {
            "experiment": ref.experiment,
            "run": ref.run,
            "trial_component": ref.trial_component,
            "run_per": run_per,
            "next_step": next_step,
            "traces": self.traces,
            "spans": self.spans,
            "totals": dict(self.totals),
            "counters": dict(self.counters),
            "parameters": {k: v for k, v in (params.raw() if params else {}).items()},
            "recent_traces": list(self.recent.values()),
        }
        return json.dumps(json_safe(doc), default=str, ensure_ascii=False, allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )
