"""A whole LangChain run as a plotly waterfall, for Aim's Figures explorer and run page.

Aim 3.29's Text explorer shows every stored text as one paragraph, so the readable tree of a
trace is only readable on the run page's Texts tab. This figure is the explorers' whole-trace
view: one horizontal bar per span on a time axis (seconds since the trace started), rows in
tree order with the nesting drawn as indentation, each bar labelled with run type, duration and
tokens; failed spans are red with a dark outline; hovering a bar shows its key attributes.

Pure: spans in, plotly's `data` and `layout` as plain dicts out (`waterfall_layout`, no plotly or
Aim import); `plotly_figure` wraps them in the plotly Figure object that `aim.Figure` requires,
on the writer side. No template (plain colours, explicit grid) and no plotly validation: about
ten times cheaper to build and serialize than a default figure; the layout only uses well-known
plotly attributes.
"""

from __future__ import annotations

from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain import semconv as sc
from spanchain.export.traces import children_by_parent, duration_s, is_error, run_type, token_usage

# One colour per LangChain run type; errors override them.
_COLOURS = {
    "chain": "#4c78a8",
    "prompt": "#72b7b2",
    "parser": "#72b7b2",
    "llm": "#f58518",
    "chat_model": "#f58518",
    "tool": "#54a24b",
    "retriever": "#b279a2",
    "embedding": "#9d755d",
}
_OTHER_COLOUR = "#bab0ac"
_ERROR_COLOUR = "#e45756"
_ERROR_OUTLINE = "#7f0000"
_ROW_PX = 26
_MAX_LABEL = 48


def tree_order(spans: Sequence[ReadableSpan]) -> list[tuple[ReadableSpan, int]]:
    """(span, depth) in depth-first order, children by start time; orphans become roots."""
    children = children_by_parent(spans)
    out: list[tuple[ReadableSpan, int]] = []
    seen: set[int] = set()
    roots = list(children.get(None, []))
    while True:
        stack = [(root, 0) for root in reversed(roots)]
        while stack:  # iterative: a deep agent loop must not hit the recursion limit
            span, depth = stack.pop()
            if id(span) in seen:
                continue
            seen.add(id(span))
            out.append((span, depth))
            stack.extend((kid, depth + 1) for kid in reversed(children.get(span.context.span_id, [])))
        # Spans whose parents form a loop (broken foreign data) are never reached from a root:
        # still one bar each.
        roots = [s for s in spans if id(s) not in seen][:1]
        if not roots:
            return out


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _short(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hover(span: ReadableSpan, rt: str, start_s: float) -> str:
    attrs = span.attributes or {}
    lines = [f"<b>{_escape(span.name)}</b>", f"run type: {rt}", f"start: +{_ms(start_s)}",
             f"duration: {_ms(duration_s(span))}"]
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
    if model:
        lines.append(f"model: {_escape(str(model))}")
    tokens_in, tokens_out = token_usage(span)
    if tokens_in or tokens_out:
        lines.append(f"tokens: {tokens_in} in → {tokens_out} out")
    ttfc = attrs.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    if isinstance(ttfc, (int, float)):
        lines.append(f"first chunk: {_ms(float(ttfc))}")
    tool = attrs.get(sc.GEN_AI_TOOL_NAME)
    if tool and rt == "tool":
        lines.append(f"tool: {_escape(str(tool))}")
    if is_error(span):
        error = attrs.get(sc.ERROR_TYPE) or "error"
        description = span.status.description if span.status else ""
        lines.append(f"<b>error</b>: {_escape(_short(f'{error}: {description}'.rstrip(': '), 120))}")
    if attrs.get(sc.LC_RUN_ID):
        lines.append(f"run id: {attrs[sc.LC_RUN_ID]}")
    return "<br>".join(lines)


def _escape(text: str) -> str:
    # plotly renders hover text as a small HTML subset
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bar_label(span: ReadableSpan, rt: str) -> str:
    parts = [rt, _ms(duration_s(span))]
    tokens_in, tokens_out = token_usage(span)
    if tokens_in or tokens_out:
        parts.append(f"{tokens_in}→{tokens_out} tok")
    if is_error(span):
        parts.append("ERROR")
    return " · ".join(parts)


def waterfall_layout(spans: Sequence[ReadableSpan]) -> tuple[list[dict], dict]:
    """The figure's traces and layout as plain plotly dicts (one bar per span)."""
    rows = tree_order(spans)
    t0 = min((s.start_time or 0) for s, _ in rows) if rows else 0
    ys, bases, widths, labels, hovers, colours, outlines, ticks = [], [], [], [], [], [], [], []
    errors = 0
    for index, (span, depth) in enumerate(rows):
        rt = run_type(span)
        start_s = max(0, (span.start_time or t0) - t0) / 1e9
        failed = is_error(span)
        errors += failed
        ys.append(index)
        bases.append(start_s)
        # A zero-length bar would be invisible; keep a sliver so every span shows.
        widths.append(max(duration_s(span), 1e-4))
        labels.append(_bar_label(span, rt))
        hovers.append(_hover(span, rt, start_s))
        colours.append(_ERROR_COLOUR if failed else _COLOURS.get(rt, _OTHER_COLOUR))
        outlines.append(_ERROR_OUTLINE if failed else "rgba(0,0,0,0)")
        ticks.append("\u2003" * depth + ("└ " if depth else "") + _short(_escape(span.name)))
    root = rows[0][0] if rows else None
    total_in = sum(token_usage(s)[0] for s, _ in rows)
    total_out = sum(token_usage(s)[1] for s, _ in rows)
    title = f"{_escape(_short(root.name))}: {_ms(duration_s(root))}, {len(rows)} spans" if root else "empty trace"
    if total_in or total_out:
        title += f", tokens {total_in}→{total_out}"
    if errors:
        title += f", <span style='color:{_ERROR_COLOUR}'>{errors} error{'s' if errors > 1 else ''}</span>"
    data = [{
        "type": "bar",
        "orientation": "h",
        "y": ys,
        "base": bases,
        "x": widths,
        "text": labels,
        "textposition": "auto",
        "insidetextanchor": "start",
        "cliponaxis": False,
        "hovertext": hovers,
        "hoverinfo": "text",
        "marker": {"color": colours, "line": {"color": outlines, "width": 2}},
        "name": "spans",
    }]
    layout = {
        "title": {"text": title, "x": 0.01, "xanchor": "left"},
        "template": "none",
        "showlegend": False,
        "height": 110 + _ROW_PX * max(1, len(rows)),
        "margin": {"l": 10, "r": 20, "t": 50, "b": 45},
        "bargap": 0.25,
        "xaxis": {"title": {"text": "seconds since the trace started"}, "showgrid": True,
                  "gridcolor": "#e5e5e5", "zeroline": True, "rangemode": "tozero"},
        "yaxis": {"tickmode": "array", "tickvals": ys, "ticktext": ticks, "autorange": "reversed",
                  "automargin": True, "showgrid": False},
        "hoverlabel": {"align": "left"},
        "plot_bgcolor": "white",
    }
    return data, layout


def plotly_figure(data: list[dict], layout: dict):
    """A plotly Figure of these dicts: the object `aim.Figure` takes (it stores its JSON)."""
    import plotly.graph_objects as go

    # Our own dicts, built from known attribute names: skip plotly's per-property validation.
    return go.Figure(data=data, layout=layout, _validate=False)


def trace_figure(spans: Sequence[ReadableSpan]):
    """The trace's waterfall as a plotly Figure."""
    return plotly_figure(*waterfall_layout(spans))
