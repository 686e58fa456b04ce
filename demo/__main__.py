"""`python -m demo` (what `make demo` runs)."""

import sys

from demo.main import main

sys.exit(main(sys.argv[1:]))
