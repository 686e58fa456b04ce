"""The exporter against a real Aim repo on disk, read back through Aim's own API."""

import json
import threading
import time

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from spanchain import semconv as sc
from spanchain_aim import AimSpanExporter
from spanchain_aim.readback import read_run, read_runs
from testkit.spans import agent_spans


def _export(exporter, spans):
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.force_flush(60_000)
    exporter.shutdown()


def _ctx_llm():
    return {"run_type": "chat_model", "name": "FakeChat", "model": "fake-gpt"}


def test_session_mode_writes_one_run_with_exact_texts_metrics_steps_params(aim_repo):
    import sys

    spans = agent_spans(2, service="shop")
    exporter = AimSpanExporter(repo=aim_repo, experiment="exp-session", run_per="session")
    stdout_write, stderr_write = sys.stdout.write, sys.stderr.write
    exporter.export(spans)
    assert exporter.force_flush(60_000)
    # The session run is open now; Aim's default terminal capture would have patched these.
    assert (sys.stdout.write, sys.stderr.write) == (stdout_write, stderr_write)
    exporter.shutdown()
    (run_hash,) = exporter.run_hashes
    run = read_run(aim_repo, run_hash)
    assert run.experiment == "exp-session"

    llms = sorted((s for s in spans if s.attributes.get(sc.GEN_AI_INPUT_MESSAGES)), key=lambda s: s.start_time)
    assert len(llms) == 2  # in time order: steps 0, 1
    assert run.text_steps("llm.input", **_ctx_llm()) == [
        (0, "[user] What is 0 + 2?"),
        (1, "[user] What is 1 + 2?"),
    ]
    assert run.texts_of("tool.output", run_type="tool", name="calculator") == ["2", "3"]
    assert run.texts_of("chain.input", run_type="chain", name="calc_agent") == ["What is 0 + 2?", "What is 1 + 2?"]
    assert run.texts_of("retriever.documents")[0] == '[1] id=d1 {"source": "math.txt"}\nAddition adds numbers.'
    assert run.texts_of("agent.finish")[1] == "output: The answer is 3.\n\nlog:\ndone"
    trees = run.texts_of("trace", name="calc_agent")
    assert len(trees) == 2 and trees[0].splitlines()[0].startswith("invoke_agent calc_agent  [chain]")

    model_spans = sorted((s for s in spans if s.attributes.get(sc.LC_RUN_TYPE) == "chat_model"),
                         key=lambda s: s.start_time)
    assert run.metric_steps("tokens.input", **_ctx_llm()) == [
        (i, float(s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS])) for i, s in enumerate(model_spans)]
    assert run.metric_steps("trace.tokens.total", name="calc_agent") == [(0, 54.0), (1, 55.0)]
    assert not [name for (name, _ctx) in run.metrics if name.startswith("counter.")]  # handler-only
    latency = dict(run.metric_steps("latency_s", run_type="tool", name="calculator"))
    tool = min((s for s in spans if s.attributes.get(sc.LC_RUN_TYPE) == "tool"), key=lambda s: s.start_time)
    assert latency[0] == pytest.approx((tool.end_time - tool.start_time) / 1e9)
    assert run.name.startswith("shop · session · 20") and "exp-session" in run.description
    (figures,) = run.figures.values()
    assert [step for step, _ in figures] == [0, 1]
    assert all(len(figure["data"][0]["x"]) == 5 for _, figure in figures)  # one bar per span

    assert run.params["models"]["fake-gpt"]["temperature"] == 0.2
    assert run.params["langchain"]["tools"] == ["calculator"]
    assert run.params["service"]["name"] == "shop"
    assert run.params["spanchain"]["run_per"] == "session"
    assert "__system_params" not in run.params  # Aim's side effects stay off unless asked
    assert not [name for (name, _ctx) in run.metrics if name.startswith("__system__")]


