"""`spanchain bench core --quick` runs and its table names every variant and workload.

Speed is measured by the benchmark, not asserted here. It runs in a child process because the
upstream peer is measured through its instrumentor, which patches LangChain while it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks import core

VARIANT_NAMES = ["no-op handler", "floor handler", "spanchain", "otel genai-langchain", "openllmetry", "openinference"]
WORKLOADS = ["chain", "tool_loop", "stream", "async", "graph"]


def _bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_quick_table_has_every_variant_and_workload(tmp_path):
    out = tmp_path / "bench.json"
    proc = _bench("core", "--quick", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for workload in WORKLOADS:
        assert any(line.startswith(f"{workload}: ") for line in table.splitlines()), workload
    rows = [line.strip() for line in table.splitlines() if line.startswith("  ")]
    for name in VARIANT_NAMES:
        # one row per workload: measured, or marked as not installed
        assert sum(1 for row in rows if row.startswith(name + " ")) == len(WORKLOADS), name
    assert table.count("target: spanchain <=") == len(WORKLOADS)
    assert "targets: " in table and ("-> PASS" in table or "-> FAIL" in table)

    results = json.loads(out.read_text())
    assert [w["key"] for w in results["workloads"]] == WORKLOADS
    for w in results["workloads"]:
        for clock in ("cpu", "wall"):
            assert {"noop", "floor", "spanchain"} <= set(w["clocks"][clock]["variants"])
        # spanchain and the floor handler see the same run tree: one span per LangChain run
        assert w["census"]["spanchain"]["spans"] == w["census"]["floor"]["spans"] > 0
        assert w["census"]["noop"]["spans"] == 0
        assert w["census"]["spanchain"]["attributes"] > 0


def test_bench_dispatch_defaults_to_core_and_reports_missing_benchmarks(capsys):
    import benchmarks as bench

    assert bench.SUBCOMMANDS["core"][0] == core.__name__
    assert bench.main(["--help"]) == 0
    assert "core" in capsys.readouterr().out
    assert bench.main(["no-such-benchmark"]) == 2
    for name, (module, _) in bench.SUBCOMMANDS.items():
        if name == "core":
            continue
        try:
            __import__(module)
        except ImportError:
            assert bench.main([name, "--help"]) == 2
            assert "not available" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["bench", "core", "--help"], ["bench", "--help"]])
def test_cli_routes_bench_to_the_dispatcher(argv, capsys):
    from spanchain import cli

    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse --help
        code = exc.code
    assert code == 0
    out = capsys.readouterr().out
    assert "bench" in out


def test_split_accounts_for_spanchain_time_and_restores_the_sdk(tmp_path):
    """--split times the floor's and spanchain's callbacks and splits spanchain's into SDK calls,
    content work and its own code; the parts add up and every part is really measured."""
    out = tmp_path / "bench.json"
    proc = _bench("core", "--quick", "--no-peers", "--split", "--workloads", "chain,stream", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "where the time goes (--split)" in proc.stdout
    rows = {r["workload"]: r for r in json.loads(out.read_text())["split"]}
    assert set(rows) == {"chain", "stream"}
    for r in rows.values():
        assert r["floor_callbacks_us"] >= r["floor_sdk_us"] > 0
        assert r["spanchain_sdk_us"] > 0 and r["spanchain_content_us"] > 0
        parts = r["spanchain_sdk_us"] + r["spanchain_content_us"] + r["spanchain_own_us"]
        assert abs(parts - r["spanchain_callbacks_us"]) < 0.5


def test_split_leaves_the_sdk_and_content_policy_unpatched():
    from opentelemetry.sdk import trace as sdk

    from benchmarks import split
    from spanchain.content.policy import ContentPolicy

    before = (sdk.Tracer.start_span, sdk.Span.end, sdk.Span.set_attributes, ContentPolicy.render)
    provider, _ = core._pipeline()
    workload = next(w for w in core._build_workloads() if w.key == "chain")
    rows = split.measure([workload], provider, 3)
    assert rows[0]["spanchain_callbacks_us"] > rows[0]["spanchain_sdk_us"] > 0
    assert (sdk.Tracer.start_span, sdk.Span.end, sdk.Span.set_attributes, ContentPolicy.render) == before


def test_bench_memory_prints_retained_memory_per_checkpoint():
    proc = _bench("memory", "--invocations", "300", "--window", "30", "--warm-up", "20", timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "300 sequential invocations" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["30", "75", "150", "225", "300"]
    assert "open runs left in the handler: 0" in out
    assert "-> PASS" in out
