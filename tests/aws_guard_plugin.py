"""Autouse fixtures that run the AWS request checker in every test (imported by the conftests).

Session start: the hook is installed in this process and, through PYTHONPATH, in every Python
subprocess. After each test: any request that broke a rule of botocore's service model, in this
process or a subprocess, fails the test with operation, member, value and rule.
"""

import os
import tempfile

import pytest

import aws_request_guard


class _Summary:
    """One line at the end of the run: how many requests were checked, how many broke a rule."""

    violations = 0

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(
            f"AWS request checker: {aws_request_guard.checked_requests()} requests checked in the test "
            f"process, {aws_request_guard.subprocess_checked_requests()} in subprocesses; "
            f"{self.violations} violation(s)"
        )


_summary = _Summary()


@pytest.fixture(scope="session", autouse=True)
def aws_request_check_session(request):
    aws_request_guard.install()
    if not request.config.pluginmanager.has_plugin("aws-request-checker-summary"):
        request.config.pluginmanager.register(_summary, "aws-request-checker-summary")
    if not os.environ.get(aws_request_guard.ENV_LOG):
        handle, path = tempfile.mkstemp(prefix="spanchain-aws-violations-", suffix=".jsonl")
        os.close(handle)
        aws_request_guard.enable_for_subprocesses(path)
    yield


@pytest.fixture(autouse=True)
def aws_request_check(aws_request_check_session):
    aws_request_guard.take_violations()  # whatever a session fixture's setup did is not this test's
    aws_request_guard.sent.clear()  # `sent` holds this test's requests only
    yield
    aws_request_guard.clear_extra_rejections()
    found = aws_request_guard.take_violations()
    _summary.violations += len(found)
    if found:
        pytest.fail(
            f"{len(found)} AWS request(s) break the service model's rules:\n" + "\n".join(found[:20]),
            pytrace=False,
        )
