# One command to set up and run the demo, one to set up and run the tests.
#   make demo   -> .venv with everything, then `healthivert demo --out demo_output`
#   make test   -> .venv with everything, then pytest
#   make wheel-check -> build the wheel, install it in a fresh venv outside the checkout, run demo, run, view
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test wheel-check lint clean browser-deps

$(BIN)/healthivert: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU wheel (an unpinned torch pulls a CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(BIN)/healthivert

setup: $(BIN)/healthivert

demo: setup
	$(BIN)/healthivert demo --out demo_output

# the viewer's real-browser test drives Debian's chromium (apt) through playwright (pip)
browser-deps: setup
	scripts/install_browser_test_deps.sh $(BIN)/python

# two pytest-xdist workers, a test file each at a time (module fixtures built once), one
# PyTorch thread each: on the 2-core CI machine 2 x 2 threads oversubscribe the cores, and the
# suite's peak memory is about 3.5 GB per worker
TEST_WORKERS ?= 2
test: setup browser-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# what a user of the wheel gets (CI's second step): scripts/check_wheel.sh says what it checks
wheel-check: setup
	scripts/check_wheel.sh $(BIN)/python

lint: setup
	$(BIN)/ruff check healthivert tests app benchmarks

clean:
	rm -rf $(VENV) demo_output
