"""An app process for the kill rows: exports to SageMaker (through the fault proxy given in
AWS_ENDPOINT_URL) or to an Aim repo, with a spool.

    python -m faults.child sagemaker|aim:REPO SPOOL PRODUCED_FILE CALLS hang|exit

`hang`: run the calls, print a JSON line (app stats), then wait to be killed.
`exit`: run the calls (0 = only replay the spool), drain, shut down, print the exporter's stats.
PRODUCED_FILE gets the number of spans produced, appended after every call.
"""

from __future__ import annotations

import json
import os
import sys
import time

from faults.app import App
from faults.harness import drain


def main() -> int:
    backend, spool, produced_path, calls, then = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    if backend.startswith("aim:"):
        from faults.aim_rows import exporter

        exp = exporter(backend[4:], spool)
    else:
        from faults.sagemaker_rows import exporter

        exp = exporter(spool)
    app = App(exp)
    with open(produced_path, "a") as produced:
        for i in range(calls):
            before = app.produced
            app.run(1, tag=f"c{i}-")
            produced.write(f"{app.produced - before}\n")
            produced.flush()
    app_stats = {"raised": app.stats.raised, "max_wait_ms": app.stats.max_wait_s * 1000}
    if then == "hang":
        # mid-export: the writer is busy with (or retrying) these traces
        time.sleep(float(os.environ.get("FAULTS_KILL_AFTER_S", "1.0")))
        print(json.dumps({**app_stats, "stats": exp.stats.as_dict()}), flush=True)
        while True:
            time.sleep(1)
    drain(exp, 120)
    exp.shutdown()
    print(json.dumps({**app_stats, "stats": exp.stats.as_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
