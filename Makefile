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

.PHONY: demo test test-slow setup bench bench-aim bench-sagemaker bench-serve chaos docs clean

setup: .venv/.synced

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: $(UV) pyproject.toml uv.lock exporters/aim/pyproject.toml exporters/sagemaker/pyproject.toml
	$(UV) sync --frozen --all-packages --group dev
	@touch $@

demo: setup
	$(RUN) spanchain demo

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
	$(RUN) spanchain bench core

bench-aim: setup
	$(RUN) spanchain bench aim

bench-sagemaker: setup
	$(RUN) spanchain bench sagemaker

bench-serve: setup
	$(RUN) spanchain bench serve

# The fault suite: every row injects a real fault and reads the backend back (a few minutes).
# `make test` runs its fast subset.
chaos: setup
	$(RUN) python -m faults

docs: setup
	$(RUN) mkdocs build --strict

clean:
	rm -rf .venv .tools site
