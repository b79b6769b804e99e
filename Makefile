# Two entry points on a fresh machine (Python >= 3.11 and pip only):
#   make report   simulate every case scenario and build the case-study reports
#   make test     install and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PERSONS ?= 50000
SEED    ?= 7

.PHONY: install report test lint bench lab docs clean

$(BIN)/privdomain: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/privdomain

# the tests also need the [spark] extra (the Spark parity suite, Java 17) and the [docs] extra
# (tests/test_docs_site.py builds the documentation site)
$(VENV)/.spark: $(BIN)/privdomain
	$(BIN)/python -m pip install --quiet -e ".[dev,spark,docs]"
	touch $(VENV)/.spark

install: $(BIN)/privdomain

report: install
	$(BIN)/privdomain report --all --persons $(PERSONS) --seed $(SEED) --out reports

test: $(VENV)/.spark
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadgroup  # loadgroup: the Spark tests share one worker (one session)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# the benchmarks are scripts of this checkout (benchmarks/), not part of the installed package
bench: install
	cd $(CURDIR) && $(BIN)/privdomain bench

# JupyterLab on the notebooks (installed into .venv on first use; jupytext opens the .py sources)
$(VENV)/.lab: $(BIN)/privdomain
	$(BIN)/python -m pip install --quiet -e ".[dev,lab]"
	touch $(VENV)/.lab

lab: $(VENV)/.lab
	$(BIN)/jupyter lab notebooks

# the documentation site (mkdocs.yml): user guide, notebooks and API reference, into site/
$(VENV)/.docs: $(BIN)/privdomain
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	touch $(VENV)/.docs

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) reports/* synthetic/data site
