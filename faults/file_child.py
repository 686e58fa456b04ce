"""A throwaway app process for crash tests: exports spans to a FileBackendExporter with a spool.

    python -m faults.file_child SPOOL OUT PRODUCED --n N [--down-flag F] [--then hang|shutdown]

Every span key is appended to PRODUCED once export() has returned for it. With `--then hang` the
process prints READY and waits to be killed (SIGKILL/SIGTERM); with `shutdown` it shuts the
exporter down (bounded) and prints the exporter's stats as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from faults.common import FileBackendExporter, keys, make_spans


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("spool")
    p.add_argument("out")
    p.add_argument("produced")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--prefix", default="s")
    p.add_argument("--down-flag")
    p.add_argument("--then", choices=["hang", "shutdown"], default="shutdown")
    p.add_argument("--pace", type=float, default=0.0, help="seconds between export calls")
    args = p.parse_args(argv)

    exporter = FileBackendExporter(
        args.out, down_flag=args.down_flag, spool_dir=args.spool, max_batch_spans=args.batch
    )
    # SIGTERM: the polite path an orchestrator takes first; shut down within the bound.
    signal.signal(signal.SIGTERM, lambda *_: (exporter.shutdown(), sys.exit(0)))
    spans = make_spans(args.n, prefix=args.prefix)
    with open(args.produced, "a", encoding="ascii") as produced:
        for start in range(0, len(spans), args.batch):
            chunk = spans[start : start + args.batch]
            exporter.export(chunk)
            produced.write("".join(k + "\n" for k in keys(chunk)))
            produced.flush()
            if args.pace:
                time.sleep(args.pace)
    if args.then == "hang":
        exporter.force_flush(10_000)
        print("READY", flush=True)
        while True:
            time.sleep(1)
    exporter.force_flush(10_000)
    exporter.shutdown()
    print(json.dumps(exporter.stats.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
