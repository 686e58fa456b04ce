"""`spanchain view`: span trees in the terminal, from files or from a live OTLP stream.

Files may hold, in any mix of whole documents, JSON lines and pretty-printed objects one after
another (other text in between is skipped, so an app's captured stdout works):
- OTLP/JSON export requests (`{"resourceSpans": ...}`), e.g. a collector's file exporter output;
- spanchain trace documents (`traces.trace_to_json`: `{"trace_id", "summary", "spans": [...]}`);
- single spans as `traces.span_to_dict` writes them;
- spans as the OpenTelemetry SDK's `console` exporter prints them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from typing import Iterable, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from spanchain.export.traces import JSON_ATTRIBUTES, trace_id_hex


class ViewError(ValueError):
    pass


def _attrs(raw) -> dict:
    out = {}
    for key, value in (raw or {}).items():
        if isinstance(value, dict) or (key in JSON_ATTRIBUTES and isinstance(value, list)):
            value = json.dumps(value, ensure_ascii=False)  # a JSON value of a trace document
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def span_from_dict(doc: dict) -> ReadableSpan:
    """The inverse of `traces.span_to_dict`, enough for viewing (no links or scope)."""
    try:
        trace_id = int(doc["trace_id"], 16)
        context = SpanContext(trace_id, int(doc["span_id"], 16), False, TraceFlags(TraceFlags.SAMPLED))
        parent_hex = doc.get("parent_span_id")
        parent = SpanContext(trace_id, int(parent_hex, 16), False) if parent_hex else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ViewError(f"span {doc.get('name')!r}: bad or missing ids ({exc})") from None
    status = doc.get("status") or {}
    code = StatusCode[status.get("code") or "UNSET"] if (status.get("code") or "UNSET") in StatusCode.__members__ else StatusCode.UNSET
    kind_name = doc.get("kind") or "INTERNAL"
    return ReadableSpan(
        name=str(doc.get("name", "")),
        context=context,
        parent=parent,
        resource=Resource(_attrs(doc.get("resource"))),
        attributes=_attrs(doc.get("attributes")),
        events=[Event(e.get("name", ""), _attrs(e.get("attributes")), e.get("time_ns")) for e in doc.get("events") or []],
        kind=SpanKind[kind_name] if kind_name in SpanKind.__members__ else SpanKind.INTERNAL,
        status=Status(code, status.get("description")) if code == StatusCode.ERROR else Status(code),
        start_time=doc.get("start_time_ns"),
        end_time=doc.get("end_time_ns"),
    )


def _iso_ns(value) -> int | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


def span_from_console_dict(doc: dict) -> ReadableSpan:
    """A span as the SDK's ConsoleSpanExporter prints it (`ReadableSpan.to_json()`)."""
    context = doc.get("context") or {}
    try:
        trace_id = int(context["trace_id"], 16)
        span_id = int(context["span_id"], 16)
        parent = SpanContext(trace_id, int(doc["parent_id"], 16), False) if doc.get("parent_id") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ViewError(f"span {doc.get('name')!r}: bad or missing ids ({exc})") from None
    status = doc.get("status") or {}
    code_name = status.get("status_code") or "UNSET"
    code = StatusCode[code_name] if code_name in StatusCode.__members__ else StatusCode.UNSET
    kind_name = str(doc.get("kind") or "SpanKind.INTERNAL").rsplit(".", 1)[-1]
    return ReadableSpan(
        name=str(doc.get("name", "")),
        context=SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED)),
        parent=parent,
        resource=Resource(_attrs((doc.get("resource") or {}).get("attributes"))),
        attributes=_attrs(doc.get("attributes")),
        events=[Event(e.get("name", ""), _attrs(e.get("attributes")), _iso_ns(e.get("timestamp")))
                for e in doc.get("events") or []],
        kind=SpanKind[kind_name] if kind_name in SpanKind.__members__ else SpanKind.INTERNAL,
        status=Status(code, status.get("description")) if code == StatusCode.ERROR else Status(code),
        start_time=_iso_ns(doc.get("start_time")),
        end_time=_iso_ns(doc.get("end_time")),
    )


_DOCUMENT_START = re.compile(r"^[ \t]*[\[{]", re.MULTILINE)


