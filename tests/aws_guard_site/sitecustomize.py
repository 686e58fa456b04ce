"""Test-only: put the AWS request checker into every Python subprocess the tests start.

The tests' conftest puts this directory on PYTHONPATH and sets $SPANCHAIN_TEST_AWS_VIOLATIONS;
without that variable this file does nothing.
"""

import os
import sys

if os.environ.get("SPANCHAIN_TEST_AWS_VIOLATIONS"):
    sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import aws_request_guard

        aws_request_guard.install()
    except Exception as exc:  # never stop the subprocess itself from starting
        sys.stderr.write(f"aws_guard_site: checker not installed: {exc!r}\n")
