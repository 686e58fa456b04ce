"""Small offline LangChain apps built from langchain_core's fake models (no network)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import FakeListLLM, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool


def chat_model(*texts: str, usage: bool = True, model_name: str = "fake-chat-1") -> GenericFakeChatModel:
    messages = []
    for i, text in enumerate(texts):
        meta = {"model_name": model_name, "finish_reason": "stop"}
        usage_md = (
            {"input_tokens": 10 + i, "output_tokens": len(text.split()), "total_tokens": 10 + i + len(text.split())}
            if usage
            else None
        )
        messages.append(AIMessage(content=text, response_metadata=meta, usage_metadata=usage_md))
    return GenericFakeChatModel(messages=iter(messages))


def tool_calling_model(calls: list[tuple[str, dict]], final: str) -> GenericFakeChatModel:
    messages = [
        AIMessage(
            content="",
            tool_calls=[{"name": name, "args": args, "id": f"call_{i}", "type": "tool_call"}],
            usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
            response_metadata={"model_name": "fake-tools-1", "finish_reason": "tool_calls"},
        )
        for i, (name, args) in enumerate(calls)
    ]
    messages.append(
        AIMessage(
            content=final,
            usage_metadata={"input_tokens": 30, "output_tokens": 7, "total_tokens": 37},
            response_metadata={"model_name": "fake-tools-1", "finish_reason": "stop"},
        )
    )
    return GenericFakeChatModel(messages=iter(messages))


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def lookup(term: str) -> str:
    """Look a term up in the tiny offline encyclopedia."""
    return {"otel": "OpenTelemetry", "aim": "an experiment tracker"}.get(term.lower(), "unknown")


TOOLS = {"multiply": multiply, "lookup": lookup}


class KeywordRetriever(BaseRetriever):
    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = set(query.lower().split())
        return [d for d in self.docs if words & set(d.page_content.lower().split())]


def retriever() -> KeywordRetriever:
    return KeywordRetriever(
        docs=[
            Document(page_content="spanchain turns runs into spans", metadata={"source": "a"}, id="doc-a"),
            Document(page_content="aim stores texts and metrics", metadata={"source": "b"}, id="doc-b"),
        ]
    )


def simple_chain(*answers: str):
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "{question}")])
    return prompt | chat_model(*answers) | StrOutputParser()


def run_tool_loop(model, config: dict[str, Any], question: str, max_steps: int = 10) -> str:
    """A minimal agent loop: call the model, run requested tools via ToolCall, repeat."""
    from langchain_core.messages import HumanMessage

    bound = model
    messages: list[Any] = [HumanMessage(content=question)]
    for _ in range(max_steps):
        reply = bound.invoke(messages, config=config)
        messages.append(reply)
        if not reply.tool_calls:
            return reply.content
        for call in reply.tool_calls:
            messages.append(TOOLS[call["name"]].invoke(call, config=config))
    return ""


def fake_llm(*responses: str) -> FakeListLLM:
    return FakeListLLM(responses=list(responses))


class UsageStreamingChatModel(GenericFakeChatModel):
    """Streams word chunks and, like providers with stream usage on, reports usage in the last chunk."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        words = next(self.messages).content.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=word + ("" if last else " "),
                    usage_metadata={"input_tokens": 10, "output_tokens": len(words), "total_tokens": 10 + len(words)} if last else None,
                    response_metadata={"model_name": "fake-stream-1", "finish_reason": "stop"} if last else {},
                )
            )
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def streaming_model(text: str) -> UsageStreamingChatModel:
    return UsageStreamingChatModel(messages=iter([AIMessage(content=text)]))
