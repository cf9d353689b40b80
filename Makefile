# mmdet_yolor: `make demo` runs the main job, `make test` the test suite.
# Both install the environment (.venv/) first when needed.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: install test demo clean

install:
	@bash tools/misc/install_env.sh

test: install
	$(PYTHON) -m pytest tests

demo: install
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

clean:
	rm -rf work_dirs .pytest_cache
