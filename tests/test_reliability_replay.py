""""Nothing lost with a spool" (the slow tier: `make test-slow`, and rows of `make chaos`).

Backend down from the start, three app calls, `TracerProvider.shutdown()` gives up on the
writer, a new exporter on the same spool with the backend up: every span delivered exactly once,
20 times in a row, for SageMaker (nothing listening / a listener that never answers) and for Aim
(local repo locked, local repo on a volume not mounted yet, `aim://` with nothing listening).
See faults/replay_rows.py for what each round checks.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults import replay_rows  # noqa: E402

SCENARIOS = {
    "sagemaker endpoint down": replay_rows.sagemaker_down,
    "aim repo locked": replay_rows.aim_locked,
    "aim repo missing": replay_rows.aim_missing,
    "aim remote down": replay_rows.aim_remote_down,
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_spooled_spans_survive_a_stop_with_the_backend_down_every_time(name):
    row = SCENARIOS[name](replay_rows.ROUNDS)
    print(row.as_dict())
    assert not row.failed, row.note
    assert row.ok, row.as_dict()
    assert row.produced == row.found == row.written == replay_rows.ROUNDS * replay_rows.CALLS * 6
