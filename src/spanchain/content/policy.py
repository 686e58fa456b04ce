"""What content (prompts, messages, inputs, outputs) goes onto spans, and how long it may be.

Experiment tracking is the point of spanchain, so content is captured by default, unlike the
GenAI spec's default. `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` set to `false` or
`NO_CONTENT` turns it off (any of the spec's SPAN_* / EVENT_* modes, or `true`, keep it on), as
does the `capture_content=False` option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from spanchain.config import env as envvars
from spanchain.config.resolve import FALSE_WORDS
from spanchain.content.fragments import HISTORY_LENGTH, ChatMessages, ChatOutput, MessageTexts
from spanchain.content.serialize import to_json

CAPTURE_ENV = envvars.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
MAX_LENGTH_ENV = envvars.SPANCHAIN_MAX_CONTENT_LENGTH
OTEL_VALUE_LIMIT_ENV = envvars.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
DEFAULT_MAX_LENGTH = 32_768
TRUNCATION_MARK = "…[truncated {} chars]"

_SCALARS = frozenset({bool, int, float, type(None)})

# A redaction hook gets (attribute name, text) and returns the text to keep, or None to drop it.
RedactHook = Callable[[str, str], Optional[str]]

# The flag spellings every setting accepts, plus the GenAI conventions' NO_CONTENT.
_OFF_VALUES = FALSE_WORDS | {"no_content", "none"}


def capture_from_env(default: bool = True) -> bool:
    raw = os.environ.get(CAPTURE_ENV)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() not in _OFF_VALUES


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def max_length_from_env() -> int:
    ours = _int_env(MAX_LENGTH_ENV)
    otel = _int_env(OTEL_VALUE_LIMIT_ENV)
    limits = [v for v in (ours, otel) if v is not None]
    # OTel's own limit would cut our values without a marker; stay within it.
    return min(limits) if limits else DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class ContentPolicy:
    capture: bool = True
    max_length: int = DEFAULT_MAX_LENGTH
    redact: RedactHook | None = None
    redact_secrets: bool = True
    # Each message's rendered text, kept while the message lives (fragments.py).
    _texts: MessageTexts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_texts", MessageTexts(self.redact_secrets))

    @classmethod
    def resolve(
        cls,
        capture_content: bool | None = None,
        max_content_length: int | None = None,
        redact: RedactHook | None = None,
        redact_secrets: bool | None = None,
    ) -> "ContentPolicy":
        """Argument, then environment variable, then default."""
        return cls(
            capture=capture_from_env() if capture_content is None else bool(capture_content),
            max_length=max_length_from_env()
            if max_content_length is None
            else max(16, int(max_content_length)),
            redact=redact,
            redact_secrets=_secrets_from_env() if redact_secrets is None else redact_secrets,
        )

    def render(self, name: str, value: Any) -> tuple[str | None, bool]:
        """(text to store or None to drop, truncated?). Never raises."""
        try:
            cls = type(value)
            if cls in _SCALARS:
                text = to_json(value)  # digits, true, false, null: no secret rule can match them
            elif cls is ChatMessages:
                text = self._texts.chat(value)
                if text is None:
                    return None, False
            elif cls is ChatOutput:
                text = self._texts.output(value)
            elif isinstance(value, str):  # str subclasses too: a parser's output is a TextAccessor
                text = self._texts.text(value)
            else:
                # A graph's state or a long history is assembled from its messages' kept text.
                texts = self._texts
                text = None
                if cls is dict or ((cls is list or cls is tuple) and len(value) >= HISTORY_LENGTH):
                    text = texts.render(value)
                if text is None:
                    text = texts.mask(to_json(value))
            if self.redact is not None:
                text = self.redact(name, text)
                if text is None:
                    return None, False
                text = str(text)
            return truncate(text, self.max_length)
        except Exception as exc:
            return f"<content unavailable: {type(exc).__name__}>", False


def truncate(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    cut = len(text) - limit
    mark = TRUNCATION_MARK.format(cut)
    keep = max(0, limit - len(mark))
    return text[:keep] + TRUNCATION_MARK.format(len(text) - keep), True


def _secrets_from_env() -> bool:
    raw = os.environ.get(envvars.SPANCHAIN_REDACT_SECRETS)
    if raw is None or not raw.strip():
        return True
    return raw.strip().lower() not in _OFF_VALUES
