"""What a user sees in Aim's own web UI: `aim up` on a repo the exporter wrote, driven by a real
headless Chromium (Debian's `chromium`, installed by .ci/run; playwright only drives it).

Asserts from the rendered pages: run names in the runs list, small numbers on the Metrics
explorer's step axis, one waterfall bar per span in the Figures explorer, and the trace tree one
line per span on the run page's Texts tab. Saves the screenshots docs/aim.md shows.

A missing chromium fails this test (it is never skipped): CI installs it.
"""

from __future__ import annotations

import os
import tempfile
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from spanchain import semconv as sc
from spanchain_aim import AimSpanExporter
from spanchain_aim.readback import read_runs
from testkit.spans import agent_spans
from testkit.aim_server import free_port
from spanchain_aim.ui import EXPLORER_QUERIES, aim_executable, spanchain_executable

# `make screenshots` writes them into docs/img (what docs/aim.md shows); a plain test run keeps the
# working tree clean and saves them in a temporary folder (its path is printed).
DOCS_IMG = Path(os.environ.get("AIM_UI_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="aim-ui-screenshots-"))
ERROR_RED = "rgb(228, 87, 86)"  # figure._ERROR_COLOUR as the browser reports it
pytestmark = pytest.mark.timeout(300)


def chromium_executable() -> str:
    for candidate in (os.environ.get("SPANCHAIN_CHROMIUM"), "chromium", "chromium-browser"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    pytest.fail("no chromium executable: install Debian's chromium (apt-get install chromium; "
                ".ci/run does) or set SPANCHAIN_CHROMIUM")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A repo holding one session run (4 traces) and per-trace runs (2 traces, one tool fails)."""
    from aim import Repo

    repo = str(tmp_path_factory.mktemp("aim-ui") / "repo")
    os.makedirs(repo)
    Repo.from_path(repo, init=True)
    session = AimSpanExporter(repo=repo, experiment="support-bot", run_per="session")
    session.export(agent_spans(4, service="support-bot"))
    assert session.force_flush(60_000)
    session.shutdown()
    failing = agent_spans(2, service="support-bot", fail_tool=True)
    per_trace = AimSpanExporter(repo=repo, experiment="support-bot", run_per="trace")
    per_trace.export(failing)
    assert per_trace.force_flush(60_000)
    per_trace.shutdown()
    runs = {r.hash: r for r in read_runs(repo, session.run_hashes + per_trace.run_hashes)}
    return {"repo": repo, "session": runs[session.run_hashes[0]],
            "traces": [runs[h] for h in per_trace.run_hashes],
            "spans_per_trace": len(failing) // 2}


@pytest.fixture(scope="module")
def aim_ui(written):
    """`spanchain ui`, the command the demo prints: this install's `aim up` on the repo."""
    port = free_port()
    process = subprocess.Popen([spanchain_executable(), "ui", "--repo", written["repo"], "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/api/projects/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, "aim up exited"
            assert time.monotonic() < deadline, "aim up did not answer within 90 s"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        # Root in a container: Chromium's sandbox needs user namespaces we may not have.
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _open(page, url: str, ready: str) -> None:
    """Load a page of the single-page app and wait until `ready` is there; dismiss Aim's
    community pop-up, which covers part of every explorer on a first visit."""
    page.goto(url)
    page.wait_for_selector(ready)
    page.wait_for_timeout(800)
    skip = page.locator("button.CommunityPopup__tooltip__footer__skipBtn")
    if skip.count():
        skip.first.click()
        skip.first.wait_for(state="hidden")  # it fades out; keep it out of the screenshots


def _shot(page, name: str) -> None:
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / name))
    print(f"screenshot: {DOCS_IMG / name}")


def _type_query(page, query: str) -> None:
    editor = page.locator(".monaco-editor").first
    editor.click(force=True)  # its placeholder sits on top
    page.keyboard.press("Control+A")
    page.keyboard.type(query)
    page.keyboard.press("Escape")  # close the autocompletion list


def test_runs_list_shows_run_names(page, aim_ui, written):
    _open(page, aim_ui + "/runs", "text=Manage Columns")
    page.wait_for_selector(f"text={written['session'].name}")
    body = page.inner_text("body")
    for run in [written["session"], *written["traces"]]:
        assert run.name in body
    assert written["session"].name.startswith("support-bot · session · ")
    assert "Run: " not in body  # Aim's anonymous default
    _shot(page, "aim-runs.png")


def test_metrics_explorer_steps_are_small_numbers(page, aim_ui, written):
    _open(page, aim_ui + "/metrics", ".Switcher")
    page.click(".Switcher")  # from the metric picker to a query
    _type_query(page, dict(EXPLORER_QUERIES)["Metrics"])  # as the demo prints it
    page.click("button.Metrics__SelectForm__search__button")
    page.wait_for_selector("text=Steps")
    page.wait_for_timeout(1500)
    labels = page.eval_on_selector_all("svg text", "els => els.map(e => e.textContent.trim())")
    assert "Steps" in labels
    numbers = [float(t) for t in labels if re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", t)]
    assert not [t for t in labels if "e+" in t], labels  # no 1.8e+15
    # The x axis runs over the steps the session run holds: 8 model calls, 0..7.
    (session_calls,) = [points for (name, ctx), points in written["session"].metrics.items()
                        if name == "latency_s" and dict(ctx)["run_type"] == "chat_model"]
    assert [step for step, _ in session_calls] == list(range(8))
    assert max(numbers) == 7 and min(numbers) == 0
    _shot(page, "aim-metrics-latency.png")


def test_figures_explorer_draws_one_bar_per_span(page, aim_ui, written):
    failed_run = written["traces"][0]
    _open(page, aim_ui + "/figures", "button.QueryForm__search__button")
    # The pencil icon right of the query switches to a full query, where the demo's query goes.
    page.locator("button.QueryForm__search__button ~ div button, button.MuiButton-textPrimary").nth(1).click()
    _type_query(page, dict(EXPLORER_QUERIES)["Figures"] + f' and run.hash == "{failed_run.hash}"')
    page.click("button.QueryForm__search__button")
    page.wait_for_selector(".js-plotly-plot g.point")
    page.wait_for_timeout(1000)
    bars = page.eval_on_selector_all(".js-plotly-plot", "plots => plots.map(p => p.querySelectorAll('g.point').length)")
    assert bars == [written["spans_per_trace"]]  # one figure (one trace), one bar per span
    fills = page.eval_on_selector_all(".js-plotly-plot g.point path", "ps => ps.map(p => p.style.fill)")
    assert fills.count(ERROR_RED) == 1  # the failed tool stands out
    ticks = page.eval_on_selector_all(".js-plotly-plot .ytick text", "ts => ts.map(t => t.textContent)")
    assert any("execute_tool calculator" in t for t in ticks)
    page.locator(".js-plotly-plot").first.hover()
    _shot(page, "aim-figures-waterfall.png")


def test_run_page_texts_tab_shows_the_trace_one_line_per_span(page, aim_ui, written):
    session = written["session"]
    _open(page, f"{aim_ui}/runs/{session.hash}/texts", "text=Run Params")
    page.get_by_text("trace", exact=True).first.click()
    tree = session.texts_of("trace")[-1].splitlines()
    assert len(tree) == written["spans_per_trace"]
    page.wait_for_selector(f"text={tree[1].strip()[:20]}")
    page.wait_for_timeout(800)
    shown = [line.strip() for line in page.inner_text("body").splitlines()]
    for line in tree:
        assert line.strip() in shown, (line, shown)  # each span on a line of its own
    _shot(page, "aim-run-texts-trace.png")


def test_the_model_messages_read_one_per_line_with_their_roles(written):
    llm_inputs = written["session"].texts_of("llm.input")
    assert llm_inputs and all(text.startswith("[user] What is ") for text in llm_inputs)
    second_calls = [t for t in written["session"].texts_of("llm.input") if "\n" in t]
    for text in second_calls:
        assert all(re.match(r"\[(system|user|assistant|tool)\] |  ", line) for line in text.splitlines())
    assert sc.GEN_AI_INPUT_MESSAGES  # the bridge's attribute these come from


def test_spanchain_ui_finds_this_installs_aim_and_refuses_a_missing_repo(tmp_path):
    import sys

    assert Path(aim_executable()).parent == Path(sys.executable).parent
    done = subprocess.run([spanchain_executable(), "ui", "--repo", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no Aim repo" in done.stderr
