"""Readable text for the JSON payloads the bridge puts on spans.

Aim's Text explorer shows a string per step; a wall of JSON is hard to read there, so messages,
tool calls, run inputs/outputs and retrieved documents are rendered as plain text. A payload that
is not the JSON we expect is shown as it came: rendering never fails and never drops content.
"""

from __future__ import annotations

import json
from typing import Any


def _parse(payload: Any) -> Any:
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return payload


def _dump(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _render_part(part: Any) -> str:
    if not isinstance(part, dict):
        return _dump(part)
    kind = part.get("type")
    if kind in ("text", "reasoning") and "content" in part:
        prefix = "(reasoning) " if kind == "reasoning" else ""
        return prefix + _dump(part.get("content"))
    if kind == "tool_call":
        args = part.get("arguments")
        args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
        call_id = f" [{part['id']}]" if part.get("id") else ""
        return f"→ tool call {part.get('name', '?')}{call_id}: {args_text}"
    if kind == "tool_call_response":
        call_id = f" [{part['id']}]" if part.get("id") else ""
        result = part.get("response", part.get("result", part.get("content")))
        return f"← tool result{call_id}: {_dump(result)}"
    return _dump(part)


def render_messages(payload: Any) -> str:
    """`[{"role", "parts": [...]}]` → one line per message, `[role] text`; a message's further
    lines (more parts, multi-line text) follow indented, so every message starts a line."""
    messages = _parse(payload)
    if not isinstance(messages, list):
        return _dump(messages)
    blocks = []
    for message in messages:
        if not isinstance(message, dict):
            blocks.append(_dump(message))
            continue
        header = f"[{message.get('role', 'message')}]"
        if message.get("name"):
            header += f" ({message['name']})"
        parts = message.get("parts")
        if isinstance(parts, list):
            body = "\n".join(_render_part(p) for p in parts)
        else:
            body = _dump(message.get("content", parts))
        if message.get("finish_reason"):
            body += f"\n(finish: {message['finish_reason']})"
        blocks.append(_message_line(header, body))
    return "\n".join(blocks)


def _message_line(header: str, body: str) -> str:
    first, _, rest = body.partition("\n")
    line = f"{header} {first}".rstrip()
    return line + ("\n" + _indent(rest) if rest else "")


def render_instructions(payload: Any) -> str:
    """`[{"type": "text", "content"}]` system instructions as a `[system] text` line."""
    parts = _parse(payload)
    body = "\n".join(_render_part(p) for p in parts) if isinstance(parts, list) else _dump(parts)
    return _message_line("[system]", body)


def render_payload(payload: Any) -> str:
    """A run's inputs or outputs: a lone string as is, a dict as `key: value` lines."""
    value = _parse(payload)
    if isinstance(value, dict):
        if len(value) == 1:
            only = next(iter(value.values()))
            if isinstance(only, str):
                return only
        lines = []
        for key, item in value.items():
            text = _dump(item)
            lines.append(f"{key}:\n{_indent(text)}" if "\n" in text else f"{key}: {text}")
        return "\n".join(lines)
    return _dump(value)


def render_documents(payload: Any) -> str:
    """Retrieved documents, numbered, each with its id and metadata above its content."""
    docs = _parse(payload)
    if not isinstance(docs, list):
        return _dump(docs)
    blocks = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict):
            blocks.append(f"[{i}]\n{_dump(doc)}")
            continue
        header = f"[{i}]"
        if doc.get("id"):
            header += f" id={doc['id']}"
        if doc.get("metadata"):
            header += " " + json.dumps(doc["metadata"], ensure_ascii=False, default=str)
        blocks.append(f"{header}\n{_dump(doc.get('content', ''))}")
    return "\n\n".join(blocks)


def count_tool_calls(payload: Any) -> int:
    """How many tool calls a model's output messages ask for."""
    messages = _parse(payload)
    if not isinstance(messages, list):
        return 0
    return sum(
        1
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("parts"), list)
        for p in m["parts"]
        if isinstance(p, dict) and p.get("type") == "tool_call"
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
