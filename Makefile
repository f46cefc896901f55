# Two commands for a new user (see README.md):
#   make demo   set up .venv and run the main job on the bundled sample city
#   make test   set up .venv (plus headless Chromium for the map test) and run the full test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_output

.PHONY: demo test venv browser cjk-font bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# The whole plan of the bundled OSM town (buildings and streets in one file): grids,
# stations, placeholder staff, report and map in $(OUT)/plan/ (well under a minute).
demo: venv
	$(BIN)/gridopt plan sample_data/small_town.osm.pbf --time-limit-s 20 --out $(OUT)/plan

# Debian's chromium for the map's browser test and fonts-noto-cjk for the Chinese overview,
# installed only when missing and only where root and apt-get are available; elsewhere the
# browser test is skipped and the overview falls back to pinyin (both say so).
browser: cjk-font
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the map browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium: the map browser test will be skipped"; \
	  else \
	    echo "chromium is missing and cannot be installed here (needs root and apt-get): the map browser test will be skipped"; \
	  fi; }

cjk-font:
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's fonts-noto-cjk for the Chinese overview"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; } \
	      || echo "could not install fonts-noto-cjk: Chinese overviews fall back to pinyin"; \
	  else \
	    echo "no CJK font and none can be installed here: Chinese overviews fall back to pinyin"; \
	  fi; }

test: venv browser
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/gridopt bench all --peers --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
