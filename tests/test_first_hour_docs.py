"""The docs a new user reads first: install lines that work, examples that run on a laptop, a site
that highlights code offline, and a troubleshooting entry for every message spanchain prints."""

from __future__ import annotations

import re
import subprocess
import sys

from eco_support import ROOT

INSTALL_WHEELS = 'pip install --find-links dist "spanchain[otel,aim,sagemaker]"'
INSTALL_CHECKOUT = 'pip install "./[otel]" ./exporters/aim ./exporters/sagemaker'


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_install_lines_are_the_ones_that_work():
    for doc in ("README.md", "docs/quickstart.md"):
        text = (ROOT / doc).read_text()
        assert INSTALL_WHEELS in text and INSTALL_CHECKOUT in text and "make dist" in text, doc
        for block in _shell_blocks(text):
            for line in block.splitlines():
                command = line.split("#", 1)[0].strip()
                # a bare name from PyPI does not exist (the packages are not published)
                assert not re.match(r"pip install (\"?spanchain|spanchain-)", command), (doc, line)


def test_zero_code_examples_run_on_a_laptop():
    for doc in ("README.md", "docs/quickstart.md"):
        for block in _shell_blocks((ROOT / doc).read_text()):
            if "spanchain run" not in block:
                continue
            code = "\n".join(l.split("#", 1)[0] for l in block.splitlines())
            assert "collector:4318" not in code, (doc, block)
            exporters = re.findall(r"OTEL_TRACES_EXPORTER=(\S+)", code)
            for value in exporters:  # nothing that needs a collector or AWS by default
                assert not set(value.split(",")) & {"otlp", "sagemaker"}, (doc, block)


def test_site_highlights_code_without_a_cdn(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    page = (site / "quickstart" / "index.html").read_text()
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', page)
    assert not remote, remote
    assert 'class="codehilite"' in page or 'class="highlight"' in page
    assert re.search(r'<span class="k[a-z]*">import</span>', page)  # tokens coloured by Pygments
    css = [p for p in site.rglob("*.css") if ".codehilite" in p.read_text() or ".highlight" in p.read_text()]
    assert css, "no stylesheet for the highlighted code"


def test_troubleshooting_explains_every_first_hour_message():
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    for message in (
        "unknown exporter",
        "did you mean",
        "Not starting the app",
        "tracing continues with",
        "is not reachable",
        "OTEL_TRACES_EXPORTER is not set",
        "where the spans went",
        "will not work: no AWS credentials",
        "is not writable",
        "--log-level debug",
        "is an Aim repo, not a span file",
        "tokens unknown",
        "SPANCHAIN_CONSOLE_OUTPUT",
        "No matching distribution found",
    ):
        assert message in text, message
