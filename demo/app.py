"""The demo's LangChain app: offline fake models, nothing about tracing in it.

One "research assistant" session: a retriever finds notes, a tool-calling model uses a
calculator and a glossary through ToolCalls, the final answer is streamed, and a last step fails
(a tool given no input), so every kind of span shows up: workflow, agent, chat, tool, retriever,
prompt, parser, stream and error.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

NOTES = [
    Document(page_content="spanchain turns every langchain run into a span", id="note-1", metadata={"source": "readme"}),
    Document(page_content="aim keeps prompts and completions as texts", id="note-2", metadata={"source": "aim"}),
    Document(page_content="sagemaker experiments keep parameters metrics and artifacts", id="note-3", metadata={"source": "sagemaker"}),
]


class NotesRetriever(BaseRetriever):
    """Returns the notes that share a word with the query."""

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        words = set(query.lower().split())
        return [d for d in NOTES if words & set(d.page_content.split())]


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@tool
def glossary(term: str) -> str:
    """Explain a term."""
    if not term.strip():
        raise ValueError("glossary needs a term")
    return {"span": "one timed operation in a trace", "trace": "a tree of spans"}.get(term.lower(), "not in the glossary")


TOOLS = {"multiply": multiply, "glossary": glossary}


def _usage(i: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


def _agent_model() -> GenericFakeChatModel:
    calls = [("multiply", {"a": 6, "b": 7}), ("glossary", {"term": "span"})]
    replies = [
        AIMessage(
            content="",
            tool_calls=[{"name": name, "args": args, "id": f"call_{i}", "type": "tool_call"}],
            usage_metadata=_usage(42 + 10 * i, 9),
            response_metadata={"model_name": "fake-gpt-demo", "finish_reason": "tool_calls"},
        )
        for i, (name, args) in enumerate(calls)
    ]
    replies.append(
        AIMessage(
            content="6 times 7 is 42, and a span is one timed operation in a trace.",
            usage_metadata=_usage(71, 15),
            response_metadata={"model_name": "fake-gpt-demo", "finish_reason": "stop"},
        )
    )
    return GenericFakeChatModel(messages=iter(replies))


def _writer_model(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(
        messages=iter([AIMessage(content=text, usage_metadata=_usage(35, len(text.split())),
                                 response_metadata={"model_name": "fake-gpt-demo", "finish_reason": "stop"})])
    )


def research_agent(question: str, config: RunnableConfig) -> str:
    """A small tool-calling loop: the model asks for tools via ToolCalls until it answers."""
    model = _agent_model()
    messages: list[Any] = [SystemMessage(content="You answer with tools."), HumanMessage(content=question)]
    for _ in range(5):
        reply = model.invoke(messages, config=config)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.content)
        for call in reply.tool_calls:
            messages.append(TOOLS[call["name"]].invoke(call, config=config))
    return "gave up"


def summary_chain(answer_text: str):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Summarise for a busy engineer."), ("human", "Notes: {notes}\nQuestion: {question}")]
    )
    return prompt | _writer_model(answer_text) | StrOutputParser()


def _research_session(question: str, config: RunnableConfig) -> dict[str, Any]:
    """The whole session as one run, so it is one trace. Errors stay inside the demo."""
    results: dict[str, Any] = {}
    notes = NotesRetriever().invoke(question, config=config)
    results["notes"] = [d.id for d in notes]

    agent = RunnableLambda(research_agent, name="research_agent")
    results["agent"] = agent.invoke("What is 6 times 7, and what is a span?", config=config)
    _say(f"  agent answered: {results['agent']}")

    streamed = []
    chain = summary_chain("spanchain records each langchain run as a span and ships it to aim and sagemaker")
    for chunk in chain.stream({"notes": ", ".join(d.page_content for d in notes), "question": question}, config=config):
        streamed.append(chunk)
    results["summary"] = "".join(streamed)
    _say(f"  streamed summary ({len(streamed)} chunks): {results['summary']}")

    try:
        glossary.invoke({"term": " "}, config=config)
    except ValueError as exc:
        results["failed_step"] = str(exc)
        _say(f"  a step failed on purpose: {exc}")
    return results


def _say(line: str) -> None:
    print(line, flush=True)


def session():
    """The demo app as one runnable: `session().invoke(question, config=...)`."""
    return RunnableLambda(_research_session, name="research_session")