def iter_json_documents(text: str) -> list:
    """Every JSON document in `text`: one whole document, JSON lines, or objects printed one
    after another; lines that start no JSON document are skipped."""
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    docs: list = []
    pos = 0
    while True:
        match = _DOCUMENT_START.search(text, pos)
        if match is None:
            return docs
        start = match.end() - 1
        try:
            doc, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        docs.extend(doc if isinstance(doc, list) else [doc])
        pos = end


def spans_from_document(doc) -> list[ReadableSpan]:
    if not isinstance(doc, dict):
        raise ViewError("expected a JSON object per document or line")
    if "resourceSpans" in doc or "resource_spans" in doc:
        from spanchain.otlp import decode as otlp

        return otlp.request_to_spans(otlp.parse_request(json.dumps(doc).encode(), otlp.JSON)).spans
    if isinstance(doc.get("spans"), list):
        # Trace documents hold the resource once, for every span that does not carry its own.
        shared = doc.get("resource")
        return [span_from_dict(s if "resource" in s or shared is None else {**s, "resource": shared}) for s in doc["spans"]]
    if "span_id" in doc:
        return [span_from_dict(doc)]
    if isinstance(doc.get("context"), dict) and "span_id" in doc["context"]:
        return [span_from_console_dict(doc)]
    raise ViewError("not an OTLP export request, a spanchain trace document or a span")


def load_spans(texts: Iterable[str]) -> list[ReadableSpan]:
    from spanchain.otlp.decode import OtlpDecodeError

    spans: list[ReadableSpan] = []
    for text in texts:
        docs = iter_json_documents(text)
        if not docs and text.strip():
            raise ViewError("no JSON found")
        try:
            for doc in docs:
                spans.extend(spans_from_document(doc))
        except OtlpDecodeError as exc:
            raise ViewError(str(exc)) from None
    return spans


def group_traces(spans: Sequence[ReadableSpan]) -> list[list[ReadableSpan]]:
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    groups = list(by_trace.values())
    groups.sort(key=lambda g: min((s.start_time or 0) for s in g))
    return groups


def render(spans: Sequence[ReadableSpan], fmt: str = "tree") -> str:
    from spanchain.export.console import format_trace
    from spanchain.export.traces import trace_to_json

    groups = group_traces(spans)
    if fmt == "json":
        return "\n".join(trace_to_json(g) for g in groups) + ("\n" if groups else "")
    return "\n".join(format_trace(g) for g in groups)


def _is_aim_repo(path: str) -> bool:
    return os.path.basename(os.path.normpath(path)) == ".aim" or os.path.isdir(os.path.join(path, ".aim"))


def expand_directories(paths: Sequence[str]) -> list[str]:
    """A folder stands for the .json/.jsonl files directly in it (a demo dir, a folder of trace
    documents); an Aim repo is not a span file, and the error says what to do instead."""
    out: list[str] = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            out.append(path)
            continue
        if _is_aim_repo(path):
            repo = os.path.dirname(os.path.normpath(path)) if os.path.basename(os.path.normpath(path)) == ".aim" else path
            hint = f"{path} is an Aim repo, not a span file: open it with `aim up --repo {repo}`"
            spans_file = os.path.join(os.path.dirname(os.path.normpath(repo)), "spans.jsonl")
            if os.path.isfile(spans_file):
                hint += f"; the same spans as a file: spanchain view {spans_file}"
            raise ViewError(hint)
        found = sorted(
            os.path.join(path, name) for name in os.listdir(path)
            if name.endswith((".json", ".jsonl")) and os.path.isfile(os.path.join(path, name))
        )
        if not found:
            raise ViewError(f"{path} is a directory with no .json or .jsonl files in it")
        out.extend(found)
    return out


def view_files(paths: Sequence[str], fmt: str = "tree", out=None) -> int:
    out = out or sys.stdout
    texts = []
    for path in expand_directories(paths):
        try:
            if path == "-":
                texts.append(sys.stdin.read())
            else:
                with open(path, encoding="utf-8") as fh:
                    texts.append(fh.read())
        except OSError as exc:
            raise ViewError(f"cannot read {path}: {exc.strerror or exc}") from None
    spans = load_spans(texts)
    out.write(render(spans, fmt))
    traces = len({trace_id_hex(s.context.trace_id) for s in spans})
    print(f"{len(spans)} span{'' if len(spans) == 1 else 's'} in {traces} trace{'' if traces == 1 else 's'}", file=sys.stderr)
    return 0
