"""Streams never leak a LangChain span into the consumer's code, and their own work still nests.

Between two chunks of a stream the consumer's code runs in the consumer's own context; a span it
starts there (or after abandoning the stream) must have the app's span as its parent, never the
stream's chat, chain or graph span. Meanwhile the stream's own work keeps nesting: the HTTP span
of a streamed model call under the chat span, spans made in a graph node's body under the node.

Real parts throughout: LangGraph graphs, langchain-openai's ChatOpenAI / OpenAI talking HTTP to a
loopback OpenAI-compatible server, and OpenTelemetry's httpx instrumentation.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

import openai
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI, OpenAI
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor

from openai_server import REPLY_WORDS, OpenAICompatibleServer
from pipeline_support import Pipeline
from spanchain import semconv as sc


@pytest.fixture(scope="module")
def server():
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def p():
    pipeline = Pipeline()
    instrumentors = [HTTPXClientInstrumentor(), HTTPX2ClientInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=pipeline.provider)
    try:
        yield pipeline
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


def _clients() -> dict:
    # Own clients per model: the default async client is cached per process and would outlive
    # the event loop of the test that made it. The openai SDK's own httpx flavour (httpx2 on
    # openai 3.x), so the httpx instrumentation applies as it does in an app.
    return {"http_client": openai.DefaultHttpxClient(), "http_async_client": openai.DefaultAsyncHttpxClient()}


def chat_model(server) -> ChatOpenAI:
    return ChatOpenAI(model="loopback-model", base_url=server.base_url, api_key="sk-test", max_retries=0, **_clients())


def text_model(server) -> OpenAI:
    return OpenAI(model="loopback-model", base_url=server.base_url, api_key="sk-test", max_retries=0, **_clients())


class Consumer:
    """The app: a request span around everything, a span per chunk, one after the stream."""

    def __init__(self, p: Pipeline) -> None:
        self.tracer = p.provider.get_tracer("app")
        self.request = None
        self.chunks = 0
        self.seen_current: list[int] = []

    def on_chunk(self) -> None:
        self.seen_current.append(trace.get_current_span().get_span_context().span_id)
        with self.tracer.start_as_current_span(f"consumer-{self.chunks}"):
            pass
        self.chunks += 1

    def after(self) -> None:
        self.seen_current.append(trace.get_current_span().get_span_context().span_id)
        with self.tracer.start_as_current_span("after-stream"):
            pass

    def check(self, p: Pipeline, expected_chunks: int | None = None) -> None:
        assert self.chunks >= 1
        if expected_chunks is not None:
            assert self.chunks == expected_chunks
        request_id = self.request.get_span_context().span_id
        assert set(self.seen_current) == {request_id}, "a LangChain span was current in the consumer"
        spans = {s.name: s for s in p.spans()}
        lc_names = {s.name for s in p.lc_spans()}
        for name in [f"consumer-{i}" for i in range(self.chunks)] + ["after-stream"]:
            parent = spans[name].parent
            assert parent is not None and parent.span_id == request_id, (
                f"{name} nested under {[s.name for s in p.spans() if parent and s.context.span_id == parent.span_id]}"
                f" (LangChain spans: {sorted(lc_names)})"
            )


def run_sync(p: Pipeline, make_stream, stop_after: int | None = None, keep_open: bool = False) -> Consumer:
    consumer = Consumer(p)
    with consumer.tracer.start_as_current_span("request") as request:
        consumer.request = request
        stream = iter(make_stream())
        for _ in stream:
            consumer.on_chunk()
            if stop_after is not None and consumer.chunks >= stop_after:
                break
        if not keep_open:
            del stream  # CPython closes an abandoned generator as soon as it is dropped
        consumer.after()
    if keep_open:
        stream.close()
    return consumer


def run_async(p: Pipeline, make_stream, stop_after: int | None = None) -> Consumer:
    consumer = Consumer(p)

    async def main():
        with consumer.tracer.start_as_current_span("request") as request:
            consumer.request = request
            async for _ in make_stream():
                consumer.on_chunk()
                if stop_after is not None and consumer.chunks >= stop_after:
                    break
            # An abandoned async generator stays open until the event loop finalises it.
            consumer.after()

    asyncio.run(main())
    return consumer


def assert_http_under_model(p: Pipeline, model_run_type: str = "chat_model") -> None:
    http = [s for s in p.spans() if s.instrumentation_scope.name.startswith("opentelemetry.instrumentation.httpx")]
    models = [s for s in p.lc_spans() if s.attributes[sc.LC_RUN_TYPE] == model_run_type]
    assert http and models
    model_ids = {s.context.span_id for s in models}
    for span in http:
        assert span.parent is not None and span.parent.span_id in model_ids, f"HTTP span {span.name} not under the model"


# --- chat model and LLM streams ---------------------------------------------------------------------


@pytest.mark.parametrize("stop_after,keep_open", [(None, False), (2, False), (2, True)], ids=["whole", "break", "break-open"])
def test_chat_model_stream_sync(server, p, stop_after, keep_open):
    model = chat_model(server)
    consumer = run_sync(p, lambda: model.stream("hi", config=p.config()), stop_after, keep_open)
    consumer.check(p, stop_after)
    assert_http_under_model(p)
    if stop_after is None:
        chat = p.lc_spans()[0]
        assert chat.attributes[sc.LC_STREAM_CHUNKS] >= len(REPLY_WORDS)
    assert p.handler.open_runs == 0


@pytest.mark.parametrize("stop_after", [None, 2], ids=["whole", "break"])
def test_chat_model_astream(server, p, stop_after):
    model = chat_model(server)
    consumer = run_async(p, lambda: model.astream("hi", config=p.config()), stop_after)
    consumer.check(p, stop_after)
    assert_http_under_model(p)
    assert p.handler.open_runs == 0


@pytest.mark.parametrize("stop_after", [None, 2], ids=["whole", "break"])
def test_llm_stream_sync_and_async(server, p, stop_after):
    model = text_model(server)
    run_sync(p, lambda: model.stream("hi", config=p.config()), stop_after, keep_open=True).check(p, stop_after)
    run_async(p, lambda: model.astream("hi", config=p.config()), stop_after).check(p, stop_after)
    assert_http_under_model(p, "llm")
    assert p.handler.open_runs == 0


# --- runnables: a chain's stream, astream and astream_events ----------------------------------------


def _chain(server):
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | chat_model(server) | StrOutputParser()


@pytest.mark.parametrize("stop_after,keep_open", [(None, False), (2, True)], ids=["whole", "break-open"])
def test_chain_stream_sync(server, p, stop_after, keep_open):
    chain = _chain(server)
    consumer = run_sync(p, lambda: chain.stream({"question": "q"}, config=p.config()), stop_after, keep_open)
    consumer.check(p, stop_after)
    assert_http_under_model(p)


@pytest.mark.parametrize("stop_after", [None, 2], ids=["whole", "break"])
def test_chain_astream(server, p, stop_after):
    chain = _chain(server)
    consumer = run_async(p, lambda: chain.astream({"question": "q"}, config=p.config()), stop_after)
    consumer.check(p, stop_after)
    assert_http_under_model(p)


@pytest.mark.parametrize("stop_after", [None, 6], ids=["whole", "break"])  # 6: the model is streaming
def test_chain_astream_events(server, p, stop_after):
    chain = _chain(server)
    consumer = run_async(
        p, lambda: chain.astream_events({"question": "q"}, config=p.config(), version="v2"), stop_after
    )
    consumer.check(p, stop_after)
    assert_http_under_model(p)


# --- LangGraph graphs --------------------------------------------------------------------------------


class State(TypedDict):
    steps: Annotated[list[str], operator.add]
    answer: str


def _graph(server, p: Pipeline):
    """prepare -> ask (calls the HTTP-backed chat model) -> finish; each node's body makes a span."""
    tracer = p.provider.get_tracer("node-body")
    model = chat_model(server)

    def prepare(state: State) -> dict:
        with tracer.start_as_current_span("body-prepare"):
            return {"steps": ["prepare"]}

    def ask(state: State) -> dict:
        with tracer.start_as_current_span("body-ask"):
            return {"steps": ["ask"], "answer": model.invoke("hi").content}

    async def aask(state: State) -> dict:
        with tracer.start_as_current_span("body-ask"):
            return {"steps": ["ask"], "answer": (await model.ainvoke("hi")).content}

    def finish(state: State) -> dict:
        with tracer.start_as_current_span("body-finish"):
            return {"steps": ["finish"]}

    from langchain_core.runnables import RunnableLambda

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("ask", RunnableLambda(ask, afunc=aask))
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", "finish")
    builder.add_edge("finish", END)
    return builder.compile()


