"""Behaviours 3-6 and 9: every callback, GenAI conventions, errors, content policy, robustness."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import uuid

import pytest
from langchain_core.callbacks import dispatch_custom_event
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult, Generation
from langchain_core.runnables import RunnableLambda
from opentelemetry.trace import SpanKind

from lcapps import streaming_model, fake_llm, simple_chain, run_tool_loop, tool_calling_model
from pipeline_support import Pipeline
from spanchain import semconv as sc


def test_chat_span_follows_genai_conventions(pipeline):
    simple_chain("hi there friend").invoke({"question": "hello?"}, config=pipeline.config(metadata={"ls_temperature": 0.2}))
    span = pipeline.by_name("GenericFakeChatModel")[0]
    a = span.attributes
    assert span.name == "chat GenericFakeChatModel"
    assert span.kind == SpanKind.CLIENT
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "genericfakechatmodel"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "GenericFakeChatModel"
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "fake-chat-1"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert a[sc.LC_USAGE_SOURCE] == "usage_metadata"
    messages = json.loads(a[sc.GEN_AI_INPUT_MESSAGES])
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "hello?"}]}]
    assert json.loads(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
    out = json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])
    assert out[0]["role"] == "assistant" and out[0]["parts"][0]["content"] == "hi there friend"
    assert out[0]["finish_reason"] == "stop"
    root = [s for s in pipeline.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes][0]
    assert root.name == "invoke_workflow RunnableSequence"
    assert root.attributes[sc.ROLLUP_INPUT_TOKENS] == 10 and root.attributes[sc.ROLLUP_LLM_CALLS] == 1


def test_streamed_usage_and_time_to_first_chunk(pipeline):
    chunks = list(streaming_model("a b c d").stream("q", config=pipeline.config()))
    assert len(chunks) >= 4
    span = pipeline.lc_spans()[0]
    a = span.attributes
    assert a[sc.GEN_AI_REQUEST_STREAM] is True
    assert 0 <= a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] < 5
    assert a[sc.LC_STREAM_CHUNKS] == len(chunks)
    # usage from the merged message, counted once (not once per chunk)
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10 and a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "fake-stream-1"
    events = [e.name for e in span.events]
    assert events.count(sc.EVENT_FIRST_CHUNK) == 1


def test_llm_output_usage_used_only_when_it_is_all_there_is():
    p = Pipeline()
    run_id = uuid.uuid4()
    p.handler.on_llm_start({"name": "X"}, ["p"], run_id=run_id, invocation_params={"model_name": "m1", "temperature": 0.5, "max_tokens": 9, "stop": ["\n"]})
    p.handler.on_llm_end(LLMResult(generations=[[Generation(text="t")]], llm_output={"token_usage": {"prompt_tokens": 4, "completion_tokens": 2}, "model_name": "m1-0613"}), run_id=run_id)
    a = p.spans()[0].attributes
    assert p.spans()[0].name == "text_completion m1"
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (4, 2)
    assert a[sc.LC_USAGE_SOURCE] == "llm_output"
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 9 and a[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n",)
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "m1-0613"
    # both present: usage_metadata wins, never summed with llm_output
    run_id = uuid.uuid4()
    p.handler.on_chat_model_start({"name": "C"}, [[]], run_id=run_id)
    msg = AIMessage(content="x", usage_metadata={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6,
                                                 "input_token_details": {"cache_read": 3}, "output_token_details": {"reasoning": 1}})
    p.handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=msg)]], llm_output={"token_usage": {"prompt_tokens": 5, "completion_tokens": 1}}), run_id=run_id)
    a = p.spans()[1].attributes
    assert (a[sc.GEN_AI_USAGE_INPUT_TOKENS], a[sc.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 1)
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3 and a[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 1


def test_agent_loop_rollups_and_events(pipeline):
    model = tool_calling_model([("multiply", {"a": 2, "b": 3}), ("lookup", {"term": "otel"})], "done")

    def agent(question, config):
        return run_tool_loop(model, config, question)

    out = RunnableLambda(agent, name="math_agent").invoke("go", config=pipeline.config())
    assert out == "done"
    root = pipeline.by_name("math_agent")[0]
    assert root.name == "invoke_agent math_agent"
    assert root.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert root.attributes[sc.ROLLUP_LLM_CALLS] == 3
    assert root.attributes[sc.ROLLUP_TOOL_CALLS] == 2
    assert root.attributes[sc.ROLLUP_INPUT_TOKENS] == 20 + 20 + 30
    assert root.attributes[sc.ROLLUP_OUTPUT_TOKENS] == 5 + 5 + 7
    # usage itself appears only on model spans: summing gen_ai.usage.* never double counts
    total = sum(s.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0) for s in pipeline.spans())
    assert total == 70


def test_agent_action_finish_retry_custom_and_text_events():
    from langchain_core.agents import AgentAction, AgentFinish

    p = Pipeline()
    h = p.handler
    rid = uuid.uuid4()
    h.on_chain_start({"name": "AgentExecutor"}, {"input": "q"}, run_id=rid)
    h.on_agent_action(AgentAction(tool="search", tool_input={"q": "x"}, log="thinking"), run_id=rid)
    h.on_text("some text", run_id=rid)

    class Outcome:
        failed = True

        def exception(self):
            return TimeoutError("slow")

    class RetryState:
        attempt_number = 2
        outcome = Outcome()

    h.on_retry(RetryState(), run_id=rid)
    h.on_custom_event("progress", {"pct": 50}, run_id=rid)
    h.on_agent_finish(AgentFinish(return_values={"answer": 1}, log="done"), run_id=rid)
    h.on_chain_end({"answer": 1}, run_id=rid)
    span = p.spans()[0]
    events = {e.name: e.attributes for e in span.events}
    assert events[sc.EVENT_AGENT_ACTION][sc.GEN_AI_TOOL_NAME] == "search"
    assert json.loads(events[sc.EVENT_AGENT_ACTION]["tool_input"]) == {"q": "x"}
    assert events[sc.EVENT_TEXT]["text"] == "some text"
    assert events[sc.EVENT_RETRY]["attempt"] == 2 and events[sc.EVENT_RETRY][sc.ERROR_TYPE] == "TimeoutError"
    assert events[sc.EVENT_CUSTOM]["name"] == "progress" and json.loads(events[sc.EVENT_CUSTOM]["data"]) == {"pct": 50}
    assert json.loads(events[sc.EVENT_AGENT_FINISH]["output"]) == {"answer": 1}
    assert span.attributes[sc.LC_RETRIES] == 1
    assert span.name == "invoke_agent AgentExecutor"


def test_custom_event_dispatched_inside_a_runnable(pipeline):
    def step(x, config):
        dispatch_custom_event("checkpoint", {"x": x}, config=config)
        return x

    RunnableLambda(step).invoke(5, config=pipeline.config())
    span = pipeline.by_name("step")[0]
    assert [e.name for e in span.events] == [sc.EVENT_CUSTOM]


def test_llm_error_and_chain_error_set_status_and_error_type(pipeline):
    h = pipeline.handler
    rid = uuid.uuid4()
    h.on_llm_start({"name": "L"}, ["p"], run_id=rid)
    h.on_llm_error(ConnectionError("refused"), run_id=rid)
    span = pipeline.spans()[0]
    assert span.status.status_code.name == "ERROR"
    assert span.status.description == "ConnectionError: refused"
    assert span.attributes[sc.ERROR_TYPE] == "ConnectionError"


def test_content_off_by_env(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT")
    p = Pipeline()
    simple_chain("secret answer").invoke({"question": "secret question"}, config=p.config())
    for span in p.spans():
        assert not set(span.attributes) & sc.CONTENT_ATTRIBUTES
        assert "secret" not in json.dumps(dict(span.attributes), default=str)
    assert p.by_name("GenericFakeChatModel")[0].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 10


@pytest.mark.parametrize("value,on", [("false", False), ("true", True), ("SPAN_ONLY", True), ("no_content", False)])
def test_capture_env_values(monkeypatch, value, on):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert Pipeline().handler.content_policy.capture is on


def test_option_beats_env(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    assert Pipeline(capture_content=True).handler.content_policy.capture is True


def test_truncation_and_otel_limit(monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "200")
    p = Pipeline()
    RunnableLambda(lambda x: "ok").invoke("z" * 5000, config=p.config())
    a = p.spans()[0].attributes
    assert len(a[sc.LC_INPUT]) <= 200 and "truncated" in a[sc.LC_INPUT]
    assert a[sc.LC_CONTENT_TRUNCATED] is True
    assert Pipeline(max_content_length=50).handler.content_policy.max_length == 50


def test_redaction_hook_rewrites_and_drops():
    def hook(name, text):
        if name == sc.LC_OUTPUT:
            return None
        return text.replace("alice", "[user]")

    p = Pipeline(redact=hook)
    RunnableLambda(lambda x: "bye alice").invoke("hi alice", config=p.config())
    a = p.spans()[0].attributes
    assert a[sc.LC_INPUT] == "hi [user]"
    assert sc.LC_OUTPUT not in a


def test_payloads_serialized_only_when_recording():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    class Explosive:
        def __repr__(self):
            raise AssertionError("serialized although the span does not record")

        def model_dump(self):
            raise AssertionError("serialized although the span does not record")

    from spanchain import OpenTelemetryCallbackHandler

    h = OpenTelemetryCallbackHandler(TracerProvider(sampler=ALWAYS_OFF))
    rid = uuid.uuid4()
    h._log.exception = lambda *a: (_ for _ in ()).throw(AssertionError(a))  # any swallowed error fails
    h.on_chain_start(None, {"x": Explosive()}, run_id=rid)
    h.on_chain_end(Explosive(), run_id=rid)


def test_any_object_serializes_without_raising(pipeline):
    @dataclasses.dataclass
    class Point:
        x: float
        y: bytes

    cyclic: dict = {"name": "loop"}
    cyclic["self"] = cyclic
    payload = {"point": Point(math.nan, b"\xff\x00"), "cycle": cyclic, "inf": math.inf, 3: {1, 2},
               "msg": AIMessage(content="m"), "none": None, "bytes": b"plain"}
    h = pipeline.handler
    rid = uuid.uuid4()
    h.on_chain_start(None, payload, run_id=rid)  # serialized=None, as LangChain >= 0.3 sends
    h.on_chain_end(payload, run_id=rid)
    text = pipeline.spans()[0].attributes[sc.LC_INPUT]
    doc = json.loads(text)  # valid JSON: NaN and inf became strings
    assert doc["point"]["x"] == "nan" and doc["inf"] == "inf"
    assert doc["cycle"]["self"].startswith("<cycle")
    assert doc["msg"]["content"] == "m" and doc["bytes"] == "plain"
    assert doc["point"]["y"].startswith("base64:")


def test_callbacks_never_raise_into_the_app(pipeline, caplog):
    h = pipeline.handler
    # ends without starts, unknown ids, garbage payloads
    h.on_chain_end({"x": 1}, run_id=uuid.uuid4())
    h.on_llm_end(object(), run_id=uuid.uuid4())
    h.on_tool_error(RuntimeError("x"), run_id=uuid.uuid4())
    rid = uuid.uuid4()
    h.on_llm_start(None, None, run_id=rid, invocation_params="not a dict")  # type: ignore[arg-type]
    h.on_llm_end("not an LLMResult", run_id=rid)
    h.on_llm_new_token("t", run_id=uuid.uuid4())
    h.on_chat_model_start(None, [[object()]], run_id=uuid.uuid4(), metadata={"ls_provider": 5})
    assert h.open_runs == 1  # the last start is a real (odd) run, waiting for its end
    # problems are logged once per kind, not per call
    for _ in range(5):
        h.on_chain_end({}, run_id=uuid.uuid4())
    assert sum("never saw started" in r.message for r in caplog.records) == 1


def test_tags_and_metadata_on_every_span(pipeline):
    simple_chain("x").invoke({"question": "q"}, config=pipeline.config(tags=["exp-1"], metadata={"user": "u1", "n": 3}))
    for span in pipeline.lc_spans():
        assert "exp-1" in span.attributes[sc.LC_TAGS]
        assert span.attributes["langchain.metadata.user"] == "u1"
        uuid.UUID(span.attributes[sc.LC_RUN_ID])


def test_llm_prompts_recorded(pipeline):
    fake_llm("completion text").invoke("the prompt", config=pipeline.config())
    a = pipeline.spans()[0].attributes
    assert a[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "the prompt"
    assert json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "completion text"


def test_malformed_payloads_still_record_the_run(pipeline):
    """Payloads that break their type hints never cost the run its span, nor leave it open."""
    h = pipeline.handler
    parent, llm, chat, retr = (uuid.uuid4() for _ in range(4))
    h.on_chain_start(["not", "a", "dict"], object(), run_id=parent, tags="not-a-list", metadata=[1, 2])
    h.on_llm_start({"kwargs": ["a", "list"], "id": {"a": "dict"}}, ["p"], run_id=llm, parent_run_id=parent,
                   invocation_params=["x"], metadata="meta")
    h.on_chat_model_start({"kwargs": ["a"], "id": {"b": 1}}, [[object()]], run_id=chat, parent_run_id=parent)
    h.on_retriever_start(None, "q", run_id=retr, parent_run_id=parent)
    h.on_llm_end(object(), run_id=llm)
    h.on_llm_end({"generations": 5}, run_id=chat)
    h.on_retriever_end(3.5, run_id=retr)  # not a sequence
    h.on_chain_end(object(), run_id=parent)
    assert h.open_runs == 0
    spans = {s.attributes[sc.LC_RUN_ID]: s for s in pipeline.spans()}
    assert set(spans) == {str(parent), str(llm), str(chat), str(retr)}
    for child in (llm, chat, retr):
        assert spans[str(child)].parent.span_id == spans[str(parent)].context.span_id
    assert spans[str(retr)].attributes[sc.LC_RETRIEVAL_DOCUMENT_COUNT] == 1


def test_a_start_that_fails_midway_records_a_bare_span_and_its_end_ends_it(pipeline, monkeypatch):
    from spanchain.bridge import attributes as A

    monkeypatch.setattr(A, "request_attributes", lambda *a: 1 / 0)
    h = pipeline.handler
    rid, child = uuid.uuid4(), uuid.uuid4()
    h.on_chat_model_start({"name": "C"}, [[]], run_id=rid)
    h.on_tool_start({"name": "t"}, "x", run_id=child, parent_run_id=rid)
    h.on_tool_end("y", run_id=child)
    h.on_llm_end(LLMResult(generations=[]), run_id=rid)
    bare = [s for s in pipeline.spans() if s.attributes[sc.LC_RUN_ID] == str(rid)][0]
    assert bare.name == "chat_model" and bare.attributes[sc.LC_RUN_TYPE] == "chat_model"
    tool = [s for s in pipeline.spans() if s.attributes[sc.LC_RUN_ID] == str(child)][0]
    assert tool.parent.span_id == bare.context.span_id
    assert h.open_runs == 0


@pytest.mark.parametrize("capture", [False, True])
def test_response_messages_converted_only_with_content_on(capture):
    """With content off, a model's output messages are not even converted (the conversion is
    content work); with it on they are, which shows this test would notice."""
    from langchain_core.outputs import ChatGeneration, LLMResult

    from spanchain import OpenTelemetryCallbackHandler

    touched = []

    class Counted:
        def __repr__(self):
            touched.append(1)
            return "counted"

    message = AIMessage.model_construct(content=[Counted()], tool_calls=[], response_metadata={"finish_reason": "stop"})
    p = Pipeline(capture_content=capture)
    h = p.handler
    rid = uuid.uuid4()
    h.on_chat_model_start(None, [[]], run_id=rid, invocation_params={"model": "m"})
    h.on_llm_end(LLMResult(generations=[[ChatGeneration.model_construct(message=message, text="")]]), run_id=rid)
    span = p.spans()[0]
    assert span.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert bool(touched) is capture


def test_attribute_shortcut_respects_extra_fields_and_custom_getattr():
    """Message attributes a pydantic class lacks are read from the instance's extra fields (no
    AttributeError round trip), but a model with its own __getattr__ is asked as usual."""
    from pydantic import BaseModel

    from langchain_core.messages import HumanMessage
    from spanchain.bridge import attributes as A

    class Dynamic(BaseModel):
        size: int = 1

        def __getattr__(self, name):
            return 42 if name == "magic" else super().__getattr__(name)

    with_extra = HumanMessage("hi", tool_calls=[{"name": "t", "args": {}, "id": "1"}])
    assert A._attr(HumanMessage("hi"), "tool_calls") is None
    assert A._attr(with_extra, "tool_calls") == [{"name": "t", "args": {}, "id": "1"}]
    assert A._attr(Dynamic(), "magic") == 42
    assert A._attr(Dynamic(), "absent", "default") == "default"
