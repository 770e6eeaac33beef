# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= --durations=15
# Tests that touch no backend (pure Python, packaging, subprocesses) or whose
# assertions hold on any backend run in one pass only, the PyTorch one: the
# lightest, so that the three passes end about together. The plugins' tests
# against crafted payloads and a real TensorBoard run in the TensorFlow pass.
ONCE := not slow and not backend_independent and not any_backend

.PHONY: venv demo test test-quick lint typecheck docs wheel-check pytest pytest-tensorflow pytest-jax pytest-torch bench bench-prechelt tensorboard browser-deps clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(BIN)/python -m keras_bettermodels demo

# The wheel check (a fresh venv installed from the registry, mostly waiting on
# the network) runs beside the three pytest passes.
test: venv browser-deps lint typecheck docs
	$(MAKE) --no-print-directory -j4 --output-sync=target \
	  wheel-check pytest-tensorflow pytest-jax pytest-torch

# The inner loop: lint, types and the tests that train nothing (no backend
# computation, the plugins' payload tests), on one backend; no child processes
# that train or serve (searches killed mid-way, a real TensorBoard, the wheel).
test-quick: venv lint typecheck
	KERAS_BACKEND=torch $(BIN)/pytest -q -m \
	  "(backend_independent or tensorflow_pass) and not slow and not browser and not processes"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# What a pip user gets: an sdist and a wheel (`python -m build`, checked by
# `twine check`), the wheel installed with its `[jax]` extra into a fresh
# venv (no TensorFlow), and the demo run from outside the repository in quick
# mode; its logs must fill the Input timing tab (an uncached and a cached run).
# pip's cache makes reinstalls quick; the first one downloads jax and keras.
WHEEL_CHECK := build/wheel-check
wheel-check: venv
	rm -rf dist $(WHEEL_CHECK)
	$(BIN)/python -m build --no-isolation --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	$(BIN)/python -m venv $(WHEEL_CHECK)/venv
	$(WHEEL_CHECK)/venv/bin/python -m pip install --quiet "$$(ls dist/*.whl)[jax]"
	! $(WHEEL_CHECK)/venv/bin/python -c "import tensorflow" 2>/dev/null
	cd "$$(mktemp -d)" && KERAS_BACKEND=jax $(CURDIR)/$(WHEEL_CHECK)/venv/bin/python \
	  -m keras_bettermodels demo --quick --log-dir runs \
	  && $(CURDIR)/$(WHEEL_CHECK)/venv/bin/python $(CURDIR)/tests/_demo_logs.py runs
	# docs/input-timing.md's PyDataset example, where TensorFlow is not installed.
	awk '/^```python/{b="";inb=1;next} /^```/{if(inb&&b~/class Batches/)printf "%s", b; inb=0;next} inb{b=b $$0 "\n"}' \
	  docs/input-timing.md > $(WHEEL_CHECK)/caching_without_tf.py
	cd "$$(mktemp -d)" && KERAS_BACKEND=jax $(CURDIR)/$(WHEEL_CHECK)/venv/bin/python \
	  $(CURDIR)/$(WHEEL_CHECK)/caching_without_tf.py

# One pytest run per Keras backend; nothing else pins the backend. The three
# runs go side by side (each one's output printed whole when it ends): most
# tests are single-threaded, so this keeps both cores of a small machine busy.
pytest: venv
	$(MAKE) --no-print-directory -j3 --output-sync=target \
	  pytest-tensorflow pytest-jax pytest-torch

pytest-tensorflow: venv
	KERAS_BACKEND=tensorflow $(BIN)/pytest -m "$(ONCE)" $(PYTEST_ARGS)

pytest-jax: venv
	KERAS_BACKEND=jax $(BIN)/pytest -m "$(ONCE) and not tensorflow_pass" $(PYTEST_ARGS)

pytest-torch: venv
	KERAS_BACKEND=torch $(BIN)/pytest -m "not slow and not tensorflow_pass" $(PYTEST_ARGS)

# Every benchmark but the Prechelt study, which has its own target.
bench: venv
	@for script in $$(ls benchmarks/*.py | grep -v prechelt_study); do \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Prechelt's comparison of stopping criteria (~10 min of CPU on 2 cores, JAX):
# writes benchmarks/results/prechelt*.csv and docs/img/prechelt-study.png.
bench-prechelt: venv
	KERAS_BACKEND=jax $(BIN)/python benchmarks/prechelt_study.py

tensorboard: venv
	$(BIN)/tensorboard --logdir runs/demo --host 127.0.0.1

# Debian's Chromium, for the real-browser tests of the TensorBoard plugins.
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is missing: install Debian's chromium as root for the browser tests"; fi; }

clean:
	rm -rf $(VENV) build dist site runs *.egg-info .pytest_cache .mypy_cache .ruff_cache
