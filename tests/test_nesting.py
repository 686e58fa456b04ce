"""Behaviour 1: the span tree equals the run tree langchain_core's own BaseTracer builds."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.runnables import RunnableLambda, RunnableParallel

from lcapps import chat_model, multiply, retriever, run_tool_loop, simple_chain, tool_calling_model
from pipeline_support import Pipeline
from spanchain import semconv as sc


def test_invoke_prompt_model_parser(pipeline):
    out = simple_chain("hello there").invoke({"question": "hi"}, config=pipeline.config())
    assert out == "hello there"
    pipeline.assert_same_tree(expected_roots=1)
    names = sorted(s.attributes[sc.LC_NAME] for s in pipeline.lc_spans())
    assert names == sorted(["RunnableSequence", "ChatPromptTemplate", "GenericFakeChatModel", "StrOutputParser"])
    types = {s.attributes[sc.LC_NAME]: s.attributes[sc.LC_RUN_TYPE] for s in pipeline.lc_spans()}
    assert types["ChatPromptTemplate"] == "prompt" and types["StrOutputParser"] == "parser"
    assert types["GenericFakeChatModel"] == "chat_model"


def test_nested_runnables(pipeline):
    inner = simple_chain("inner answer")

    def outer(x, config):
        return inner.invoke({"question": x}, config=config) + "!"

    chain = RunnableLambda(lambda x: x.upper()) | RunnableLambda(outer)
    assert chain.invoke("q", config=pipeline.config()) == "inner answer!"
    pipeline.assert_same_tree(expected_roots=1)
    depth = {}
    spans = {s.context.span_id: s for s in pipeline.lc_spans()}
    for s in spans.values():
        d, p = 0, s.parent
        while p is not None and p.span_id in spans:
            d, p = d + 1, spans[p.span_id].parent
        depth[s.attributes[sc.LC_NAME]] = max(d, depth.get(s.attributes[sc.LC_NAME], 0))
    assert depth["GenericFakeChatModel"] == 3  # root → outer lambda → inner sequence → model


def test_stream_and_astream(pipeline):
    chunks = list(simple_chain("one two three").stream({"question": "q"}, config=pipeline.config()))
    assert "".join(chunks) == "one two three"

    async def run():
        return [c async for c in simple_chain("four five").astream({"question": "q"}, config=pipeline.config())]

    assert "".join(asyncio.run(run())) == "four five"
    pipeline.assert_same_tree(expected_roots=2)
    model_spans = pipeline.by_name("GenericFakeChatModel")
    assert all(s.attributes[sc.GEN_AI_REQUEST_STREAM] is True for s in model_spans)
    assert all(s.attributes[sc.LC_STREAM_CHUNKS] >= 2 for s in model_spans)
    # a streamed run learns its input only at the end; it is recorded then
    root = [s for s in pipeline.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes][0]
    assert '"question": "q"' in root.attributes[sc.LC_INPUT]


def test_gather_of_many_ainvoke(pipeline):
    async def run():
        return await asyncio.gather(
            *(simple_chain(f"answer {i}").ainvoke({"question": f"q{i}"}, config=pipeline.config()) for i in range(25))
        )

    assert asyncio.run(run()) == [f"answer {i}" for i in range(25)]
    pipeline.assert_same_tree(expected_roots=25)


@pytest.mark.parametrize("mode", ["batch", "abatch"])
def test_batch_with_max_concurrency(pipeline, mode):
    chain = RunnableLambda(lambda x: x * 2) | RunnableLambda(lambda x: x + 1)
    inputs = list(range(12))
    config = pipeline.config(max_concurrency=3)
    if mode == "batch":
        out = chain.batch(inputs, config=config)
    else:
        out = asyncio.run(chain.abatch(inputs, config=config))
    assert out == [x * 2 + 1 for x in inputs]
    # each input is its own root run and so its own trace, never chained into one
    pipeline.assert_same_tree(expected_roots=12)


def test_runnable_parallel(pipeline):
    par = RunnableParallel(a=simple_chain("A"), b=simple_chain("B"), c=RunnableLambda(lambda x: "C"))
    assert par.invoke({"question": "q"}, config=pipeline.config()) == {"a": "A", "b": "B", "c": "C"}
    pipeline.assert_same_tree(expected_roots=1)


def test_tools_direct_and_through_toolcall(pipeline):
    assert multiply.invoke({"a": 3, "b": 4}, config=pipeline.config()) == 12
    model = tool_calling_model([("multiply", {"a": 6, "b": 7})], "the answer is 42")
    assert run_tool_loop(model, pipeline.config(), "6*7?") == "the answer is 42"
    tool_spans = pipeline.by_name("multiply")
    assert len(tool_spans) == 2
    via_call = [s for s in tool_spans if sc.GEN_AI_TOOL_CALL_ID in s.attributes]
    assert [s.attributes[sc.GEN_AI_TOOL_CALL_ID] for s in via_call] == ["call_0"]
    assert via_call[0].attributes[sc.GEN_AI_TOOL_CALL_RESULT] == "42"
    assert via_call[0].name == "execute_tool multiply"
    pipeline.assert_same_tree()


def test_retriever(pipeline):
    docs = retriever().invoke("what are spans", config=pipeline.config())
    assert [d.id for d in docs] == ["doc-a"]
    pipeline.assert_same_tree(expected_roots=1)
    span = pipeline.lc_spans()[0]
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == "retrieval"
    assert span.attributes[sc.GEN_AI_RETRIEVAL_QUERY_TEXT] == "what are spans"
    assert '"doc-a"' in span.attributes[sc.GEN_AI_RETRIEVAL_DOCUMENTS]


def test_error_in_nested_step(pipeline):
    def boom(x):
        raise ValueError("nested failure")

    chain = RunnableLambda(lambda x: x) | RunnableLambda(boom)
    with pytest.raises(ValueError):
        chain.invoke(1, config=pipeline.config())
    pipeline.assert_same_tree(expected_roots=1)
    failed = pipeline.by_name("boom")[0]
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes[sc.ERROR_TYPE] == "ValueError"
    exc_events = [e for e in failed.events if e.name == "exception"]
    assert exc_events and exc_events[0].attributes["exception.message"] == "nested failure"
    assert "Traceback" in exc_events[0].attributes["exception.stacktrace"]


def test_astream_events(pipeline):
    async def run():
        return [e async for e in simple_chain("evt stream").astream_events({"question": "q"}, config=pipeline.config(), version="v2")]

    events = asyncio.run(run())
    assert any(e["event"] == "on_chat_model_stream" for e in events)
    pipeline.assert_same_tree(expected_roots=1)


def test_abandoned_stream(pipeline):
    chain = simple_chain("a b c d e f g h")
    stream = chain.stream({"question": "q"}, config=pipeline.config())
    first = [next(stream) for _ in range(2)]
    assert first
    stream.close()
    pipeline.assert_same_tree(expected_roots=1)


def _graph():
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        question: str
        answer: str

    def think(state: State, config):
        return {"answer": simple_chain("graph answer").invoke({"question": state["question"]}, config=config)}

    def shout(state: State):
        return {"answer": state["answer"].upper()}

    g = StateGraph(State)
    g.add_node("think", think)
    g.add_node("shout", shout)
    g.add_edge(START, "think")
    g.add_edge("think", "shout")
    g.add_edge("shout", END)
    return g.compile()


def test_langgraph_sync_and_async(pipeline):
    graph = _graph()
    assert graph.invoke({"question": "q"}, config=pipeline.config())["answer"] == "GRAPH ANSWER"

    async def run():
        return await _graph().ainvoke({"question": "q"}, config=pipeline.config())

    assert asyncio.run(run())["answer"] == "GRAPH ANSWER"
    pipeline.assert_same_tree(expected_roots=2)
    roots = [s for s in pipeline.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes]
    assert all(s.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_workflow" for s in roots)
    assert all(s.attributes[sc.LC_DESCENDANTS] == len(pipeline.lc_spans()) // 2 - 1 for s in roots)


def test_langgraph_interrupt_is_not_an_error():
    from typing import TypedDict

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict):
        value: str

    def ask(state: State):
        return {"value": interrupt("need approval")}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    graph = g.compile(checkpointer=InMemorySaver())
    p = Pipeline()
    config = p.config(configurable={"thread_id": "t1"})
    graph.invoke({"value": ""}, config=config)
    assert graph.invoke(Command(resume="yes"), config=config)["value"] == "yes"
    assert p.handler.open_runs == 0
    spans = p.lc_spans()
    assert spans and not [s for s in spans if s.status.status_code.name == "ERROR"]
    interrupted = [s for s in spans if s.attributes.get(sc.LC_INTERRUPTED)]
    assert interrupted
    assert all(s.attributes.get(sc.GEN_AI_CONVERSATION_ID) == "t1" for s in spans)
