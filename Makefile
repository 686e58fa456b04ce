# Two entry points for a fresh machine with only python3, pip and make:
#   make demo   set everything up, then run the instrumented example app
#   make test   set everything up, then run the whole test suite
# uv manages the workspace; it is bootstrapped into .tools/ from PyPI.

# Bytecode is compiled at install time: these machines set PYTHONDONTWRITEBYTECODE,
# and without pre-compiled .pyc files imports crawl.
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy

UV := .tools/bin/uv
RUN := $(UV) run --frozen --no-sync

.PHONY: demo ui screenshots test test-slow setup dist bench bench-aim bench-sagemaker bench-serve chaos docs clean

setup: .venv/.synced

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: $(UV) pyproject.toml uv.lock exporters/aim/pyproject.toml exporters/sagemaker/pyproject.toml
	$(UV) sync --frozen --all-packages --group dev
	@touch $@

# Wheels of spanchain and both exporters, side by side, so the extras resolve from this folder:
#   pip install --find-links dist "spanchain[otel,aim,sagemaker]"
DIST ?= dist
dist: $(UV)
	rm -rf $(DIST)
	$(UV) build --all-packages --wheel --out-dir $(DIST)

demo: setup
	$(RUN) python -m demo

# Aim's web UI on the demo's repo, with the workspace's own aim (not on PATH outside .venv).
ui: setup
	$(RUN) spanchain ui $(UI_ARGS)

test: setup
	$(RUN) pytest $(PYTEST_ARGS)

# The slow tier (tests marked `slow`, left out of `make test`): fault scenarios repeated 20
# times in a row. CI runs it after `make test`.
test-slow: setup
	$(RUN) pytest -m slow $(PYTEST_ARGS)

# The peer instrumentations compared by `bench core` live in their own dependency group, so
# `make test` never needs them; --inexact keeps the dev group installed beside them.
bench: setup
	$(UV) sync --frozen --all-packages --group dev --group bench --inexact
	$(RUN) python -m benchmarks core

bench-aim: setup
	$(RUN) python -m benchmarks aim

bench-sagemaker: setup
	$(RUN) python -m benchmarks sagemaker

bench-serve: setup
	$(RUN) python -m benchmarks serve

# The fault suite: every row injects a real fault and reads the backend back (a few minutes).
# `make test` runs its fast subset.
chaos: setup
	$(RUN) python -m faults

docs: setup
	$(RUN) mkdocs build --strict

clean:
	rm -rf .venv .tools site dist

# The Aim UI screenshots docs/aim.md shows, made by the real-browser test.
screenshots: setup
	AIM_UI_SCREENSHOT_DIR=docs/img $(RUN) pytest exporters/aim/tests/test_aim_ui_browser.py
