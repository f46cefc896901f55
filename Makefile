# Two commands for a new user (see README.md):
#   make demo   set up .venv and run the main job on the bundled sample city
#   make test   set up .venv (plus headless Chromium for the map test) and run the full test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_output

.PHONY: demo test venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/gridopt households sample_data/suzhou_gusu_buildings.geojson -o $(OUT)/suzhou_households.gpkg

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/gridopt bench all --peers --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
