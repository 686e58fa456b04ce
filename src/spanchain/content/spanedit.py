"""A finished span with some fields replaced (finished spans are read-only, so we copy)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan


def copy_span(
    span: ReadableSpan,
    *,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[Event] | None = None,
) -> ReadableSpan:
    """`span` with new attributes and/or events; every other field is shared with the original."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=dict(attributes) if attributes is not None else span.attributes,
        events=tuple(events) if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
