"""The fast rows of the fault table (`python -m faults --fast`), inside `make test`.

Each row runs an instrumented LangChain app while one real fault hits the backend (Aim metadata
DB locked by another process, SageMaker answering throttling or 500s through our proxy, the spool's
filesystem full, the app SIGKILLed and restarted), then reads the backend back; each row checks the exporters' books (accepted == written + waiting + dropped)
and exactly-once delivery. The full table, with the slower rows, is `python -m faults`.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.__main__ import rows  # noqa: E402

FAST = [(name, run) for name, fast, run in rows() if fast]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name,run", FAST, ids=[n for n, _ in FAST])
def test_fault_row(name, run):
    row = run()
    print(row.as_dict())
    assert row.produced > 0
    assert row.raised == 0, row.note  # no exception ever reached the app
    assert row.found + row.dropped + row.waiting == row.produced, row.as_dict()  # every span accounted for
    assert row.balanced, row.as_dict()  # accepted == written + waiting + dropped in every exporter
    assert row.exactly_once, row.as_dict()  # no span twice; the backend holds what `written` says
    assert row.max_wait_ms < 2000  # app calls never waited on the backend
