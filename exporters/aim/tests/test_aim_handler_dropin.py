"""The drop-in AimCallbackHandler: the seed docs' three scenarios, read back from Aim."""

import importlib.util
import pathlib

from spanchain_aim import AimCallbackHandler
from spanchain_aim.readback import read_runs

_spec = importlib.util.spec_from_file_location("aim_scenarios", pathlib.Path(__file__).with_name("aim_scenarios.py"))
scenarios = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenarios)


def _new_runs(repo, before):
    return [r for r in read_runs(repo) if r.hash not in before]


def test_the_three_seed_scenarios_read_back_correctly(tmp_path):
    repo = str(tmp_path / "aim")
    handler = AimCallbackHandler(repo=repo, experiment_name="scenario 1: OpenAI LLM",
                                 system_tracking_interval=None, log_system_params=False)
    hashes = []

    # Scenario 1: LLM generate, then flush_tracker(langchain_asset=llm) → the next run.
    llm = scenarios.scenario_llm(callbacks=[handler])
    result = llm.generate(scenarios.PROMPTS)
    assert len(result.generations) == 6
    assert handler.get_custom_callback_meta()["llm_starts"] == 6
    hashes.append(handler._run_hash)
    assert handler.flush_tracker(langchain_asset=llm, experiment_name="scenario 2: Chain with multiple SubChains")
    assert handler.get_custom_callback_meta()["llm_starts"] == 0  # reset like the seed

    # Scenario 2: a chain over three inputs.
    chain = scenarios.scenario_chain()
    outputs = chain.batch([{"title": t} for t in scenarios.TITLES], config={"callbacks": [handler]})
    assert sorted(outputs) == [f"synopsis of play {i}" for i in range(3)]
    hashes.append(handler._run_hash)
    assert handler.flush_tracker(langchain_asset=chain, experiment_name="scenario 3: Agent with Tools")

    # Scenario 3: an agent with tools, then finish without reset.
    agent = scenarios.scenario_agent()
    answer = agent.invoke(scenarios.QUESTION, config={"callbacks": [handler]})
    assert answer.startswith("Camila Morrone")
    meta = handler.get_custom_callback_meta()
    assert (meta["tool_starts"], meta["tool_ends"], meta["agent_ends"], meta["llm_starts"]) == (2, 2, 1, 3)
    hashes.append(handler._run_hash)
    assert handler.flush_tracker(langchain_asset=agent, reset=False, finish=True)

    assert len(set(hashes)) == 3
    runs = {r.hash: r for r in read_runs(repo, hashes)}
    s1, s2, s3 = (runs[h] for h in hashes)

    # 1: six prompts and six generations as Texts; the asset's fields and the counters as params.
    assert s1.experiment == "scenario 1: OpenAI LLM"
    assert sorted(s1.texts_of("llm.input")) == sorted(f"[user] {p}" for p in scenarios.PROMPTS)
    assert sorted(s1.texts_of("llm.output")) == sorted(f"[assistant] answer {i}" for i in range(6))
    assert s1.params["responses"] == [f"answer {i}" for i in range(6)]
    assert s1.params["langchain_asset_type"] == "FakeListLLM"
    assert s1.params["callback_meta"]["llm_starts"] == 6 and s1.params["callback_meta"]["llm_ends"] == 6
    assert [step for step, _ in s1.metric_steps("latency_s", run_type="llm")] == list(range(6))
    assert s1.metric_values("counter.llm_starts")  # the drop-in handler's runs keep the seed counters
    assert "__system_params" not in s1.params  # the constructor said no; flush did not override

    # 2: every input and output of the three chain runs (the seed read only "input"/"output").
    assert s2.experiment == "scenario 2: Chain with multiple SubChains"
    assert sorted(s2.texts_of("chain.input", name="synopsis_chain")) == sorted(scenarios.TITLES)
    assert sorted(s2.texts_of("chain.output", name="synopsis_chain")) == [f"synopsis of play {i}" for i in range(3)]
    assert len(s2.texts_of("trace")) == 3
    assert all("synopsis_chain" in t.splitlines()[0] for t in s2.texts_of("trace"))
    assert s2.params["callback_meta"]["chain_starts"] >= 3

    # 3: tool inputs/outputs, agent actions/finish, token metrics and the nested tree.
    assert s3.experiment == "scenario 3: Agent with Tools"
    assert s3.texts_of("tool.output", run_type="tool", name="search") == ["Camila Morrone, 25 years old"]
    assert s3.texts_of("tool.output", run_type="tool", name="calculator") == ["3.9913"]
    actions = s3.texts_of("agent.action")
    assert len(actions) == 2 and actions[0].startswith("tool: search")
    assert s3.texts_of("agent.finish") == ["output: Camila Morrone; 25^0.43 = 3.9913\n\nlog:\nCamila Morrone; 25^0.43 = 3.9913"]
    assert sorted(s3.metric_values("tokens.input")) == [40.0, 41.0, 60.0]
    assert s3.metric_values("trace.tokens.total") == [40 + 41 + 60 + 9 + 9 + 12]
    (tree,) = s3.texts_of("trace")
    lines = tree.splitlines()
    assert lines[0].startswith("invoke_agent AgentExecutor  [chain]")
    children = [line for line in lines[1:] if line.startswith(("├─ ", "└─ "))]
    assert [c.split("  ")[0][3:] for c in children] == [
        "chat GenericFakeChatModel", "execute_tool search", "chat GenericFakeChatModel",
        "execute_tool calculator", "chat GenericFakeChatModel"]
    assert s3.metric_values("counter.tool_starts") == [2.0]  # agent actions are not double counted
    assert s3.params["callback_meta"]["agent_ends"] == 1


