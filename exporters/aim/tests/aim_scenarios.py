"""The Aim tracking docs' three scenarios, offline, with langchain_core fake models.

1. an LLM `generate` over six prompts; 2. a chain over three inputs; 3. an agent with tools
(the seed used initialize_agent with serpapi and llm-math; classic agents are gone from
langchain-core, so a tool-calling loop that reports agent actions plays the agent).
"""

from __future__ import annotations

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.language_models import FakeListLLM, GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

PROMPTS = ["Tell me a joke", "Tell me a poem"] * 3
TITLES = ["documentary about good video games that push the boundary of game design",
          "cocaine bear vs lion king", "the whole world is one big pizza"]
QUESTION = "Who is Leo DiCaprio's girlfriend? What is her current age raised to the 0.43 power?"


def scenario_llm(callbacks=None):
    """The docs' LLM, with the handler passed to its constructor."""
    return FakeListLLM(responses=[f"answer {i}" for i in range(len(PROMPTS))], callbacks=callbacks)


def scenario_chain():
    """A synopsis chain (prompt | llm | parser) applied to three titles."""
    prompt = PromptTemplate.from_template(
        "You are a playwright. Given the title of play, write a synopsis for that title.\nTitle: {title}")
    llm = FakeListLLM(responses=[f"synopsis of play {i}" for i in range(len(TITLES))])
    return (prompt | llm | StrOutputParser()).with_config(run_name="synopsis_chain")


@tool
def search(query: str) -> str:
    """Look a question up in a tiny offline index."""
    return "Camila Morrone, 25 years old" if "girlfriend" in query.lower() else "no result"


@tool
def calculator(expression: str) -> str:
    """Raise a number to a power: 'a^b'."""
    base, power = expression.split("^")
    return f"{float(base) ** float(power):.4f}"


def _agent_model() -> GenericFakeChatModel:
    calls = [("search", {"query": "Leo DiCaprio girlfriend"}), ("calculator", {"expression": "25^0.43"})]
    messages = [
        AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"call_{i}", "type": "tool_call"}],
                  usage_metadata={"input_tokens": 40 + i, "output_tokens": 9, "total_tokens": 49 + i})
        for i, (n, a) in enumerate(calls)
    ]
    messages.append(AIMessage(content="Camila Morrone; 25^0.43 = 3.9913",
                              usage_metadata={"input_tokens": 60, "output_tokens": 12, "total_tokens": 72}))
    return GenericFakeChatModel(messages=iter(messages))


def scenario_agent():
    """A runnable agent: model → tool calls (reported as agent actions) → model answer."""
    model = _agent_model()
    tools = {"search": search, "calculator": calculator}

    def agent(question: str, config: RunnableConfig, run_manager) -> str:
        messages = [HumanMessage(content=question)]
        for _ in range(5):
            reply = model.invoke(messages, config=config)
            messages.append(reply)
            if not reply.tool_calls:
                run_manager.on_agent_finish(AgentFinish({"output": reply.content}, log=reply.content))
                return reply.content
            for call in reply.tool_calls:
                run_manager.on_agent_action(AgentAction(call["name"], call["args"], log=f"calling {call['name']}"))
                result = tools[call["name"]].invoke(call["args"], config=config)
                messages.append(ToolMessage(content=result, tool_call_id=call["id"]))
        return ""

    return RunnableLambda(agent, name="AgentExecutor")
