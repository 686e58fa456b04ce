"""Secret-looking values are masked before any exporter sees them; configurable."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanchain.content.redaction import REDACTED, Redactor, enabled_from_env

R = Redactor()

SECRETS = [
    ("openai key sk-proj-Abc123def456GHI789jkl012mno", "sk-proj-Abc123def456GHI789jkl012mno"),
    ("anthropic sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123"),
    ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("token ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789abcdefghijABCDEFGHIJ012345"),
    ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("Authorization: Bearer abc.def-ghi_jkl012345", "abc.def-ghi_jkl012345"),
    ("postgres://admin:hunter2@db.internal:5432/app", "hunter2"),
    ('{"password": "correct horse battery"}', "correct"),
    ("login?user=bob&password=s3cr3t!&x=1", "s3cr3t!"),
    ("api_key: abcd1234efgh", "abcd1234efgh"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N", "eyJhbGciOiJIUzI1NiJ9"),
    ("google AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
    ("hf hf_abcdefghijklmnopqrstuvwxyzABCDEF", "hf_abcdefghijklmnopqrstuvwxyzABCDEF"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
]


@pytest.mark.parametrize("text,secret", SECRETS)
def test_known_secret_shapes_are_masked(text, secret):
    out = R.text(text)
    assert secret not in out and REDACTED in out


def test_context_around_the_secret_survives():
    assert R.text("postgres://admin:hunter2@db:5432") == f"postgres://admin:{REDACTED}@db:5432"
    assert R.text("Authorization: Bearer abcdefghijklmnop") == f"Authorization: Bearer {REDACTED}"
    assert R.text("password=x1y2z3 rest") == f"password={REDACTED} rest"


@pytest.mark.parametrize(
    "text",
    ["What is the capital of France?", "skip-this-line", "the task id is 3f2a9c", "https://example.com/a:b",
     "AKIA is short", "a bearer of bad news", "token count: 42"],
)
def test_ordinary_text_is_left_alone(text):
    assert R.text(text) == text


def test_attributes_with_secret_names_are_masked_whole_and_unchanged_maps_are_not_copied():
    attrs = {"langchain.metadata.api_key": "plain-looking", "gen_ai.request.model": "gpt", "n": 3}
    out = R.attributes(attrs)
    assert out["langchain.metadata.api_key"] == REDACTED and out["gen_ai.request.model"] == "gpt"
    clean = {"a": "b", "n": 1.5, "t": ("x", "y")}
    assert R.attributes(clean) is clean


def test_configurable(monkeypatch):
    assert enabled_from_env({}) is True
    assert enabled_from_env({"SPANCHAIN_REDACT_SECRETS": "false"}) is False
    off = Redactor.from_env({"SPANCHAIN_REDACT_SECRETS": "0"})
    assert off.text("sk-abcdefghijklmnopqrstuvwxyz") == "sk-abcdefghijklmnopqrstuvwxyz"
    extra = Redactor.from_env({"SPANCHAIN_REDACT_PATTERNS": r"EMP-\d{6}"})
    assert extra.text("employee EMP-123456") == f"employee {REDACTED}"


def test_spans_are_copied_only_when_they_hold_a_secret():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("clean") as s:
        s.set_attribute("q", "hello")
    with tracer.start_as_current_span("dirty") as s:
        s.add_event("exception", {"exception.message": "401: invalid key sk-abcdefghijklmnopqrstuvwx"})
        s.set_status(Status(StatusCode.ERROR, "auth failed for Bearer abcdefghijklmnopqrs"))
    clean, dirty = mem.get_finished_spans()
    assert R.span(clean) is clean
    masked = R.span(dirty)
    assert masked is not dirty
    assert "sk-abc" not in masked.events[0].attributes["exception.message"]
    assert "abcdefghijklmnopqrs" not in masked.status.description
    assert masked.context == dirty.context and masked.events[0].timestamp == dirty.events[0].timestamp


def test_trigger_precheck_never_skips_a_rule_that_would_match():
    """The fast pre-check must not change what is redacted: every rule still catches its secrets,
    including through case folding outside ASCII (U+017F LATIN SMALL LETTER LONG S folds to s)."""
    from spanchain.content.redaction import Redactor

    r = Redactor()
    for text in ["paſsword=hunter22", "PASSWORD=hunter22", "Authorization: Bearer abcdefghijklmnop123",
                 "token  abcdefghijklmnopqrst", "x-api-key: 12345678", "session_token=abcdefgh"]:
        assert "hunter22" not in r.text(text) and "[REDACTED]" in r.text(text), text


_FRAGMENTS = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "https://user:hunter22@example.com/x",
    "Bearer abcdefghijklmnop123", "basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "TOKEN\tabcdefghijklmnopqr",
    "password=hunter22", '"api_key": "abcd1234"', "Session-Token: zzz999", "paſsword=hunter22",
    "eyJhbGciOi.eyJzdWIiOi.SflKxwRJSM", "sk-ant-abcdefghijklmnopqrstuvwx", "rk_live_abcdefghijklmnop12",
    "AKIAIOSFODNN7EXAMPLE", "ASIA1234567890ABCDEF", "ghp_" + "a" * 36, "github_pat_" + "b" * 30,
    "xoxb-1234567890-abc", "AIza" + "c" * 35, "hf_" + "d" * 34, "glpat-" + "e" * 20,
    "plain words", " ", ":", "=", "-", "_", "A", "ſ", "é", "\n", "{", '"', "tok", "s", "k_", "gh", "xo",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)), max_size=12))
def test_probes_redact_exactly_what_running_every_rule_redacts(parts):
    """The substring probes that skip rules are necessary conditions: skipping never changes the result."""
    import re

    from spanchain.content.redaction import _BUILTIN, Redactor, valid_unicode

    text = "".join(parts)
    expected = text
    for pattern, replacement in _BUILTIN:
        expected = re.sub(pattern, replacement, expected)
    assert Redactor().text(text) == valid_unicode(expected)
