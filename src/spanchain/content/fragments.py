"""Rendered text of LangChain messages, made once per message instead of once per span.

An agent's message history reaches every later step: each model call's input, each graph node's
input state, each tool node's state. Rendering it again for every span made content capture
grow with the square of the number of steps, and most of a span's content time was spent
rendering and secret-scanning messages it had rendered before. So the text of a message (JSON,
secrets already masked) is kept per message object, keyed by identity, for as long as the message
lives (a weak reference drops it with the message; at most `_MAX_ENTRIES` at once), and made again
if the message's content is replaced. Payloads are then assembled from those pieces; only what
lies between them is new text. Short conversations (under `HISTORY_LENGTH` messages) and replies
that will not recur are rendered whole: keeping their text would cost more than it saves.

Masking the pieces separately gives the text that masking the whole would. The pieces are whole
JSON values, and what precedes one is `[`, `, ` or `": `: the built-in rules stop at whitespace or
need letters, digits or `-_.` where a piece begins or ends, with two exceptions, rendered and
masked whole (the old path) instead: text that could hold a PEM block ("-----"), whose rule spans
anything; and a dict key ending in a key=value rule's keyword ("password"), whose value may
begin with the brackets in front of a piece. So is every payload when extra patterns are
configured (they may match anything). `tests/test_property_content.py` checks the two paths agree.
"""

from __future__ import annotations

import weakref
from json.encoder import encode_basestring
from typing import Any, Optional, Sequence

from spanchain.content.messages import input_messages, message_to_part_dict, _parts
from spanchain.content.redaction import ends_in_secret_keyword
from spanchain.content.serialize import encode, kind_of, to_json

_MAX_ENTRIES = 1024  # messages whose text is kept; then the cache starts afresh
_MAX_KEPT = 32_768  # a longer message text is not kept (its payload is rendered whole)
_MAX_WALKED = 64  # containers larger than this (unless they hold messages) are encoded whole
_MAX_DEPTH = 3  # levels of dicts and lists assembled piece by piece; deeper ones encoded whole
_PEM = "-----"
# Fewer messages than this are rendered whole: keeping a message's text costs more than rendering
# it once or twice, and histories long enough to recur (agents' loops) pass this at their third
# message.
HISTORY_LENGTH = 3


class _Whole(Exception):
    """This payload must be rendered and masked as one text (see module doc)."""


class ChatMessages:
    """A chat model's input messages, rendered in the GenAI shape when the span records: the
    conversation (`system=False`) or its system instructions (`system=True`)."""

    __slots__ = ("batches", "system")

    def __init__(self, batches: Sequence[Sequence[Any]], system: bool) -> None:
        self.batches = batches
        self.system = system


def chat_input(batches: Sequence[Sequence[Any]]) -> tuple[Any, Any]:
    """The values of a chat model's two input attributes (its messages, its system instructions):
    a conversation long enough to recur is rendered later from kept texts (ChatMessages); a short
    one is converted now, once for both, and rendered whole."""
    if len(batches) == 1 and len(batches[0] or ()) >= HISTORY_LENGTH:
        return ChatMessages(batches, system=False), ChatMessages(batches, system=True)
    system, rest = input_messages(batches)
    return rest, system or None


