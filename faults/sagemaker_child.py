"""An app process for the kill rows: exports to SageMaker through the fault proxy, with a spool.

    python -m faults.sagemaker_child SPOOL PRODUCED_FILE CALLS hang|exit

`hang`: run the calls, print a JSON line (app stats), then wait to be killed.
`exit`: run the calls (0 = only replay the spool), drain, shut down, print the exporter's stats.
PRODUCED_FILE gets the number of spans produced, appended after every call.
"""

from __future__ import annotations

import json
import sys
import time

from faults.app import App
from faults.harness import drain
from faults.sagemaker_rows import exporter


def main() -> int:
    spool, produced_path, calls, then = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
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
        time.sleep(1.0)  # mid-export: the writer is busy with (or retrying) these traces
        print(json.dumps({**app_stats, "stats": exp.stats.as_dict()}), flush=True)
        while True:
            time.sleep(1)
    drain(exp, 120)
    exp.shutdown()
    print(json.dumps({**app_stats, "stats": exp.stats.as_dict()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
