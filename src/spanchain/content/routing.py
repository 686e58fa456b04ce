"""Per-exporter content routing: prompts and outputs reach Aim/SageMaker, not a shared collector.

A collector is usually shared infrastructure (other teams, long retention, third-party backends),
while the Aim repo and the SageMaker experiment are where the people debugging the chain look. So
by default the spans sent to OTLP (and to any exporter not listed below) carry no content; the
span tree, timings, tokens, models and errors still go everywhere.

Switches (argument to `spanchain.configure`, else environment, else default):
- `content_exporters` / SPANCHAIN_CONTENT_EXPORTERS: the exporter names that receive content
  (default: aim, sagemaker, console, spanchain_console);
- `otlp_content` / SPANCHAIN_OTLP_CONTENT=true: also send content to every other exporter.
Exception events keep their messages: an error message is what you need on a shared dashboard.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanchain import semconv as sc
from spanchain.content.spanedit import copy_span

logger = logging.getLogger(__name__)

DEFAULT_CONTENT_EXPORTERS = frozenset({"aim", "sagemaker", "console", "spanchain_console"})

# Content in our span events (see semconv's event list); other event attributes are metadata.
EVENT_CONTENT_KEYS: Mapping[str, frozenset[str]] = {
    sc.EVENT_AGENT_ACTION: frozenset({"tool_input", "log"}),
    sc.EVENT_AGENT_FINISH: frozenset({"output", "log"}),
    sc.EVENT_CUSTOM: frozenset({"data"}),
    sc.EVENT_TEXT: frozenset({"text"}),
}

# Content under other instrumentations' names (spans relayed by `spanchain serve`).
FOREIGN_CONTENT_ATTRIBUTES = frozenset(
    {
        "input.value",
        "output.value",
        "llm.prompts",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "gen_ai.prompt",
        "gen_ai.completion",
    }
)
FOREIGN_CONTENT_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "retrieval.documents.",
)


def is_content_attribute(key: str) -> bool:
    return (
        key in sc.CONTENT_ATTRIBUTES
        or key in FOREIGN_CONTENT_ATTRIBUTES
        or key.startswith(FOREIGN_CONTENT_PREFIXES)
    )


def _strip_event(event: Event) -> Event:
    attrs = event.attributes or {}
    drop = EVENT_CONTENT_KEYS.get(event.name, frozenset())
    kept = {k: v for k, v in attrs.items() if k not in drop and not is_content_attribute(k)}
    if len(kept) == len(attrs):
        return event
    return Event(event.name, kept, timestamp=event.timestamp)


def strip_content(span: ReadableSpan) -> ReadableSpan:
    """The span without prompts, outputs, messages, documents or tool arguments/results."""
    attrs = span.attributes or {}
    kept = {k: v for k, v in attrs.items() if not is_content_attribute(k)}
    events = [_strip_event(e) for e in span.events]
    changed_events = any(a is not b for a, b in zip(events, span.events))
    if len(kept) == len(attrs) and not changed_events:
        return span
    return copy_span(span, attributes=kept, events=events)


class ContentStrippingExporter(SpanExporter):
    """Wraps an exporter; the wrapped one only ever sees spans without content."""

    def __init__(self, exporter: SpanExporter, name: str = "") -> None:
        self.exporter = exporter
        self.name = name or type(exporter).__name__

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            stripped = [strip_content(s) for s in spans]
        except Exception as exc:  # never send content by accident, never raise into the SDK
            logger.warning("spanchain: could not strip content for %s: %r; spans dropped", self.name, exc)
            return SpanExportResult.FAILURE
        return self.exporter.export(stripped)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def __getattr__(self, item: str) -> Any:
        # Stats and other extras of the wrapped exporter stay reachable.
        if item == "exporter":
            raise AttributeError(item)
        return getattr(self.exporter, item)


def content_exporter_names(
    content_exporters: Iterable[str] | None, otlp_content: bool
) -> frozenset[str] | None:
    """The names that receive content; None means every exporter does."""
    if otlp_content:
        return None
    if content_exporters is None:
        return DEFAULT_CONTENT_EXPORTERS
    return frozenset(n.strip() for n in content_exporters if n.strip())


def route(name: str, exporter: SpanExporter, allowed: frozenset[str] | None) -> SpanExporter:
    """The exporter as it should be attached: wrapped unless it may receive content."""
    if allowed is None or name in allowed:
        return exporter
    return ContentStrippingExporter(exporter, name)
