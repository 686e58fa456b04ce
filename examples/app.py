"""An ordinary LangChain app with offline fake models: no spanchain, no OpenTelemetry in it.

Run it traced without changing a line:

    OTEL_TRACES_EXPORTER=spanchain_console spanchain run -- python examples/app.py
    OTEL_TRACES_EXPORTER=aim,otlp opentelemetry-instrument python examples/app.py

Per question it runs one chain: retrieve notes → prompt → chat model → parse, then a tool.
The last question asks for a tool that fails, so every trace kind (ok, error) shows up.
"""

from __future__ import annotations

import argparse

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool

NOTES = [
    Document(page_content="spans carry the model, the tokens and the latency", id="note-1"),
    Document(page_content="aim shows prompts and completions as texts", id="note-2"),
    Document(page_content="sagemaker experiments keep one run per trace", id="note-3"),
]


class NotesRetriever(BaseRetriever):
    """Returns the notes sharing a word with the question."""

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        words = set(query.lower().split())
        return [d for d in NOTES if words & set(d.page_content.split())]


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    if not text.strip():
        raise ValueError("nothing to count")
    return len(text.split())


def fake_model(answers: list[str]) -> GenericFakeChatModel:
    replies = [
        AIMessage(
            content=text,
            usage_metadata={"input_tokens": 12 + i, "output_tokens": len(text.split()), "total_tokens": 12 + i + len(text.split())},
            response_metadata={"model_name": "fake-chat-1", "finish_reason": "stop"},
        )
        for i, text in enumerate(answers)
    ]
    return GenericFakeChatModel(messages=iter(replies))


def build_chain(model: GenericFakeChatModel):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these notes:\n{notes}"), ("human", "{question}")]
    )
    notes = NotesRetriever() | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs), name="join_notes")
    return ({"notes": notes, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()).with_config(
        run_name="answer_question"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=2, help="how many questions to ask (default 2)")
    args = parser.parse_args()
    questions = [f"what do spans carry {i}?" for i in range(args.questions)]
    chain = build_chain(fake_model([f"spans carry the model and tokens ({i})" for i in range(len(questions))]))
    for question in questions:
        answer = chain.invoke(question)
        print(f"Q: {question}\nA: {answer} ({word_count.invoke({'text': answer})} words)")
    try:
        word_count.invoke({"text": "   "})
    except ValueError as exc:
        print(f"tool failed as expected: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
