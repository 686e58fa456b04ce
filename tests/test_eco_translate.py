"""Foreign LangChain instrumentations' attributes → our vocabulary (pure translation)."""

import json

from spanchain import semconv as sc
from spanchain.serve.translate import TRANSLATED_FROM, detect, translate_attributes, translate_span
from spanchain.export.traces import is_langchain_root, run_type, token_usage

from eco_support import make_spans


def test_openinference_llm_span():
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.token_count.prompt": 12,
        "llm.token_count.completion": 5,
        "llm.token_count.prompt_details.cache_read": 3,
        "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_tokens": 64, "stop": ["\n"]}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "be brief",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "hello",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": "x"}',
        "input.value": '{"messages": "hi"}',
        "output.value": "hello",
        "metadata": json.dumps({"user_id": "u1", "nested": {"a": 1}}),
        "session.id": "thread-7",
        "tag.tags": ["prod", "v2"],
    }
    out = translate_attributes(attrs, "ChatOpenAI")
    assert out[sc.GEN_AI_OPERATION_NAME] == sc.OP_CHAT
    assert out[sc.LC_RUN_TYPE] == "chat_model"
    assert out[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert out[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 12 and out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert out[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and out[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert out[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("\n",)
    inputs = json.loads(out[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "hi"}]
    outputs = json.loads(out[sc.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][1] == {"type": "tool_call", "name": "lookup", "arguments": '{"q": "x"}'}
    assert out[sc.LC_INPUT] == '{"messages": "hi"}' and out[sc.LC_OUTPUT] == "hello"
    assert out[sc.LC_METADATA_PREFIX + "user_id"] == "u1"
    assert json.loads(out[sc.LC_METADATA_PREFIX + "nested"]) == {"a": 1}
    assert out[sc.GEN_AI_CONVERSATION_ID] == "thread-7"
    assert out[sc.LC_TAGS] == ("prod", "v2")
    assert out[sc.LC_NAME] == "ChatOpenAI"
    assert out[TRANSLATED_FROM] == "openinference"
    # nothing is lost
    assert all(out[k] == v for k, v in attrs.items())


def test_openinference_tool_and_retriever_spans():
    tool = translate_attributes(
        {"openinference.span.kind": "TOOL", "tool.name": "search", "input.value": "q", "output.value": "r"}
    )
    assert tool[sc.LC_RUN_TYPE] == "tool" and tool[sc.GEN_AI_OPERATION_NAME] == sc.OP_EXECUTE_TOOL
    assert tool[sc.GEN_AI_TOOL_NAME] == "search"
    assert tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == "q" and tool[sc.GEN_AI_TOOL_CALL_RESULT] == "r"
    retr = translate_attributes(
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "what is otel",
            "retrieval.documents.0.document.id": "d1",
            "retrieval.documents.0.document.content": "OpenTelemetry",
            "retrieval.documents.0.document.metadata": '{"source": "wiki"}',
            "retrieval.documents.1.document.content": "second",
        }
    )
    assert retr[sc.LC_RUN_TYPE] == "retriever"
    assert retr[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] == "what is otel"
    docs = json.loads(retr[sc.GEN_AI_RETRIEVAL_DOCUMENTS])
    assert docs[0] == {"id": "d1", "content": "OpenTelemetry", "metadata": {"source": "wiki"}}
    assert docs[1]["content"] == "second"
    chain = translate_attributes({"openinference.span.kind": "CHAIN"})
    assert chain[sc.LC_RUN_TYPE] == "chain" and sc.GEN_AI_OPERATION_NAME not in chain
    agent = translate_attributes({"openinference.span.kind": "AGENT"})
    assert agent[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT


def test_openllmetry_spans():
    llm = translate_attributes(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-x",
            "gen_ai.usage.prompt_tokens": 40,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "tell me",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "sure",
            "gen_ai.completion.0.finish_reason": "stop",
            "traceloop.association.properties.customer": "acme",
        }
    )
    assert llm[TRANSLATED_FROM] == "openllmetry"
    assert llm[sc.GEN_AI_OPERATION_NAME] == sc.OP_CHAT and llm[sc.LC_RUN_TYPE] == "chat_model"
    assert llm[sc.GEN_AI_PROVIDER_NAME] == "Anthropic"
    assert llm[sc.GEN_AI_USAGE_INPUT_TOKENS] == 40 and llm[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert json.loads(llm[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "tell me"}]}
    ]
    assert json.loads(llm[sc.GEN_AI_OUTPUT_MESSAGES])[0]["finish_reason"] == "stop"
    assert llm[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert llm[sc.LC_METADATA_PREFIX + "customer"] == "acme"

    workflow = translate_attributes(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.name": "qa_chain",
            "traceloop.workflow.name": "qa_chain",
            "traceloop.entity.input": '{"inputs": {"q": 1}}',
            "traceloop.entity.output": '{"outputs": "a"}',
        },
        "qa_chain.workflow",
    )
    assert workflow[sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_WORKFLOW
    assert workflow[sc.LC_RUN_TYPE] == "chain"
    assert workflow[sc.LC_NAME] == "qa_chain"  # the entity name, not the decorated span name
    assert workflow[sc.GEN_AI_WORKFLOW_NAME] == "qa_chain"
    assert workflow[sc.LC_INPUT] == '{"inputs": {"q": 1}}'


def test_langsmith_and_plain_gen_ai():
    ls = translate_attributes(
        {
            "langsmith.span.kind": "llm",
            "gen_ai.operation.name": "chat",
            "gen_ai.prompt": '{"messages": []}',
            "gen_ai.completion": '{"generations": []}',
            "langsmith.metadata.team": "search",
            "langsmith.span.tags": "a, b",
        }
    )
    assert ls[sc.LC_RUN_TYPE] == "chat_model"
    assert ls[sc.LC_INPUT] == '{"messages": []}' and ls[sc.LC_OUTPUT] == '{"generations": []}'
    assert ls[sc.LC_METADATA_PREFIX + "team"] == "search" and ls[sc.LC_TAGS] == ("a", "b")

    plain = translate_attributes(
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "calc", "gen_ai.usage.input_tokens": 2}
    )
    assert plain[TRANSLATED_FROM] == "gen_ai" and plain[sc.LC_RUN_TYPE] == "tool"


def test_our_own_and_unrelated_spans_are_left_alone():
    ours = {sc.LC_RUN_ID: "r1", sc.GEN_AI_OPERATION_NAME: "chat", "gen_ai.system": "x"}
    assert detect(ours) is None and translate_attributes(ours) is None
    assert translate_attributes({"http.method": "GET"}) is None
    [span] = make_spans([("GET /", {"http.method": "GET"}, None)])
    assert translate_span(span) is span


def test_existing_values_win_over_translated_ones():
    out = translate_attributes(
        {"llm.request.type": "chat", "gen_ai.usage.input_tokens": 7, "gen_ai.usage.prompt_tokens": 99}
    )
    assert out[sc.GEN_AI_USAGE_INPUT_TOKENS] == 7


def test_translated_trace_groups_and_rolls_up_like_ours():
    spans = make_spans(
        [
            ("RunnableSequence", {"openinference.span.kind": "CHAIN"}, None),
            ("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.token_count.prompt": 4,
                            "llm.token_count.completion": 2, "llm.input_messages.0.message.content": "x"}, 0),
        ]
    )
    by_name = {s.name: translate_span(s) for s in spans}
    root, llm = by_name["RunnableSequence"], by_name["ChatOpenAI"]
    assert is_langchain_root(root) and not is_langchain_root(llm)
    assert root.attributes[sc.LC_ROOT_RUN_ID] == llm.attributes[sc.LC_ROOT_RUN_ID]
    assert llm.attributes[sc.LC_PARENT_RUN_ID] == root.attributes[sc.LC_RUN_ID]
    assert run_type(llm) == "chat_model" and token_usage(llm) == (4, 2)
    assert llm.context == spans[[s.name for s in spans].index("ChatOpenAI")].context


def test_langchain_ls_metadata_and_openllmetry_operations():
    oi = translate_attributes(
        {"openinference.span.kind": "LLM", "metadata": json.dumps({"ls_model_name": "m-1", "ls_provider": "acme"})}
    )
    assert oi[sc.GEN_AI_REQUEST_MODEL] == "m-1" and oi[sc.GEN_AI_PROVIDER_NAME] == "acme"
    retriever = translate_attributes({"gen_ai.operation.name": "vector_db_retrieve", "traceloop.span.kind": "task"})
    assert retriever[sc.LC_RUN_TYPE] == "retriever"