def assert_graph_work_nests(p: Pipeline, nodes: list[str]) -> None:
    spans = p.spans()
    for node in nodes:
        body = [s for s in spans if s.name == f"body-{node}"]
        node_spans = [s for s in p.lc_spans() if s.attributes[sc.LC_NAME] == node]
        assert body and node_spans, node
        assert body[0].parent.span_id == node_spans[0].context.span_id, f"body of {node} not under its node"
    if "ask" in nodes:
        assert_http_under_model(p)


@pytest.mark.parametrize("stop_after,keep_open", [(None, False), (2, False), (2, True)], ids=["whole", "break", "break-open"])
def test_graph_stream_sync(server, p, stop_after, keep_open):
    graph = _graph(server, p)
    consumer = run_sync(
        p, lambda: graph.stream({"steps": []}, config=p.config(), stream_mode="updates"), stop_after, keep_open
    )
    consumer.check(p, stop_after or 3)
    assert_graph_work_nests(p, ["prepare", "ask"] if stop_after else ["prepare", "ask", "finish"])


@pytest.mark.parametrize("stop_after", [None, 2], ids=["whole", "break"])
def test_graph_astream(server, p, stop_after):
    graph = _graph(server, p)
    consumer = run_async(
        p, lambda: graph.astream({"steps": []}, config=p.config(), stream_mode="updates"), stop_after
    )
    consumer.check(p, stop_after or 3)
    assert_graph_work_nests(p, ["prepare", "ask"] if stop_after else ["prepare", "ask", "finish"])