def test_trace_mode_writes_one_run_per_root_with_trace_params(aim_repo):
    spans = agent_spans(3, service="per-trace-svc")
    exporter = AimSpanExporter(repo=aim_repo, run_per="trace")
    _export(exporter, spans)
    assert len(exporter.run_hashes) == 3
    runs = read_runs(aim_repo, exporter.run_hashes)
    roots = {format(s.context.trace_id, "032x"): s for s in spans if not s.attributes.get(sc.LC_PARENT_RUN_ID)}
    assert {r.params["trace"]["trace_id"] for r in runs} == set(roots)
    for run in runs:
        root = roots[run.params["trace"]["trace_id"]]
        assert run.experiment == "per-trace-svc"  # the service name, no experiment configured
        assert run.name.startswith("per-trace-svc · calc_agent · ")
        assert run.description.startswith("LangChain run calc_agent (chain): 5 spans")
        assert run.params["trace"]["root_run_id"] == root.attributes[sc.LC_RUN_ID]
        assert run.params["spanchain"]["run_per"] == "trace"
        question = json.loads(root.attributes[sc.LC_INPUT])["input"]
        assert run.texts_of("chain.input") == [question]
        assert len(run.texts_of("llm.output")) == 2
        assert run.metric_steps("trace.latency_s", name="calc_agent") == [
            (0, pytest.approx((root.end_time - root.start_time) / 1e9))]


def test_rewriting_the_same_spans_overwrites_instead_of_duplicating(aim_repo):
    spans = agent_spans(1)
    exporter = AimSpanExporter(repo=aim_repo, experiment="replay")
    exporter.export(spans)
    assert exporter.force_flush(60_000)
    exporter.export(spans)  # a replay: same span identities
    _export(exporter, [])
    run = read_run(aim_repo, exporter.run_hashes[0])
    assert len(run.texts_of("llm.input")) == 1
    assert len(run.metric_values("latency_s", run_type="tool", name="calculator")) == 1
    assert run.metric_values("trace.tokens.total") == [54.0]


def test_late_span_rerenders_the_trace_in_the_same_run(aim_repo):
    spans = agent_spans(1)
    late = next(s for s in spans if s.attributes.get(sc.LC_RUN_TYPE) == "retriever")
    early = [s for s in spans if s is not late]
    exporter = AimSpanExporter(repo=aim_repo, run_per="trace", trace_grace_s=0.1)
    exporter.export(early)
    assert exporter.force_flush(60_000)
    exporter.export([late])
    _export(exporter, [])
    assert len(exporter.run_hashes) == 1  # the late span resumed the trace's run
    run = read_run(aim_repo, exporter.run_hashes[0])
    (tree,) = run.texts_of("trace")
    assert "retrieval docs" in tree and "execute_tool calculator" in tree
    assert run.texts_of("retriever.query") == ["addition"]
    assert run.metric_values("trace.llm_calls") == [2.0]


def test_spans_without_content_give_no_content_texts_but_all_metrics(aim_repo):
    exporter = AimSpanExporter(repo=aim_repo, experiment="no-content")
    _export(exporter, agent_spans(1, content=False))
    run = read_run(aim_repo, exporter.run_hashes[0])
    assert {name for name, _ in run.texts} <= {"trace", "agent.action", "agent.finish"}
    assert run.metric_values("tokens.total", **_ctx_llm()) == [19.0, 35.0]


def test_system_params_only_when_asked_and_without_secrets(aim_repo, monkeypatch):
    monkeypatch.setenv("SPANCHAIN_TEST_API_KEY", "sk-very-secret")
    monkeypatch.setenv("SPANCHAIN_TEST_PLAIN", "visible")
    exporter = AimSpanExporter(repo=aim_repo, experiment="sysparams", log_system_params=True)
    _export(exporter, agent_spans(1))
    run = read_run(aim_repo, exporter.run_hashes[0])
    env = run.params["__system_params"]["env_variables"]
    assert env["SPANCHAIN_TEST_PLAIN"] == "visible"
    assert "SPANCHAIN_TEST_API_KEY" not in env and "sk-very-secret" not in json.dumps(run.params)


