"""The benchmark command runs end to end and reports both sides of the comparison."""

import json

from benchmarks import aim as bench


def test_bench_quick_reports_exporter_and_raw_aim_throughput(capsys, tmp_path):
    code = bench.main(["--quick", "--json", "--repo", str(tmp_path)])
    result = json.loads(capsys.readouterr().out)
    assert code == (0 if result["pass"] else 1)
    assert result["spans"] == 100 and result["aim_calls_per_round"] > result["spans"]
    assert result["exporter_spans_per_s"] > 0 and result["raw_aim_spans_per_s"] > 0
    assert result["ratio"] == result["exporter_seconds"][0]["cpu"] / result["raw_aim_seconds"][0]["cpu"]
