"""Test-only: put the AWS request checker into every Python subprocess the tests start.

The tests' conftest puts this directory on PYTHONPATH and sets $PYTEST_AWS_REQUEST_VIOLATIONS;
without that variable this file does nothing. The checker is installed when botocore's client
module is first imported, so processes that never talk to AWS pay nothing for it.
"""

import os
import sys

if os.environ.get("PYTEST_AWS_REQUEST_VIOLATIONS"):
    import importlib.abc
    import importlib.machinery

    _TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def _install() -> None:
        if _TESTS not in sys.path:
            sys.path.append(_TESTS)
        try:
            import aws_request_guard

            aws_request_guard.install()
            aws_request_guard.report_count_at_exit()
        except Exception as exc:  # never stop the subprocess itself from working
            sys.stderr.write(f"aws_guard_site: checker not installed: {exc!r}\n")

    class _AfterBotocoreClient(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != "botocore.client":
                return None
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_install(module):
                exec_module(module)
                sys.meta_path.remove(finder)
                sys.modules[fullname] = module  # aws_request_guard imports it while we finish
                _install()

            spec.loader.exec_module = exec_and_install
            return spec

    finder = _AfterBotocoreClient()
    sys.meta_path.insert(0, finder)