def test_graph_astream_messages_mode(server, p):
    """stream_mode="messages": the model's tokens reach the consumer while the node still runs."""
    graph = _graph(server, p)
    consumer = run_async(p, lambda: graph.astream({"steps": []}, config=p.config(), stream_mode="messages"))
    consumer.check(p)
    assert_graph_work_nests(p, ["prepare", "ask", "finish"])


def test_graph_invoke_still_nests(server, p):
    """Not a stream for the caller (invoke iterates the graph's own stream): everything nests."""
    graph = _graph(server, p)
    tracer = p.provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        graph.invoke({"steps": []}, config=p.config())
        assert trace.get_current_span() is request
    asyncio.run(graph.ainvoke({"steps": []}, config=p.config()))
    assert_graph_work_nests(p, ["prepare", "ask", "finish"])
    assert p.handler.open_runs == 0


def test_run_started_by_a_context_manager_nests_its_with_block(p):
    """A run started inside a @contextmanager generator (LangChain's trace_as_chain_group does
    this) has the with-block as its body, not a stream consumer: it stays current there."""
    import contextlib

    from langchain_core.callbacks.manager import CallbackManager

    @contextlib.contextmanager
    def group(name):
        run = CallbackManager(handlers=[p.handler]).on_chain_start({"name": name}, {})
        yield run
        run.on_chain_end({})

    tracer = p.provider.get_tracer("app")
    with group("group"):
        with tracer.start_as_current_span("inside-group"):
            pass
    group_span = [s for s in p.lc_spans() if s.attributes[sc.LC_NAME] == "group"][0]
    inside = [s for s in p.spans() if s.name == "inside-group"][0]
    assert inside.parent.span_id == group_span.context.span_id
    assert not trace.get_current_span().get_span_context().is_valid
