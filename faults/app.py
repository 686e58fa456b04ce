"""The instrumented app every fault row runs: a small offline LangChain chain with our handler.

The exporter under test sits behind a SimpleSpanProcessor, so `export()` runs on the app's own
thread: the worst case for "an app call waited on the backend". Every call is timed and every
exception the app sees is counted (both must stay ~0 / 0 whatever the backend does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanchain import OpenTelemetryCallbackHandler

RUNS_PER_CALL = 6  # the sequence, enrich, lookup (tool), prompt, chat model, parser


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    return f"facts about {term}"


def _enrich(question: str, config: RunnableConfig) -> dict:
    return {"question": question, "facts": lookup.invoke({"term": question}, config=config)}


def chain():
    """sequence → enrich (→ lookup tool) → prompt → chat model → parser: 6 runs per call."""
    prompt = ChatPromptTemplate.from_messages([("system", "Use: {facts}"), ("human", "{question}")])
    model = FakeListChatModel(responses=["an answer", "another answer"])
    return RunnableLambda(_enrich).with_config(run_name="enrich") | prompt | model | StrOutputParser()


class SpanCounter(SpanProcessor):
    """Counts the spans the app produced (ended), whatever the exporter does with them."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span) -> None:
        self.ended += 1


@dataclass
class AppStats:
    calls: int = 0
    raised: int = 0
    max_wait_s: float = 0.0

    def merge(self, other: "AppStats") -> None:
        self.calls += other.calls
        self.raised += other.raised
        self.max_wait_s = max(self.max_wait_s, other.max_wait_s)


class App:
    def __init__(self, exporter, service: str = "faults-app") -> None:
        self.counter = SpanCounter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
        self.provider.add_span_processor(self.counter)
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.handler = OpenTelemetryCallbackHandler(tracer_provider=self.provider)
        self.chain = chain()
        self.stats = AppStats()

    @property
    def produced(self) -> int:
        return self.counter.ended

    def run(self, calls: int, pace_s: float = 0.0, tag: str = "q") -> AppStats:
        stats = AppStats()
        for i in range(calls):
            t0 = time.perf_counter()
            try:
                self.chain.invoke(f"{tag}{i}", config={"callbacks": [self.handler]})
            except Exception:
                stats.raised += 1
            stats.calls += 1
            stats.max_wait_s = max(stats.max_wait_s, time.perf_counter() - t0)
            if pace_s:
                time.sleep(pace_s)
        self.stats.merge(stats)
        return stats
