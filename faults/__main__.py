"""`python -m faults [--fast] [--only TEXT] [--json FILE]`: run the fault table and print it.

Each row injects one real fault (processes killed, servers stopped, a proxy answering
throttling/500s/slowly, a full filesystem) while an instrumented LangChain app runs, then reads
the backend back. Exit status 1 if any row lost spans silently or let an exception reach the app.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from typing import Callable

from faults.harness import Row, render


def rows() -> list[tuple[str, bool, Callable[[], Row]]]:
    """(name, in the fast subset, run)."""
    from faults import aim_rows, replay_rows, sagemaker_rows, spool_rows

    return [
        ("aim repo locked", True, lambda: aim_rows.repo_locked()),
        ("aim server killed", False, lambda: aim_rows.server_killed()),
        ("aim sigkill", False, lambda: aim_rows.killed()),
        ("moto restarted", False, lambda: sagemaker_rows.moto_restart()),
        ("throttling", True, lambda: sagemaker_rows.transient("throttling on 90% of calls for 8 s", "throttle", 0.9)),
        ("http 500", True, lambda: sagemaker_rows.transient("HTTP 500 on 50% of calls for 8 s", "error500", 0.5)),
        ("slow", False, lambda: sagemaker_rows.transient(
            "responses 4 s late (client timeout 2 s) on 50% for 8 s", "slow", 0.5, slow_s=4.0)),
        ("disk full, backend down", True, lambda: spool_rows.disk_full(backend_down=True)),
        ("disk full, backend up", False, lambda: spool_rows.disk_full(backend_down=False)),
        ("sigterm, backend down", False, lambda: sagemaker_rows.killed(signal.SIGTERM, backend_down=True)),
        ("sigkill, backend up", False, lambda: sagemaker_rows.killed(signal.SIGKILL, backend_down=False)),
        ("sigkill, backend down", True, lambda: sagemaker_rows.killed(signal.SIGKILL, backend_down=True)),
        # "Nothing lost with a spool", each run REPLAY_ROUNDS times in a row (the slow tier too).
        ("spool replay sagemaker down", False, lambda: replay_rows.sagemaker_down(replay_rows.ROUNDS)),
        ("spool replay aim locked", False, lambda: replay_rows.aim_locked(replay_rows.ROUNDS)),
        ("spool replay aim missing", False, lambda: replay_rows.aim_missing(replay_rows.ROUNDS)),
        ("spool replay aim remote down", False, lambda: replay_rows.aim_remote_down(replay_rows.ROUNDS)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the rows CI runs")
    parser.add_argument("--only", help="only rows whose name contains this text")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    # Exporters log each kind of failure once; the table is the report, keep stderr readable.
    logging.basicConfig(level=logging.CRITICAL)
    done: list[Row] = []
    t0 = time.monotonic()
    for name, fast, run in rows():
        if (args.fast and not fast) or (args.only and args.only not in name):
            continue
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        try:
            row = run()
        except Exception as exc:  # a harness failure is a failed row, not a crash of the table
            row = Row(name, note=f"HARNESS ERROR {exc!r}"[:200])
            row.raised = -1
        done.append(row)
    print(render(done))
    print(f"\n{len(done)} rows in {time.monotonic() - t0:.0f} s; "
          f"{sum(1 for r in done if not r.ok)} not ok")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in done], f, indent=2, default=str)
    return 0 if all(r.ok for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
