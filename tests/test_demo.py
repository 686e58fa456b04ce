"""`spanchain demo`, the README's main job: run it as a user would and read its data back."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_exports_to_terminal_aim_and_sagemaker_emulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OTEL_"))}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")  # no AWS here
    spanchain = os.path.join(os.path.dirname(sys.executable), "spanchain")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: demo/
    out = subprocess.run([sys.executable, "-m", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    # the tree: one trace with the workflow root, the agent, tools, retriever, stream and the error
    assert "invoke_workflow research_session" in text
    for piece in ("invoke_agent research_agent", "execute_tool multiply", "retrieval NotesRetriever",
                  "ttfc", "ERROR ValueError: glossary needs a term"):
        assert piece in text, piece
    # Aim: the printed run hash is a real run in the printed repo, read back through Aim's API
    run_hash = re.search(r"run hash: ([0-9a-f]{24})", text).group(1)
    repo = re.search(r"Aim repo: (\S+)", text).group(1)
    assert repo == str(tmp_path / "spanchain-demo" / "aim")
    from spanchain_aim.readback import read_run

    run = read_run(repo, run_hash)
    assert run.experiment == "spanchain-demo"
    trace_texts = [t for (name, _), values in run.texts.items() if name == "trace" for _, t in values]
    assert any("research_session" in t and "glossary" in t for t in trace_texts)
    assert run.name.startswith("spanchain-demo · session · ")
    # the printed next steps run as printed: this install's spanchain, the run's page, queries
    command = re.search(r"open it:  (\S+) ui --repo (\S+)", text)
    assert command and os.access(command.group(1), os.X_OK) and command.group(2) == repo
    assert f"this run: http://127.0.0.1:43800/runs/{run_hash}" in text
    assert 'Metrics  metric.name == "latency_s"' in text and 'Figures  figures.name == "trace.waterfall"' in text
    # SageMaker: labelled as the emulator, with the experiment, run and S3 locations, and read back
    assert "EMULATOR (moto at http://127.0.0.1:" in text
    assert re.search(r"experiment: spanchain-demo\s+run: demo-", text)
    assert "s3://" in text
    counts = re.search(r"read back: (\d+) parameters, (\d+) metrics", text)
    assert counts and int(counts.group(1)) > 0 and int(counts.group(2)) > 0
    assert "status Completed" in text  # read back after the exporter closed the session run
    # what the demo leaves behind, once the emulator is gone
    demo_dir = tmp_path / "spanchain-demo"
    spans_file = demo_dir / "spans.jsonl"
    assert f"spanchain view {spans_file}" in text
    run_dirs = list((demo_dir / "sagemaker" / "spanchain-demo").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name.startswith("demo-") and str(run_dirs[0]) in text
    import json

    tc = json.loads((run_dirs[0] / "run.json").read_text())
    assert tc["Status"]["PrimaryStatus"] == "Completed" and tc["Parameters"] and tc["Metrics"]
    assert json.loads((run_dirs[0] / "experiment.json").read_text())["ExperimentName"] == "spanchain-demo"
    trace_docs = list((run_dirs[0] / "s3" / "traces").glob("*.json"))
    assert trace_docs
    spanchain_cmd = [spanchain, "view"]
    for source in (spans_file, *trace_docs):
        shown = subprocess.run([*spanchain_cmd, str(source)], env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "invoke_workflow research_session" in shown.stdout and "ERROR ValueError" in shown.stdout
    # the Aim repo is a directory: a clear pointer instead of "Is a directory"
    shown = subprocess.run([*spanchain_cmd, repo], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 2 and "Is a directory" not in shown.stderr
    assert f"aim up --repo {repo}" in shown.stderr and str(spans_file) in shown.stderr