def test_flush_keeps_constructor_choices_and_asked_system_params_skip_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123")
    repo = str(tmp_path / "aim")
    handler = AimCallbackHandler(repo=repo, experiment_name="sys", system_tracking_interval=None,
                                 log_system_params=True)
    scenarios.scenario_llm().generate(["hi"], callbacks=[handler])
    first = handler._run_hash
    handler.flush_tracker()  # defaults must not switch system tracking on or params off
    scenarios.scenario_llm().generate(["again"], callbacks=[handler])
    second = handler._run_hash
    handler.flush_tracker(reset=False, finish=True)
    runs = {r.hash: r for r in read_runs(repo, [first, second])}
    for run in runs.values():
        env = run.params["__system_params"]["env_variables"]
        assert "MY_SERVICE_TOKEN" not in env and "PATH" in env
        assert not [m for (m, _ctx) in run.metrics if m.startswith("__system__")]
    assert runs[second].texts_of("llm.input") == ["[user] again"]


def test_setup_ignore_flags_and_a_broken_call_never_raise(tmp_path):
    handler = AimCallbackHandler(repo=str(tmp_path / "aim"), system_tracking_interval=None,
                                 log_system_params=False)
    handler.setup(team="search", openai_api_key="sk-live")
    handler.on_llm_start({}, ["seed-style call without run_id"])  # logged, not raised
    handler.ignore_llm_ = True
    assert handler.ignore_llm is True
    scenarios.scenario_llm().generate(["ignored"], callbacks=[handler])
    assert handler.get_custom_callback_meta()["llm_starts"] == 1  # only the direct call counted
    run_hash = handler._run_hash
    handler._run.track(3.0, name="user.metric", step=1)
    handler.flush_tracker(reset=False, finish=True)
    (run,) = read_runs(str(tmp_path / "aim"), [run_hash])
    assert run.params["team"] == "search" and run.params["openai_api_key"] == "<redacted>"
    assert run.metric_steps("user.metric") == [(1, 3.0)]
    assert run.texts_of("llm.input") == []
