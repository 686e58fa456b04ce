"""`spanchain bench [core|memory|aim|sagemaker|serve] [options]`: spanchain's benchmarks.

`core` (the default) measures what the callback bridge costs a LangChain app; the others measure
the exporters and the OTLP receiver and live in their own packages, imported only when asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

# subcommand -> (module with main(argv), what to install when it is missing)
SUBCOMMANDS = {
    "core": ("benchmarks.core", "spanchain"),
    "memory": ("benchmarks.memory", "spanchain"),
    "aim": ("benchmarks.aim", "spanchain-aim (pip install 'spanchain[aim]')"),
    "sagemaker": ("benchmarks.sagemaker", "spanchain-sagemaker (pip install 'spanchain[sagemaker]')"),
    "serve": ("benchmarks.serve", "spanchain's OTLP receiver (pip install 'spanchain[otel]')"),
}

USAGE = """\
usage: spanchain bench [core|memory|aim|sagemaker|serve] [options]

  core        per-invocation overhead of the callback bridge vs no callbacks, a no-op handler,
              a minimal span-per-run handler and the peer instrumentations (default)
  memory      memory retained by the handler over 100,000 sequential invocations (tracemalloc)
  aim         spans/s through the Aim exporter
  sagemaker   spans/s through the SageMaker exporter
  serve       spans/s through `spanchain serve`

`spanchain bench SUBCOMMAND --help` lists a benchmark's own options.
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args and args[0] in SUBCOMMANDS:
        name, rest = args[0], args[1:]
    elif not args or args[0].startswith("-"):
        name, rest = "core", args  # `spanchain bench [--options]` runs the core benchmark
    else:
        print(f"spanchain bench: unknown benchmark {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    module, needs = SUBCOMMANDS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        print(
            f"spanchain bench {name}: not available in this installation "
            f"({module} is missing; it needs {needs})",
            file=sys.stderr,
        )
        return 2
    return int(mod.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
