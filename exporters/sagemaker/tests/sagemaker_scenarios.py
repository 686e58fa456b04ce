"""The SageMaker tracking docs' three scenarios, rebuilt offline with langchain_core fake models.

1. an LLM behind a prompt template; 2. a sequential chain of two LLM chains; 3. an agent with
tools (the seed used initialize_agent + llm-math/serpapi; classic agents are gone from
langchain-core, so a tool-calling loop with a fake chat model plays the agent).
"""

from __future__ import annotations

from langchain_core.language_models import FakeListLLM, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

EXPERIMENT = "langchain-sagemaker-tracker"


def scenario_1(config: RunnableConfig) -> str:
    """LLM with a prompt template (the seed: LLMChain(llm, PromptTemplate).run(fact))."""
    llm = FakeListLLM(responses=["Sea otters hold hands while they sleep."])
    prompt = PromptTemplate.from_template(
        "Rewrite the input text based on the following fact.\n\nFact: {fact}\nText:"
    )
    chain = prompt | llm | StrOutputParser()
    return chain.invoke({"fact": "otters"}, config=config)


def scenario_2(config: RunnableConfig) -> str:
    """Sequential chain (the seed: SimpleSequentialChain of two LLMChains)."""
    first = PromptTemplate.from_template("Write a play title about {topic}.") | FakeListLLM(
        responses=["The Last Otter"]
    ) | StrOutputParser()
    second = PromptTemplate.from_template("Write a synopsis for the play titled {title}.") | FakeListLLM(
        responses=["An otter searches the coast for its family."]
    ) | StrOutputParser()
    overall = first | (lambda title: {"title": title}) | second
    return overall.invoke({"topic": "otters"}, config=config)


@tool
def calculator(expression: str) -> str:
    """Evaluate a simple a*b or a+b expression."""
    if "*" in expression:
        a, b = expression.split("*")
        return str(int(a) * int(b))
    a, b = expression.split("+")
    return str(int(a) + int(b))


@tool
def search(query: str) -> str:
    """Search the tiny offline index."""
    return {"age of the captain": "The captain is 42."}.get(query.lower(), "no result")


def _agent_model() -> GenericFakeChatModel:
    steps = [
        ("search", {"query": "age of the captain"}),
        ("calculator", {"expression": "42*2"}),
    ]
    messages = [
        AIMessage(
            content="",
            tool_calls=[{"name": name, "args": args, "id": f"call_{i}", "type": "tool_call"}],
            usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
            response_metadata={"model_name": "fake-agent-model"},
        )
        for i, (name, args) in enumerate(steps)
    ]
    messages.append(
        AIMessage(
            content="Twice the captain's age is 84.",
            usage_metadata={"input_tokens": 30, "output_tokens": 8, "total_tokens": 38},
            response_metadata={"model_name": "fake-agent-model"},
        )
    )
    return GenericFakeChatModel(messages=iter(messages))


def scenario_3(config: RunnableConfig) -> str:
    """An agent with tools: model → tool calls → model, until the model answers."""
    model = _agent_model()
    tools = {"calculator": calculator, "search": search}

    def agent(question: str, config: RunnableConfig) -> str:
        messages = [HumanMessage(content=question)]
        for _ in range(5):
            reply = model.invoke(messages, config=config)
            messages.append(reply)
            if not reply.tool_calls:
                return reply.content
            for call in reply.tool_calls:
                messages.append(tools[call["name"]].invoke(call, config=config))
        return ""

    return RunnableLambda(agent, name="AgentExecutor").invoke(
        "What is twice the age of the captain?", config=config
    )


SCENARIOS = {1: scenario_1, 2: scenario_2, 3: scenario_3}
