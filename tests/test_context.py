"""Behaviour 2: other instrumentations' spans nest under the LangChain run that caused them, and
no LangChain span ever stays current after its run (the peers' most common bug)."""

from __future__ import annotations

import asyncio

from langchain_core.runnables import RunnableLambda
from opentelemetry import trace

from lcapps import simple_chain
from pipeline_support import Pipeline
from spanchain import semconv as sc


def _foreign(p: Pipeline, name: str):
    return p.provider.get_tracer("foreign.httpclient").start_as_current_span(name)


def test_foreign_span_inside_a_step_nests_under_that_step():
    p = Pipeline()

    def call_http(x):
        with _foreign(p, "GET /api"):
            return x

    chain = RunnableLambda(lambda x: x) | RunnableLambda(call_http)
    chain.invoke(1, config=p.config())
    http = [s for s in p.spans() if s.name == "GET /api"][0]
    step = p.by_name("call_http")[0]
    assert http.parent.span_id == step.context.span_id
    assert http.context.trace_id == step.context.trace_id


def test_foreign_span_inside_async_step_nests():
    p = Pipeline()

    async def call_http(x):
        with _foreign(p, "GET /async"):
            await asyncio.sleep(0)
            return x

    chain = RunnableLambda(lambda x: x) | RunnableLambda(call_http)
    asyncio.run(chain.ainvoke(1, config=p.config()))
    http = [s for s in p.spans() if s.name == "GET /async"][0]
    assert http.parent.span_id == p.by_name("call_http")[0].context.span_id


def test_nothing_stays_current_after_sync_and_async_runs():
    p = Pipeline()
    tracer = p.provider.get_tracer("app")

    async def main():
        with tracer.start_as_current_span("request") as request:
            await simple_chain("x").ainvoke({"question": "q"}, config=p.config())
            # after the run, the app's own span is current again
            assert trace.get_current_span().get_span_context().span_id == request.get_span_context().span_id
            with tracer.start_as_current_span("after"):
                pass
        # and outside, nothing at all
        assert not trace.get_current_span().get_span_context().is_valid
        with tracer.start_as_current_span("later-root"):
            pass

    asyncio.run(main())
    simple_chain("y").invoke({"question": "q"}, config=p.config())
    assert not trace.get_current_span().get_span_context().is_valid
    spans = {s.name: s for s in p.spans()}
    assert spans["after"].parent.span_id == spans["request"].context.span_id
    assert spans["later-root"].parent is None
    # the LangChain root nested under the app's request span
    lc_root = [s for s in p.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes][0]
    assert lc_root.parent.span_id == spans["request"].context.span_id


def test_batch_roots_do_not_chain_into_each_other_and_leave_no_context():
    p = Pipeline()
    chain = RunnableLambda(lambda x: x) | RunnableLambda(lambda x: x + 1)
    chain.batch([1, 2, 3, 4], config=p.config())
    roots = [s for s in p.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes]
    assert len(roots) == 4 and all(r.parent is None for r in roots)
    assert len({r.context.trace_id for r in roots}) == 4
    assert not trace.get_current_span().get_span_context().is_valid


def test_context_attach_can_be_turned_off():
    p = Pipeline(attach_context=False)

    def call_http(x):
        with _foreign(p, "GET /off"):
            return x

    RunnableLambda(call_http).invoke(1, config=p.config())
    http = [s for s in p.spans() if s.name == "GET /off"][0]
    assert http.parent is None


def test_parser_runs_are_not_current_but_their_runs_nest_under_them():
    """Output parsers do no I/O and are not made current: a foreign span in one nests under the
    enclosing run; a LangChain run it starts still nests under the parser's span."""
    from langchain_core.output_parsers import BaseOutputParser

    p = Pipeline()
    fixer = RunnableLambda(lambda x: x, name="fixer")

    class CheckingParser(BaseOutputParser[str]):
        def parse(self, text: str) -> str:
            with _foreign(p, "GET /check"):
                return fixer.invoke(text)  # picks up the parser's run as its parent from LangChain

    chain = RunnableLambda(lambda x: x, name="step") | CheckingParser()
    chain.invoke("text", config=p.config())
    spans = {s.name: s for s in p.spans()}
    parser = p.by_name("CheckingParser")[0]
    sequence = [s for s in p.lc_spans() if sc.LC_PARENT_RUN_ID not in s.attributes][0]
    assert spans["GET /check"].parent.span_id == sequence.context.span_id
    assert p.by_name("fixer")[0].parent.span_id == parser.context.span_id
    p.assert_same_tree()