class ChatOutput:
    """A model's output messages: (message or None, text when no message, finish reason or None)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any, Optional[str]]]) -> None:
        self.items = items


class _Entry:
    __slots__ = ("ref", "content", "calls", "lc", "role", "genai")

    def __init__(self, ref: "weakref.ref[Any]", content: str, calls: Any) -> None:
        self.ref = ref
        self.content = content  # what the texts show, to see that it is still the message's
        self.calls = calls
        self.lc: Optional[str] = None  # LangChain shape: {"type", "content", ...}
        self.role = ""
        self.genai: Optional[str] = None  # GenAI shape; a system message's parts, unbracketed


def _is_message(obj: Any) -> bool:
    return kind_of(type(obj))[0] == "message"


# Per message class: whether it has tool calls. A kept text is checked against the objects that
# carry a message's payload, its content and (when it has them) its tool calls: replacing either
# is seen. Its name, tool call id or role are not checked (they do not change once a message is
# made, and every check costs every lookup).
_HAS_TOOL_CALLS: dict[type, bool] = {}


def _has_tool_calls(cls: type) -> bool:
    known = _HAS_TOOL_CALLS.get(cls)
    if known is None:
        known = "tool_calls" in kind_of(cls)[1]
        if len(_HAS_TOOL_CALLS) < 1024:
            _HAS_TOOL_CALLS[cls] = known
    return known


class MessageTexts:
    """Per-message rendered text (see module doc); `mask` is applied once to each new piece."""

    def __init__(self, masked: bool = True) -> None:
        self._bound = not masked  # the redactor is bound at first use (_ready)
        if not masked:
            self.mask = _unmasked
        self._whole = False  # every payload rendered and masked as one text
        self._entries: dict[int, _Entry] = {}
        # The last text masked, and its masked form: one run's output is often the next one's
        # (a chain's last step and the chain itself end with the same string).
        self._last: tuple[Any, str] = (None, "")

    def __len__(self) -> int:
        return len(self._entries)

    def mask(self, text: str) -> str:
        """Secrets in `text` masked. The first use binds the process-wide redactor's method in
        place of this one (it compiles its patterns then, not at import), so later calls go
        straight to it."""
        self._ready()
        return self.mask(text)

    def _entry(self, message: Any) -> _Entry:
        key = id(message)
        entries = self._entries
        entry = entries.get(key)
        content = message.content
        has_calls = _HAS_TOOL_CALLS.get(type(message))
        if has_calls is None:
            has_calls = _has_tool_calls(type(message))
        calls = message.tool_calls if has_calls else None
        # Same message, same content and tool calls objects: the kept texts still show it.
        if entry is not None and entry.ref() is message and entry.content is content and entry.calls is calls:
            return entry
        if type(content) is not str:
            raise _Whole  # a list of content blocks can change in place, unseen: rendered whole
        # The entry leaves with its message (the weak reference's callback), so nothing is kept
        # for messages the app has let go; the identity check above covers the moment between.
        entry = _Entry(weakref.ref(message, lambda _, key=key: entries.pop(key, None)), content, calls)
        if len(entries) >= _MAX_ENTRIES:
            # Start afresh rather than evict the oldest: removing from the front of a dict leaves
            # holes that every later `next(iter(...))` walks over.
            entries.clear()
        entries[key] = entry
        return entry

    def _masked(self, text: str) -> str:
        if self._whole or _PEM in text or len(text) > _MAX_KEPT:
            raise _Whole
        return self.mask(text)

    def _ready(self) -> None:
        """Bind the redactor before deciding anything: its extra patterns (read from the
        environment at its first use, as for the exporters) make every payload render whole."""
        if self._bound:
            return
        from spanchain.content.redaction import default_redactor

        redactor = default_redactor()
        self.mask = redactor.text
        if redactor.extra_patterns:
            self._whole = True
        self._bound = True

    def text(self, text: str) -> str:
        """A string value, masked."""
        last = self._last
        if last[0] is text:
            return last[1]
        masked = self.mask(text)
        self._last = (text, masked)
        return masked

    # --- the LangChain shape (chain inputs and outputs, graph state) -------------------------
    def lc(self, message: Any) -> str:
        entry = self._entry(message)
        text = entry.lc
        if text is None:
            text = entry.lc = self._masked(encode(message))
        return text

    def render(self, value: Any) -> Optional[str]:
        """Masked JSON text of `value`, built from its messages' kept text; None when no message
        sits near its top (or it must be rendered whole): the caller renders it the usual way."""
        self._ready()
        if self._whole or not _holds_messages(value):
            return None
        pieces: list[str] = []
        fresh: list[str] = []
        try:
            self._walk(value, pieces, fresh, 0)
            if fresh:
                pieces.append(self._masked("".join(fresh)))
        except (_Whole, ValueError, TypeError, RecursionError):
            return None
        return "".join(pieces)

    def _walk(self, obj: Any, pieces: list[str], fresh: list[str], depth: int) -> None:
        cls = type(obj)
        if cls is dict:
            if depth >= _MAX_DEPTH or len(obj) > _MAX_WALKED:
                fresh.append(encode(obj))
                return
            fresh.append("{")
            separator = ""
            for key, item in obj.items():
                if type(key) is not str:
                    raise _Whole  # json's own key conversion: leave it to the encoder
                encoded = encode_basestring(key)
                if ends_in_secret_keyword(encoded[1:-1]):
                    raise _Whole  # "password": its value's mask may begin before a piece
                fresh.append(separator + encoded + ": ")
                separator = ", "
                self._walk(item, pieces, fresh, depth + 1)
            fresh.append("}")
            return
        if cls is list or cls is tuple:
            if not obj:
                fresh.append("[]")
                return
            if depth >= _MAX_DEPTH or (len(obj) > _MAX_WALKED and not _is_message(obj[0])):
                fresh.append(encode(obj))
                return
            fresh.append("[")
            separator = ""
            for item in obj:
                if separator:
                    fresh.append(separator)
                separator = ", "
                self._walk(item, pieces, fresh, depth + 1)
            fresh.append("]")
            return
        kind = kind_of(cls)[0]
        if kind == "message":
            if fresh:
                pieces.append(self._masked("".join(fresh)))
                fresh.clear()
            pieces.append(self.lc(obj))
            return
        if kind == "prompt":
            messages = getattr(obj, "messages", None)
            if type(messages) is list:
                self._walk({"messages": messages}, pieces, fresh, depth)
                return
        fresh.append(encode(obj))

    # --- the GenAI shape (a chat model's input and output messages) -----------------------------
    def _genai(self, message: Any) -> _Entry:
        entry = self._entry(message)
        if entry.genai is None:
            converted = message_to_part_dict(message)
            role = converted["role"]
            text = encode(converted["parts"])[1:-1] if role == "system" else encode(converted)
            entry.role = role  # before the text: another thread reads the role once it sees the text
            entry.genai = self._masked(text)
        return entry

    def chat(self, value: ChatMessages) -> Optional[str]:
        """The text of a chat model's input messages or system instructions (None: no system
        instructions), from kept texts. A conversation holding something other than LangChain
        messages, or text that must be masked whole, is converted and rendered whole (rare: a
        short conversation never gets here, see `chat_input`)."""
        self._ready()
        batches = value.batches or ()
        if len(batches) == 1 and len(batches[0] or ()) >= HISTORY_LENGTH:
            try:
                texts = []
                for message in batches[0]:
                    if not _is_message(message):
                        raise _Whole
                    entry = self._genai(message)
                    if (entry.role == "system") is value.system and entry.genai:
                        texts.append(entry.genai)
                if value.system and not texts:
                    return None
                return "[" + ", ".join(texts) + "]"
            except (_Whole, ValueError, TypeError, RecursionError):
                pass
        system, rest = input_messages(batches)
        if not value.system:
            return self.mask(to_json(rest))
        return self.mask(to_json(system)) if system else None

    def output(self, value: ChatOutput) -> str:
        """The text of a model's output messages. The text of a reply that asks for tools is kept:
        the next call of an agent's loop has it in its history."""
        self._ready()
        items = value.items
        if all(_asks_for_tools(message) for message, _, _ in items):
            try:
                return "[" + ", ".join([self._output_kept(message, reason) for message, _, reason in items]) + "]"
            except (_Whole, ValueError, TypeError, RecursionError):
                pass
        messages = []
        for message, text, reason in value.items:
            if message is not None:
                converted = message_to_part_dict(message)
                converted["role"] = "assistant"
            else:
                converted = {"role": "assistant", "parts": _parts(text)}
            if reason is not None:
                converted["finish_reason"] = reason
            messages.append(converted)
        return self.mask(to_json(messages))

    def _output_kept(self, message: Any, reason: Optional[str]) -> str:
        """An output message from its kept text, the finish reason spliced on; raises _Whole when
        its role is not the assistant's, or its text must be masked whole."""
        entry = self._genai(message)
        if entry.role != "assistant":
            raise _Whole
        if reason is None:
            return entry.genai
        return entry.genai[:-1] + self._masked(', "finish_reason": ' + encode_basestring(reason) + "}")


def _asks_for_tools(message: Any) -> bool:
    """Whether a model's reply asks for tools: only such a reply is sure to be in the next call's
    history (the loop goes on); a final answer or a streamed reply (an AIMessageChunk) is rendered
    once, so its text is not kept."""
    return (
        message is not None
        and _is_message(message)
        and message.type == "ai"
        and bool(getattr(message, "tool_calls", None))
    )


def _unmasked(text: str) -> str:
    return text


def _holds_messages(value: Any) -> bool:
    """Whether `value` is a history worth assembling from kept texts: a list of messages, bare or
    as a value of a dict (a graph's state), of `HISTORY_LENGTH` or more."""
    cls = type(value)
    if cls is dict:
        if len(value) > _MAX_WALKED:
            return False
        for item in value.values():
            item_cls = type(item)
            if (item_cls is list or item_cls is tuple) and len(item) >= HISTORY_LENGTH and _is_message(item[0]):
                return True
        return False
    if cls is list or cls is tuple:
        return len(value) >= HISTORY_LENGTH and _is_message(value[0])
    return False
