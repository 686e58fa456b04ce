"""Secret-looking values out of span text before any exporter or disk sees them.

On by default. `SPANCHAIN_REDACT_SECRETS=false` turns it off (lone surrogates, which no backend
can store, are still replaced by U+FFFD); `SPANCHAIN_REDACT_PATTERNS` adds one
extra regular expression (use `|` for several) whose whole match is replaced. The handler applies
`redact_text` on its content path; the exporter base applies `redact_span` again before spooling
or writing (defence in depth: spans from other instrumentations and from `spanchain serve` never
went through our handler).

Patterns keep the part that tells a reader what was there ("Bearer ", "password=", the URL's user)
and replace only the secret itself, so a redacted trace still explains what happened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Pattern

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status

from spanchain.config import env as envvars
from spanchain.config.resolve import FALSE_WORDS

REDACTED = "[REDACTED]"

_FALSE = FALSE_WORDS  # the spellings every flag accepts (spanchain.config.resolve)

# The keys that the key=value rule (rule 3 below) treats as naming a secret.
_KEY_VALUE_KEYWORDS = (
    r"(?:password|passwd|pwd|pass|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|"
    r"session[_-]?token|private[_-]?key|aws_secret_access_key|aws_session_token)"
)

# (pattern, replacement template). Group names `keep` are preserved in front of the mask.
_BUILTIN: list[tuple[str, str]] = [
    # PEM private keys, whole block.
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", REDACTED),
    # Credentials inside URLs: scheme://user:password@host
    (r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:)[^/\s@]+(?=@)", r"\g<keep>" + REDACTED),
    # Authorization headers / bearer tokens.
    (r"(?i)(?P<keep>\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/\-]{12,}=*", r"\g<keep>" + REDACTED),
    # key=value / "key": "value" for secret-sounding keys.
    (
        r"(?i)(?P<keep>\b" + _KEY_VALUE_KEYWORDS + r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]{3,}",
        r"\g<keep>" + REDACTED,
    ),
    # JSON Web Tokens.
    (r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}", REDACTED),
    # Vendor key formats.
    (r"\bsk-[A-Za-z0-9_\-]{20,}", REDACTED),  # OpenAI, Anthropic (sk-ant-...)
    (r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}", REDACTED),  # Stripe
    (r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b", REDACTED),  # AWS key ids
    (r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", REDACTED),  # GitHub tokens
    (r"\bgithub_pat_[A-Za-z0-9_]{22,}", REDACTED),
    (r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", REDACTED),  # Slack
    (r"\bAIza[0-9A-Za-z_\-]{35}", REDACTED),  # Google API keys
    (r"\bhf_[A-Za-z0-9]{30,}", REDACTED),  # Hugging Face
    (r"\bglpat-[A-Za-z0-9_\-]{20,}", REDACTED),  # GitLab
]

# A JSON key (its text between the quotes) that ends in a key=value rule's keyword: the rule's
# value may then begin right after `"key": `, wherever the value's text comes from (fragments.py).
_KEY_VALUE_KEY = re.compile(r"(?i)\b" + _KEY_VALUE_KEYWORDS + r"$")
# Every keyword above ends with one of these (lowercase ASCII): a cheap test before the regex.
_KEYWORD_ENDINGS = ("pass", "passwd", "password", "pwd", "secret", "key", "token")


def ends_in_secret_keyword(encoded_key: str) -> bool:
    """Whether a JSON-encoded key (its text between the quotes) ends in a key=value keyword."""
    if encoded_key.isascii() and not encoded_key.lower().endswith(_KEYWORD_ENDINGS):
        return False  # outside ASCII, case folding ("ſ" is "s") is the regex's business
    return _KEY_VALUE_KEY.search(encoded_key) is not None

# No built-in rule matches fewer characters than this ("pwd=abc"): shorter text skips the probes.
SHORTEST_SECRET = 7

# Literal prefixes of rules 7 (AWS key ids) and 8 (GitHub tokens). Tested with `in` (a fast
# substring search): a regex alternation of them, having no common literal prefix, is tried at
# every position of the text (~35 µs per KB, measured on the tool-calling loop's messages).
_AWS_KEY_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")
_GITHUB_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")


def _rules_to_run(text: str) -> list[int]:
    """Indexes into `_BUILTIN` of the rules that can match `text` at all (usually none).

    Most text holds no secret, and the handler runs this on the app's thread. A rule's regex
    starts with `\b`, which keeps the engine from its fast literal scan: ~30 µs per KB of text
    even when nothing matches. These substring tests are necessary conditions of each rule,
    grouped behind a character every rule of the group needs, and cost well under a
    microsecond on short text. Rules 2 and 3 are case-insensitive: outside ASCII their regexes
    fold letters that str.lower() does not ("ſ" matches "s"), so for non-ASCII text they run
    unless their separator is missing. Written out flat on purpose: loops over word lists cost
    more than the tests themselves.
    """
    run: list[int] = []
    if "-" in text:
        if "-----BEGIN" in text:
            run.append(0)
        if "sk-" in text:
            run.append(5)
        if "xox" in text:
            run.append(10)
        if "glpat-" in text:
            run.append(13)
    if "://" in text:
        run.append(1)
    low = text.lower() if text.isascii() else None
    if low is None or "bearer" in low or "basic" in low or "token" in low:
        run.append(2)
    if ("=" in text or ":" in text) and (
        low is None
        or "pass" in low
        or "pwd" in low
        or "secret" in low
        or "api" in low
        or "access" in low
        or "auth" in low
        or "refresh" in low
        or "session" in low
        or "private" in low
    ):
        run.append(3)
    if "eyJ" in text:
        run.append(4)
    if "_" in text:
        if "k_live_" in text or "k_test_" in text:
            run.append(6)
        if "gh" in text and any(prefix in text for prefix in _GITHUB_PREFIXES):
            run.append(8)
        if "github_pat_" in text:
            run.append(9)
        if "hf_" in text:
            run.append(12)
    if "A" in text:
        if any(prefix in text for prefix in _AWS_KEY_PREFIXES):
            run.append(7)
        if "AIza" in text:
            run.append(11)
    return run


# Attribute names that mark the whole value as secret, whatever it looks like.
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[._\-])(?:password|passwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
    r"authorization|private[_-]?key|client[_-]?secret|session[_-]?token|cookie)(?:$|[._\-])"
)


def enabled_from_env(environ: Mapping[str, str] | None = None) -> bool:
    raw = (environ if environ is not None else os.environ).get(envvars.SPANCHAIN_REDACT_SECRETS)
    return raw is None or raw.strip().lower() not in _FALSE


@dataclass
class Redactor:
    """Replaces secret-looking substrings in strings, attribute maps and whole spans."""

    enabled: bool = True
    extra_patterns: tuple[str, ...] = ()
    _builtin: list[tuple[Pattern[str], str]] = field(init=False, repr=False)
    _extra: list[Pattern[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._builtin = [(re.compile(p), r) for p, r in _BUILTIN]
        self._extra = [re.compile(p) for p in self.extra_patterns if p]  # no probe: always run

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Redactor":
        env = environ if environ is not None else os.environ
        extra = env.get(envvars.SPANCHAIN_REDACT_PATTERNS, "").strip()
        return cls(enabled=enabled_from_env(env), extra_patterns=(extra,) if extra else ())

    # --- strings and values ---------------------------------------------------------------
    def text(self, text: str) -> str:
        if not text:
            return text
        if self.enabled:
            if len(text) >= SHORTEST_SECRET:
                for index in sorted(_rules_to_run(text)):  # the rules' own order, as without the probes
                    pattern, replacement = self._builtin[index]
                    text = pattern.sub(replacement, text)
            for pattern in self._extra:
                text = pattern.sub(REDACTED, text)
        return valid_unicode(text)

    def value(self, value: Any, key: str = "") -> Any:
        if self.enabled and key and _SECRET_KEY.search(key) and value not in (None, "", True, False):
            return REDACTED if not isinstance(value, (tuple, list)) else tuple(REDACTED for _ in value)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (tuple, list)):
            return tuple(self.value(v) for v in value)
        if isinstance(value, Mapping):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        return value

    def attributes(self, attrs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The same object when nothing changed (cheap common case), else a redacted copy."""
        if not attrs:
            return attrs
        out = None
        for key, value in attrs.items():
            new = self.value(value, key)
            if new is not value and new != value:
                if out is None:
                    out = dict(attrs)
                out[key] = new
        return attrs if out is None else out

    # --- spans ------------------------------------------------------------------------------
    def span(self, span: ReadableSpan) -> ReadableSpan:
        """The span itself if it holds no secret, else a copy with every secret masked."""
        original = span.attributes  # a fresh proxy on every access: compare against this one
        attrs = self.attributes(original)
        events = [(e, self.attributes(e.attributes)) for e in span.events]
        links = [(link, self.attributes(link.attributes)) for link in span.links]
        status = span.status
        description = self.text(status.description) if status is not None and status.description else None
        name = valid_unicode(span.name) if isinstance(span.name, str) else str(span.name)
        event_names = [valid_unicode(e.name) for e in span.events]
        changed = (
            name != span.name
            or any(n != e.name for n, (e, _) in zip(event_names, events))
            or attrs is not original
            or any(a is not e.attributes for e, a in events)
            or any(a is not link.attributes for link, a in links)
            or (description is not None and description != status.description)
        )
        if not changed:
            return span
        from spanchain.spool.codec import DecodedSpan  # the one span class that keeps dropped counts

        return DecodedSpan(
            name=name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attrs,
            events=tuple(
                e if a is e.attributes and n == e.name else Event(n, attributes=a, timestamp=e.timestamp)
                for n, (e, a) in zip(event_names, events)
            ),
            links=tuple(link if a is link.attributes else Link(link.context, a) for link, a in links),
            kind=span.kind,
            status=Status(status.status_code, description) if description is not None else status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
            dropped=(span.dropped_attributes, span.dropped_events, span.dropped_links),
        )


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """Lone surrogates (from undecodable bytes, broken JSON) replaced by U+FFFD.

    Python strings may hold them, but no backend can: UTF-8 encoding (Aim's storage, protobuf,
    botocore's JSON) fails or stores garbage. Applied even when redaction is off.
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


_default: Redactor | None = None


def default_redactor() -> Redactor:
    """The process-wide redactor configured from the environment (read once)."""
    global _default
    if _default is None:
        _default = Redactor.from_env()
    return _default


def redact_text(text: str) -> str:
    """Mask secrets in one string with the environment's configuration (the handler's entry)."""
    return default_redactor().text(text)


def redact_span(span: ReadableSpan) -> ReadableSpan:
    return default_redactor().span(span)
