"""LangChain messages → the GenAI conventions' message shape (role and parts).

Pure functions, shared by the handler's attributes and the content renderer (which keeps each
message's rendered text, see fragments.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from spanchain.content.serialize import to_json

# (class, attribute) pairs that are neither a field nor a class attribute of a pydantic model
# class (every LangChain message is one). Asking such a model for them goes through pydantic's
# __getattr__ and an AttributeError, which costs more than converting the whole message; the
# only place the value can then be is the instance's extra fields, read directly instead.
_NOT_ON_CLASS: set[tuple[type, str]] = set()
_ON_CLASS: set[tuple[type, str]] = set()


def _getattr_owner(cls: type) -> str:
    """The module of the class whose __getattr__ `cls` uses ("" if none)."""
    owner = next((k for k in cls.__mro__ if "__getattr__" in vars(k)), None)
    return getattr(owner, "__module__", "") or ""


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    key = (type(obj), name)
    if key in _NOT_ON_CLASS:
        extra = getattr(obj, "__pydantic_extra__", None)
        return extra.get(name, default) if type(extra) is dict else default
    if key not in _ON_CLASS:
        cls = type(obj)
        fields = getattr(cls, "model_fields", None)
        pydantic_v2 = (
            isinstance(fields, dict)
            and hasattr(cls, "__pydantic_extra__")
            and _getattr_owner(cls).startswith("pydantic")  # no __getattr__ of its own
        )
        if len(_ON_CLASS) + len(_NOT_ON_CLASS) < 8192:
            if pydantic_v2 and name not in fields and not hasattr(cls, name):
                _NOT_ON_CLASS.add(key)
                return _attr(obj, name, default)
            _ON_CLASS.add(key)
    return getattr(obj, name, default)


# --- messages ------------------------------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, Mapping):
                kind = block.get("type")
                if kind == "text":
                    parts.append({"type": "text", "content": block.get("text", "")})
                elif kind in ("reasoning", "thinking"):
                    parts.append(
                        {"type": "reasoning", "content": block.get("reasoning") or block.get("thinking", "")}
                    )
                elif kind in ("image_url", "image", "file", "audio"):
                    parts.append({"type": "uri" if kind == "image_url" else "blob", "modality": kind})
                else:
                    parts.append({"type": str(kind or "generic"), "content": to_json(block)})
            else:
                parts.append({"type": "generic", "content": to_json(block)})
    elif content is not None:
        parts.append({"type": "text", "content": to_json(content)})
    return parts


# Per message class: (has tool_calls, has role) when it is a plain pydantic model with `type` and
# `content` fields (every LangChain message), read by direct attribute access; None otherwise.
_MESSAGE_SHAPES: dict[type, Optional[tuple[bool, bool]]] = {}


def _message_shape(cls: type) -> Optional[tuple[bool, bool]]:
    fields = getattr(cls, "model_fields", None)
    shape = None
    if (
        isinstance(fields, dict)
        and "type" in fields
        and "content" in fields
        and (_getattr_owner(cls) or "pydantic").startswith("pydantic")  # no __getattr__ of its own
    ):
        shape = ("tool_calls" in fields, "role" in fields)
    if len(_MESSAGE_SHAPES) < 1024:
        _MESSAGE_SHAPES[cls] = shape
    return shape


def message_to_part_dict(message: Any) -> dict[str, Any]:
    cls = type(message)
    shape = _MESSAGE_SHAPES[cls] if cls in _MESSAGE_SHAPES else _message_shape(cls)
    if shape is not None:  # a LangChain message: its fields are there, no probing
        kind = message.type
        role = _ROLES.get(kind, kind or "user")
        if role == "tool":
            return {
                "role": "tool",
                "parts": [
                    {
                        "type": "tool_call_response",
                        "id": getattr(message, "tool_call_id", None),
                        "response": message.content,
                    }
                ],
            }
        if role == "chat" and shape[1]:
            role = message.role
        parts = _parts(message.content)
        if shape[0] and message.tool_calls:
            _tool_call_parts(message.tool_calls, parts)
        return {"role": role, "parts": parts}
    kind = _attr(message, "type")
    role = _ROLES.get(str(kind), str(kind) if kind else "user")
    if role == "chat":
        role = _attr(message, "role", "user")
    parts = _parts(_attr(message, "content", message))
    _tool_call_parts(_attr(message, "tool_calls") or [], parts)
    if role == "tool":
        parts = [
            {
                "type": "tool_call_response",
                "id": getattr(message, "tool_call_id", None),
                "response": getattr(message, "content", None),
            }
        ]
    return {"role": role, "parts": parts}


def _tool_call_parts(calls: Iterable[Any], parts: list[dict[str, Any]]) -> None:
    for call in calls:
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": call.get("args"),
            }
        )


def input_messages(messages: Sequence[Sequence[Any]]) -> tuple[list[dict], list[dict]]:
    """(system instructions, other messages) for one chat model call."""
    system: list[dict] = []
    rest: list[dict] = []
    for batch in messages or []:
        for message in batch or []:
            converted = message_to_part_dict(message)
            if converted["role"] == "system":
                system.extend(converted["parts"])
            else:
                rest.append(converted)
    return system, rest


def prompt_messages(prompts: Sequence[str]) -> list[dict]:
    return [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts or []]
