"""`spanchain bench serve` runs end to end (real serve process, real Aim repo) and reports spans/s."""

import json
import subprocess
import sys

from eco_support import python_env


def test_serve_benchmark_reports_ingest_and_end_to_end_rates():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from benchmarks.serve import main; sys.exit(main(sys.argv[1:]))",
         "--spans", "300", "--batch", "50", "--spans-per-trace", "6", "--clients", "2", "--gzip", "--json"],
        env=python_env(), capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["spans"] == 300 and result["written_to_aim"] == 300
    assert result["ingest_spans_per_s"] > 0 and result["end_to_end_spans_per_s"] > 0
    assert result["errors"] == []
    assert "written to Aim" in proc.stderr  # progress while it runs


def test_serve_benchmark_splits_traces_over_replicas_sharing_one_aim_server():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from benchmarks.serve import main; sys.exit(main(sys.argv[1:]))",
         "--spans", "300", "--batch", "50", "--spans-per-trace", "6", "--clients", "2", "--replicas", "2", "--json"],
        env=python_env(), capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["aim"] == "aim server"
    assert result["written_to_aim"] == 300 and result["errors"] == []