def test_export_never_blocks_and_never_raises_when_the_repo_is_unusable(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    exporter = AimSpanExporter(repo=str(blocker / "repo"), retry_backoff_s=0.01)
    spans = agent_spans(1)
    t0 = time.monotonic()
    assert exporter.export(spans) in (SpanExportResult.SUCCESS, SpanExportResult.FAILURE)
    assert time.monotonic() - t0 < 0.1
    assert exporter.force_flush(30_000) is False or exporter.stats.dropped == len(spans)
    exporter.shutdown()
    st = exporter.stats
    assert st.dropped_misconfigured == len(spans) and st.retries == 0 and st.written == 0
    assert st.balanced()
    failures = [r for r in caplog.records if "aim exporter" in r.getMessage()]
    # Named once: the setting (the argument) and the path, not a bare errno after retries.
    assert any("repo=" in r.getMessage() and "not-a-dir" in r.getMessage() for r in failures)


def test_odd_and_huge_values_are_written_safely(aim_repo):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("weird \x00 name " + "n" * 500) as span:
        span.set_attributes({sc.LC_RUN_ID: "r", sc.LC_ROOT_RUN_ID: "r", sc.LC_RUN_TYPE: "chain",
                             sc.LC_INPUT: "x" * 300_000, sc.LC_OUTPUT: "{not json",
                             sc.GEN_AI_USAGE_INPUT_TOKENS: "many", sc.LC_DESCENDANTS: 0})
    exporter = AimSpanExporter(repo=aim_repo, experiment="odd", max_text_chars=10_000)
    _export(exporter, memory.get_finished_spans())
    run = read_run(aim_repo, exporter.run_hashes[0])
    (text,) = run.texts_of("chain.input")
    assert len(text) == 10_000 and text.endswith("cut by spanchain]")
    assert run.texts_of("chain.output") == ["{not json"]
    (ctx,) = [c for c in run.contexts("latency_s")]
    assert "\x00" not in ctx["name"] and len(ctx["name"]) <= 100


def test_concurrent_exports_from_many_threads_land_in_one_run(aim_repo):
    exporter = AimSpanExporter(repo=aim_repo, experiment="threads")
    batches = [agent_spans(2) for _ in range(4)]
    threads = [threading.Thread(target=exporter.export, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _export(exporter, [])
    run = read_run(aim_repo, exporter.run_hashes[0])
    assert len(run.texts_of("trace")) == 8
    assert exporter.stats.dropped == 0


def test_registered_as_aim_entry_point_and_reads_env(monkeypatch, aim_repo):
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "aim"]
    monkeypatch.setenv("OTEL_EXPORTER_AIM_REPO", aim_repo)
    monkeypatch.setenv("OTEL_EXPORTER_AIM_RUN_PER", "trace")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "env-service")
    exporter = ep.load()()
    assert (exporter.config.repo, exporter.config.run_per, exporter.config.experiment) == (
        aim_repo, "trace", "env-service")
    _export(exporter, agent_spans(1))
    (run,) = read_runs(aim_repo, exporter.run_hashes)
    assert run.experiment == "env-service"


def test_aimql_queries_from_the_docs_find_the_data(aim_repo):
    from aim import Repo

    exporter = AimSpanExporter(repo=aim_repo, experiment="aimql-docs")
    _export(exporter, agent_spans(1))
    (run_hash,) = exporter.run_hashes
    read_run(aim_repo, run_hash)  # indexes the run, as `aim up` would
    repo = Repo.from_path(aim_repo)
    mine = f'run.hash == "{run_hash}"'
    texts = repo.query_texts(f'{mine} and texts.name in ["llm.input", "llm.output"] '
                             f'and texts.context.model == "fake-gpt"', report_mode=0)
    assert sorted(t.name for t in texts.iter()) == ["llm.input", "llm.output"]
    tools = repo.query_texts(f'{mine} and texts.name.startswith("tool.") and texts.context.name == "calculator"',
                             report_mode=0)
    assert sorted(t.name for t in tools.iter()) == ["tool.input", "tool.output"]
    latency = repo.query_metrics(f'{mine} and metric.name == "latency_s" and metric.context.run_type == "chat_model"',
                                 report_mode=0)
    assert [m.context.to_dict()["model"] for m in latency.iter()] == ["fake-gpt"]
    assert len(list(repo.query_metrics(f'{mine} and metric.name.startswith("trace.")', report_mode=0).iter())) == 7
    figures = repo.query_figure_objects(f'{mine} and figures.name == "trace.waterfall"', report_mode=0)
    assert [f.name for f in figures.iter()] == ["trace.waterfall"]
    runs = repo.query_runs('run.experiment == "aimql-docs" and run.models["fake-gpt"].temperature == 0.2',
                           report_mode=0)
    assert [r.run.hash for r in runs.iter_runs()] == [run_hash]


def test_too_many_distinct_names_fold_into_other(aim_repo):
    exporter = AimSpanExporter(repo=aim_repo, experiment="fold", max_contexts=3)
    _export(exporter, agent_spans(1))
    run = read_run(aim_repo, exporter.run_hashes[0])
    names = {dict(ctx).get("name") for (seq, ctx) in run.metrics if seq == "latency_s"}
    assert "(other)" in names
    all_names = {dict(ctx).get("name") for (_seq, ctx) in list(run.metrics) + list(run.texts)}
    assert len(all_names - {"(other)"}) <= 3  # only the first three contexts kept their names


def test_spans_kept_in_the_spool_while_aim_is_unreachable_reach_aim_after_a_restart(aim_repo, tmp_path):
    from testkit.aim_server import free_port

    spool = str(tmp_path / "spool")
    spans = agent_spans(2)
    down = AimSpanExporter(repo=f"aim://127.0.0.1:{free_port()}", spool_dir=spool, retry_timeout_s=0.2,
                           shutdown_timeout_s=5)
    down.export(spans)
    down.force_flush(5_000)
    down.shutdown()
    assert down.traces_written == 0 and down.stats.dropped == 0  # kept, not dropped
    assert down.stats.waiting == len(spans) and down.stats.balanced()

    restarted = AimSpanExporter(repo=aim_repo, experiment="replayed", spool_dir=spool)
    assert restarted.force_flush(60_000)
    restarted.shutdown()
    assert restarted.stats.replayed == len(spans)
    run = read_run(aim_repo, restarted.run_hashes[0])
    assert sorted(run.texts_of("tool.output")) == ["2", "3"]
    assert len(run.texts_of("trace")) == 2
    _assert_dense(run)  # a replay from a spool dir by a new process: steps 0..n-1 too


def test_asking_for_the_run_hash_does_not_cut_a_running_trace_short(aim_repo):
    spans = agent_spans(1)
    root = next(s for s in spans if not s.attributes.get(sc.LC_PARENT_RUN_ID))
    children = [s for s in spans if s is not root]
    exporter = AimSpanExporter(repo=aim_repo, experiment="hash-mid-trace")
    exporter.export(children)  # the root run is still going
    run_hash = exporter.session_run_hash()
    assert run_hash and exporter.traces_written == 0
    exporter.export([root])
    _export(exporter, [])
    assert exporter.traces_written == 1  # written once, whole
    run = read_run(aim_repo, run_hash)
    assert run.metric_values("trace.llm_calls") == [2.0]


def test_a_run_aim_fails_to_create_leaves_no_threads_or_run_lock_behind(tmp_path):
    import sqlite3

    from aim import Repo

    from spanchain_aim.config import resolve_config
    from spanchain_aim.runs import open_aim_run

    Repo.from_path(str(tmp_path), init=True)
    holder = sqlite3.connect(str(tmp_path / ".aim" / "run_metadata.sqlite"), timeout=1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # Aim's constructor fails after starting its reporters
    try:
        before = set(threading.enumerate())
        with pytest.raises(Exception):
            open_aim_run(resolve_config(repo=str(tmp_path)), "locked")
        assert set(threading.enumerate()) - before == set()
        assert not list((tmp_path / ".aim" / "locks").glob("*.softlock"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _assert_dense(run):
    """Every sequence of the run (metrics, Texts, Figures) holds steps 0..n-1: no gap, no duplicate."""
    sequences = {**run.metrics, **run.texts, **run.figures}
    assert sequences
    for key, points in sequences.items():
        assert [step for step, _ in points] == list(range(len(points))), key


class _HalfWrites:
    """Make `RunWriter.track` write the first half of a trace's records into Aim, then fail:
    the worst case for a retry (part of the trace is in the run already)."""

    def __init__(self, monkeypatch, failures: int):
        from spanchain_aim import runs

        self.left = failures
        original = runs.RunWriter.track

        def track(writer, records, trace=""):
            records = list(records)
            if self.left > 0:
                self.left -= 1
                original(writer, records[: len(records) // 2], trace)
                raise RuntimeError("injected: the write broke half-way")
            return original(writer, records, trace)

        monkeypatch.setattr(runs.RunWriter, "track", track)


@pytest.mark.parametrize("run_per", ["session", "trace"])
def test_steps_are_dense_after_retries_replays_and_late_spans(aim_repo, monkeypatch, run_per):
    spans = agent_spans(3)
    by_trace = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    first, second, third = by_trace.values()
    late = next(s for s in third if s.attributes.get(sc.LC_RUN_TYPE) == "retriever")
    exporter = AimSpanExporter(repo=aim_repo, experiment=f"dense-{run_per}", run_per=run_per,
                               trace_grace_s=0.05, retry_timeout_s=5, retry_backoff_s=0.01)
    half = _HalfWrites(monkeypatch, failures=1)
    exporter.export(first)  # written half, fails, retried whole
    assert exporter.force_flush(60_000)
    assert half.left == 0 and exporter.traces_written == 1
    exporter.export(second)
    exporter.export(second)  # delivered twice (a replay)
    exporter.export([s for s in third if s is not late])
    assert exporter.force_flush(60_000)
    exporter.export([late])  # a late span re-renders its trace
    exporter.export(first)  # and the first trace comes back once more
    _export(exporter, [])
    runs = read_runs(aim_repo, exporter.run_hashes)
    assert len(runs) == (1 if run_per == "session" else 3)
    for run in runs:
        _assert_dense(run)
    if run_per == "session":
        (run,) = runs
        assert len(run.texts_of("trace")) == 3 and len(run.metric_values("trace.latency_s")) == 3
        assert len(run.metric_values("latency_s", run_type="tool", name="calculator")) == 3
        assert len(run.texts_of("retriever.query")) == 3
        (figures,) = run.figures.values()
        assert [len(f["data"][0]["x"]) for _, f in figures] == [5, 5, 5]
    else:
        assert sorted(len(r.texts_of("retriever.query")) for r in runs) == [1, 1, 1]
        assert all(len(r.metric_values("latency_s")) == 5 for r in runs)


def test_a_trace_replayed_from_the_spool_into_the_same_run_keeps_its_steps(aim_repo, monkeypatch, tmp_path):
    spans = agent_spans(2)
    exporter = AimSpanExporter(repo=aim_repo, experiment="dense-spool", spool_dir=str(tmp_path / "spool"),
                               retry_timeout_s=0, retry_backoff_s=0.01)
    exporter.session_run_hash()
    half = _HalfWrites(monkeypatch, failures=1)
    exporter.export(spans)
    exporter.force_flush(5_000)  # one trace half-written, given up on, kept in the spool (and probed again)
    assert half.left == 0 and exporter.stats.retries == 0 and exporter.stats.balanced()
    deadline = time.monotonic() + 30
    while exporter.traces_written < 2 and time.monotonic() < deadline:
        exporter.force_flush(5_000)  # the spool hands the trace back; it is written whole
        time.sleep(0.05)
    _export(exporter, [])
    assert exporter.traces_written == 2 and exporter.stats.spool_pending == 0
    assert exporter.stats.dropped == 0 and exporter.stats.balanced()
    (run,) = read_runs(aim_repo, exporter.run_hashes)
    _assert_dense(run)
    assert len(run.texts_of("trace")) == 2 and len(run.metric_values("latency_s", run_type="tool")) == 2
