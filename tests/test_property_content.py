"""Content assembled from kept message texts is exactly the content rendered whole.

The policy keeps each message's rendered, masked text and builds long histories (agents' message
lists, graph states) from those pieces (spanchain/content/fragments.py). These tests render the
same payloads the old way, as one JSON text masked as a whole, and require the same string.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from spanchain.content import fragments
from spanchain.content.fragments import ChatMessages, ChatOutput, chat_input
from spanchain.content.messages import input_messages, message_to_part_dict
from spanchain.content.policy import ContentPolicy, truncate
from spanchain.content.redaction import redact_text
from spanchain.content.serialize import to_json

_PIECES = [
    "password=hunter22", '"api_key": "abcd1234"', "Bearer abcdefghijklmnop123", "sk-ant-abcdefghijklmnopqrstuvwx",
    "https://user:hunter22@example.com/x", "AKIAIOSFODNN7EXAMPLE", "-----BEGIN RSA PRIVATE KEY-----\nMIIB",
    "\n-----END RSA PRIVATE KEY-----", "plain words", "é", "ſ", ":", "=", "}", "{", '"', " ", "tok",
]
_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=10)), max_size=6).map("".join)


@st.composite
def _message(draw):
    kind = draw(st.sampled_from(["human", "ai", "ai_tools", "tool", "system"]))
    content = draw(_text)
    if kind == "human":
        if draw(st.booleans()):
            return HumanMessage(content=[{"type": "text", "text": content}])  # content blocks
        return HumanMessage(content=content)
    if kind == "system":
        return SystemMessage(content=content)
    if kind == "tool":
        return ToolMessage(content=content, tool_call_id=draw(st.sampled_from(["call_1", "password=x"])))
    if kind == "ai_tools":
        return AIMessage(
            content=content,
            tool_calls=[{"name": "lookup", "args": {"q": draw(_text)}, "id": "call_1", "type": "tool_call"}],
        )
    return AIMessage(content=content)


_history = st.lists(_message(), min_size=0, max_size=8)


def _whole(value) -> str:
    return redact_text(to_json(value))


def _policy() -> ContentPolicy:
    return ContentPolicy(capture=True, max_length=1_000_000)


_KEYS = st.sampled_from(["note", "password", "api_key", "x-api-key", "my_password", "token", "Secret", "n"])


@settings(max_examples=300, deadline=None)
@given(_history, _text, st.integers(), _KEYS, st.integers(0, 4))
def test_a_state_or_history_renders_as_it_would_whole(history, note, number, key, shape):
    policy = _policy()
    # A value beside the history, of a shape that puts brackets before a message's text.
    other = [note, [[*history]], tuple(history), history[0] if history else number, {"m": history}][shape]
    for value in (history, tuple(history), {"messages": history, "note": note, "n": number},
                  {"messages": history, key: other}, {key: history}):
        for _ in range(2):  # the second time from the kept texts
            text, cut = policy.render("langchain.input", value)
            assert text == _whole(value) and not cut


@settings(max_examples=300, deadline=None)
@given(_history)
def test_a_chat_models_input_renders_as_it_would_whole(history):
    policy = _policy()
    system, rest = input_messages([history])
    for _ in range(2):
        text, _ = policy.render("gen_ai.input.messages", ChatMessages([history], system=False))
        assert text == _whole(rest)
        text, _ = policy.render("gen_ai.system_instructions", ChatMessages([history], system=True))
        assert text == (_whole(system) if system else None)
        # What the handler hands the policy: kept texts for a long conversation, lists for a short one.
        conversation, instructions = chat_input([history])
        assert policy.render("gen_ai.input.messages", conversation)[0] == _whole(rest)
        if system:
            assert policy.render("gen_ai.system_instructions", instructions)[0] == _whole(system)
        else:
            assert instructions is None or policy.render("s", instructions)[0] is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_message(), st.sampled_from([None, "stop", "tool_calls"])), min_size=1, max_size=3))
def test_a_models_output_renders_as_it_would_whole(outputs):
    expected = []
    for message, reason in outputs:
        converted = message_to_part_dict(message)
        converted["role"] = "assistant"
        if reason is not None:
            converted["finish_reason"] = reason
        expected.append(converted)
    text, _ = _policy().render("gen_ai.output.messages", ChatOutput([(m, None, r) for m, r in outputs]))
    assert text == _whole(expected)


def test_a_message_whose_content_is_replaced_is_rendered_again():
    policy = _policy()
    history = [HumanMessage("first"), AIMessage("second"), HumanMessage("third")]
    before, _ = policy.render("langchain.input", {"messages": history})
    history[1].content = "password=hunter22"
    after, _ = policy.render("langchain.input", {"messages": history})
    assert "second" in before and "second" not in after
    assert "hunter22" not in after and after == _whole({"messages": history})


def test_a_secret_key_before_a_history_is_masked_as_it_would_be_whole():
    """`"password": [[{...` is a key=value secret when masked whole (the value starts with the
    brackets); assembling from pieces must not hide that."""
    policy = _policy()
    history = [HumanMessage("a"), AIMessage("b"), HumanMessage("c")]
    for value in ({"password": [history]}, {"messages": history, "api_key": [[*history]]}):
        assert policy.render("langchain.input", value)[0] == _whole(value)


def test_a_message_whose_tool_calls_are_replaced_is_rendered_again():
    policy = _policy()
    call = {"name": "lookup", "args": {"q": "a"}, "id": "call_1", "type": "tool_call"}
    history = [HumanMessage("q"), AIMessage("", tool_calls=[call]), ToolMessage("r", tool_call_id="call_1")]
    policy.render("langchain.input", {"messages": history})
    history[1].tool_calls = [{**call, "args": {"q": "b"}}]
    text, _ = policy.render("langchain.input", {"messages": history})
    assert text == _whole({"messages": history}) and '"b"' in text


def test_kept_texts_are_bounded(monkeypatch):
    monkeypatch.setattr(fragments, "_MAX_ENTRIES", 50)
    policy = _policy()
    keep = []
    for i in range(40):
        history = [HumanMessage(f"q{i}-{j}") for j in range(5)]
        keep.append(history)  # alive: their ids cannot be reused
        policy.render("langchain.input", {"messages": history})
    assert 0 < len(policy._texts) <= 50


def test_extra_patterns_render_every_payload_whole(monkeypatch):
    """An extra pattern may match across pieces: with the redactor in use having one, the policy
    never assembles from pieces, and the pattern masks across messages as it would whole."""
    from spanchain.content import redaction

    redactor = redaction.Redactor(extra_patterns=(r"first.*third",))
    monkeypatch.setattr(redaction, "_default", redactor)
    policy = _policy()
    history = [HumanMessage("first"), AIMessage("second"), HumanMessage("third")]
    text, _ = policy.render("langchain.input", {"messages": history})
    assert len(policy._texts) == 0
    assert text == redactor.text(to_json({"messages": history})) and "second" not in text


def test_truncation_applies_to_the_assembled_text():
    policy = ContentPolicy(capture=True, max_length=64)
    history = [HumanMessage("x" * 40) for _ in range(4)]
    text, cut = policy.render("langchain.input", {"messages": history})
    assert cut and (text, cut) == truncate(_whole({"messages": history}), 64)
